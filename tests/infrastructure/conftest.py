"""Session-scoped synths: importing aws_cdk and synthesizing are the expensive parts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

VARIANTS: dict[str, dict[str, str]] = {
    "dev": {},
    "serverless": {"vector_store": "serverless", "architecture": "x86_64"},
    "prod": {
        "stage": "prod",
        "alarm_email": "ops@example.com",
        "cors_origins": "https://app.example.com,https://admin.example.com",
        "account": "123456789012",
        "region": "ap-northeast-2",
    },
}


@dataclass(frozen=True)
class Synth:
    name: str
    template: dict[str, Any]
    template_path: Path
    stack: Any

    @property
    def resources(self) -> Mapping[str, dict[str, Any]]:
        resources: Mapping[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        from aws_cdk import Stack

        return str(Stack.of(construct).resolve(Stack.of(construct).get_logical_id(construct)))


def _synth(name: str, context: dict[str, str], outdir: Path) -> Synth:
    from infra_cdk.app import build_app

    app, stack = build_app(context, outdir=str(outdir), nag=True)  # nag failures raise here
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return Synth(
        name=name,
        template=artifact.template,
        template_path=Path(outdir) / artifact.template_file,
        stack=stack,
    )


@pytest.fixture(scope="session")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    return {
        name: _synth(name, context, tmp_path_factory.mktemp(f"cdk-{name}"))
        for name, context in VARIANTS.items()
    }


@pytest.fixture(scope="session")
def dev(synths: dict[str, Synth]) -> Synth:
    return synths["dev"]


@pytest.fixture(scope="session")
def serverless(synths: dict[str, Synth]) -> Synth:
    return synths["serverless"]


@pytest.fixture(scope="session")
def prod(synths: dict[str, Synth]) -> Synth:
    return synths["prod"]
