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
from typing import Any

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


def physical_index_name(alias: str, version: int = SCHEMA_VERSION) -> str:
    return f"{alias}-v{version}"


def vector_field_mapping(dimensions: int, capabilities: Capabilities) -> dict[str, Any]:
    method: dict[str, Any] = {"name": "hnsw", "space_type": SPACE_TYPE}
    if capabilities.engine_configurable:
        method["engine"] = ENGINE
        method["parameters"] = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
    return {"type": "knn_vector", "dimension": dimensions, "method": method}


def index_mappings(dimensions: int, capabilities: Capabilities) -> dict[str, Any]:
    text = {"type": "text", "analyzer": TEXT_ANALYZER}
    return {
        "dynamic": "strict",
        "date_detection": False,
        "numeric_detection": False,
        "_meta": {"solar_rag_schema": SCHEMA_VERSION},
        "properties": {
            VECTOR_FIELD: vector_field_mapping(dimensions, capabilities),
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
            "metadata": {"type": "object", "enabled": False},
            "metadata_terms": {"type": "keyword", "ignore_above": METADATA_TERM_MAX},
        },
    }


def index_settings(capabilities: Capabilities) -> dict[str, Any]:
    index: dict[str, Any] = {"knn": True, "knn.algo_param.ef_search": EF_SEARCH}
    if capabilities.index_settings:
        # One shard is right for a RAG corpus of this size; replicas follow the node count
        # (0 on a single dev node, 1 as soon as there is a second node).
        index["number_of_shards"] = 1
        index["auto_expand_replicas"] = "0-1"
    return {"index": index}


def create_index_body(alias: str, dimensions: int, capabilities: Capabilities) -> dict[str, Any]:
    return {
        "settings": index_settings(capabilities),
        "mappings": index_mappings(dimensions, capabilities),
        "aliases": {alias: {}},
    }


def check_existing_mapping(
    index: str, mappings: Mapping[str, Any], dimensions: int
) -> None:
    """Refuse an index whose vector field cannot hold this configuration's vectors."""
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
    if engine == "nmslib":
        raise NotConfigured(
            f"OpenSearch index {index!r} uses the deprecated nmslib engine (no efficient "
            f"filtering, refused by OpenSearch 3.x): {hint}"
        )
