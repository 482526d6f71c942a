"""The chunk index: physical name, create body, and the check of an existing mapping.

Metadata filtering: ``metadata`` is kept verbatim in ``_source`` (``enabled: false``: stored,
not indexed) and every ``key: value`` pair is also indexed as one exact term in the keyword
array ``metadata_terms`` (``["key", value]`` as compact JSON, see ``queries.metadata_term``).
Why not map ``metadata.*`` (dynamic templates or explicit fields): metadata is user data, so
the same key arrives as a number in one document and a boolean or string in another, which a
dynamic mapping answers by rejecting whole documents (``mapper_parsing_exception``); every
new key would grow the mapping towards ``index.mapping.total_fields.limit``; and a ``term``
filter of the wrong type fails the whole search (400). ``flat_object`` is not filterable with
``term`` on every version. One keyword field has none of these problems, and its exact terms
give the reference semantics of ``domain.matches_filters`` (case-sensitive strings, ``1 ==
1.0``, booleans never equal numbers, a list means any-of).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from solar_rag.adapters.opensearch.capabilities import Capabilities
from solar_rag.errors import NotConfigured

SCHEMA_VERSION = 1
VECTOR_FIELD = "embedding"
SPACE_TYPE = "innerproduct"
ENGINE = "faiss"
TEXT_ANALYZER = "cjk"
"""Built into OpenSearch (standard tokenizer + CJK bigrams), no plugin: works on AOSS too."""
METADATA_TERM_MAX = 4096
"""Longer ``["key", value]`` terms are stored but not indexed (so not filterable)."""
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
EF_SEARCH = 100
"""Faiss HNSW's own default; ``OPENSEARCH_EF_SEARCH`` overrides it."""
DEFAULT_COMPRESSION = "1x"
SPACE_META = "solar_rag_space"
"""``_meta`` key of the embedding space the index was built in (``embedding_space``)."""
PREVIOUS_META = "solar_rag_previous"
"""``_meta`` key naming the index ``rag reindex`` replaced with this one (rollback target)."""
ADDED_FIELDS: dict[str, dict[str, str]] = {"page": {"type": "integer"},
                                            "page_end": {"type": "integer"}}
"""Fields added after schema 1 shipped (page-level citations): ``rag opensearch init`` adds
them to an existing index (``bootstrap.add_missing_fields``)."""
FILTER_ENGINES = frozenset({"faiss", "lucene"})
"""Engines that run a ``filter`` inside ``knn`` (every filtered search of this adapter)."""


@dataclass(frozen=True, slots=True)
class VectorConfig:
    """What the configuration asks of the vector field."""

    dimensions: int
    ef_search: int = EF_SEARCH
    compression: str = DEFAULT_COMPRESSION


@dataclass(frozen=True, slots=True)
class ResolvedVectorField:
    """What the server reports for the vector field of one index."""

    engine: str | None
    """None when the mapping does not say (the server picked it): probe before trusting it."""
    space_type: str | None
    compression: str


def physical_index_name(alias: str, version: int = SCHEMA_VERSION) -> str:
    return f"{alias}-v{version}"


def vector_field_mapping(
    dimensions: int,
    capabilities: Capabilities,
    *,
    ef_search: int = EF_SEARCH,
    compression: str = DEFAULT_COMPRESSION,
    explicit_engine: bool = True,
) -> dict[str, Any]:
    """``explicit_engine=False`` is the body retried when the server refused the engine."""
    method: dict[str, Any] = {"name": "hnsw", "space_type": SPACE_TYPE}
    if capabilities.engine_configurable and explicit_engine:
        method["engine"] = ENGINE
        # Faiss reads ef_search from here (the index setting knn.algo_param.ef_search only
        # feeds nmslib): https://docs.opensearch.org/latest/mappings/supported-field-types/knn-methods-engines/
        method["parameters"] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                                "ef_search": ef_search}
    field: dict[str, Any] = {"type": "knn_vector", "dimension": dimensions, "method": method}
    if capabilities.state_compression or compression != DEFAULT_COMPRESSION:
        field["compression_level"] = compression
    return field


class VectorFieldOptions(TypedDict, total=False):
    """The keyword options of :func:`vector_field_mapping`, passed through unchanged by the
    functions that build on it (their defaults live there alone)."""

    ef_search: int
    compression: str
    explicit_engine: bool


def index_mappings(
    dimensions: int,
    capabilities: Capabilities,
    *,
    meta: Mapping[str, Any] | None = None,
    **vector: Unpack[VectorFieldOptions],
) -> dict[str, Any]:
    text = {"type": "text", "analyzer": TEXT_ANALYZER}
    return {
        "dynamic": "strict",
        "date_detection": False,
        "numeric_detection": False,
        "_meta": {"solar_rag_schema": SCHEMA_VERSION, **(meta or {})},
        "properties": {
            VECTOR_FIELD: vector_field_mapping(dimensions, capabilities, **vector),
            "text": dict(text),
            "title": dict(text),
            "section": dict(text),
            "document_id": {"type": "keyword"},
            "chunk_id": {"type": "keyword"},
            "version": {"type": "keyword"},
            "source": {"type": "keyword"},
            "chunk_index": {"type": "integer"},
            "start": {"type": "integer"},
            "end": {"type": "integer"},
            **{name: dict(spec) for name, spec in ADDED_FIELDS.items()},
            "metadata": {"type": "object", "enabled": False},
            "metadata_terms": {"type": "keyword", "ignore_above": METADATA_TERM_MAX},
        },
    }


