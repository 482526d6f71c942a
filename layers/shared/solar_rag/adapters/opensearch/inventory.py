"""What the index holds per document and version (``StoreInventory``, for `rag doctor`).

A ``composite`` aggregation on the ``document_id`` and ``version`` keyword fields, paged with
``after_key``: every (document, version) pair with its chunk count, whatever the index size,
without reading the chunks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from solar_rag.adapters.opensearch.bulk import BulkAction, failure_summary
from solar_rag.adapters.opensearch.client import translated
from solar_rag.errors import VectorStoreError

if TYPE_CHECKING:
    from solar_rag.adapters.opensearch.store import OpenSearchVectorStore

PAGE = 1000
"""Buckets per composite-aggregation page."""
MAX_PAGES = 100_000
"""Bounds the loop should a cluster keep answering an ``after_key`` (10^8 pairs)."""
DELETE_PAGE = 1000


def document_versions(store: OpenSearchVectorStore,
                      document_id: str | None = None) -> dict[str, dict[str, int]]:
    if store.capabilities.refresh:
        with translated(index=store.index, action="refresh"):
            store.client.indices.refresh(index=store.index)
    query: dict[str, Any] = ({"term": {"document_id": document_id}} if document_id is not None
                             else {"match_all": {}})
    found: dict[str, dict[str, int]] = {}
    after: dict[str, Any] | None = None
    for _ in range(MAX_PAGES):
        composite: dict[str, Any] = {
            "size": PAGE,
            "sources": [{"document_id": {"terms": {"field": "document_id"}}},
                        {"version": {"terms": {"field": "version"}}}],
        }
        if after is not None:
            composite["after"] = after
        body = {"size": 0, "query": query, "aggs": {"pairs": {"composite": composite}}}
        with translated(index=store.index, action="inventory"):
            response = store.client.search(index=store.index, body=body)
        pairs = (response.get("aggregations") or {}).get("pairs") or {}
        buckets = pairs.get("buckets") or []
        for bucket in buckets:
            key = bucket["key"]
            found.setdefault(str(key["document_id"]), {})[str(key["version"])] = int(
                bucket["doc_count"])
        after = pairs.get("after_key")
        if not buckets or after is None:
            return found
    raise VectorStoreError("OpenSearch inventory did not end")


def remove_versions(store: OpenSearchVectorStore, document_id: str, *, keep: str | None) -> int:
    query: dict[str, Any] = {"bool": {"filter": [{"term": {"document_id": document_id}}]}}
    if keep is not None:
        query["bool"]["must_not"] = [{"term": {"version": keep}}]
    if store.capabilities.delete_by_query:
        with translated(index=store.index, action="version removal"):
            store.client.indices.refresh(index=store.index)
            response = store.client.delete_by_query(index=store.index, body={"query": query},
                                                    refresh=True, conflicts="proceed")
        failures = response.get("failures") or []
        if failures:
            raise VectorStoreError(f"OpenSearch version removal reported {len(failures)} failures")
        return int(response.get("deleted", 0))
    # Serverless: no _delete_by_query; delete what search sees, page by page.
    removed = 0
    seen: set[str] = set()  # search lags deletes on Serverless: never delete an id twice
    for _ in range(MAX_PAGES):
        with translated(index=store.index, action="version lookup"):
            response = store.client.search(index=store.index, body={
                "size": DELETE_PAGE, "_source": False, "query": query})
        ids = [str(hit["_id"]) for hit in response.get("hits", {}).get("hits", [])
               if str(hit["_id"]) not in seen]
        if not ids:
            return removed
        seen.update(ids)
        with translated(index=store.index, action="version removal"):
            results = store._writer.run([BulkAction.delete(i) for i in ids])
        failed = [r for r in results if not r.ok]
        if failed:
            raise VectorStoreError(f"could not remove {len(failed)} chunks of {document_id!r}: "
                                   f"{failure_summary(failed)}")
        removed += len(ids)
    raise VectorStoreError("OpenSearch version removal did not end")
