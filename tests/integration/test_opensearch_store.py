"""The OpenSearch adapter against the in-memory stub: exact bodies, failure paths, targets."""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from solar_rag.adapters.opensearch import (
    BulkLimits,
    OpenSearchVectorStore,
    build_client,
    capabilities_for,
    init_opensearch,
)
from solar_rag.adapters.opensearch.capabilities import Target
from solar_rag.adapters.opensearch.mapping import create_index_body
from solar_rag.adapters.opensearch.queries import (
    hybrid_pipeline_body,
    normalization_pipeline_body,
)
from solar_rag.domain import (
    EmbeddedChunk,
    SearchMode,
    SearchQuery,
    chunk_id_for,
)
from solar_rag.errors import (
    InvalidInput,
    NotConfigured,
    UpstreamRateLimited,
    VectorStoreError,
)
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import CLASSIC_ID_REASON, OpenSearchStub
from tests.integration.opensearch_harness import (
    ALIAS,
    DIMS,
    Harness,
    chunks,
    no_wait,
    paths,
    settings_for,
    source_of,
    unit,
)

pytest_plugins = ("tests.integration.opensearch_harness",)  # its fixtures

# -- init -----------------------------------------------------------------------------------


def test_init_creates_versioned_index_alias_and_pipeline(stub: OpenSearchStub) -> None:
    settings = settings_for(stub)
    report = init_opensearch(settings, build_client(settings))
    assert report == {
        "target": "domain", "alias": ALIAS, "indices": ["rag-chunks-v1"],
        "index_created": True, "alias_created": True, "dimensions": DIMS,
        "space_type": "innerproduct", "engine": "faiss", "compression_level": "1x",
        "ef_search": 100, "pipeline": "rag-chunks-hybrid",
        "pipeline_status": "created (score-ranker-processor, rrf)",
    }
    (create,) = stub.find("PUT", "/rag-chunks-v1")
    assert create.json() == create_index_body(ALIAS, DIMS, capabilities_for("domain"))
    (pipeline,) = stub.find("PUT", "/_search/pipeline/rag-chunks-hybrid")
    assert pipeline.json() == hybrid_pipeline_body()

    stub.requests.clear()
    again = init_opensearch(settings, build_client(settings))
    assert again["index_created"] is False
    assert again["pipeline_status"] == "unchanged"
    assert [r.method for r in stub.requests] == ["GET", "GET"]  # mapping check, pipeline check


def test_init_adopts_existing_physical_index_without_alias(stub: OpenSearchStub) -> None:
    settings = settings_for(stub)
    client = build_client(settings)
    body = create_index_body(ALIAS, DIMS, capabilities_for("domain"))
    del body["aliases"]
    client.indices.create(index="rag-chunks-v1", body=body)
    report = init_opensearch(settings, client)
    assert (report["index_created"], report["alias_created"]) == (False, True)
    assert stub.aliases[ALIAS] == {"rag-chunks-v1"}


def test_init_refuses_other_dimension(stub: OpenSearchStub) -> None:
    init_opensearch(settings_for(stub), build_client(settings_for(stub)))
    other = settings_for(stub, dims=16)
    with pytest.raises(NotConfigured, match=r"8-dimensional.*EMBEDDING_DIMENSIONS is 16"):
        init_opensearch(other, build_client(other))


def test_init_updates_a_changed_pipeline(stub: OpenSearchStub) -> None:
    settings = settings_for(stub)
    client = build_client(settings)
    init_opensearch(settings, client)
    stub.pipelines["rag-chunks-hybrid"] = {"phase_results_processors": []}
    assert init_opensearch(settings, client)["pipeline_status"] == (
        "updated (score-ranker-processor, rrf)")
    assert stub.pipelines["rag-chunks-hybrid"] == hybrid_pipeline_body()


def test_init_falls_back_to_min_max_pipeline_before_2_19(stub: OpenSearchStub) -> None:
    stub.version = (2, 17)
    settings = settings_for(stub)
    report = init_opensearch(settings, build_client(settings))
    assert str(report["pipeline_status"]).startswith("created (normalization-processor")
    assert stub.pipelines["rag-chunks-hybrid"] == normalization_pipeline_body()
    assert init_opensearch(settings, build_client(settings))["pipeline_status"] == "unchanged"


