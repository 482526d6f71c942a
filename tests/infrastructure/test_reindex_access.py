"""Context ``reindex_principal_arn``: the operator role gets exactly what `rag reindex` needs
(docs/deploy.md, "Re-embedding"), on the identity side (one managed policy attached to the
role) and on the OpenSearch resource side, and nothing exists without the context."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra_cdk.config import ConfigError, load_config
from infra_cdk.constructs.vector_store import DOMAIN_GRANTS
from tests.infrastructure.conftest import Synth, _synth
from tests.infrastructure.helpers import as_list

OPERATOR = "arn:aws:iam::123456789012:role/ops/solar-rag-reindex"
WITH_OPERATOR = {
    "domain": {"reindex_principal_arn": OPERATOR, "account": "123456789012",
               "region": "eu-central-1"},
    "serverless": {"reindex_principal_arn": OPERATOR, "vector_store": "serverless"},
}


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synth]:
    return {name: _synth(name, context, tmp_path_factory.mktemp(f"cdk-reindex-{name}"))
            for name, context in WITH_OPERATOR.items()}


def managed_policies(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth.of_type("AWS::IAM::ManagedPolicy")


def operator_policy(synth: Synth) -> dict[str, Any]:
    (policy,) = managed_policies(synth).values()
    props: dict[str, Any] = policy["Properties"]
    return props


def statements(synth: Synth) -> list[dict[str, Any]]:
    return [dict(s) for s in as_list(operator_policy(synth)["PolicyDocument"]["Statement"])]


def refs(value: Any) -> set[str]:
    """Logical ids a (possibly intrinsic) value references."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "Ref" in node:
                found.add(str(node["Ref"]))
            if "Fn::GetAtt" in node:
                found.add(str(node["Fn::GetAtt"][0]))
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(value)
    return found


def only(synth: Synth, kind: str) -> str:
    (logical_id,) = synth.of_type(kind)
    return logical_id


def test_nothing_for_an_operator_without_the_context(dev: Synth, serverless: Synth) -> None:
    for synth in (dev, serverless):
        assert not managed_policies(synth)
        assert "ReindexPolicyArn" not in synth.template["Outputs"]
        assert "solar-rag-reindex" not in json.dumps(synth.template)
        assert "_aliases" not in json.dumps(synth.template)


def test_the_policy_is_attached_to_the_role_and_scoped(operated: dict[str, Synth]) -> None:
    synth = operated["domain"]
    props = operator_policy(synth)
    assert props["Roles"] == ["solar-rag-reindex"]  # the role's name, its path dropped
    assert props["ManagedPolicyName"] == "solar-rag-dev-reindex-operator"
    bucket = only(synth, "AWS::S3::Bucket") if len(synth.of_type("AWS::S3::Bucket")) == 1 else None
    table = only(synth, "AWS::DynamoDB::Table")
    secret = only(synth, "AWS::SecretsManager::Secret")
    by_action: dict[str, list[Any]] = {}
    for statement in statements(synth):
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        for action in as_list(statement["Action"]):
            by_action.setdefault(action, []).extend(as_list(statement["Resource"]))
    for resources in by_action.values():
        assert "*" not in resources  # every statement names this stack's resources
    assert refs(by_action["dynamodb:PutItem"]) == {table}
    assert refs(by_action["secretsmanager:GetSecretValue"]) == {secret}
    rendered_puts = json.dumps(by_action["s3:PutObject"])
    assert "/.solar-rag/reindex/*" in rendered_puts and len(by_action["s3:PutObject"]) == 1
    assert json.dumps(by_action["s3:DeleteObject"]) == rendered_puts  # the record only
    if bucket:
        assert refs(by_action["s3:GetObject"]) <= {bucket}
    assert not any(a.startswith(("sqs:", "lambda:", "iam:", "kms:")) for a in by_action)
    assert "es:ESHttp*" not in by_action and "es:*" not in by_action
    domain_paths = json.dumps(by_action["es:ESHttpPut"])
    assert "/rag-chunks*" in domain_paths and "_aliases" not in domain_paths
    assert "/_aliases" in json.dumps(by_action["es:ESHttpPost"])
    assert json.dumps(by_action["es:ESHttpDelete"]).count("/rag-chunks*/_doc/*") == 1


def test_the_domain_access_policy_names_the_operator_for_the_reindex_paths_only(
        operated: dict[str, Synth]) -> None:
    (domain,) = operated["domain"].of_type("AWS::OpenSearchService::Domain").values()
    operator = [s for s in domain["Properties"]["AccessPolicies"]["Statement"]
                if OPERATOR in as_list(s["Principal"]["AWS"])]
    assert len(operator) == len(DOMAIN_GRANTS["reindex"])
    for statement in operator:
        assert as_list(statement["Principal"]["AWS"]) == [OPERATOR]  # not mixed with functions
        assert statement["Sid"].startswith("ReindexAccess")
    others = [s for s in domain["Properties"]["AccessPolicies"]["Statement"] if s not in operator]
    assert others and all(OPERATOR not in json.dumps(s) for s in others)


