"""Judge HTTP requests by OpenSearch's published API specification (the pinned subset).

A request passes when:

- its method and path match an operation of the specification;
- every query parameter is declared by that operation (or is a global parameter) and its
  value fits the parameter's schema;
- its body is allowed (and present when required), its content type is one the operation
  declares, and it validates against the request body schema (JSON Schema 2020-12, ``$ref``s
  resolved inside the bundle);
- for the NDJSON operations (``_bulk``, ``_msearch``): lines pair up (bulk action + document,
  ``update`` + its body, ``delete`` alone; msearch header + body), each line validates against
  the schema of its role, and the body ends with a newline;
- single-key containers (query types, bulk actions, ...) and the objects directly inside them
  hold only declared fields. The specification leaves most objects open
  (``additionalProperties`` unspecified), which would let a misspelt ``filtr`` or
  ``method_paramters`` through; such containers are closed here with
  ``unevaluatedProperties: false``, which respects ``allOf``/``oneOf`` composition.

The k-NN and neural-search plugin rules the specification cannot express are in
``plugin_rules.py`` and run on the same parsed bodies.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jsonschema_rs

from tests.opensearch_spec import plugin_rules

SPEC_PATH = Path(__file__).parent / "spec" / "opensearch-openapi.subset.json"
Q = "_common.query_dsl___"

CLOSED_SCHEMAS = (
    # Request roots: a misspelt top-level key would otherwise be ignored by the schema.
    "_core.msearch___MultisearchHeader",
    "_core.msearch___MultisearchBody",
    "_common.mapping___TypeMapping",
    "_common.mapping___KnnVectorProperty",
    "_common.mapping___KnnVectorMethod",
    "_common.mapping___KeywordProperty",
    "_common.mapping___TextProperty",
    "_common.mapping___IntegerNumberProperty",
    "_common.mapping___ObjectProperty",
    "search_pipeline._common___SearchPipelineStructure",
    "search_pipeline._common___NormalizationPhaseResultsProcessor",
    "search_pipeline._common___ScoreRankerPhaseResultsProcessor",
    "search_pipeline._common___ScoreCombination",
    "search_pipeline._common___ScoreRankerCombination",
    "search_pipeline._common___ScoreNormalization",
    "indices.update_aliases___Action",
    "_common___SourceFilter",
)


class RequestLike(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def query(self) -> dict[str, str]: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Operation:
    path: str
    method: str
    operation_id: str
    group: str
    parameters: dict[str, dict[str, Any]]
    """Query parameters by name (the operation's own and the global ones)."""
    body: Mapping[str, Any] | None
    body_required: bool
    pattern: re.Pattern[str]
    literals: int


@dataclass(frozen=True, slots=True)
class Violation:
    request: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.request}: [{self.rule}] {self.detail}"


@dataclass(slots=True)
class Context:
    """What the plugin rules need to know about the cluster the request went to."""

    version: tuple[int, int] = (3, 1)
    engine_of: Any = None
    """``(index, field) -> engine | None``: the engine the server resolved for a vector field."""


