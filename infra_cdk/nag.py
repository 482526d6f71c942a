"""cdk-nag (AwsSolutions) acknowledgements: each one narrow, next to its cause, with a reason.

cdk-nag 3 reads CDK's native ``Validations.of(scope).acknowledge(...)``; an acknowledgement
applies to the scope and its children. Findings that name a resource (IAM5) carry the ARN
rendered the way cdk-nag renders it, which :func:`nag_resource` reproduces so the
acknowledgement follows the resource whatever the environment (tokens or literal values).
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge the cdk-nag finding ``rule`` (e.g. ``AwsSolutions-L1``) on ``scope``.

    The id is qualified with the plugin name (``AwsSolutions::<rule>``), the form the
    validation report prints; an unqualified id would be read as an annotation id.
    """
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"{PLUGIN}::{rule}", reason=reason))


def _render(value: Any) -> str:
    """cdk-nag's ``flattenCfnReference`` (lib/utils/flatten-cfn-reference.js, 3.0.2)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_render(part) for part in parts)
        if "Fn::Sub" in value:
            return _render(value["Fn::Sub"])
        if "Fn::GetAtt" in value:
            resource, attribute = value["Fn::GetAtt"]
            return f"<{_render(resource)}.{_render(attribute)}>"
        if "Fn::ImportValue" in value:
            return _render(value["Fn::ImportValue"])
        if "Ref" in value:
            return f"<{_render(value['Ref'])}>"
    # cdk-nag's fallback: JSON.stringify (compact).
    return json.dumps(value, separators=(",", ":"))


def nag_resource(scope: IConstruct, arn: str) -> str:
    """The ``Resource::...`` part of a cdk-nag IAM5 finding id for ``arn``."""
    return "Resource::" + _render(cdk.Stack.of(scope).resolve(arn))


def acknowledge_wildcard_resource(scope: IConstruct, arn: str, reason: str) -> None:
    acknowledge(scope, f"AwsSolutions-IAM5[{nag_resource(scope, arn)}]", reason)


XRAY_REASON = (
    "X-Ray PutTraceSegments/PutTelemetryRecords do not support resource-level permissions "
    "(Resource must be *); added by Lambda active tracing."
)
PYTHON_RUNTIME_REASON = (
    "Python 3.12 on purpose: the dependency layer and its bytecode are built for 3.12 from "
    "uv.lock, and the project pins 3.12 (.python-version). Upgrade together, not here."
)