def index_settings(capabilities: Capabilities) -> dict[str, Any]:
    # No knn.algo_param.ef_search: it only feeds nmslib; Faiss takes ef_search from the
    # mapping (method.parameters) or from the query (method_parameters, 2.16+).
    index: dict[str, Any] = {"knn": True}
    if capabilities.index_settings:
        # One shard is right for a RAG corpus of this size; replicas follow the node count
        # (0 on a single dev node, 1 as soon as there is a second node).
        index["number_of_shards"] = 1
        index["auto_expand_replicas"] = "0-1"
    return {"index": index}


def create_index_body(
    alias: str,
    dimensions: int,
    capabilities: Capabilities,
    *,
    meta: Mapping[str, Any] | None = None,
    **vector: Unpack[VectorFieldOptions],
) -> dict[str, Any]:
    """``alias`` empty: an index created without one (``rag reindex`` builds it beside the
    live index and swaps the alias later)."""
    body = {
        "settings": index_settings(capabilities),
        "mappings": index_mappings(dimensions, capabilities, meta=meta, **vector),
    }
    if alias:
        body["aliases"] = {alias: {}}
    return body


def check_existing_mapping(
    index: str,
    mappings: Mapping[str, Any],
    dimensions: int,
    *,
    capabilities: Capabilities | None = None,
    compression: str | None = None,
) -> ResolvedVectorField:
    """Refuse an index whose vector field cannot serve this configuration's searches.

    Dimension, space and engine always; the compression level when ``compression`` is given
    (a level the mapping does not state is the target's documented default). Returns what
    was found; ``engine`` is None when the mapping leaves it to the server.
    """
    properties = mappings.get("properties") or {}
    field = properties.get(VECTOR_FIELD)
    hint = (
        f"create a new index version for it (or point OPENSEARCH_INDEX at another alias) "
        f"and re-index; the existing index {index!r} cannot be changed in place"
    )
    if not isinstance(field, Mapping) or field.get("type") != "knn_vector":
        raise NotConfigured(
            f"OpenSearch index {index!r} has no knn_vector field {VECTOR_FIELD!r}: it was not "
            f"created by `rag opensearch init`; {hint}"
        )
    existing_dim = field.get("dimension")
    if existing_dim != dimensions:
        raise NotConfigured(
            f"OpenSearch index {index!r} stores {existing_dim}-dimensional vectors but "
            f"EMBEDDING_DIMENSIONS is {dimensions}: {hint}"
        )
    method = field.get("method") or {}
    space = field.get("space_type") or method.get("space_type")
    if space != SPACE_TYPE:
        raise NotConfigured(
            f"OpenSearch index {index!r} uses space_type {space!r}, expected {SPACE_TYPE!r} "
            f"(scores are converted to cosine from inner products): {hint}"
        )
    engine = method.get("engine")
    if engine is not None and engine not in FILTER_ENGINES:
        raise NotConfigured(engine_refusal(index, str(engine), capabilities))
    resolved = resolved_compression(field, capabilities)
    if compression is not None and resolved != compression:
        raise NotConfigured(
            f"OpenSearch index {index!r} stores its vectors at compression_level {resolved} "
            f"but OPENSEARCH_COMPRESSION_LEVEL is {compression}"
            + (" (the server did not honour the level sent at creation, or the index "
               "predates it)" if capabilities is not None and capabilities.state_compression
               else "")
            + f": set OPENSEARCH_COMPRESSION_LEVEL={resolved} to accept it, or {hint}"
        )
    return ResolvedVectorField(
        engine=None if engine is None else str(engine), space_type=str(space),
        compression=resolved,
    )


def resolved_compression(field: Mapping[str, Any], capabilities: Capabilities | None) -> str:
    """The level the mapping states; ``on_disk`` without one means 32x (knn-memory-optimized
    docs); otherwise the target's default (AWS: 32x on NextGen; OpenSearch: 1x)."""
    level = field.get("compression_level")
    if level:
        return str(level)
    if field.get("mode") == "on_disk":
        return "32x"
    return capabilities.default_compression if capabilities is not None else DEFAULT_COMPRESSION


def engine_refusal(index: str, engine: str, capabilities: Capabilities | None) -> str:
    """Why an index on ``engine`` is refused, and what to do about it."""
    message = (
        f"OpenSearch index {index!r} resolved its vector field to the {engine} engine, which "
        f"cannot run the filtered k-NN queries this service sends (a filter inside `knn` "
        f"needs faiss or lucene; nmslib is also refused for new indexes from OpenSearch 3.0)"
    )
    if capabilities is not None and capabilities.engine_fallback:
        return message + (
            ": this collection refused an explicit `method.engine: faiss` and picked the "
            "engine itself. Delete the index and create it again with a compression level "
            "only Faiss serves (OPENSEARCH_COMPRESSION_LEVEL=2x, 8x or 16x), or use a "
            "collection that accepts the engine; see docs/opensearch.md"
        )
    return message + (
        ": create a new index version with `rag opensearch init` against an empty alias "
        "(OPENSEARCH_INDEX) and re-index; the existing index cannot be changed in place"
    )