class SpecValidator:
    def __init__(self, spec_path: Path = SPEC_PATH) -> None:
        self.spec = json.loads(spec_path.read_text(encoding="utf-8"))
        self.source = self.spec["info"]
        self.components = _prepared_components(self.spec["components"]["schemas"])
        self.operations = self._operations()
        self._validators: dict[int, Any] = {}
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------------------------

    def validate(self, request: RequestLike, context: Context | None = None) -> list[Violation]:
        context = context or Context()
        label = f"{request.method} {request.path}"
        operation = self.match(request.method, request.path)
        if operation is None:
            return [Violation(label, "operation", "no operation of the specification has this "
                                                  "method and path")]
        found = [Violation(label, rule, detail) for rule, detail in self._check(operation, request)]
        if not found:
            found = [Violation(label, rule, detail)
                     for rule, detail in plugin_rules.check(operation.group, request, context)]
        return found

    def match(self, method: str, path: str) -> Operation | None:
        path = path.rstrip("/") or "/"
        candidates = [op for op in self.operations
                      if op.method == method.lower() and op.pattern.fullmatch(path)]
        if not candidates:
            return None
        return max(candidates, key=lambda op: op.literals)

    def schema_errors(self, schema: Mapping[str, Any], instance: Any) -> list[str]:
        validator = self._validator(schema)
        if validator.is_valid(instance):
            return []
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.instance_path))
        return [_describe(error) for error in errors[:3]]

    # -- checks ---------------------------------------------------------------------------

    def _check(self, operation: Operation, request: RequestLike) -> Iterable[tuple[str, str]]:
        for name, raw in request.query.items():
            parameter = operation.parameters.get(name)
            if parameter is None:
                yield "query-parameter", (f"{name!r} is not a parameter of "
                                          f"{operation.operation_id}")
                continue
            if not self._parameter_fits(parameter.get("schema", {}), raw):
                yield "query-parameter", f"{name}={raw!r} does not fit its schema"
        body = request.body
        if not body.strip():
            if operation.body_required:
                yield "body", f"{operation.operation_id} requires a body"
            return
        if operation.body is None:
            yield "body", f"{operation.operation_id} takes no body"
            return
        content = operation.body.get("content", {})
        media = (request.headers.get("content-type") or "application/json").split(";")[0].strip()
        if media not in content:
            yield "content-type", f"{media!r} is not one of {sorted(content)}"
            return
        schema = content[media]["schema"]
        if media == "application/x-ndjson":
            yield from self._ndjson(operation, body, schema)
            return
        try:
            document = json.loads(body)
        except ValueError as exc:
            yield "body", f"not JSON: {exc}"
            return
        for error in self.schema_errors(schema, document):
            yield "body-schema", error

    def _ndjson(self, operation: Operation, body: bytes, schema: Mapping[str, Any]
                ) -> Iterable[tuple[str, str]]:
        if not body.endswith(b"\n"):
            yield "ndjson", "the body must end with a newline"
        try:
            lines = [json.loads(line) for line in body.split(b"\n") if line.strip()]
        except ValueError as exc:
            yield "ndjson", f"a line is not JSON: {exc}"
            return
        if operation.group == "bulk":
            yield from self._bulk_lines(lines)
        elif operation.group == "msearch":
            yield from self._msearch_lines(lines)
        else:
            for error in self.schema_errors(schema, lines):
                yield "body-schema", error

    def _bulk_lines(self, lines: Sequence[Any]) -> Iterable[tuple[str, str]]:
        action_schema = _ref("_core.bulk___OperationContainer")
        update_schema = _ref("_core.bulk___UpdateAction")
        position = 0
        while position < len(lines):
            action = lines[position]
            for error in self.schema_errors(action_schema, action):
                yield "bulk-action", f"line {position + 1}: {error}"
            op = next(iter(action), None) if isinstance(action, dict) and len(action) == 1 else None
            position += 1
            if op in ("delete", None):  # None: already reported, its pairing is unknowable
                continue
            if position >= len(lines):
                yield "ndjson-pairing", f"line {position}: {op!r} has no source line"
                return
            source = lines[position]
            if op == "update":
                for error in self.schema_errors(update_schema, source):
                    yield "bulk-update", f"line {position + 1}: {error}"
            elif not isinstance(source, dict):
                yield "ndjson-pairing", f"line {position + 1}: the document is not an object"
            elif len(source) == 1 and next(iter(source)) in ("index", "create", "update",
                                                             "delete"):
                yield "ndjson-pairing", (f"line {position + 1}: an action where the "
                                         f"document of line {position} was expected")
            position += 1

    def _msearch_lines(self, lines: Sequence[Any]) -> Iterable[tuple[str, str]]:
        if len(lines) % 2:
            yield "ndjson-pairing", f"{len(lines)} lines: headers and bodies must pair up"
        header_schema = _ref("_core.msearch___MultisearchHeader")
        body_schema = _ref("_core.msearch___MultisearchBody")
        for index, line in enumerate(lines):
            schema = header_schema if index % 2 == 0 else body_schema
            role = "msearch-header" if index % 2 == 0 else "msearch-body"
            for error in self.schema_errors(schema, line):
                yield role, f"line {index + 1}: {error}"

    def _parameter_fits(self, schema: Mapping[str, Any], raw: str) -> bool:
        validator = self._validator(schema)
        return any(validator.is_valid(value) for value in _query_value_candidates(raw))

    # -- plumbing -------------------------------------------------------------------------

    def _validator(self, schema: Mapping[str, Any]) -> Any:
        """A compiled JSON Schema 2020-12 validator (jsonschema-rs: the Python ``jsonschema``
        took 4-17 ms per request, which made judging cost more than the tests it judges)."""
        key = id(schema)  # schemas live as long as the validator (``_ref`` is cached)
        with self._lock:
            found = self._validators.get(key)
            if found is None:
                root = {"components": {"schemas": self.components}, **schema}
                found = jsonschema_rs.Draft202012Validator(root)
                self._validators[key] = found
        return found

    def _operations(self) -> list[Operation]:
        global_parameters = {p["name"]: p for p in self.spec["x-global-parameters"]}
        operations = []
        for path, methods in self.spec["paths"].items():
            for method, operation in methods.items():
                parameters = dict(global_parameters)
                parameters.update({p["name"]: p for p in operation["parameters"]
                                   if p.get("in") == "query"})
                body = operation.get("requestBody")
                body = _prepare_body(body) if body is not None else None
                regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
                operations.append(Operation(
                    path=path, method=method, operation_id=operation["operationId"],
                    group=operation["x-operation-group"], parameters=parameters, body=body,
                    body_required=bool(body and body.get("required")),
                    pattern=re.compile(regex),
                    literals=len([s for s in path.split("/") if s and not s.startswith("{")]),
                ))
        return operations


