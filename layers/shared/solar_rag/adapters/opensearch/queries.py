"""Search request bodies and the mapping of hits back to domain objects (pure functions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from solar_rag.adapters.opensearch.mapping import VECTOR_FIELD
from solar_rag.domain import Chunk, Filters, Metadata, MetadataValue, SearchHit
from solar_rag.retrieval.fusion import RRF_K

KEYWORD_FIELDS = ("text", "title", "section")
HYBRID_WEIGHTS = (0.5, 0.5)
"""Keyword, vector, for the ``normalization-processor`` fallback (OpenSearch < 2.19). Equal,
the processor's own default: with min-max normalisation a chunk found only by BM25 (a rare
term, a name, an id) scores ``w_keyword * 1``, so a lower keyword weight would rank it under
every vector-only hit."""
SOURCE_EXCLUDES = {"excludes": [VECTOR_FIELD]}


def metadata_term(key: str, value: MetadataValue) -> str:
    """The exact term indexed in ``metadata_terms`` for one metadata pair.

    Integral floats are written as integers so ``1`` and ``1.0`` meet; JSON keeps ``true``
    apart from ``1`` and strings apart from numbers.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps([key, value], ensure_ascii=False, separators=(",", ":"))


def metadata_terms(metadata: Mapping[str, MetadataValue]) -> list[str]:
    return sorted(metadata_term(key, value) for key, value in metadata.items())


def filter_clauses(filters: Filters) -> list[dict[str, Any]]:
    """One ``terms`` clause per key (a list means any-of; an empty list matches nothing).

    ``document_id`` filters the document id, every other key the metadata.
    """
    clauses: list[dict[str, Any]] = []
    for key in sorted(filters):
        wanted = filters[key]
        values = wanted if isinstance(wanted, list) else [wanted]
        if key == "document_id":
            clauses.append({"terms": {"document_id": [v for v in values if isinstance(v, str)]}})
        else:
            terms = list(dict.fromkeys(metadata_term(key, v) for v in values))
            clauses.append({"terms": {"metadata_terms": terms}})
    return clauses


def knn_clause(
    vector: Sequence[float], k: int, filters: Filters, *, ef_search: int | None = None
) -> dict[str, Any]:
    """Efficient (in-graph) filtering: the filter sits inside the knn clause.

    ``ef_search``: sent as ``method_parameters`` (OpenSearch 2.16+), where Faiss reads it per
    query, overriding the mapping's value.
    """
    inner: dict[str, Any] = {"vector": list(vector), "k": k}
    clauses = filter_clauses(filters)
    if clauses:
        inner["filter"] = {"bool": {"filter": clauses}}
    if ef_search is not None:
        inner["method_parameters"] = {"ef_search": ef_search}
    return {"knn": {VECTOR_FIELD: inner}}


def keyword_clause(text: str, filters: Filters) -> dict[str, Any]:
    boolean: dict[str, Any] = {
        "must": [{"multi_match": {"query": text, "fields": list(KEYWORD_FIELDS)}}]
    }
    clauses = filter_clauses(filters)
    if clauses:
        boolean["filter"] = clauses
    return {"bool": boolean}


def vector_search_body(
    vector: Sequence[float], size: int, filters: Filters, *, ef_search: int | None = None
) -> dict[str, Any]:
    return {"size": size, "_source": SOURCE_EXCLUDES,
            "query": knn_clause(vector, size, filters, ef_search=ef_search)}


def keyword_search_body(text: str, size: int, filters: Filters) -> dict[str, Any]:
    return {"size": size, "_source": SOURCE_EXCLUDES, "query": keyword_clause(text, filters)}


def hybrid_search_body(
    text: str, vector: Sequence[float], size: int, filters: Filters, *,
    ef_search: int | None = None,
) -> dict[str, Any]:
    """``hybrid`` must be the top-level query; each sub-query carries the filters itself."""
    return {
        "size": size,
        "_source": SOURCE_EXCLUDES,
        "query": {"hybrid": {"queries": [
            keyword_clause(text, filters),
            knn_clause(vector, size, filters, ef_search=ef_search),
        ]}},
    }


