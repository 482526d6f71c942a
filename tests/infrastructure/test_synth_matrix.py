"""Every supported context combination (stage × vector store × architecture) synthesizes with
cdk-nag, and its templates pass cfn-lint and checkov with exactly the findings justified in
docs/security-findings.md.

The synths skip asset bundling (templates only; the layer builds are tested elsewhere) and
run once per session. checkov is not in the project's lock (its pins would downgrade boto3
and others): CI installs it with ``uv tool install`` and sets ``CHECKOV_REQUIRED=1``; locally
the checkov test runs when ``checkov`` is on the PATH (or ``CHECKOV`` names it) and is
skipped otherwise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SECURITY_FINDINGS = REPO / "docs" / "security-findings.md"

STAGES = ("dev", "prod")
VECTOR_STORES: dict[str, dict[str, str]] = {
    "domain": {"vector_store": "domain"},
    "serverless": {"vector_store": "serverless", "serverless_generation": "nextgen"},
    "serverless-classic": {"vector_store": "serverless", "serverless_generation": "classic"},
}
ARCHITECTURES = ("arm64", "x86_64")
PROD_EXTRAS = {
    "alarm_email": "ops@example.com",
    "cors_origins": "https://app.example.com",
    "account": "123456789012",
    "region": "ap-northeast-2",
    # prod combinations also grant an operator role `rag reindex` (dev ones do not)
    "reindex_principal_arn": "arn:aws:iam::123456789012:role/solar-rag-reindex",
}
COMBINATIONS = [
    (stage, store, arch) for stage in STAGES for store in VECTOR_STORES for arch in ARCHITECTURES
]


def combination_id(combination: tuple[str, str, str]) -> str:
    return "-".join(combination)


@dataclass(frozen=True)
class MatrixSynth:
    templates: dict[str, Path]  # combination id -> stage stack template
    account_template: Path  # the API Gateway logging stack (the same in every combination)
    errors: dict[str, str]  # combination id -> why its synth failed


def _context(stage: str, store: str, arch: str) -> dict[str, Any]:
    context: dict[str, Any] = {
        "stage": stage,
        "architecture": arch,
        **VECTOR_STORES[store],
        "aws:cdk:bundling-stacks": [],  # templates only
    }
    if stage == "prod":
        context |= PROD_EXTRAS
    return context


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> MatrixSynth:
    from infra_cdk.app import API_GATEWAY_ACCOUNT_STACK, build_app

    out = tmp_path_factory.mktemp("matrix")
    templates: dict[str, Path] = {}
    errors: dict[str, str] = {}
    account_template: Path | None = None
    for combination in COMBINATIONS:
        name = combination_id(combination)
        outdir = out / name
        try:
            app, stack = build_app(_context(*combination), outdir=str(outdir), nag=True)
            assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
        except Exception as exc:  # reported per combination by the test below
            errors[name] = str(exc)[-3000:]
            continue
        artifact = assembly.get_stack_by_name(stack.stack_name)
        templates[name] = out / f"{name}.template.json"
        shutil.copyfile(outdir / artifact.template_file, templates[name])
        if account_template is None:
            account = assembly.get_stack_by_name(API_GATEWAY_ACCOUNT_STACK)
            account_template = out / "api-gateway-account.template.json"
            shutil.copyfile(outdir / account.template_file, account_template)
    assert account_template is not None, errors
    return MatrixSynth(templates, account_template, errors)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_combination_synthesizes_with_cdk_nag(matrix: MatrixSynth, combination: tuple[str, str, str]) -> None:
    name = combination_id(combination)
    assert name not in matrix.errors, matrix.errors.get(name)
    template = json.loads(matrix.templates[name].read_text(encoding="utf-8"))
    _stage, store, arch = combination
    functions = [  # ours (with the layers), not CDK's custom resource provider
        r for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "Layers" in r["Properties"]
    ]  # fmt: skip
    assert functions and all(f["Properties"]["Architectures"] == [arch] for f in functions)
    has_domain = any(r["Type"] == "AWS::OpenSearchService::Domain" for r in template["Resources"].values())
    assert has_domain == (store == "domain")


def _layer_keys(template_path: Path) -> set[str]:
    template = json.loads(template_path.read_text(encoding="utf-8"))
    return {
        json.dumps(r["Properties"]["Content"]["S3Key"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::LayerVersion"
    }


def test_dependency_layer_asset_differs_per_architecture(matrix: MatrixSynth) -> None:
    arm = _layer_keys(matrix.templates["dev-domain-arm64"])
    x86 = _layer_keys(matrix.templates["dev-domain-x86_64"])
    assert len(arm) == len(x86) == 2
    assert len(arm & x86) == 1, "the solar_rag layer is shared, the dependency layer is not"


def test_cfn_lint_passes_on_every_combination(matrix: MatrixSynth) -> None:
    cfn_lint = REPO / ".venv" / "bin" / "cfn-lint"
    if not cfn_lint.exists():
        pytest.skip("cfn-lint is not installed (uv sync installs the cdk group)")
    files = [str(p) for p in matrix.templates.values()] + [str(matrix.account_template)]
    # Two processes (CI runners have 4 cores): cfn-lint takes ~3 s per template.
    halves = [files[0::2], files[1::2]]
    runs = [
        subprocess.Popen(
            [str(cfn_lint), "--ignore-checks", "W3005", "--", *half],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for half in halves
    ]  # fmt: skip
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), "\n".join(outputs)


def documented_checkov_findings() -> set[str]:
    """The check ids of the justification table in docs/security-findings.md."""
    text = SECURITY_FINDINGS.read_text(encoding="utf-8")
    section = text.split("## checkov", 1)[1]
    return set(re.findall(r"^\| (CKV2?_AWS_\d+) ", section, flags=re.MULTILINE))


def _checkov() -> str | None:
    return os.environ.get("CHECKOV") or shutil.which("checkov")


def _failed_checks(report: Any) -> list[dict[str, Any]]:
    reports = report if isinstance(report, list) else [report]
    failed: list[dict[str, Any]] = []
    for item in reports:
        failed += item.get("results", {}).get("failed_checks", [])
    return failed


def test_checkov_finds_exactly_the_documented_findings(matrix: MatrixSynth, tmp_path: Path) -> None:
    checkov = _checkov()
    if checkov is None:
        if os.environ.get("CHECKOV_REQUIRED") == "1":
            pytest.fail("CHECKOV_REQUIRED=1 but checkov is not installed (uv tool install checkov)")
        pytest.skip("checkov is not installed: uv tool install checkov==3.3.30 (see docs/security-findings.md)")
    scan = tmp_path / "templates"
    scan.mkdir()
    for path in [*matrix.templates.values(), matrix.account_template]:
        shutil.copyfile(path, scan / path.name)
    result = subprocess.run(
        [checkov, "-d", str(scan), "--framework", "cloudformation", "--skip-download",
         "--output", "json", "--quiet", "--compact"],
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]
    failed = _failed_checks(json.loads(result.stdout))
    found = {check["check_id"] for check in failed}
    documented = documented_checkov_findings()
    undocumented = {
        check["check_id"]: check["resource"] for check in failed if check["check_id"] not in documented
    }
    assert not undocumented, f"justify or fix in docs/security-findings.md: {undocumented}"
    assert documented <= found, f"fixed, remove from docs/security-findings.md: {documented - found}"


def test_documented_findings_parse() -> None:
    documented = documented_checkov_findings()
    assert {"CKV_AWS_116", "CKV_AWS_117"} <= documented