@pytest.mark.parametrize("target", ["serverless", "serverless-classic"])
def test_init_serverless_has_no_pipeline_or_shard_settings(stub: OpenSearchStub,
                                                           target: Target) -> None:
    stub.reset(target)
    settings = settings_for(stub, target)
    report = init_opensearch(settings, build_client(settings))
    assert report["pipeline"] is None
    assert stub.find("PUT", "/_search/pipeline/.*") == []
    *_, create = stub.find("PUT", "/rag-chunks-v1")
    assert create.json()["settings"] == {"index": {"knn": True}}
    method = create.json()["mappings"]["properties"]["embedding"]["method"]
    # The stub's NextGen refuses the engine (as AWS documents): the retry leaves it out.
    assert ("engine" in method) is (target == "serverless-classic")


def test_missing_index_is_not_configured(stub: OpenSearchStub) -> None:
    h = Harness(stub, init=False)
    with pytest.raises(NotConfigured, match="rag opensearch init"):
        h.store.search(SearchQuery("x", unit(0), SearchMode.VECTOR))
    with pytest.raises(NotConfigured, match="rag opensearch init"):
        h.store.upsert_document("d", "v1", chunks("d", "v1", ["a"]))
    with pytest.raises(NotConfigured, match="rag opensearch init"):
        h.store.delete_document("d")


# -- writes on a domain ---------------------------------------------------------------------


def test_upsert_sends_bulk_ndjson_then_removes_stale_by_query(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    store = OpenSearchVectorStore(h.client, index=ALIAS, dimensions=DIMS,
                                  capabilities=capabilities_for("domain"))
    items = chunks("doc/1", "v1", ["alpha", "beta", "감마"], metadata={"lang": "ko"})
    ids = store.upsert_document("doc/1", "v1", items)
    assert ids == [i.chunk.chunk_id for i in items]
    assert paths(stub) == ["GET /rag-chunks/_mapping", "POST /rag-chunks/_bulk",
                           "POST /rag-chunks/_refresh", "POST /rag-chunks/_delete_by_query"]
    _, bulk, _, dbq = stub.requests
    assert bulk.query == {"require_alias": "true"}
    assert bulk.headers["content-type"] == "application/x-ndjson"
    expected: list[Any] = []
    for item in items:
        expected += [{"index": {"_id": item.chunk.chunk_id}}, source_of(item)]
    assert bulk.ndjson() == expected
    assert bulk.body.decode("utf-8").count("\n") == 6
    assert "감마" in bulk.body.decode("utf-8")  # UTF-8, not \u escapes
    stub.requests.clear()
    store.upsert_document("doc/1", "v1", items)
    assert stub.find("GET", ".*_mapping") == []  # checked once per store (container)
    assert dbq.query == {"refresh": "true", "conflicts": "proceed"}
    assert dbq.json() == {"query": {"bool": {
        "filter": [{"term": {"document_id": "doc/1"}}],
        "must_not": [{"term": {"version": "v1"}}],
    }}}


def test_reindex_with_fewer_chunks_keeps_only_new_version(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["one", "two", "three"]))
    h.store.upsert_document("other", "v1", chunks("other", "v1", ["keep me"]))
    new = chunks("d", "v2", ["uno", "dos"])
    h.store.upsert_document("d", "v2", new)
    docs = stub.documents(ALIAS)
    assert sorted(docs) == sorted([i.chunk.chunk_id for i in new]
                                  + [chunk_id_for("other", "v1", 0)])
    hits = h.store.search(SearchQuery("", None, SearchMode.KEYWORD, 10, {"document_id": "d"}))
    assert hits == []  # empty text matches nothing
    found = h.store.search(SearchQuery("uno", None, SearchMode.KEYWORD, 10))
    assert [x.chunk.text for x in found] == ["uno"]


