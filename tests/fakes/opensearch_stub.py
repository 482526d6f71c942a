"""A tiny in-memory OpenSearch on 127.0.0.1 for adapter tests.

It speaks enough of OpenSearch's JSON to act as the cluster for the adapter: indices,
mappings, aliases, ``_bulk`` (NDJSON, per-item results), ``_search``/``_msearch`` with
``knn`` (faiss inner-product scores, efficient filter), ``match``/``multi_match`` (BM25 over a
``cjk``-like analyzer), ``bool``/``term``/``terms``, ``hybrid`` with a
``normalization-processor`` pipeline, ``_delete_by_query``, ``_refresh`` and search
pipelines. Writes become searchable only after a refresh on the ``domain`` target (near
real time), immediately on the Serverless targets (their 10-60 s lag is not modelled).

Every request is recorded (method, path, query, headers, body) so tests can assert the exact
bodies sent, and faults can be injected: HTTP errors for matching requests, per-item bulk
failures, and the AOSS behaviours (``serverless-classic`` rejects custom ``_id``s; both
Serverless targets answer 404 to ``_delete_by_query``/``_refresh`` and reject ``refresh``).

The k-NN engine and compression a Serverless NextGen collection resolves are knobs, so tests
cover both possible server behaviours: ``serverless_engine`` (``"rejected"``: an explicit
``method.engine`` is refused, as AWS documents; ``"accepted"``), ``serverless_default_engine``
(what NextGen picks when the mapping names none: ``faiss`` or ``nmslib``, as a public report
saw), ``honour_compression`` (False: the documented 32x default wins whatever was asked) and
``mapping_shows_resolved`` (whether ``GET _mapping`` reports the resolved engine and level or
echoes the mapping as sent). A filter inside ``knn`` on an nmslib field fails like k-NN does.

Every request is also judged against OpenSearch's API specification
(``tests/opensearch_spec``): violations go to ``violations`` and to the session-wide
``RECORD``, and an autouse fixture in ``tests/conftest.py`` fails the test that sent one.

Run standalone (e.g. for the bench): ``python -m tests.fakes.opensearch_stub --port 9200``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import math
import re
import socket
import threading
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

Mode = Literal["domain", "serverless", "serverless-classic"]
Json = Any
DEFAULT_COMPRESSION: dict[str, str] = {"domain": "1x", "serverless": "32x",
                                       "serverless-classic": "1x"}
NO_FILTERS_REASON = "Engine [NMSLIB] does not support filters"

CLASSIC_ID_REASON = "Document ID is not supported in create/index operation request"
NMSLIB_REASON = (
    "nmslib engine is deprecated in OpenSearch and cannot be used for new index creation "
    "in OpenSearch from 3.0.0"
)
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their "
    "then there these they this to was will with".split()
)
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Json:
        return json.loads(self.body)

    def ndjson(self) -> list[Json]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass(slots=True)
class HttpFault:
    status: int
    error_type: str
    reason: str
    method: str | None
    path: re.Pattern[str]
    remaining: int | None


@dataclass(slots=True)
class ItemFault:
    match: Callable[[str | None, Mapping[str, Any] | None], bool]
    status: int
    error_type: str
    reason: str
    remaining: dict[str, int] | None
    """Per document key: how many more times to fail it (None = always)."""
    times: int | None


@dataclass(slots=True)
class Index:
    mappings: dict[str, Any]
    settings: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    searchable: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    engines: dict[str, str] = field(default_factory=dict)
    """Resolved k-NN engine per vector field."""


class StubError(Exception):
    def __init__(self, status: int, error_type: str, reason: str, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.error_type = error_type
        self.reason = reason
        self.extra = extra

    def body(self) -> dict[str, Any]:
        cause = {"type": self.error_type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


class OpenSearchStub:
    def __init__(self, mode: Mode = "domain", *, port: int = 0) -> None:
        self.mode: Mode = mode
        self.near_real_time = mode == "domain"
        self.version = (3, 1)
        """Pretend cluster version; below 2.19 there is no score-ranker-processor."""
        self.requests: list[RecordedRequest] = []
        self.record_requests = True
        self.validate_requests = True
        """Judge every request by the API specification (benchmarks turn it off)."""
        self.violations: list[Any] = []
        self._set_server_behaviour()
        self._searched: list[str] = []
        self.indices: dict[str, Index] = {}
        self.aliases: dict[str, set[str]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self._http_faults: list[HttpFault] = []
        self._item_faults: list[ItemFault] = []
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OpenSearchStub:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OpenSearchStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self, mode: Mode | None = None) -> None:
        with self._lock:
            if mode is not None:
                self.mode = mode
                self.near_real_time = mode == "domain"
            self.version = (3, 1)
            self._set_server_behaviour()
            self.requests.clear()
            self.indices.clear()
            self.aliases.clear()
            self.pipelines.clear()
            self._http_faults.clear()
            self._item_faults.clear()

    def _set_server_behaviour(self) -> None:
        self.serverless_engine: Literal["accepted", "rejected"] = "rejected"
        self.serverless_default_engine: Literal["faiss", "nmslib"] = "faiss"
        self.honour_compression = True
        self.mapping_shows_resolved = True

    # -- test helpers ---------------------------------------------------------------------

    def inject(
        self,
        status: int,
        error_type: str,
        reason: str = "injected failure",
        *,
        method: str | None = None,
        path: str = r".*",
        times: int | None = 1,
    ) -> None:
        """The next ``times`` requests matching ``method`` and ``path`` (regex) fail."""
        with self._lock:
            self._http_faults.append(
                HttpFault(status, error_type, reason, method, re.compile(path), times)
            )

    def fail_items(
        self,
        keys: Iterable[str] | Callable[[str | None, Mapping[str, Any] | None], bool],
        status: int,
        error_type: str,
        reason: str = "injected item failure",
        *,
        times: int | None = None,
    ) -> None:
        """Bulk items about ``keys`` (chunk id in the source, else ``_id``) fail.

        ``times`` = how often each key fails before it succeeds (None = always).
        """
        if callable(keys):
            match = keys
        else:
            wanted = set(keys)

            def match(doc_id: str | None, source: Mapping[str, Any] | None) -> bool:
                return _item_key(doc_id, source) in wanted

        with self._lock:
            self._item_faults.append(
                ItemFault(match, status, error_type, reason, {} if times else None, times)
            )

    def documents(self, name: str) -> dict[str, dict[str, Any]]:
        """Latest documents (refreshed or not) of an index or alias."""
        with self._lock:
            found: dict[str, dict[str, Any]] = {}
            for index in self._resolve(name):
                found.update(self.indices[index].docs)
            return found

    def find(self, method: str, path_regex: str) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method and pattern.fullmatch(r.path)]

    # -- dispatch -------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, Json]:
        with self._lock:
            if self.record_requests:
                self.requests.append(request)
            if self.validate_requests:
                self._judge(request)
            try:
                self._check_faults(request)
                return self._route(request)
            except StubError as exc:
                return exc.status, exc.body()

    def _judge(self, request: RecordedRequest) -> None:
        from tests.opensearch_spec.validator import RECORD, Context, shared

        found = shared().validate(request, Context(version=self.version,
                                                   engine_of=self._engine_of))
        self.violations.extend(found)
        RECORD.add(self.mode, found)

    def _engine_of(self, index: str, field_name: str) -> str | None:
        try:
            names = self._resolve(index)
        except StubError:
            return None
        engines = {self.indices[n].engines.get(field_name) for n in names}
        return "nmslib" if "nmslib" in engines else next(iter(engines), None)

    def _check_faults(self, request: RecordedRequest) -> None:
        for fault in list(self._http_faults):
            if fault.method not in (None, request.method):
                continue
            if not fault.path.fullmatch(request.path):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._http_faults.remove(fault)
            raise StubError(fault.status, fault.error_type, fault.reason)

    def _route(self, request: RecordedRequest) -> tuple[int, Json]:
        parts = [unquote(p) for p in request.path.strip("/").split("/") if p]
        method = request.method
        query = request.query
        if self.mode != "domain" and "refresh" in query:
            raise StubError(400, "illegal_argument_exception",
                            "request [refresh] is not supported on OpenSearch Serverless")
        if not parts:
            return 200, {"version": {"distribution": "opensearch",
                                     "number": ".".join(map(str, (*self.version, 0)))}}
        head = parts[0]
        if head == "_bulk":
            return self._bulk(None, request)
        if head == "_msearch":
            return self._msearch(None, request)
        if head == "_aliases" and method == "POST":
            return self._alias_actions(request.json())
        if head == "_alias" and len(parts) == 2:
            return self._get_alias(parts[1])
        if head == "_search" and len(parts) == 3 and parts[1] == "pipeline":
            return self._pipeline(method, parts[2], request)
        if head == "_search":
            raise StubError(400, "illegal_argument_exception", "search without index")
        index = head
        if len(parts) == 1:
            return self._index_level(method, index, request)
        op = parts[1]
        if op == "_bulk":
            return self._bulk(index, request)
        if op == "_search" and method in ("GET", "POST"):
            return 200, self._search(index, _body(request), query)
        if op == "_msearch":
            return self._msearch(index, request)
        if op == "_count":
            hits = self._evaluate(self._searchable(index), (_body(request) or {}).get("query"))
            return 200, {"count": len(hits)}
        if op == "_delete_by_query" and method == "POST":
            return self._delete_by_query(index, request)
        if op == "_refresh":
            return self._refresh(index)
        if op == "_settings" and method == "GET":
            return 200, {name: {"settings": _settings_as_served(self.indices[name].settings)}
                         for name in self._resolve(index)}
        if op == "_mapping" and method == "GET":
            return 200, {name: {"mappings": self.indices[name].mappings}
                         for name in self._resolve(index)}
        if op == "_mapping" and method in ("PUT", "POST"):
            return self._put_mapping(index, _body(request) or {})
        if op == "_alias" and len(parts) == 3 and method in ("PUT", "POST"):
            return self._alias_actions({"actions": [{"add": {"index": index, "alias": parts[2]}}]})
        if op == "_doc" and len(parts) == 3 and method == "GET":
            return self._get_doc(index, parts[2])
        raise StubError(400, "invalid_request", f"stub has no route for {method} {request.path}")

    # -- indices and aliases --------------------------------------------------------------

    def _put_mapping(self, index: str, body: Mapping[str, Any]) -> tuple[int, Json]:
        """New fields are added; a field mapped already must keep its type (as OpenSearch)."""
        added = body.get("properties") or {}
        for name in self._resolve(index):
            properties = self.indices[name].mappings.setdefault("properties", {})
            for field_name, spec in added.items():
                current = properties.get(field_name)
                if current is not None and current.get("type") != spec.get("type"):
                    raise StubError(400, "illegal_argument_exception",
                                    f"mapper [{field_name}] cannot be changed from type "
                                    f"[{current.get('type')}] to [{spec.get('type')}]")
        for name in self._resolve(index):
            self.indices[name].mappings["properties"].update(added)
        return 200, {"acknowledged": True}

    def _resolve(self, name: str) -> list[str]:
        names: list[str] = []
        for part in name.split(","):
            if part in self.indices:
                names.append(part)
            elif part in self.aliases:
                names.extend(sorted(self.aliases[part]))
            else:
                raise StubError(404, "index_not_found_exception", f"no such index [{part}]",
                                index=part, **{"resource.type": "index_or_alias",
                                               "resource.id": part})
        return names

    def _write_index(self, name: str) -> str:
        names = self._resolve(name)
        if len(names) != 1:
            raise StubError(400, "illegal_argument_exception",
                            f"no write index is defined for alias [{name}]")
        return names[0]

    def _index_level(self, method: str, index: str, request: RecordedRequest) -> tuple[int, Json]:
        if method == "HEAD":
            self._resolve(index)
            return 200, None
        if method == "GET":
            return 200, {
                name: {
                    "aliases": {a: {} for a, members in self.aliases.items() if name in members},
                    "mappings": self.indices[name].mappings,
                    "settings": self.indices[name].settings,
                }
                for name in self._resolve(index)
            }
        if method == "DELETE":
            for name in self._resolve(index):
                del self.indices[name]
                for members in self.aliases.values():
                    members.discard(name)
            return 200, {"acknowledged": True}
        if method == "PUT":
            return self._create_index(index, _body(request) or {})
        raise StubError(405, "method_not_allowed", f"{method} not allowed on [{index}]")

    def _create_index(self, index: str, body: dict[str, Any]) -> tuple[int, Json]:
        if index in self.indices or index in self.aliases:
            raise StubError(400, "resource_already_exists_exception",
                            f"index [{index}/stubuuid] already exists", index=index)
        mappings = json.loads(json.dumps(body.get("mappings") or {}))
        engines: dict[str, str] = {}
        for name, prop in (mappings.get("properties") or {}).items():
            if prop.get("type") != "knn_vector":
                continue
            method = prop.get("method") or {}
            engine = method.get("engine")
            if engine == "nmslib":
                raise StubError(400, "mapper_parsing_exception", NMSLIB_REASON)
            if engine is not None and self.mode == "serverless" \
                    and self.serverless_engine == "rejected":
                raise StubError(400, "mapper_parsing_exception",
                                f"[{name}] engine is not supported on NextGen collections")
            if not 1 <= int(prop.get("dimension", 0)) <= 16000:
                raise StubError(400, "mapper_parsing_exception", "dimension out of range")
            resolved = engine or (self.serverless_default_engine if self.mode == "serverless"
                                  else "faiss")
            asked = prop.get("compression_level")
            level = asked if asked and self.honour_compression else DEFAULT_COMPRESSION[self.mode]
            engines[name] = resolved
            if self.mapping_shows_resolved:
                prop["method"] = {**method, "engine": resolved}
                prop["compression_level"] = level
            elif asked and not self.honour_compression:
                prop.pop("compression_level")
        settings = body.get("settings") or {}
        if self.mode != "domain":
            flat = json.dumps(settings)
            for forbidden in ("number_of_shards", "number_of_replicas", "auto_expand_replicas"):
                if forbidden in flat:
                    raise StubError(400, "illegal_argument_exception",
                                    f"setting [{forbidden}] is not supported on Serverless")
        self.indices[index] = Index(mappings=mappings, settings=settings, engines=engines)
        for alias in body.get("aliases") or {}:
            self.aliases.setdefault(alias, set()).add(index)
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": index}

    def _alias_actions(self, body: Mapping[str, Any]) -> tuple[int, Json]:
        """``POST /_aliases``: every action is checked before any is applied, so the request
        is atomic as OpenSearch's is (one cluster-state update): a swap (remove + add) is
        never seen half done. Removing an alias the index does not have is a 404
        (``aliases_not_found_exception``), like OpenSearch without ``must_exist: false``."""
        aliases = {name: set(members) for name, members in self.aliases.items()}
        for action in body.get("actions", []):
            ((verb, spec),) = action.items()
            index, alias = spec["index"], spec["alias"]
            for name in self._resolve(index):
                if verb == "add":
                    if alias in self.indices:
                        raise StubError(400, "invalid_alias_name_exception",
                                        "an index exists with the same name as the alias")
                    aliases.setdefault(alias, set()).add(name)
                elif verb == "remove":
                    if name not in aliases.get(alias, set()):
                        if spec.get("must_exist") is False:
                            continue
                        raise StubError(404, "aliases_not_found_exception",
                                        f"aliases [{alias}] missing", **{
                                            "resource.type": "aliases", "resource.id": alias})
                    aliases[alias].discard(name)
                else:
                    raise StubError(400, "illegal_argument_exception",
                                    f"stub does not model alias action [{verb}]")
        self.aliases = {name: members for name, members in aliases.items() if members}
        return 200, {"acknowledged": True}

    def _get_alias(self, alias: str) -> tuple[int, Json]:
        if alias not in self.aliases:
            return 404, {"error": f"alias [{alias}] missing", "status": 404}
        return 200, {name: {"aliases": {alias: {}}} for name in sorted(self.aliases[alias])}

    def _refresh(self, index: str) -> tuple[int, Json]:
        if self.mode != "domain":
            return 404, {"message": "Not Found"}
        names = self._resolve(index)
        for name in names:
            self._make_searchable(name)
        return 200, {"_shards": {"total": len(names), "successful": len(names), "failed": 0}}

    def _make_searchable(self, name: str) -> None:
        stored = self.indices[name]
        stored.searchable = dict(stored.docs)

    def _searchable(self, name: str) -> list[tuple[str, str, dict[str, Any]]]:
        found: list[tuple[str, str, dict[str, Any]]] = []
        for index in self._resolve(name):
            stored = self.indices[index]
            source = stored.searchable if self.near_real_time else stored.docs
            found.extend((index, doc_id, doc) for doc_id, doc in source.items())
        return found

    def _get_doc(self, index: str, doc_id: str) -> tuple[int, Json]:
        name = self._write_index(index)
        doc = self.indices[name].docs.get(doc_id)
        if doc is None:
            return 404, {"_index": name, "_id": doc_id, "found": False}
        return 200, {"_index": name, "_id": doc_id, "found": True, "_source": doc}

    # -- bulk -----------------------------------------------------------------------------

    def _bulk(self, index: str | None, request: RecordedRequest) -> tuple[int, Json]:
        lines = [line for line in request.body.split(b"\n") if line.strip()]
        items: list[dict[str, Any]] = []
        position = 0
        touched: set[str] = set()
        while position < len(lines):
            action = json.loads(lines[position])
            position += 1
            ((op, meta),) = action.items()
            source = None
            if op in ("index", "create", "update"):
                source = json.loads(lines[position])
                position += 1
            target = meta.get("_index") or index
            if target is None:
                raise StubError(400, "action_request_validation_exception", "index is missing")
            require_alias = request.query.get("require_alias") == "true"
            items.append({op: self._bulk_item(op, target, meta, source, touched, require_alias)})
        if request.query.get("refresh") in ("true", "wait_for", ""):
            for name in touched:
                self._make_searchable(name)
        errors = any("error" in next(iter(item.values())) for item in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _bulk_item(
        self, op: str, target: str, meta: Mapping[str, Any], source: dict[str, Any] | None,
        touched: set[str], require_alias: bool,
    ) -> dict[str, Any]:
        if require_alias and op != "delete" and target not in self.aliases:
            return {"_index": target, "_id": meta.get("_id"), "status": 404, "error": {
                "type": "index_not_found_exception",
                "reason": f"no such index [{target}] and [require_alias] request flag is "
                          f"[true] and [{target}] is not an alias"}}
        if op in ("index", "create") and target not in self.indices \
                and target not in self.aliases:
            # action.auto_create_index defaults to true: a concrete index, dynamic mapping.
            self.indices[target] = Index(mappings={}, settings={})
        try:
            name = self._write_index(target)
        except StubError as exc:
            return {"_index": target, "_id": meta.get("_id"), "status": exc.status,
                    "error": {"type": exc.error_type, "reason": exc.reason}}
        doc_id = meta.get("_id")
        base = {"_index": name, "_id": doc_id}
        fault = self._item_fault(doc_id, source)
        if fault is not None:
            return {**base, "status": fault[0], "error": {"type": fault[1], "reason": fault[2]}}
        stored = self.indices[name]
        if op == "delete":
            if doc_id not in stored.docs:
                return {**base, "_version": 1, "result": "not_found", "status": 404,
                        "_shards": _shards()}
            del stored.docs[doc_id]
            touched.add(name)
            return {**base, "_version": stored.seq[doc_id], "result": "deleted",
                    "status": 200, "_shards": _shards()}
        if op not in ("index", "create"):
            return {**base, "status": 400,
                    "error": {"type": "illegal_argument_exception",
                              "reason": f"stub does not support bulk {op}"}}
        if doc_id is not None and self.mode == "serverless-classic":
            return {**base, "status": 400, "error": {
                "type": "illegal_argument_exception", "reason": CLASSIC_ID_REASON}}
        assert source is not None
        problem = _mapping_problem(stored.mappings, source)
        if problem is not None:
            return {**base, "status": 400, "error": problem}
        if doc_id is None:
            doc_id = f"stub{next(_ids):012d}"
            base["_id"] = doc_id
        exists = doc_id in stored.docs
        if op == "create" and exists:
            return {**base, "status": 409, "error": {
                "type": "version_conflict_engine_exception",
                "reason": f"[{doc_id}]: version conflict, document already exists"}}
        stored.docs[doc_id] = source
        stored.seq[doc_id] = stored.seq.get(doc_id, 0) + 1
        touched.add(name)
        return {**base, "_version": stored.seq[doc_id],
                "result": "updated" if exists else "created",
                "status": 200 if exists else 201, "_shards": _shards(),
                "_seq_no": sum(stored.seq.values()), "_primary_term": 1}

    def _item_fault(
        self, doc_id: str | None, source: Mapping[str, Any] | None
    ) -> tuple[int, str, str] | None:
        key = _item_key(doc_id, source) or ""
        for fault in self._item_faults:
            if not fault.match(doc_id, source):
                continue
            if fault.remaining is None:
                return fault.status, fault.error_type, fault.reason
            used = fault.remaining.get(key, 0)
            if fault.times is not None and used < fault.times:
                fault.remaining[key] = used + 1
                return fault.status, fault.error_type, fault.reason
        return None

    # -- search ---------------------------------------------------------------------------

    def _msearch(self, index: str | None, request: RecordedRequest) -> tuple[int, Json]:
        lines = request.ndjson()
        responses = []
        for header, body in zip(lines[::2], lines[1::2], strict=True):
            target = header.get("index") or index
            try:
                if target is None:
                    raise StubError(400, "illegal_argument_exception", "no index")
                responses.append({**self._search(target, body, {}), "status": 200})
            except StubError as exc:
                responses.append({**exc.body()})
        return 200, {"took": 1, "responses": responses}

    def _search(self, index: str, body: Mapping[str, Any] | None, params: Mapping[str, str]
                ) -> dict[str, Any]:
        body = body or {}
        docs = self._searchable(index)
        self._searched = self._resolve(index)
        size = int(params.get("size", body.get("size", 10)))
        query = body.get("query") or {"match_all": {}}
        if "hybrid" in query:
            pipeline_name = params.get("search_pipeline") or body.get("search_pipeline")
            scored = self._hybrid(docs, query["hybrid"], size, pipeline_name)
        else:
            scored = self._evaluate(docs, query)
        order = {key: i for i, key in enumerate((d[0], d[1]) for d in docs)}
        ranked = sorted(scored.items(), key=lambda kv: (-kv[1], order[kv[0]]))
        offset = int(body.get("from", 0))
        page = ranked[offset: offset + size]
        by_key = {(d[0], d[1]): d[2] for d in docs}
        hits = []
        for (name, doc_id), score in page:
            hit: dict[str, Any] = {"_index": name, "_id": doc_id, "_score": score}
            source = _filter_source(by_key[(name, doc_id)], body.get("_source", True))
            if source is not None:
                hit["_source"] = source
            hits.append(hit)
        answer: dict[str, Any] = {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": len(scored), "relation": "eq"},
                "max_score": page[0][1] if page else None,
                "hits": hits,
            },
        }
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            answer["aggregations"] = {name: _composite(spec, [by_key[k] for k in scored])
                                      for name, spec in aggs.items()}
        return answer

    def _hybrid(self, docs: list[tuple[str, str, dict[str, Any]]], hybrid: Mapping[str, Any],
                size: int, pipeline_name: str | None) -> dict[tuple[str, str], float]:
        subqueries = hybrid.get("queries") or []
        if not 1 <= len(subqueries) <= 5:
            raise StubError(400, "illegal_argument_exception",
                            "hybrid query must have between 1 and 5 sub-queries")
        if pipeline_name is None:
            raise StubError(400, "illegal_argument_exception",
                            "hybrid query needs a search pipeline with a normalization-processor")
        pipeline = self.pipelines.get(pipeline_name)
        if pipeline is None:
            raise StubError(400, "illegal_argument_exception",
                            f"Pipeline {pipeline_name} is not defined")
        processor = pipeline["phase_results_processors"][0]
        if "score-ranker-processor" in processor:
            return self._rrf(docs, subqueries, size, processor["score-ranker-processor"])
        config = processor["normalization-processor"]
        weights = (config.get("combination", {}).get("parameters", {}).get("weights")
                   or [1.0 / len(subqueries)] * len(subqueries))
        if len(weights) != len(subqueries):
            raise StubError(400, "illegal_argument_exception",
                            "number of weights must match the number of sub-queries")
        # As neural-search does: min-max per sub-query; a document missing from a sub-query
        # counts 0 with that sub-query's weight; keep as many hits as the longest sub-query.
        combined: dict[tuple[str, str], float] = {}
        max_hits = 0
        for weight, subquery in zip(weights, subqueries, strict=True):
            results = sorted(self._evaluate(docs, subquery).items(), key=lambda kv: -kv[1])[:size]
            max_hits = max(max_hits, len(results))
            if not results:
                continue
            high, low = results[0][1], results[-1][1]
            for key, score in results:
                norm = 1.0 if high == low else max((score - low) / (high - low), 0.001)
                combined[key] = combined.get(key, 0.0) + weight * norm
        total = sum(weights)
        ranked = sorted(combined.items(), key=lambda kv: -kv[1])[:max_hits]
        return {key: value / total for key, value in ranked}

    def _rrf(self, docs: list[tuple[str, str, dict[str, Any]]], subqueries: list[Any],
             size: int, config: Mapping[str, Any]) -> dict[tuple[str, str], float]:
        """score-ranker-processor: sum of 1 / (rank_constant + rank) over the sub-queries."""
        constant = int(config.get("combination", {}).get("rank_constant", 60))
        fused: dict[tuple[str, str], float] = {}
        max_hits = 0
        for subquery in subqueries:
            results = sorted(self._evaluate(docs, subquery).items(), key=lambda kv: -kv[1])[:size]
            max_hits = max(max_hits, len(results))
            for rank, (key, _) in enumerate(results, start=1):
                fused[key] = fused.get(key, 0.0) + 1.0 / (constant + rank)
        return dict(sorted(fused.items(), key=lambda kv: -kv[1])[:max_hits])

    def _evaluate(self, docs: list[tuple[str, str, dict[str, Any]]], query: Mapping[str, Any] | None
                  ) -> dict[tuple[str, str], float]:
        if not query:
            return {(d[0], d[1]): 1.0 for d in docs}
        ((kind, spec),) = query.items()
        if kind == "match_all":
            return {(d[0], d[1]): 1.0 for d in docs}
        if kind == "term":
            ((fld, value),) = spec.items()
            value = value["value"] if isinstance(value, dict) else value
            return {(d[0], d[1]): 1.0 for d in docs if _field_matches(d[2], fld, [value])}
        if kind == "terms":
            ((fld, values),) = spec.items()
            return {(d[0], d[1]): 1.0 for d in docs if _field_matches(d[2], fld, values)}
        if kind == "ids":
            wanted = set(spec.get("values", []))
            return {(d[0], d[1]): 1.0 for d in docs if d[1] in wanted}
        if kind == "exists":
            return {(d[0], d[1]): 1.0 for d in docs if _lookup(d[2], spec["field"]) is not None}
        if kind == "bool":
            return self._bool(docs, spec)
        if kind == "match":
            ((fld, value),) = spec.items()
            text = value["query"] if isinstance(value, dict) else value
            return _bm25(docs, [(fld, 1.0)], str(text))
        if kind == "multi_match":
            fields = [_boosted(f) for f in spec.get("fields", [])]
            return _bm25(docs, fields, str(spec["query"]))
        if kind == "knn":
            return self._knn(docs, spec)
        if kind == "hybrid":
            raise StubError(400, "illegal_argument_exception",
                            "hybrid query must be a top level query and cannot be wrapped")
        raise StubError(400, "parsing_exception", f"unknown query [{kind}]")

    def _bool(self, docs: list[tuple[str, str, dict[str, Any]]], spec: Mapping[str, Any]
              ) -> dict[tuple[str, str], float]:
        def clauses(name: str) -> list[Mapping[str, Any]]:
            value = spec.get(name) or []
            return [value] if isinstance(value, dict) else list(value)

        candidates = {(d[0], d[1]): 0.0 for d in docs}
        for clause in clauses("filter"):
            matched = self._evaluate(docs, clause)
            candidates = {k: v for k, v in candidates.items() if k in matched}
        for clause in clauses("must"):
            matched = self._evaluate(docs, clause)
            candidates = {k: v + matched[k] for k, v in candidates.items() if k in matched}
        for clause in clauses("must_not"):
            matched = self._evaluate(docs, clause)
            candidates = {k: v for k, v in candidates.items() if k not in matched}
        should = clauses("should")
        if should:
            hits: dict[tuple[str, str], float] = {}
            counts: dict[tuple[str, str], int] = {}
            for clause in should:
                for key, score in self._evaluate(docs, clause).items():
                    hits[key] = hits.get(key, 0.0) + score
                    counts[key] = counts.get(key, 0) + 1
            default = 0 if clauses("must") or clauses("filter") else 1
            required = int(spec.get("minimum_should_match", default))
            candidates = {k: v + hits.get(k, 0.0) for k, v in candidates.items()
                          if counts.get(k, 0) >= required}
        return candidates

    def _knn(self, docs: list[tuple[str, str, dict[str, Any]]], spec: Mapping[str, Any]
             ) -> dict[tuple[str, str], float]:
        ((fld, params),) = spec.items()
        vector = params["vector"]
        k = int(params["k"])
        allowed = None
        if params.get("filter") is not None and any(
                self.indices[name].engines.get(fld) == "nmslib" for name in self._searched):
            raise StubError(400, "illegal_argument_exception", NO_FILTERS_REASON)
        if params.get("filter") is not None:
            allowed = self._evaluate(docs, params["filter"])
        scored = []
        for index, doc_id, doc in docs:
            if allowed is not None and (index, doc_id) not in allowed:
                continue
            stored = doc.get(fld)
            if stored is None:
                continue
            if len(stored) != len(vector):
                raise StubError(400, "illegal_argument_exception",
                                f"Query vector has invalid dimension: {len(vector)}. "
                                f"Dimension should be: {len(stored)}")
            scored.append(((index, doc_id), _faiss_innerproduct_score(vector, stored)))
        scored.sort(key=lambda kv: -kv[1])
        return dict(scored[:k])

    def _delete_by_query(self, index: str, request: RecordedRequest) -> tuple[int, Json]:
        if self.mode != "domain":
            return 404, {"message": "Not Found"}
        body = request.json()
        matched = self._evaluate(_pinned(self._searchable(index), body.get("query")),
                                 body.get("query"))
        deleted = 0
        for name, doc_id in matched:
            stored = self.indices[name]
            if doc_id in stored.docs:
                del stored.docs[doc_id]
                deleted += 1
        if request.query.get("refresh") in ("true", ""):
            for name in self._resolve(index):
                self._make_searchable(name)
        return 200, {"took": 1, "timed_out": False, "total": len(matched), "deleted": deleted,
                     "batches": 1, "version_conflicts": len(matched) - deleted, "noops": 0,
                     "retries": {"bulk": 0, "search": 0}, "failures": []}

    # -- search pipelines -----------------------------------------------------------------

    def _pipeline(self, method: str, name: str, request: RecordedRequest) -> tuple[int, Json]:
        if method == "PUT":
            body = request.json()
            for processor in body.get("phase_results_processors", []):
                if "score-ranker-processor" in processor and self.version < (2, 19):
                    raise StubError(400, "illegal_argument_exception",
                                    "Invalid processor type score-ranker-processor")
                if "normalization-processor" in processor:
                    weights = (processor["normalization-processor"].get("combination", {})
                               .get("parameters", {}).get("weights"))
                    if weights is not None and abs(sum(weights) - 1.0) > 1e-6:
                        raise StubError(400, "illegal_argument_exception",
                                        "sum of weights for combination must be equal to 1.0")
            self.pipelines[name] = body
            return 200, {"acknowledged": True}
        if method == "GET":
            if name not in self.pipelines:
                return 404, {}
            return 200, {name: self.pipelines[name]}
        if method == "DELETE":
            if self.pipelines.pop(name, None) is None:
                raise StubError(404, "resource_not_found_exception",
                                f"pipeline [{name}] is missing")
            return 200, {"acknowledged": True}
        raise StubError(405, "method_not_allowed", method)


# -- helpers ------------------------------------------------------------------------------


def _pinned(docs: list[tuple[str, str, dict[str, Any]]], query: Mapping[str, Any] | None
            ) -> list[tuple[str, str, dict[str, Any]]]:
    """Only the documents a ``term`` on ``document_id`` the query requires can match.

    OpenSearch answers such a filter from its inverted index; scanning every stored chunk in
    Python per request would make the stub, not the adapter, the cost that benchmarks
    measure. The result of the query is unchanged: every matching chunk passes.
    """
    wanted = _required_document_ids(query)
    if wanted is None:
        return docs
    return [d for d in docs if d[2].get("document_id") in wanted]


def _required_document_ids(query: Any) -> set[str] | None:
    """The document ids a match must have, when the query says so; None when it does not.

    A ``term`` on ``document_id``; a ``bool`` with such a ``filter``/``must`` clause; or a
    ``bool`` whose ``should`` clauses (at least one required) all pin documents.
    """
    if not isinstance(query, Mapping):
        return None
    term = query.get("term")
    if isinstance(term, Mapping) and set(term) == {"document_id"}:
        value = term["document_id"]
        return {value["value"] if isinstance(value, Mapping) else value}
    boolean = query.get("bool")
    if not isinstance(boolean, Mapping):
        return None
    for kind in ("filter", "must"):
        for clause in _as_list(boolean.get(kind)):
            found = _required_document_ids(clause)
            if found is not None:
                return found
    should = _as_list(boolean.get("should"))
    required = boolean.get("minimum_should_match",
                           0 if boolean.get("filter") or boolean.get("must") else 1)
    if should and str(required) == "1":
        pinned = [_required_document_ids(clause) for clause in should]
        if all(p is not None for p in pinned):
            return set().union(*(p for p in pinned if p is not None))
    return None


def _composite(spec: Mapping[str, Any], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``composite`` aggregation of ``terms`` sources (the only aggregation modelled)."""
    if set(spec) != {"composite"}:
        raise StubError(400, "parsing_exception", f"stub supports composite aggregations only: {spec}")
    config = spec["composite"]
    names = [next(iter(source)) for source in config["sources"]]
    fields = [source[name]["terms"]["field"] for source, name in zip(config["sources"], names,
                                                                      strict=True)]
    counts: dict[tuple[Any, ...], int] = {}
    for doc in docs:
        values = tuple(_lookup(doc, f) for f in fields)
        if all(v is not None for v in values):
            counts[values] = counts.get(values, 0) + 1
    keys = sorted(counts)
    after = config.get("after")
    if after is not None:
        start = tuple(after[name] for name in names)
        keys = [k for k in keys if k > start]
    page = keys[: int(config.get("size", 10))]
    buckets = [{"key": dict(zip(names, k, strict=True)), "doc_count": counts[k]} for k in page]
    result: dict[str, Any] = {"buckets": buckets}
    if buckets:
        result["after_key"] = buckets[-1]["key"]
    return result


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _shards() -> dict[str, int]:
    return {"total": 1, "successful": 1, "failed": 0}


