"""cdk-nag finding ids for wildcard resources, rendered from tokens or literal values."""

from __future__ import annotations

import aws_cdk as cdk
import pytest

from infra_cdk.nag import nag_resource


@pytest.fixture(scope="module")
def stacks() -> tuple[cdk.Stack, cdk.Stack]:
    app = cdk.App()
    agnostic = cdk.Stack(app, "Agnostic")
    pinned = cdk.Stack(app, "Pinned", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    return agnostic, pinned


def test_pseudo_parameters_render_like_cdk_nag(stacks: tuple[cdk.Stack, cdk.Stack]) -> None:
    agnostic, pinned = stacks
    arn = agnostic.format_arn(service="es", resource="domain", resource_name="d") + "/*"
    assert nag_resource(agnostic, arn) == (
        "Resource::arn:<AWS::Partition>:es:<AWS::Region>:<AWS::AccountId>:domain/d/*"
    )
    pinned_arn = pinned.format_arn(service="es", resource="domain", resource_name="d") + "/*"
    assert nag_resource(pinned, pinned_arn) == (
        "Resource::arn:<AWS::Partition>:es:eu-west-1:123456789012:domain/d/*"
    )


def test_attributes_render_as_logical_id_dot_attribute(stacks: tuple[cdk.Stack, cdk.Stack]) -> None:
    from aws_cdk import aws_s3 as s3

    agnostic, _ = stacks
    bucket = s3.Bucket(agnostic, "B")
    rendered = nag_resource(agnostic, bucket.arn_for_objects("*"))
    assert rendered.startswith("Resource::<B") and rendered.endswith(".Arn>/*")
    assert nag_resource(agnostic, "*") == "Resource::*"


def test_other_functions_render_as_compact_json_like_cdk_nag(stacks: tuple[cdk.Stack, cdk.Stack]) -> None:
    """cdk-nag falls back to JSON.stringify for Fn::Select and friends (stack-unique names)."""
    agnostic, _ = stacks
    suffix = cdk.Fn.select(0, cdk.Fn.split("-", cdk.Aws.STACK_ID))
    rendered = nag_resource(agnostic, cdk.Fn.join("", ["arn:x:", suffix, "/*"]))
    assert rendered == 'Resource::arn:x:{"Fn::Select":[0,{"Fn::Split":["-",{"Ref":"AWS::StackId"}]}]}/*'
