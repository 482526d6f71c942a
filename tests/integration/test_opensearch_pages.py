"""Pages beside chunks in OpenSearch: written, read back, and added to the strict mapping of an
index created before they existed (every request judged against the OpenSearch spec)."""

from __future__ import annotations

from dataclasses import replace

from solar_rag.adapters.opensearch import build_client, capabilities_for, init_opensearch
from solar_rag.adapters.opensearch.mapping import create_index_body
from solar_rag.domain import DocumentWrite, EmbeddedChunk, SearchMode, SearchQuery

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.opensearch_harness import ALIAS, DIMS, Harness, chunks, settings_for, unit

pytest_plugins = ("tests.integration.opensearch_harness",)


def paged(items: list[EmbeddedChunk]) -> list[EmbeddedChunk]:
    return [EmbeddedChunk(replace(e.chunk, page=i + 1, page_end=i + 2 if i == 1 else None),
                          e.vector) for i, e in enumerate(items)]


def test_pages_round_trip(stub: OpenSearchStub) -> None:
    harness = Harness(stub)
    written = paged(chunks("report.pdf", "v1", ["alpha revenue", "beta table", "gamma outlook"]))
    plain = chunks("notes.md", "v1", ["delta notes"])
    harness.store.upsert_documents([DocumentWrite("report.pdf", "v1", written),
                                    DocumentWrite("notes.md", "v1", plain)])
    hits = harness.store.search(SearchQuery("beta table", unit(0), SearchMode.KEYWORD, top_k=5))
    found = {h.chunk.text: (h.chunk.page, h.chunk.page_end) for h in hits}
    assert found["beta table"] == (2, 3)
    by_vector = harness.store.search(SearchQuery("x", unit(0), SearchMode.VECTOR, top_k=10))
    pages = {h.chunk.text: (h.chunk.page, h.chunk.page_end) for h in by_vector}
    assert pages["alpha revenue"] == (1, None) and pages["delta notes"] == (None, None)
    (bulk,) = stub.find("POST", r".*_bulk")
    assert b'"page":2,"page_end":3' in bulk.body
    assert bulk.body.count(b'"page"') == 3  # nothing for the chunk without pages


def test_init_adds_the_page_fields_to_an_older_index(stub: OpenSearchStub) -> None:
    harness = Harness(stub, init=False)
    settings = settings_for(stub)
    client = build_client(settings)
    old = create_index_body(ALIAS, DIMS, capabilities_for("domain"))
    for name in ("page", "page_end"):
        del old["mappings"]["properties"][name]
    client.indices.create(index="rag-chunks-v1", body=old)
    (refused,) = harness.store.upsert_documents([DocumentWrite(
        "report.pdf", "v1", paged(chunks("report.pdf", "v1", ["alpha"])))])
    assert refused.error is not None and "strict" in refused.error.message
    init_opensearch(settings, client)
    (update,) = stub.find("PUT", "/rag-chunks-v1/_mapping")
    assert update.json() == {"properties": {"page": {"type": "integer"},
                                            "page_end": {"type": "integer"}}}
    results = harness.store.upsert_documents([DocumentWrite(
        "report.pdf", "v1", paged(chunks("report.pdf", "v1", ["alpha"])))])
    assert results[0].error is None
    stub.requests.clear()
    init_opensearch(settings, client)
    assert stub.find("PUT", "/rag-chunks-v1/_mapping") == []  # once only
