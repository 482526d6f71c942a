"""``upsert_documents`` on the OpenSearch adapter: one bulk and one stale sweep per call."""

from __future__ import annotations

import pytest
from solar_rag.adapters.opensearch import BulkLimits
from solar_rag.adapters.opensearch.store import STALE_DOCUMENTS_PER_QUERY
from solar_rag.domain import DocumentWrite, chunk_id_for
from solar_rag.errors import InvalidInput, NotConfigured, VectorStoreError

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.opensearch_harness import (
    ALIAS,
    Harness,
    chunks,
    no_wait,
    paths,
)

pytest_plugins = ("tests.integration.opensearch_harness",)  # its fixtures


def older(document_id: str, version: str) -> dict[str, object]:
    return {"bool": {"filter": [{"term": {"document_id": document_id}}],
                     "must_not": [{"term": {"version": version}}]}}


def test_domain_batch_is_one_bulk_one_refresh_one_sweep(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    h.store.upsert_document("a", "v1", chunks("a", "v1", ["one", "two"]))
    h.store.upsert_document("b", "v1", chunks("b", "v1", ["three"]))
    stub.requests.clear()
    results = h.store.upsert_documents([
        DocumentWrite("a", "v2", chunks("a", "v2", ["uno"])),
        DocumentWrite("b", "v2", chunks("b", "v2", ["tres", "cuatro"])),
        DocumentWrite("c", "v1", chunks("c", "v1", ["new"])),
    ])
    assert [(r.document_id, r.stored_ids, r.error) for r in results] == [
        ("a", [chunk_id_for("a", "v2", 0)], None),
        ("b", [chunk_id_for("b", "v2", 0), chunk_id_for("b", "v2", 1)], None),
        ("c", [chunk_id_for("c", "v1", 0)], None),
    ]
    assert paths(stub) == ["POST /rag-chunks/_bulk", "POST /rag-chunks/_refresh",
                           "POST /rag-chunks/_delete_by_query"]
    bulk, _, sweep = stub.requests
    assert len(bulk.ndjson()) == 8
    assert sweep.json() == {"query": {"bool": {
        "should": [older("a", "v2"), older("b", "v2"), older("c", "v1")],
        "minimum_should_match": 1,
    }}}
    assert sweep.query.get("refresh") == "true"
    assert sorted(stub.documents(ALIAS)) == sorted(i for r in results for i in r.stored_ids)


def test_a_rejected_document_keeps_its_old_version_and_the_others_are_written(
    stub: OpenSearchStub,
) -> None:
    h = Harness(stub)
    old_a = h.store.upsert_document("a", "v1", chunks("a", "v1", ["one"]))
    old_b = h.store.upsert_document("b", "v1", chunks("b", "v1", ["two"]))
    new_a = chunks("a", "v2", ["uno", "dos"])
    stub.fail_items([new_a[1].chunk.chunk_id], 400, "mapper_parsing_exception", "bad field")
    stub.requests.clear()
    result_a, result_b = h.store.upsert_documents([
        DocumentWrite("a", "v2", new_a, old_a),
        DocumentWrite("b", "v2", chunks("b", "v2", ["zwei"]), old_b),
    ])
    assert isinstance(result_a.error, VectorStoreError)
    assert "1 of 2 chunks of document 'a' were not written" in result_a.error.message
    assert result_a.stored_ids == []
    assert result_b.error is None
    (sweep,) = stub.find("POST", ".*_delete_by_query")
    assert sweep.json() == {"query": older("b", "v2")}  # the rejected document is not swept
    docs = stub.documents(ALIAS)
    assert set(old_a) <= set(docs)
    assert chunk_id_for("a", "v2", 0) in docs  # a retry overwrites it (same id), then sweeps
    assert old_b[0] not in docs


def test_invalid_chunks_fail_their_document_only(stub: OpenSearchStub) -> None:
    h = Harness(stub, limits=BulkLimits(max_bytes=1024, backoff=no_wait()))
    wrong = chunks("a", "v1", ["x" * 2000])
    results = h.store.upsert_documents([
        DocumentWrite("a", "v1", wrong),
        DocumentWrite("b", "v1", chunks("b", "v1", ["fine"])),
    ])
    assert isinstance(results[0].error, InvalidInput)
    assert "above the bulk request limit" in results[0].error.message
    assert results[1].error is None
    assert list(stub.documents(ALIAS)) == [chunk_id_for("b", "v1", 0)]


def test_duplicate_documents_in_one_call_are_refused(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    with pytest.raises(InvalidInput, match="appears twice"):
        h.store.upsert_documents([
            DocumentWrite("a", "v1", chunks("a", "v1", ["x"])),
            DocumentWrite("a", "v2", chunks("a", "v2", ["y"])),
        ])
    assert stub.requests == []


def test_empty_batch_sends_nothing(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    assert h.store.upsert_documents([]) == []
    assert stub.requests == []


def test_large_batches_split_the_sweep(stub: OpenSearchStub) -> None:
    h = Harness(stub)
    count = STALE_DOCUMENTS_PER_QUERY + 3
    writes = [DocumentWrite(f"d{i}", "v1", chunks(f"d{i}", "v1", ["t"])) for i in range(count)]
    assert all(r.error is None for r in h.store.upsert_documents(writes))
    sweeps = stub.find("POST", ".*_delete_by_query")
    assert [len(s.json()["query"]["bool"]["should"]) for s in sweeps] == [
        STALE_DOCUMENTS_PER_QUERY, 3]
    assert len(stub.find("POST", ".*_refresh")) == 1


def test_sweep_failure_is_reported_for_every_document_of_the_query(
    stub: OpenSearchStub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(stub)
    answer = {  # a _delete_by_query response with per-document failures (200, not an error)
        "took": 1, "timed_out": False, "total": 1, "deleted": 0, "batches": 1,
        "version_conflicts": 0, "noops": 0, "retries": {"bulk": 0, "search": 0},
        "failures": [{"index": "rag-chunks-v1", "id": "x", "status": 500,
                      "cause": {"type": "exception", "reason": "shard failed"}}],
    }
    monkeypatch.setattr(h.client, "delete_by_query", lambda **_: answer)
    results = h.store.upsert_documents([
        DocumentWrite("a", "v1", chunks("a", "v1", ["x"])),
        DocumentWrite("b", "v1", chunks("b", "v1", ["y"])),
    ])
    assert all(isinstance(r.error, VectorStoreError) for r in results)
    assert all("shard failed" in (r.error.message if r.error else "") for r in results)


def test_missing_alias_fails_the_whole_call(stub: OpenSearchStub) -> None:
    h = Harness(stub, init=False)
    with pytest.raises(NotConfigured, match="does not exist"):
        h.store.upsert_documents([DocumentWrite("a", "v1", chunks("a", "v1", ["x"]))])


def test_nextgen_batch_sweeps_with_one_msearch_and_one_bulk_delete(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless")
    old_a = h.store.upsert_document("a", "v1", chunks("a", "v1", ["one", "two"]))
    old_b = h.store.upsert_document("b", "v1", chunks("b", "v1", ["three"]))
    stub.requests.clear()
    results = h.store.upsert_documents([
        DocumentWrite("a", "v2", chunks("a", "v2", ["uno"]), old_a),
        DocumentWrite("b", "v2", chunks("b", "v2", ["tres"]), old_b),
    ])
    assert all(r.error is None for r in results)
    assert paths(stub) == ["POST /rag-chunks/_bulk", "POST /rag-chunks/_msearch",
                           "POST /rag-chunks/_bulk"]
    header_a, search_a, header_b, search_b = stub.requests[1].ndjson()
    assert header_a == header_b == {}
    assert search_a["query"]["bool"]["must_not"] == [
        {"ids": {"values": results[0].stored_ids}}]
    assert search_b["query"]["bool"]["filter"] == [{"term": {"document_id": "b"}}]
    assert stub.requests[2].ndjson() == [{"delete": {"_id": i}} for i in [*old_a, *old_b]]
    assert sorted(stub.documents(ALIAS)) == sorted(i for r in results for i in r.stored_ids)


def test_nextgen_sweep_failure_is_attributed_to_its_document(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless")
    old_a = h.store.upsert_document("a", "v1", chunks("a", "v1", ["one"]))
    old_b = h.store.upsert_document("b", "v1", chunks("b", "v1", ["two"]))
    stub.fail_items(old_a, 500, "internal_error", "boom")
    result_a, result_b = h.store.upsert_documents([
        DocumentWrite("a", "v2", chunks("a", "v2", ["uno"]), old_a),
        DocumentWrite("b", "v2", chunks("b", "v2", ["dos"]), old_b),
    ])
    assert isinstance(result_a.error, VectorStoreError)
    assert "could not remove 1 stale chunks of document 'a'" in result_a.error.message
    assert result_b.error is None
    assert old_b[0] not in stub.documents(ALIAS)


def test_classic_batch_rolls_back_only_the_rejected_document(stub: OpenSearchStub) -> None:
    h = Harness(stub, "serverless-classic")
    new_a = chunks("a", "v1", ["uno", "dos"])
    stub.fail_items([new_a[1].chunk.chunk_id], 400, "mapper_parsing_exception", "bad")
    result_a, result_b = h.store.upsert_documents([
        DocumentWrite("a", "v1", new_a),
        DocumentWrite("b", "v1", chunks("b", "v1", ["fine"])),
    ])
    assert result_a.error is not None and result_b.error is None
    assert list(stub.documents(ALIAS)) == result_b.stored_ids