def test_same_version_again_is_idempotent(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    items = chunks("d", "v1", ["a", "b"])
    first = h.store.upsert_document("d", "v1", items)
    second = h.store.upsert_document("d", "v1", items, previous_chunk_ids=first)
    assert first == second
    assert sorted(stub.documents(ALIAS)) == sorted(first)


def test_vectors_are_normalised_before_writing(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    item = chunks("d", "v1", ["a"])[0]
    raw = EmbeddedChunk(item.chunk, [3.0, 4.0] + [0.0] * (DIMS - 2))
    h.store.upsert_document("d", "v1", [raw])
    stored = stub.documents(ALIAS)[item.chunk.chunk_id]["embedding"]
    assert stored[:2] == pytest.approx([0.6, 0.8])


def test_upsert_validates_input(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    with pytest.raises(InvalidInput, match="belongs to"):
        h.store.upsert_document("d", "v2", chunks("d", "v1", ["a"]))
    wrong = EmbeddedChunk(chunks("d", "v1", ["a"])[0].chunk, [1.0, 0.0])
    with pytest.raises(InvalidInput, match=r"2 dimensions.*expects 8"):
        h.store.upsert_document("d", "v1", [wrong])
    nan = EmbeddedChunk(wrong.chunk, [math.nan] * DIMS)
    with pytest.raises(InvalidInput, match="NaN"):
        h.store.upsert_document("d", "v1", [nan])
    assert stub.find("POST", ".*_bulk") == []


def test_bulk_items_throttled_are_retried_with_backoff(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    items = chunks("d", "v1", ["a", "b", "c"])
    stub.fail_items([items[1].chunk.chunk_id], 429, "rejected_execution_exception",
                    "rejected execution of coordinating operation", times=2)
    ids = h.store.upsert_document("d", "v1", items)
    assert sorted(ids) == sorted(stub.documents(ALIAS))
    bulks = stub.find("POST", "/rag-chunks/_bulk")
    assert [len(b.ndjson()) for b in bulks] == [6, 2, 2]
    assert bulks[1].ndjson()[0] == {"index": {"_id": items[1].chunk.chunk_id}}
    assert len(h.sleeps) == 2


def test_bulk_throttling_that_never_ends_fails(stub: OpenSearchStub) -> None:
    h = Harness(stub, limits=BulkLimits(max_item_retries=1, backoff=no_wait()))
    items = chunks("d", "v1", ["a", "b"])
    stub.fail_items([items[0].chunk.chunk_id], 429, "rejected_execution_exception")
    with pytest.raises(VectorStoreError, match=r"1 of 2 chunks.*429 rejected_execution"):
        h.store.upsert_document("d", "v1", items)


def test_partial_failure_keeps_previous_version(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    old = chunks("d", "v1", ["one", "two", "three"])
    h.store.upsert_document("d", "v1", old)
    new = chunks("d", "v2", ["uno", "dos", "tres"])
    stub.fail_items([new[1].chunk.chunk_id], 400, "mapper_parsing_exception",
                    "failed to parse field [metadata.year] of type [double]")
    stub.fail_items([new[2].chunk.chunk_id], 429, "rejected_execution_exception", times=1)
    stub.requests.clear()
    with pytest.raises(VectorStoreError) as raised:
        h.store.upsert_document("d", "v2", new)
    message = raised.value.message
    assert "1 of 3 chunks of document 'd' were not written" in message
    assert new[1].chunk.chunk_id in message
    assert "mapper_parsing_exception: failed to parse field [metadata.year]" in message
    assert stub.find("POST", ".*_delete_by_query") == []
    docs = stub.documents(ALIAS)
    assert all(i.chunk.chunk_id in docs for i in old)


def test_bulk_requests_are_bounded_by_bytes_and_count(stub: OpenSearchStub) -> None:
    h = Harness(stub, limits=BulkLimits(max_bytes=2048, max_actions=3, backoff=no_wait()))
    items = chunks("d", "v1", [f"text number {i} " * 8 for i in range(10)])
    h.store.upsert_document("d", "v1", items)
    bulks = stub.find("POST", "/rag-chunks/_bulk")
    assert len(bulks) >= 4
    assert all(len(b.body) <= 2048 and len(b.ndjson()) <= 6 for b in bulks)
    sent = [line["chunk_id"] for b in bulks for line in b.ndjson()[1::2]]
    assert sent == [i.chunk.chunk_id for i in items]


def test_chunk_above_the_byte_limit_is_refused_before_any_write(stub: OpenSearchStub) -> None:
    h = Harness(stub, limits=BulkLimits(max_bytes=1024, backoff=no_wait()))
    items = chunks("d", "v1", ["small", "x" * 2000])
    with pytest.raises(InvalidInput, match="above the bulk request limit of 1024"):
        h.store.upsert_document("d", "v1", items)
    assert stub.find("POST", ".*_bulk") == []


def test_delete_document_by_query(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["a", "b"]))
    h.store.upsert_document("e", "v1", chunks("e", "v1", ["c"]))
    stub.requests.clear()
    assert h.store.delete_document("d") == 2
    assert paths(stub) == ["POST /rag-chunks/_refresh", "POST /rag-chunks/_delete_by_query"]
    assert stub.requests[1].json() == {"query": {"term": {"document_id": "d"}}}
    assert list(stub.documents(ALIAS)) == [chunk_id_for("e", "v1", 0)]
    assert h.store.delete_document("d") == 0


# -- transport retries ----------------------------------------------------------------------


def test_http_429_and_503_are_retried_with_backoff(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["a"]))
    stub.requests.clear()
    stub.inject(429, "rejected_execution_exception", path="/rag-chunks/_search", times=1)
    stub.inject(503, "unavailable", path="/rag-chunks/_search", times=1)
    hits = h.store.search(SearchQuery("a", unit(0), SearchMode.VECTOR, 1))
    assert [x.chunk.text for x in hits] == ["a"]
    assert len(stub.find("POST", "/rag-chunks/_search")) == 3
    assert len(h.sleeps) == 2


def test_http_throttling_beyond_retries_is_rate_limited(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    stub.inject(429, "rejected_execution_exception", path="/rag-chunks/_search", times=None)
    with pytest.raises(UpstreamRateLimited):
        h.store.search(SearchQuery("a", unit(0), SearchMode.VECTOR, 1))
    assert len(stub.find("POST", "/rag-chunks/_search")) == 4  # 1 + 3 retries
    stub.reset("domain")


def test_bad_request_is_not_retried(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    stub.inject(400, "parsing_exception", "unknown query", path="/rag-chunks/_search")
    with pytest.raises(VectorStoreError, match="400 parsing_exception"):
        h.store.search(SearchQuery("a", unit(0), SearchMode.VECTOR, 1))
    assert h.sleeps == []


def test_unreachable_cluster_is_a_vector_store_error(stub: OpenSearchStub) -> None:
    settings = Settings(
        _env_file=None, opensearch_url="http://127.0.0.1:9", opensearch_endpoint=None,
        embedding_dimensions=DIMS, opensearch_max_retries=1, opensearch_timeout_seconds=1,
    )
    sleeps: list[float] = []
    store = OpenSearchVectorStore(build_client(settings, sleep=sleeps.append), index=ALIAS,
                                  dimensions=DIMS, capabilities=capabilities_for("domain"))
    with pytest.raises(VectorStoreError, match="cannot reach OpenSearch"):
        store.search(SearchQuery("a", unit(0), SearchMode.VECTOR, 1))
    assert len(sleeps) == 1


# -- reads ----------------------------------------------------------------------------------


def _corpus(h: Harness) -> None:
    h.store.upsert_document("ko", "v1", chunks(
        "ko", "v1", ["서울의 날씨는 맑습니다", "부산 바다 여행", "김치 만드는 법"],
        metadata={"lang": "ko", "year": 2024}))
    h.store.upsert_document("en", "v1", chunks(
        "en", "v1", ["weather in seoul is sunny", "travel to the sea", "cooking recipes"],
        metadata={"lang": "en", "year": 2023}, offset=3))


def test_vector_search_body_and_cosine_scores(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    _corpus(h)
    stub.requests.clear()
    query = [0.0] * DIMS
    query[1] = 1.0
    hits = h.store.search(SearchQuery("", query, SearchMode.VECTOR, 2, {"lang": "ko"}))
    (request,) = stub.requests
    assert request.path == "/rag-chunks/_search"
    assert request.json() == {
        "size": 2, "_source": {"excludes": ["embedding"]},
        "query": {"knn": {"embedding": {"vector": query, "k": 2, "filter": {
            "bool": {"filter": [{"terms": {"metadata_terms": ['["lang","ko"]']}}]}}}}},
    }
    assert hits[0].chunk.text == "부산 바다 여행"
    assert hits[0].score == pytest.approx(1.0)
    assert hits[1].score == pytest.approx(0.0)
    assert hits[0].chunk.metadata == {"lang": "ko", "year": 2024}
    opposite = [-x for x in query]
    worst = h.store.search(SearchQuery("", opposite, SearchMode.VECTOR, 6))
    assert min(x.score for x in worst) == pytest.approx(-1.0)


def test_keyword_search_korean_with_filters(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    _corpus(h)
    stub.requests.clear()
    hits = h.store.search(SearchQuery("날씨", None, SearchMode.KEYWORD, 5, {"year": [2024]}))
    assert [x.chunk.text for x in hits] == ["서울의 날씨는 맑습니다"]
    assert hits[0].score > 0
    assert stub.requests[0].json()["query"]["bool"]["filter"] == [
        {"terms": {"metadata_terms": ['["year",2024]']}}]
    none = h.store.search(SearchQuery("날씨", None, SearchMode.KEYWORD, 5, {"lang": "en"}))
    assert none == []


def test_hybrid_uses_the_pipeline_on_a_domain(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    _corpus(h)
    stub.requests.clear()
    hits = h.store.search(SearchQuery("sunny weather", unit(3), SearchMode.HYBRID, 2))
    (request,) = stub.requests
    assert request.query == {"search_pipeline": "rag-chunks-hybrid"}
    body = request.json()
    assert body["size"] == 20
    assert [next(iter(q)) for q in body["query"]["hybrid"]["queries"]] == ["bool", "knn"]
    assert len(hits) == 2
    assert hits[0].chunk.text == "weather in seoul is sunny"
    assert hits[0].score == pytest.approx(2 / 61)  # first by BM25 and by vector (RRF)
    assert 0 < hits[1].score < hits[0].score


def test_hybrid_falls_back_to_rrf_when_the_pipeline_is_missing(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    _corpus(h)
    stub.pipelines.clear()
    stub.requests.clear()
    hits = h.store.search(SearchQuery("sunny weather", unit(3), SearchMode.HYBRID, 2))
    assert paths(stub) == ["POST /rag-chunks/_search", "POST /rag-chunks/_msearch"]
    assert hits[0].chunk.text == "weather in seoul is sunny"
    assert hits[0].score == pytest.approx(2 / 61)
    stub.requests.clear()
    h.store.search(SearchQuery("sunny", unit(3), SearchMode.HYBRID, 2))
    assert paths(stub) == ["POST /rag-chunks/_msearch"]  # remembered


def test_vector_mode_needs_a_vector_and_top_k_is_positive(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    with pytest.raises(InvalidInput, match="query vector"):
        h.store.search(SearchQuery("x", None, SearchMode.VECTOR))
    with pytest.raises(InvalidInput, match="top_k"):
        h.store.search(SearchQuery("x", None, SearchMode.KEYWORD, 0))
    assert h.store.search(SearchQuery("x", None, SearchMode.HYBRID)) == []  # keyword only


# -- AOSS ---------------------------------------------------------------------------------


def test_classic_server_assigned_ids_and_delete_by_ids(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless-classic")
    old = chunks("d", "v1", ["one", "two", "three"])
    old_ids = h.store.upsert_document("d", "v1", old)
    assert len(old_ids) == 3 and all(i.startswith("stub") for i in old_ids)
    bulk, sweep = stub.requests
    assert bulk.ndjson()[0] == {"index": {}}
    assert bulk.ndjson()[1]["chunk_id"] == old[0].chunk.chunk_id
    assert sweep.path == "/rag-chunks/_msearch"

    stub.requests.clear()
    new_ids = h.store.upsert_document("d", "v2", chunks("d", "v2", ["uno"]),
                                      previous_chunk_ids=old_ids)
    assert paths(stub) == ["POST /rag-chunks/_bulk", "POST /rag-chunks/_msearch",
                           "POST /rag-chunks/_bulk"]
    assert stub.requests[1].ndjson() == [{}, {"size": 10000, "_source": False, "query": {"bool": {
        "filter": [{"term": {"document_id": "d"}}],
        "must_not": [{"ids": {"values": new_ids}}],
    }}}]
    assert stub.requests[2].ndjson() == [{"delete": {"_id": i}} for i in old_ids]
    assert list(stub.documents(ALIAS)) == new_ids

    hits = h.store.search(SearchQuery("uno", None, SearchMode.KEYWORD))
    assert hits[0].chunk.chunk_id == chunk_id_for("d", "v2", 0)

    stub.requests.clear()
    assert h.store.delete_document("d", chunk_ids=new_ids) == 1
    search, delete = stub.requests
    assert search.ndjson() == [{}, {"size": 10000, "_source": False,
                                    "query": {"term": {"document_id": "d"}}}]
    assert delete.ndjson() == [{"delete": {"_id": new_ids[0]}}]
    assert stub.documents(ALIAS) == {}


def test_classic_rejects_custom_ids_like_aoss(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless-classic")
    wrong = OpenSearchVectorStore(h.client, index=ALIAS, dimensions=DIMS,
                                  capabilities=capabilities_for("domain"))
    with pytest.raises(VectorStoreError, match=CLASSIC_ID_REASON):
        wrong.upsert_document("d", "v1", chunks("d", "v1", ["a"]))


def test_classic_failed_upsert_rolls_back_its_unaddressable_chunks(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless-classic")
    old_ids = h.store.upsert_document("d", "v1", chunks("d", "v1", ["one"]))
    new = chunks("d", "v2", ["uno", "dos"])
    stub.fail_items([new[1].chunk.chunk_id], 400, "mapper_parsing_exception", "bad")
    with pytest.raises(VectorStoreError, match="previous version was kept"):
        h.store.upsert_document("d", "v2", new, previous_chunk_ids=old_ids)
    assert list(stub.documents(ALIAS)) == old_ids


def test_classic_reupsert_without_recorded_ids_leaves_no_duplicates(
    stub: OpenSearchStub,
) -> None:
    h = Harness(stub, "serverless-classic")
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["a", "b"]))
    again = h.store.upsert_document("d", "v1", chunks("d", "v1", ["a", "b"]))
    assert sorted(stub.documents(ALIAS)) == sorted(again)


def test_classic_delete_without_recorded_ids_sweeps_visible_chunks(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless-classic")
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["a", "b"]))
    assert h.store.delete_document("d") == 2
    assert stub.documents(ALIAS) == {}


def test_nextgen_custom_ids_and_stale_removal_by_previous_ids(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless")
    old = h.store.upsert_document("d", "v1", chunks("d", "v1", ["one", "two", "three"]))
    assert old == [chunk_id_for("d", "v1", i) for i in range(3)]
    stub.requests.clear()
    new = h.store.upsert_document("d", "v2", chunks("d", "v2", ["uno"]), previous_chunk_ids=old)
    assert stub.requests[0].ndjson()[0] == {"index": {"_id": new[0]}}
    assert stub.requests[2].ndjson() == [{"delete": {"_id": i}} for i in old]
    assert all("refresh" not in r.query for r in stub.requests)
    assert list(stub.documents(ALIAS)) == new


def test_nextgen_stale_removal_failure_is_raised_for_an_idempotent_retry(
    stub: OpenSearchStub,
) -> None:
    h = Harness(stub, "serverless")
    old = h.store.upsert_document("d", "v1", chunks("d", "v1", ["one"]))
    stub.fail_items(old, 500, "internal_error", "boom")
    with pytest.raises(VectorStoreError, match="could not remove 1 stale chunks"):
        h.store.upsert_document("d", "v2", chunks("d", "v2", ["uno"]), previous_chunk_ids=old)


def test_serverless_hybrid_is_fused_client_side(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless")
    _corpus(h)
    stub.requests.clear()
    hits = h.store.search(SearchQuery("sunny weather", unit(3), SearchMode.HYBRID, 3,
                                      {"lang": "en"}))
    (request,) = stub.requests
    assert request.path == "/rag-chunks/_msearch"
    header1, keyword, header2, vector = request.ndjson()
    assert header1 == header2 == {}
    assert keyword["query"]["bool"]["filter"] == [
        {"terms": {"metadata_terms": ['["lang","en"]']}}]
    assert vector["query"]["knn"]["embedding"]["k"] == 20
    assert hits[0].chunk.text == "weather in seoul is sunny"
    assert {x.chunk.metadata["lang"] for x in hits} == {"en"}
    assert json.dumps(hits[0].score)  # a plain float


def test_concurrent_requests_reuse_pooled_connections(
    stub: OpenSearchStub, caplog: pytest.LogCaptureFixture,
) -> None:
    h = Harness(stub)
    h.store.upsert_document("d", "v1", chunks("d", "v1", ["pooled connections"]))
    query = SearchQuery("pooled", None, SearchMode.KEYWORD)
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), \
            ThreadPoolExecutor(6) as pool:
        found = list(pool.map(lambda _: h.store.search(query), range(60)))
    assert all(len(hits) == 1 for hits in found)
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
