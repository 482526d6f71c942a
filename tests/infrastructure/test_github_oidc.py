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
ENVIRONMENTS = ("dev", "prod")
SESSION_SECONDS = 2 * 3600  # a first zone-aware domain takes 30-60 min, plus the rest
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


def _roles_by_environment(template: Template) -> dict[str, dict[str, Any]]:
    """Each deploy role's properties, keyed by the one environment its trust policy names."""
    roles: dict[str, dict[str, Any]] = {}
    for role in _resources(template, "AWS::IAM::Role").values():
        subject = _trust_statement(role)["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert isinstance(subject, str), f"one subject per role, not {subject!r}"
        roles[subject.rsplit(":", 1)[1]] = role["Properties"]
    return roles


def _trust_statement(role: dict[str, Any]) -> dict[str, Any]:
    statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
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


def test_one_role_per_environment_trusting_only_that_environment(template: Template) -> None:
    roles = _resources(template, "AWS::IAM::Role")
    assert len(roles) == len(ENVIRONMENTS)
    provider_id = next(iter(_resources(template, "AWS::IAM::OIDCProvider")))
    subjects = []
    for role in roles.values():
        statement = _trust_statement(role)
        assert statement["Effect"] == "Allow"
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Principal"] == {"Federated": {"Ref": provider_id}}
        assert set(statement["Condition"]) == {"StringEquals"}
        condition = statement["Condition"]["StringEquals"]
        assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
        subjects.append(condition["token.actions.githubusercontent.com:sub"])
        assert "*" not in json.dumps(statement["Condition"])
    # No branch subject: only jobs in a GitHub environment (with its protection rules) get in.
    assert sorted(subjects) == [f"repo:{REPO}:environment:{env}" for env in ENVIRONMENTS]


def test_each_role_may_only_assume_cdk_bootstrap_roles_and_read_api_keys(template: Template) -> None:
    roles = _roles_by_environment(template)
    assert set(roles) == set(ENVIRONMENTS)
    assert not _resources(template, "AWS::IAM::Policy")
    assert not _resources(template, "AWS::IAM::ManagedPolicy")
    for role in roles.values():
        assert role["MaxSessionDuration"] == SESSION_SECONDS
        assert "ManagedPolicyArns" not in role
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


def test_outputs_each_role_arn_for_its_environment_variable(template: Template) -> None:
    for role_id, role in _resources(template, "AWS::IAM::Role").items():
        subject = _trust_statement(role)["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        env = subject.rsplit(":", 1)[1]
        output = template["Outputs"][f"DeployRoleArn{env.capitalize()}"]
        assert output["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert f"environment '{env}'" in output["Description"]


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
    for role in _resources(template, "AWS::IAM::Role").values():
        assert _trust_statement(role)["Principal"] == {"Federated": PROVIDER_ARN}
        statements = role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        resources = [_join(s["Resource"]) for s in statements]
        assert "arn:<AWS::Partition>:iam::<AWS::AccountId>:role/cdk-custom1-*" in resources


def test_nag_is_wired_in_and_rejects_an_unacknowledged_wildcard(tmp_path: Path) -> None:
    app, stack = build_app(cdk.App(context={CTX_REPO: REPO}, outdir=str(tmp_path)))
    stack.deploy.roles["dev"].add_to_policy(iam.PolicyStatement(actions=["s3:*"], resources=["*"]))
    with pytest.raises(Exception, match="AwsSolutions-IAM5"):
        app.synth()


def test_immutable_subject_form_is_supported() -> None:
    config = GithubOidcConfig(repo="octo-org@123/solar-rag@456")
    assert config.subject("prod") == "repo:octo-org@123/solar-rag@456:environment:prod"


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
        ("environments", ()),
        ("environments", ("dev", "de*")),
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