def test_the_serverless_data_policy_has_one_operator_rule(operated: dict[str, Synth]) -> None:
    synth = operated["serverless"]
    (data,) = synth.of_type("AWS::OpenSearchServerless::AccessPolicy").values()
    policy = data["Properties"]["Policy"]
    rendered = json.dumps(policy)
    assert rendered.count(OPERATOR) == 1
    (aoss,) = [s for s in statements(synth) if "aoss:APIAccessAll" in as_list(s["Action"])]
    assert refs(aoss["Resource"]) == {only(synth, "AWS::OpenSearchServerless::Collection")}
    # the operator's rule: index permissions on <collection>/<alias>* only, no collection rights
    pieces = rendered.split(OPERATOR)[0].rsplit('\\"Rules\\"', 1)[1]
    assert "aoss:WriteDocument" in pieces and "aoss:CreateIndex" in pieces
    assert "CollectionItems" not in pieces and "rag-chunks*" in pieces


def test_the_environment_output_names_what_rag_reindex_reads(
        dev: Synth, operated: dict[str, Synth]) -> None:
    for synth in (dev, *operated.values()):
        value = json.dumps(synth.template["Outputs"]["ReindexEnvironment"]["Value"])
        for name in ("VECTOR_STORE=opensearch", "OPENSEARCH_ENDPOINT=", "OPENSEARCH_TARGET=",
                     "OPENSEARCH_INDEX=rag-chunks", "DOCUMENTS_BUCKET=", "DOCUMENTS_TABLE=",
                     "UPSTAGE_SECRET_ID=", "AWS_REGION=", "EMBEDDING_DIMENSIONS=1024"):
            assert name in value
        assert "UPSTAGE_API_KEY" not in value
    assert "ReindexPolicyArn" in operated["domain"].template["Outputs"]


@pytest.mark.parametrize(("arn", "account", "message"), [
    ("arn:aws:iam::123456789012:user/alice", None, "IAM role ARN"),
    ("arn:aws:iam::*:role/x", None, "IAM role ARN"),
    ("*", None, "IAM role ARN"),
    ("arn:aws:iam::123456789012:role/ops", "210987654321", "stack's account"),
])
def test_the_principal_must_be_a_role_of_the_account(arn: str, account: str | None,
                                                     message: str) -> None:
    context = {"reindex_principal_arn": arn, "account": account}
    with pytest.raises(ConfigError, match=message):
        load_config(context.get, environ={})


def test_an_unset_principal_is_none() -> None:
    assert load_config(lambda key: None, environ={}).reindex_principal_arn is None
    context = {"reindex_principal_arn": "arn:aws-cn:iam::123456789012:role/a/b"}
    assert load_config(context.get, environ={}).reindex_principal_arn == context[
        "reindex_principal_arn"]


def test_the_deploy_workflow_may_set_it_through_the_environment() -> None:
    environ = {"SOLAR_RAG_REINDEX_PRINCIPAL_ARN": OPERATOR}
    assert load_config(lambda key: None, environ=environ).reindex_principal_arn == OPERATOR
    assert load_config(lambda key: None, environ={"SOLAR_RAG_REINDEX_PRINCIPAL_ARN": ""}
                       ).reindex_principal_arn is None  # an unset GitHub variable
    context = {"reindex_principal_arn": "arn:aws:iam::123456789012:role/other"}
    assert load_config(context.get, environ=environ).reindex_principal_arn == context[
        "reindex_principal_arn"]  # the context wins
    with pytest.raises(ConfigError):
        load_config(lambda key: None, environ={"SOLAR_RAG_REINDEX_PRINCIPAL_ARN": "nope"})


def test_the_environment_output_parses_as_the_workflow_reads_it(dev: Synth,
                                                               serverless: Synth) -> None:
    """`NAME=value` pairs split on spaces (reindex.yml's `tr ' ' '\\n' | grep`): with every
    token rendered as a value without spaces, each pair matches and none is lost."""
    import re

    for synth in (dev, serverless):
        value = synth.template["Outputs"]["ReindexEnvironment"]["Value"]
        separator, parts = value["Fn::Join"]
        rendered = str(separator).join(p if isinstance(p, str) else "TOKEN" for p in parts)
        pairs = rendered.split(" ")
        assert all(re.fullmatch(r"[A-Z_]+=[^\s]+", pair) for pair in pairs), pairs
        assert len(pairs) == len({pair.split("=", 1)[0] for pair in pairs}) == 13
