"""The judge itself: it passes what the adapter sends and fails a broken request of each kind."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from solar_rag.adapters.opensearch import mapping, queries
from solar_rag.adapters.opensearch.capabilities import capabilities_for
from solar_rag.domain import Filters

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.opensearch_spec import expect_violations, fail_on_new_violations
from tests.opensearch_spec.validator import RECORD, SPEC_PATH, Context, shared

NDJSON = {"content-type": "application/x-ndjson"}
JSON = {"content-type": "application/json"}
VECTOR = [0.5, 0.5, 0.5, 0.5]


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    body: bytes = b""


def body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def lines(*objs: Any) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def rules(request: Req, context: Context | None = None) -> list[str]:
    return [v.rule for v in shared().validate(request, context)]


# -- the pinned copy ------------------------------------------------------------------------


def test_pinned_copy_names_its_source_commit_and_licence() -> None:
    info = shared().source
    assert info["x-source"] == "https://github.com/opensearch-project/opensearch-api-specification"
    assert re.fullmatch(r"[0-9a-f]{40}", info["x-commit"])
    assert "Apache License" in (SPEC_PATH.parent / "LICENSE.txt").read_text()
    assert "OpenSearch" in (SPEC_PATH.parent / "NOTICE.txt").read_text()
    groups = {op.group for op in shared().operations}
    assert groups == set(info["x-operation-groups"])


# -- what the adapter sends passes (the positive controls) ----------------------------------


@pytest.mark.parametrize("target", ["domain", "serverless", "serverless-classic"])
def test_the_adapters_create_bodies_pass(target: str) -> None:
    caps = capabilities_for(target)  # type: ignore[arg-type]
    for explicit in (True, False):
        created = mapping.create_index_body("rag", 1024, caps, ef_search=128, compression="2x",
                                            explicit_engine=explicit)
        assert rules(Req("PUT", "/rag-v1", body=body(created))) == []


def test_the_adapters_search_and_pipeline_bodies_pass() -> None:
    filters: Filters = {"lang": "ko", "document_id": ["a", "b"]}
    searches = [
        queries.vector_search_body(VECTOR, 5, filters, ef_search=100),
        queries.keyword_search_body("서울", 5, filters),
        queries.hybrid_search_body("q", VECTOR, 20, filters, ef_search=100),
        queries.hybrid_search_body("q", VECTOR, 20, {}),
    ]
    for search in searches:
        assert rules(Req("POST", "/rag/_search", {"search_pipeline": "p"}, body=body(search))) == []
    assert rules(Req("POST", "/rag/_msearch", headers=NDJSON,
                     body=lines({}, searches[0], {}, searches[1]))) == []
    for pipeline in (queries.hybrid_pipeline_body(), queries.normalization_pipeline_body()):
        assert rules(Req("PUT", "/_search/pipeline/p", body=body(pipeline))) == []
    assert rules(Req("POST", "/rag/_bulk", {"require_alias": "true", "refresh": "wait_for"},
                     NDJSON, lines({"index": {"_id": "c1"}}, {"text": "x"},
                                   {"delete": {"_id": "c0"}}))) == []


# -- a broken request of each kind fails ----------------------------------------------------

KNN_OK = {"vector": VECTOR, "k": 3}

BROKEN: list[tuple[str, Req, str]] = [
    ("unknown path", Req("GET", "/rag/_nope"), "operation"),
    ("method not allowed on the path", Req("DELETE", "/rag/_search"), "operation"),
    ("undeclared query parameter", Req("POST", "/rag/_search", {"refrsh": "true"},
                                       body=body({})), "query-parameter"),
    ("query parameter value outside its schema",
     Req("POST", "/rag/_bulk", {"refresh": "sometimes"}, NDJSON,
         lines({"delete": {"_id": "a"}})), "query-parameter"),
    ("body on an operation without one", Req("POST", "/rag/_refresh", body=body({"a": 1})),
     "body"),
    ("required body missing", Req("PUT", "/_search/pipeline/p"), "body"),
    ("content type the operation does not take",
     Req("POST", "/rag/_bulk", headers=JSON, body=lines({"delete": {"_id": "a"}})),
     "content-type"),
    ("wrong type in the body", Req("POST", "/rag/_search", body=body({"size": "ten"})),
     "body-schema"),
    ("misspelt top-level search key", Req("POST", "/rag/_search", body=body({"_sorce": False})),
     "body-schema"),
    ("unknown query type", Req("POST", "/rag/_search", body=body({"query": {"knnn": {}}})),
     "body-schema"),
    ("two query types in one container",
     Req("POST", "/rag/_search", body=body({"query": {"match_all": {}, "ids": {"values": []}}})),
     "body-schema"),
    ("undeclared field inside a query type",
     Req("POST", "/rag/_search",
         body=body({"query": {"knn": {"embedding": {**KNN_OK, "filtr": {"match_all": {}}}}}})),
     "body-schema"),
    ("undeclared field inside bool",
     Req("POST", "/rag/_search", body=body({"query": {"bool": {"filtre": []}}})), "body-schema"),
    ("misspelt mapping parameter",
     Req("PUT", "/rag-v1", body=body({"mappings": {"properties": {
         "embedding": {"type": "knn_vector", "dimenson": 8}}}})), "body-schema"),
    ("unknown phase results processor",
     Req("PUT", "/_search/pipeline/p",
         body=body({"phase_results_processors": [{"rrf-processor": {}}]})), "body-schema"),
    ("unknown bulk action",
     Req("POST", "/rag/_bulk", headers=NDJSON, body=lines({"indx": {}}, {"a": 1})),
     "bulk-action"),
    ("undeclared field inside a bulk action",
     Req("POST", "/rag/_bulk", headers=NDJSON, body=lines({"index": {"_idd": "a"}}, {"a": 1})),
     "bulk-action"),
    ("two actions on one line",
     Req("POST", "/rag/_bulk", headers=NDJSON, body=lines({"delete": {}, "index": {}})),
     "bulk-action"),
    ("bulk action without its document",
     Req("POST", "/rag/_bulk", headers=NDJSON, body=lines({"index": {"_id": "a"}})),
     "ndjson-pairing"),
    ("bulk document line replaced by an action",
     Req("POST", "/rag/_bulk", headers=NDJSON,
         body=lines({"index": {"_id": "a"}}, {"delete": {"_id": "b"}})), "ndjson-pairing"),
    ("bulk body without the final newline",
     Req("POST", "/rag/_bulk", headers=NDJSON, body=b'{"delete":{"_id":"a"}}'), "ndjson"),
    ("msearch header without its body",
     Req("POST", "/rag/_msearch", headers=NDJSON, body=lines({}, {"size": 1}, {})),
     "ndjson-pairing"),
    ("undeclared msearch header field",
     Req("POST", "/rag/_msearch", headers=NDJSON, body=lines({"indx": "a"}, {"size": 1})),
     "msearch-header"),
    # -- plugin rules (documentation, where the specification is open) --
    ("nmslib engine for a filtered index",
     Req("PUT", "/rag-v1", body=body({"mappings": {"properties": {"embedding": {
         "type": "knn_vector", "dimension": 8,
         "method": {"name": "hnsw", "engine": "nmslib"}}}}})), "knn-engine"),
    ("misspelt Faiss method parameter",
     Req("PUT", "/rag-v1", body=body({"mappings": {"properties": {"embedding": {
         "type": "knn_vector", "dimension": 8, "method": {
             "name": "hnsw", "engine": "faiss", "parameters": {"ef_serach": 100}}}}}})),
     "knn-method-parameters"),
    ("Faiss-only compression on Lucene",
     Req("PUT", "/rag-v1", body=body({"mappings": {"properties": {"embedding": {
         "type": "knn_vector", "dimension": 8, "compression_level": "16x",
         "method": {"name": "hnsw", "engine": "lucene"}}}}})), "knn-compression"),
    ("unknown k-NN query method parameter",
     Req("POST", "/rag/_search", body=body({"query": {"knn": {"embedding": {
         **KNN_OK, "method_parameters": {"ef": 100}}}}})), "knn-query"),
    ("k and min_score together",
     Req("POST", "/rag/_search", body=body({"query": {"knn": {"embedding": {
         **KNN_OK, "min_score": 0.5}}}})), "knn-query"),
    ("six hybrid sub-queries",
     Req("POST", "/rag/_search", {"search_pipeline": "p"},
         body=body({"query": {"hybrid": {"queries": [{"match_all": {}}] * 6}}})), "hybrid"),
    ("hybrid nested in another query",
     Req("POST", "/rag/_search", body=body({"query": {"bool": {"must": [
         {"hybrid": {"queries": [{"match_all": {}}]}}]}}})), "hybrid"),
    ("normalization weights that do not add up to 1",
     Req("PUT", "/_search/pipeline/p", body=body({"phase_results_processors": [
         {"normalization-processor": {"combination": {"technique": "arithmetic_mean",
                                                      "parameters": {"weights": [0.3, 0.6]}}}}]})),
     "pipeline-weights"),
]


@pytest.mark.parametrize(("request_", "rule"), [(r, rule) for _, r, rule in BROKEN],
                         ids=[name for name, _, _ in BROKEN])
def test_a_broken_request_is_refused(request_: Req, rule: str) -> None:
    assert rule in rules(request_)


def test_version_and_engine_rules_use_the_cluster_context() -> None:
    rrf = Req("PUT", "/_search/pipeline/p", body=body(queries.hybrid_pipeline_body()))
    assert rules(rrf, Context(version=(2, 19))) == []
    assert rules(rrf, Context(version=(2, 18))) == ["pipeline-version"]
    per_query = Req("POST", "/rag/_search", body=body(
        queries.vector_search_body(VECTOR, 3, {}, ef_search=64)))
    assert rules(per_query, Context(version=(2, 16))) == []
    assert rules(per_query, Context(version=(2, 15))) == ["knn-query"]
    filtered = Req("POST", "/rag/_search", body=body(
        queries.vector_search_body(VECTOR, 3, {"lang": "ko"})))

    def engine(resolved: str) -> Context:
        return Context(engine_of=lambda index, fld: resolved if (index, fld) == (
            "rag", "embedding") else None)

    assert rules(filtered, engine("faiss")) == []
    assert rules(filtered, engine("nmslib")) == ["knn-filter-engine"]
    # The same filtered query inside _msearch and inside hybrid is caught too.
    assert "knn-filter-engine" in rules(Req("POST", "/_msearch", headers=NDJSON, body=lines(
        {"index": "rag"}, queries.vector_search_body(VECTOR, 3, {"lang": "ko"}))),
        engine("nmslib"))
    assert "knn-filter-engine" in rules(Req("POST", "/rag/_search", body=body(
        queries.hybrid_search_body("q", VECTOR, 3, {"lang": "ko"}))), engine("nmslib"))


# -- the stub judges what it receives and the session fixture fails the test ----------------


def test_the_stub_records_a_violation_and_the_fixture_would_fail_the_test() -> None:
    with OpenSearchStub() as stub, expect_violations() as found:
        stub.handle(_recorded(Req("POST", "/rag/_search", body=body({"query": {"knnn": {}}}))))
    assert [v.rule for v in found] == ["body-schema"]
    assert [v.rule for v in stub.violations] == ["body-schema"]
    start = len(RECORD.violations)
    RECORD.violations.extend(found)
    with pytest.raises(pytest.fail.Exception, match="knnn"):
        fail_on_new_violations(start)
    assert len(RECORD.violations) == start  # taken back out: this test itself passes


def _recorded(request: Req) -> Any:
    from tests.fakes.opensearch_stub import RecordedRequest

    return RecordedRequest(request.method, request.path, dict(request.query),
                           dict(request.headers), request.body)