@cache
def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _prepare_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The search and index-creation bodies are inline objects: close them as well."""
    prepared = copy.deepcopy(dict(body))
    for media in prepared.get("content", {}).values():
        schema = media.get("schema", {})
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("unevaluatedProperties", False)
    return prepared


def _query_value_candidates(raw: str) -> list[Any]:
    candidates: list[Any] = [raw]
    if raw in ("", "true"):
        candidates.append(True)
    if raw == "false":
        candidates.append(False)
    if re.fullmatch(r"-?\d+", raw):
        candidates.append(int(raw))
    if re.fullmatch(r"-?\d+\.\d*", raw):
        candidates.append(float(raw))
    if "," in raw:
        candidates.append(raw.split(","))
    else:
        candidates.append([raw])
    return candidates


def _describe(error: Any) -> str:
    where = "/".join(str(p) for p in error.instance_path) or "(root)"
    message = error.message
    if len(message) > 300:
        message = message[:300] + "..."
    return f"at {where}: {message}"


# -- schema preparation ---------------------------------------------------------------------


def _prepared_components(schemas: Mapping[str, Any]) -> dict[str, Any]:
    prepared = copy.deepcopy(dict(schemas))
    for name, schema in prepared.items():
        if isinstance(schema, dict) and "discriminator" in schema:
            prepared[name] = _discriminated(schema, prepared)
    for name in _closed_names(prepared):
        _close(prepared[name])
    return prepared


def _discriminated(schema: dict[str, Any], schemas: Mapping[str, Any]) -> dict[str, Any]:
    """``oneOf`` + ``discriminator`` as JSON Schema: the branch named by the property value.

    Plain ``oneOf`` fails whenever two branches accept the same object (``{"type":
    "keyword"}`` fits several property schemas that do not require their own type)."""
    key = schema["discriminator"]["propertyName"]
    default = schema["discriminator"].get("x-default")
    rules: list[dict[str, Any]] = []
    values: list[str] = []
    for branch in schema.get("oneOf", []):
        value = _discriminator_value(branch, key, schemas)
        if value is None:
            continue
        values.append(value)
        rules.append({"if": {"properties": {key: {"const": value}}, "required": [key]},
                      "then": branch})
    if default is not None and default in values:
        branch = rules[values.index(default)]["then"]
        rules.append({"if": {"not": {"required": [key]}}, "then": branch})
    rest = {k: v for k, v in schema.items() if k not in ("oneOf", "discriminator")}
    return {**rest, "properties": {key: {"enum": values}}, "allOf": rules}


def _discriminator_value(branch: Mapping[str, Any], key: str,
                         schemas: Mapping[str, Any]) -> str | None:
    target = branch
    if "$ref" in branch:
        target = schemas[branch["$ref"].rsplit("/", 1)[-1]]
    for part in [target, *target.get("allOf", [])]:
        if "$ref" in part:
            found = _discriminator_value(part, key, schemas)
            if found is not None:
                return found
        enum = part.get("properties", {}).get(key, {}).get("enum")
        if enum and len(enum) == 1:
            return str(enum[0])
    return None


def _closed_names(schemas: Mapping[str, Any]) -> set[str]:
    """The single-key containers, what sits directly inside them, and ``CLOSED_SCHEMAS``."""
    names = {name for name in CLOSED_SCHEMAS if name in schemas}
    for name, schema in schemas.items():
        if not (isinstance(schema, dict) and schema.get("minProperties") == 1
                and schema.get("maxProperties") == 1 and "properties" in schema):
            continue
        names.add(name)
        for member in schema["properties"].values():
            names.update(_member_targets(member))
    return names


def _member_targets(member: Mapping[str, Any]) -> set[str]:
    """Schemas directly inside one member of a container (through a field-name map)."""
    found: set[str] = set()
    if "$ref" in member:
        found.add(member["$ref"].rsplit("/", 1)[-1])
    extra = member.get("additionalProperties")
    if isinstance(extra, dict) and "$ref" in extra:
        found.add(extra["$ref"].rsplit("/", 1)[-1])
    return found


def _close(schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if any(k in schema for k in ("additionalProperties", "patternProperties",
                                 "unevaluatedProperties")):
        return
    if any(k in schema for k in ("properties", "allOf", "oneOf", "anyOf")):
        schema["unevaluatedProperties"] = False


# -- the shared instance and the session-wide record ----------------------------------------


@cache
def shared() -> SpecValidator:
    return SpecValidator()


@dataclass(slots=True)
class Record:
    """Every request the stubs validated in this process, and what was wrong with them."""

    checked: dict[str, int] = field(default_factory=dict)
    """Requests validated per stub target (``domain``, ``serverless``, ...)."""
    violations: list[Violation] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, target: str, found: Sequence[Violation]) -> None:
        with self.lock:
            self.checked[target] = self.checked.get(target, 0) + 1
            self.violations.extend(found)


RECORD = Record()
