"""Walk a synthesized template: IAM statements, API routes, function roles."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Template = Mapping[str, Any]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Statement:
    source: str  # logical id of the policy or role that holds it
    roles: tuple[str, ...]  # logical ids of the roles it applies to
    body: Mapping[str, Any]

    @property
    def actions(self) -> list[str]:
        return [str(a) for a in as_list(self.body.get("Action", []))]

    @property
    def resources(self) -> list[Any]:
        return as_list(self.body.get("Resource", []))

    @property
    def allows(self) -> bool:
        return self.body.get("Effect") == "Allow"


def _role_refs(refs: Any) -> tuple[str, ...]:
    return tuple(ref["Ref"] for ref in as_list(refs or []) if isinstance(ref, dict) and "Ref" in ref)


def identity_statements(template: Template) -> Iterator[Statement]:
    """Every statement of every identity policy: inline, AWS::IAM::Policy, managed policies."""
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = _role_refs(props.get("Roles"))
            for statement in as_list(props["PolicyDocument"]["Statement"]):
                yield Statement(logical_id, roles, statement)
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                for statement in as_list(policy["PolicyDocument"]["Statement"]):
                    yield Statement(logical_id, (logical_id,), statement)


def role_statements(template: Template, role_id: str) -> list[Statement]:
    return [s for s in identity_statements(template) if role_id in s.roles and s.allows]


def role_actions(template: Template, role_id: str) -> set[str]:
    return {action for s in role_statements(template, role_id) for action in s.actions}


def function_role(template: Template, function_id: str) -> str:
    role = template["Resources"][function_id]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def mentions(value: Any, logical_id: str) -> bool:
    """Whether a (possibly intrinsic) value references ``logical_id``."""
    return f'"{logical_id}"' in json.dumps(value)


def resource_paths(template: Template) -> dict[str, str]:
    """ApiGateway::Resource logical id → full path ("/v1/documents/{id+}")."""
    resources = {
        k: r["Properties"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }

    def path(logical_id: str) -> str:
        props = resources[logical_id]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if isinstance(parent, dict) and "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def methods(template: Template) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(HTTP method, path) → Method properties."""
    paths = resource_paths(template)
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::ApiGateway::Method":
            continue
        props = resource["Properties"]
        ref = props["ResourceId"]
        path = paths[ref["Ref"]] if "Ref" in ref else "/"
        found[(props["HttpMethod"], path)] = props
    return found


def render(value: Any) -> str:
    """An intrinsic value as readable text: ``Ref`` → ``<Id>``, ``Fn::GetAtt`` → ``<Id.Attr>``,
    ``Fn::Join`` joined, any other function → ``<Fn::Name>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return json.dumps([render(v) for v in value])
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return f"<{arg}>"
        if key == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(render(part) for part in parts)
        return f"<{key}>"
    return json.dumps(value)