def _body(request: RecordedRequest) -> Any:
    return request.json() if request.body.strip() else None


def _item_key(doc_id: str | None, source: Mapping[str, Any] | None) -> str | None:
    if source is not None and "chunk_id" in source:
        return str(source["chunk_id"])
    return doc_id


def _lookup(doc: Mapping[str, Any], dotted: str) -> Any:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return isinstance(actual, bool) and isinstance(wanted, bool) and actual == wanted
    return bool(actual == wanted)


def _field_matches(doc: Mapping[str, Any], fld: str, values: Iterable[Any]) -> bool:
    actual = _lookup(doc, fld)
    if actual is None:
        return False
    actuals = actual if isinstance(actual, list) else [actual]
    return any(_same(a, v) for a in actuals for v in values)


def _filter_source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is False:
        return None
    if spec is True or spec is None:
        return source
    includes: list[str] = []
    excludes: list[str] = []
    if isinstance(spec, list | str):
        includes = [spec] if isinstance(spec, str) else list(spec)
    elif isinstance(spec, dict):
        includes = list(spec.get("includes") or spec.get("include") or [])
        excludes = list(spec.get("excludes") or spec.get("exclude") or [])
    kept = {k: v for k, v in source.items() if not includes or k in includes}
    return {k: v for k, v in kept.items() if k not in excludes}


