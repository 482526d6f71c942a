"""Fixtures of the deployment tier (see ``harness.py`` and docs/testing.md).

- ``deployment_env`` (session): synthesized app (both vector-store variants, in parallel),
  bare runtime, staged assets, moto server, OpenSearch stub, fake Upstage.
- ``deployed`` (module): the default (managed domain) stack, provisioned afresh per module.
- ``deploy`` (function): a factory for fresh deployments of either variant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.deployment.harness import Deployed, DeploymentEnvironment, Variant


@pytest.fixture(scope="session")
def deployment_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeploymentEnvironment]:
    environment = DeploymentEnvironment(tmp_path_factory.mktemp("deployment"))
    try:
        yield environment
    finally:
        environment.close()


@pytest.fixture(scope="module")
def deployed(deployment_env: DeploymentEnvironment) -> Iterator[Deployed]:
    deployment = deployment_env.deploy("domain")
    try:
        yield deployment
    finally:
        deployment.close()


@pytest.fixture
def deploy(deployment_env: DeploymentEnvironment) -> Iterator[Callable[[Variant], Deployed]]:
    made: list[Deployed] = []

    def make(variant: Variant = "domain") -> Deployed:
        deployment = deployment_env.deploy(variant)
        made.append(deployment)
        return deployment

    try:
        yield make
    finally:
        for deployment in made:
            deployment.close()