def hybrid_pipeline_body() -> dict[str, Any]:
    """Reciprocal rank fusion in the cluster (``score-ranker-processor``, OpenSearch 2.19+).

    Rank-based, like the client-side fusion used where no pipeline exists and like the local
    store, so hybrid scores mean the same everywhere. Min-max score normalisation was the
    first choice but ranks poorly on small candidate sets: the lowest hit of each sub-query
    is normalised to ~0, so a chunk that is second by BM25 and first by vector can lose to
    one that is first by BM25 and merely good by vector.
    """
    return {
        "description": "solar-rag hybrid search: reciprocal rank fusion of BM25 and k-NN",
        "phase_results_processors": [{"score-ranker-processor": {
            "combination": {"technique": "rrf", "rank_constant": RRF_K},
        }}],
    }


def normalization_pipeline_body() -> dict[str, Any]:
    """Fallback for domains older than 2.19 (no ``score-ranker-processor``)."""
    return {
        "description": "solar-rag hybrid search: min-max normalised BM25 + k-NN",
        "phase_results_processors": [{"normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {
                "technique": "arithmetic_mean",
                "parameters": {"weights": list(HYBRID_WEIGHTS)},
            },
        }}],
    }


def cosine_from_score(score: float) -> float:
    """Invert the faiss ``innerproduct`` score (``1 + ip`` if ip >= 0, else ``1 / (1 - ip)``)."""
    if score >= 1.0:
        return score - 1.0
    if score <= 0.0:
        return -1.0
    return 1.0 - 1.0 / score


def chunk_from_source(source: Mapping[str, Any]) -> Chunk:
    metadata: Metadata = dict(source.get("metadata") or {})
    return Chunk(
        document_id=str(source["document_id"]),
        chunk_id=str(source["chunk_id"]),
        index=int(source.get("chunk_index", 0)),
        text=str(source.get("text", "")),
        title=source.get("title"),
        section=source.get("section"),
        start=int(source.get("start", 0)),
        end=int(source.get("end", 0)),
        version=str(source.get("version", "")),
        source=source.get("source"),
        metadata=metadata,
        page=_page(source.get("page")),
        page_end=_page(source.get("page_end")),
    )


def _page(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def hits_from_response(response: Mapping[str, Any], *, vector_scores: bool) -> list[SearchHit]:
    hits: list[SearchHit] = []
    for hit in response.get("hits", {}).get("hits", []):
        raw = float(hit.get("_score") or 0.0)
        score = cosine_from_score(raw) if vector_scores else raw
        hits.append(SearchHit(chunk=chunk_from_source(hit["_source"]), score=score))
    return hits


def chunk_fields(chunk: Chunk) -> dict[str, Any]:
    """The ``_source`` of one chunk as written, without the vector."""
    return {
        "document_id": chunk.document_id,
        "chunk_id": chunk.chunk_id,
        "chunk_index": chunk.index,
        "version": chunk.version,
        "text": chunk.text,
        "title": chunk.title,
        "section": chunk.section,
        "start": chunk.start,
        "end": chunk.end,
        "source": chunk.source,
        "metadata": dict(chunk.metadata),
        "metadata_terms": metadata_terms(chunk.metadata),
        # Only when known: an index created before pages were tracked has no such field
        # (its strict mapping gets it added by ``rag opensearch init``).
        **({"page": chunk.page} if chunk.page is not None else {}),
        **({"page_end": chunk.page_end} if chunk.page_end is not None else {}),
    }


def chunk_document(chunk: Chunk, vector: Sequence[float]) -> dict[str, Any]:
    return {**chunk_fields(chunk), VECTOR_FIELD: list(vector)}


def vector_json(vector: Sequence[float]) -> str:
    """A JSON array with 9 significant digits per component.

    OpenSearch stores ``float`` vectors as 32-bit floats; 9 digits carry all of a float32's
    precision (the stored value is the same or one float32 ulp away), and formatting them is
    ~3x faster and ~40 % smaller than ``json.dumps``'s 17-digit shortest repr: the vector is
    most of every bulk line. Callers reject NaN and infinity first.
    """
    return "[" + ",".join(["%.9g" % x for x in vector]) + "]"  # noqa: UP031


def chunk_source_json(chunk: Chunk, vector: Sequence[float]) -> str:
    fields = json.dumps(chunk_fields(chunk), ensure_ascii=False, separators=(",", ":"))
    return f'{fields[:-1]},"{VECTOR_FIELD}":{vector_json(vector)}}}'