def _settings_as_served(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Index settings the way ``GET _settings`` shows them: under ``index``, as strings."""
    def text(value: Any) -> Any:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, dict):
            return {k: text(v) for k, v in value.items()}
        return str(value)

    index = dict(settings.get("index") or {})
    index.update({k.removeprefix("index."): v for k, v in settings.items() if k != "index"})
    return {"index": text(index)}


def _mapping_problem(mappings: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, str] | None:
    properties = mappings.get("properties") or {}
    if mappings.get("dynamic") == "strict":
        for key in source:
            if key not in properties:
                return {"type": "strict_dynamic_mapping_exception",
                        "reason": f"mapping set to strict, dynamic introduction of [{key}] "
                                  f"within [_doc] is not allowed"}
    for key, prop in properties.items():
        vector = source.get(key)
        if prop.get("type") == "knn_vector" and vector is not None \
                and len(vector) != prop.get("dimension"):
            return {"type": "mapper_parsing_exception",
                        "reason": f"Vector dimension mismatch. Expected: {prop.get('dimension')}, "
                                  f"Given: {len(source[key])}"}
    return None


def _faiss_innerproduct_score(query: list[float], stored: list[float]) -> float:
    """faiss inner product: d = -x.y; score = 1/(1+d) if d >= 0 else 1 - d."""
    distance = -math.fsum(a * b for a, b in zip(query, stored, strict=True))
    return 1.0 / (1.0 + distance) if distance >= 0 else 1.0 - distance


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F
            or 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF
            or 0x3040 <= code <= 0x30FF)


def analyze(text: str) -> list[str]:
    """Roughly OpenSearch's ``cjk`` analyzer: width folding, lowercase, CJK bigrams, stop."""
    tokens: list[str] = []
    normalized = unicodedata.normalize("NFKC", text).lower()
    for word in re.findall(r"\w+", normalized):
        for is_cjk, run in itertools.groupby(word, key=_is_cjk):
            chars = "".join(run)
            if is_cjk:
                if len(chars) == 1:
                    tokens.append(chars)
                else:
                    tokens.extend(chars[i: i + 2] for i in range(len(chars) - 1))
            elif chars not in STOP_WORDS:
                tokens.append(chars)
    return tokens


def _boosted(spec: str) -> tuple[str, float]:
    name, _, boost = spec.partition("^")
    return name, float(boost) if boost else 1.0


def _bm25(docs: list[tuple[str, str, dict[str, Any]]], fields: list[tuple[str, float]], text: str,
          k1: float = 1.2, b: float = 0.75) -> dict[tuple[str, str], float]:
    terms = analyze(text)
    best: dict[tuple[str, str], float] = {}
    for fld, boost in fields:
        analyzed = {}
        for index, doc_id, doc in docs:
            value = _lookup(doc, fld)
            if isinstance(value, str):
                analyzed[(index, doc_id)] = analyze(value)
        if not analyzed:
            continue
        avg = sum(len(t) for t in analyzed.values()) / len(analyzed) or 1.0
        frequency: dict[str, int] = {}
        for tokens in analyzed.values():
            for term in set(tokens):
                frequency[term] = frequency.get(term, 0) + 1
        n = len(analyzed)
        for key, tokens in analyzed.items():
            score = 0.0
            for term in terms:
                tf = tokens.count(term)
                if not tf:
                    continue
                idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(tokens) / avg))
            if score > 0:
                best[key] = max(best.get(key, 0.0), score * boost)
    return best


def _handler_for(stub: OpenSearchStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle + delayed ACK
            # add ~40 ms to every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            parts = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=dict(parse_qsl(parts.query, keep_blank_values=True)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            status, payload = stub.handle(request)
            data = b"" if payload is None else json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="in-memory OpenSearch stub on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", default="domain",
                        choices=["domain", "serverless", "serverless-classic"])
    parser.add_argument("--no-record", action="store_true", help="do not keep request log")
    args = parser.parse_args()
    stub = OpenSearchStub(args.mode, port=args.port)
    stub.record_requests = not args.no_record
    stub.validate_requests = False
    print(stub.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stub._server.serve_forever()


if __name__ == "__main__":
    main()
