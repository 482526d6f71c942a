"""The one-time GitHub OIDC stack: trust limited to one repository, permissions to the bootstrap roles."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

aws_cdk = pytest.importorskip("aws_cdk")
cdk = aws_cdk
from aws_cdk import aws_iam as iam  # noqa: E402

from infra_cdk.github_oidc import (  # noqa: E402
    CTX_PROVIDER_ARN,
    CTX_QUALIFIER,
    CTX_REPO,
    GithubOidcConfig,
    GithubOidcConfigError,
)
from infra_cdk.oidc_app import build_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
REPO = "octo-org/solar-rag"
EXPECTED_SUBJECTS = [
    f"repo:{REPO}:ref:refs/heads/main",
    f"repo:{REPO}:environment:dev",
    f"repo:{REPO}:environment:prod",
]
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"

Template = dict[str, Any]


def _synth(context: dict[str, Any], outdir: Path) -> Template:
    # Env-agnostic: the account/region the CLI would set must not leak into the assertions.
    saved = {k: os.environ.pop(k) for k in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION") if k in os.environ}
    try:
        app, stack = build_app(cdk.App(context=context, outdir=str(outdir)))
        template: Template = app.synth().get_stack_by_name(stack.stack_name).template
        return template
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("oidc-cdk-out")


@pytest.fixture(scope="session")
def template(synth_dir: Path) -> Template:
    # build_app registers cdk-nag: a successful synth means no unacknowledged finding.
    return _synth({CTX_REPO: REPO}, synth_dir)


def _resources(template: Template, type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def _only(template: Template, type_name: str) -> dict[str, Any]:
    found = list(_resources(template, type_name).values())
    assert len(found) == 1, f"expected one {type_name}, found {len(found)}"
    return found[0]


def _trust_statement(template: Template) -> dict[str, Any]:
    statements = _only(template, "AWS::IAM::Role")["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert len(statements) == 1
    statement: dict[str, Any] = statements[0]
    return statement


def _join(value: Any) -> str:
    """Flatten an Fn::Join of literals and pseudo-parameter Refs into one readable string."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)


def test_creates_the_github_oidc_provider(template: Template) -> None:
    provider = _only(template, "AWS::IAM::OIDCProvider")["Properties"]
    assert provider["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["ClientIdList"] == ["sts.amazonaws.com"]
    assert not _resources(template, "Custom::AWSCDKOpenIdConnectProvider")


def test_trust_policy_allows_only_the_repository_main_branch_and_environments(
    template: Template,
) -> None:
    statement = _trust_statement(template)
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    provider_id = next(iter(_resources(template, "AWS::IAM::OIDCProvider")))
    assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": EXPECTED_SUBJECTS,
        }
    }
    assert "*" not in json.dumps(statement["Condition"])


def test_role_may_only_assume_cdk_bootstrap_roles_and_read_api_keys(template: Template) -> None:
    role = _only(template, "AWS::IAM::Role")["Properties"]
    assert role["MaxSessionDuration"] == 3600
    assert "ManagedPolicyArns" not in role
    assert not _resources(template, "AWS::IAM::Policy")
    assert not _resources(template, "AWS::IAM::ManagedPolicy")
    (policy,) = role["Policies"]
    statements = {
        s["Sid"]: (s["Effect"], s["Action"], _join(s["Resource"]))
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert statements == {
        "AssumeCdkBootstrapRoles": (
            "Allow",
            "sts:AssumeRole",
            "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-hnb659fds-*",
        ),
        "ReadApiKeyForSmokeTest": (
            "Allow",
            "apigateway:GET",
            "arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/*",
        ),
    }


def test_outputs_the_role_arn_for_the_github_variable(template: Template) -> None:
    role_id = next(iter(_resources(template, "AWS::IAM::Role")))
    assert template["Outputs"]["DeployRoleArn"]["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_cfn_lint_accepts_the_template(synth_dir: Path, template: Template) -> None:
    cfn_lint = ROOT / ".venv" / "bin" / "cfn-lint"
    if not cfn_lint.exists():
        pytest.skip("cfn-lint is not installed in .venv (uv sync installs the cdk group)")
    files = sorted(str(p) for p in synth_dir.glob("*.template.json"))
    assert files
    result = subprocess.run(
        [str(cfn_lint), "--ignore-checks", "W3005", "--", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_existing_provider_is_reused_instead_of_created(tmp_path: Path) -> None:
    template = _synth({CTX_REPO: REPO, CTX_PROVIDER_ARN: PROVIDER_ARN, CTX_QUALIFIER: "custom1"}, tmp_path)
    assert not _resources(template, "AWS::IAM::OIDCProvider")
    statement = _trust_statement(template)
    assert statement["Principal"] == {"Federated": PROVIDER_ARN}
    role = _only(template, "AWS::IAM::Role")["Properties"]
    resources = [_join(s["Resource"]) for s in role["Policies"][0]["PolicyDocument"]["Statement"]]
    assert "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-custom1-*" in resources


def test_nag_is_wired_in_and_rejects_an_unacknowledged_wildcard(tmp_path: Path) -> None:
    app, stack = build_app(cdk.App(context={CTX_REPO: REPO}, outdir=str(tmp_path)))
    stack.deploy.role.add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        app.synth()


def test_immutable_subject_form_is_supported() -> None:
    config = GithubOidcConfig(repo="octo-org@123/solar-rag@456")
    assert config.subjects[0] == "repo:octo-org@123/solar-rag@456:ref:refs/heads/main"


@pytest.mark.parametrize(
    "repo",
    ["*", "octo/*", "*/repo", "octo", "octo/repo/extra", "octo/re po", "octo@1/repo", "octo/.."],
)
def test_wildcard_or_malformed_repository_is_rejected(repo: str) -> None:
    with pytest.raises(GithubOidcConfigError, match="github_repo"):
        GithubOidcConfig(repo=repo)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("provider_arn", "arn:aws:iam::123456789012:oidc-provider/example.com"),
        ("qualifier", "far-too-long-qualifier"),
        ("branch", "*"),
        ("environments", ()),
    ],
)
def test_invalid_options_are_rejected(field: str, value: Any) -> None:
    with pytest.raises(GithubOidcConfigError):
        GithubOidcConfig(repo=REPO, **{field: value})


def test_missing_repository_context_fails_with_instructions() -> None:
    with pytest.raises(GithubOidcConfigError, match=r"-c github_repo=<owner>/<repo>"):
        build_app(cdk.App())


def test_oidc_app_entry_point_fails_clearly_without_context(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDK_")}
    env["CDK_OUTDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "infra_cdk.oidc_app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "CDK context 'github_repo' is required" in result.stderr
