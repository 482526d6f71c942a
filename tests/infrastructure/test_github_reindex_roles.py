"""Context ``github_reindex_roles``: one more role per GitHub environment for the reindex
workflow, trusting only that environment, with no policy of its own (the application stack
attaches its reindex policy to it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra_cdk.github_oidc import CTX_REINDEX_ROLES, CTX_REPO, GithubOidcConfigError
from tests.infrastructure.test_github_oidc import (
    ENVIRONMENTS,
    REPO,
    Template,
    _resources,
    _synth,
    _trust_statement,
    synth_dir,  # noqa: F401 (fixture)
    template,  # noqa: F401 (fixture)
)


@pytest.fixture(scope="module")
def with_reindex(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return _synth({CTX_REPO: REPO, CTX_REINDEX_ROLES: "true"},
                  tmp_path_factory.mktemp("oidc-reindex"))


def reindex_roles(synthesized: Template) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in _resources(synthesized, "AWS::IAM::Role").items()
            if k.startswith("GithubDeployReindexRole")}


def test_none_without_the_context(template: Template) -> None:  # noqa: F811
    assert not reindex_roles(template)
    assert not any(name.startswith("ReindexRoleArn") for name in template["Outputs"])


def test_one_policyless_role_per_environment(with_reindex: Template) -> None:
    roles = reindex_roles(with_reindex)
    subjects = []
    for role_id, role in roles.items():
        props = role["Properties"]
        assert "Policies" not in props and "ManagedPolicyArns" not in props
        assert props["MaxSessionDuration"] == 3600
        statement = _trust_statement(role)
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        subject = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert "*" not in json.dumps(statement["Condition"])
        subjects.append(subject)
        env = subject.rsplit(":", 1)[1]
        output = with_reindex["Outputs"][f"ReindexRoleArn{env.capitalize()}"]
        assert output["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}
        assert "AWS_REINDEX_ROLE_ARN" in output["Description"]
    assert sorted(subjects) == [f"repo:{REPO}:environment:{env}" for env in ENVIRONMENTS]
    assert not _resources(with_reindex, "AWS::IAM::Policy")


def test_a_malformed_value_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(GithubOidcConfigError, match=CTX_REINDEX_ROLES):
        _synth({CTX_REPO: REPO, CTX_REINDEX_ROLES: "yes please"}, tmp_path)
