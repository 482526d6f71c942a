"""cdk-nag gate, cfn-lint, and the helpers' ability to catch what they look for."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infrastructure.conftest import Synth
from tests.infrastructure.helpers import identity_statements, methods
from tests.infrastructure.test_stack import WILDCARD_RESOURCE_ALLOWED

REPO = Path(__file__).resolve().parents[2]


def test_synth_fails_on_a_new_unacknowledged_finding(tmp_path: Path) -> None:
    from aws_cdk import aws_sqs as sqs

    from infra_cdk.app import build_app

    # Skip asset bundling: this synth only exists to run the validation plugin.
    app, stack = build_app({"aws:cdk:bundling-stacks": []}, outdir=str(tmp_path), nag=True)
    sqs.Queue(stack, "Unacknowledged")  # no DLQ, no TLS-only policy: AwsSolutions-SQS3/SQS4
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = (tmp_path / "validation-report.json").read_text(encoding="utf-8")
    assert "AwsSolutions-SQS4" in report
    assert "SolarRag-dev/Unacknowledged" in report


def test_every_acknowledgement_has_a_reason(dev: Synth) -> None:
    import aws_cdk as cdk

    acknowledgements: dict[str, str] = {}
    for construct in dev.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in dict(entry.data).items():
                    acknowledgements[f"{construct.node.path} {rule}"] = reason
    assert len(acknowledgements) >= 15
    for key, reason in acknowledgements.items():
        assert " AwsSolutions::AwsSolutions-" in key, key  # plugin-qualified, not annotations
        assert len(reason) >= 40, key


def _template(*statements: dict[str, object]) -> dict[str, object]:
    return {
        "Resources": {
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {"Statement": list(statements)},
                },
            },
            "Root": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "GET",
                    "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                },
            },
        }
    }


def test_the_wildcard_walker_sees_injected_statements() -> None:
    template = _template(
        {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["*"]},
    )
    offenders = [
        s.actions
        for s in identity_statements(template)
        if "*" in s.resources and set(s.actions) - WILDCARD_RESOURCE_ALLOWED
    ]
    assert offenders == [["s3:GetObject"]]
    assert [s.roles for s in identity_statements(template)] == [("Role",), ("Role",)]
    assert set(methods(template)) == {("GET", "/")}


def test_vector_store_policy_must_be_finalized_once(tmp_path: Path) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam

    from infra_cdk.config import load_config
    from infra_cdk.constructs.vector_store import DomainStore

    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "S")
    store = DomainStore(stack, "Store", config=load_config(lambda _key: None, {}), removal=cdk.RemovalPolicy.DESTROY)
    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    store.grant_read(role)
    with pytest.raises(RuntimeError, match=r"finalize\(\) was not called"):
        app.synth()
    store.finalize()
    with pytest.raises(RuntimeError, match="already rendered"):
        store.grant_write(role)
    with pytest.raises(RuntimeError, match="already rendered"):
        store.finalize()
