"""Index lifecycle: versioned index behind an alias, hybrid search pipeline (idempotent).

``init_opensearch`` backs ``rag opensearch init`` and the deploy-time custom resource.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from solar_rag.adapters.opensearch.capabilities import Capabilities, capabilities_for
from solar_rag.adapters.opensearch.client import (
    build_client,
    error_reason,
    error_type,
    translated,
)
from solar_rag.adapters.opensearch.mapping import (
    check_existing_mapping,
    create_index_body,
    physical_index_name,
)
from solar_rag.adapters.opensearch.queries import (
    hybrid_pipeline_body,
    normalization_pipeline_body,
)

if TYPE_CHECKING:
    from solar_rag.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexState:
    alias: str
    indices: tuple[str, ...]
    """The concrete index (or indices) the alias resolves to."""
    created: bool
    alias_created: bool


def pipeline_name(alias: str) -> str:
    return f"{alias}-hybrid"


def ensure_index(
    client: OpenSearch, alias: str, dimensions: int, capabilities: Capabilities
) -> IndexState:
    """Create ``<alias>-v1`` with the alias unless the alias resolves; check the mapping.

    Raises ``NotConfigured`` when an existing index cannot hold this configuration's vectors
    (dimension, space or engine differ): mappings are immutable, silently mixing would
    corrupt rankings.
    """
    with translated(index=alias, action="index check"):
        existing = index_mappings_by_name(client, alias)
    if existing is not None:
        for name, mappings in existing.items():
            check_existing_mapping(name, mappings, dimensions)
        return IndexState(alias, tuple(sorted(existing)), created=False, alias_created=False)

    physical = physical_index_name(alias)
    created = True
    with translated(index=physical, action="index creation"):
        try:
            client.indices.create(
                index=physical, body=create_index_body(alias, dimensions, capabilities)
            )
        except TransportError as exc:
            if error_type(exc) != "resource_already_exists_exception":
                raise
            created = False
    alias_created = created
    with translated(index=physical, action="index check"):
        if not created:
            # The physical index predates us (or a concurrent init won the race): make sure
            # the alias points at it. Adding an existing alias is a no-op.
            client.indices.put_alias(index=physical, name=alias)
            alias_created = True
        found = index_mappings_by_name(client, physical) or {}
    for name, mappings in found.items():
        check_existing_mapping(name, mappings, dimensions)
    return IndexState(alias, (physical,), created=created, alias_created=alias_created)


def ensure_search_pipeline(client: OpenSearch, name: str) -> str:
    """Create or fix the hybrid pipeline; returns what happened.

    RRF (``score-ranker-processor``) where the cluster has it (2.19+), else the
    ``normalization-processor`` (2.10+). An existing pipeline of either kind is kept.
    """
    preferred, fallback = hybrid_pipeline_body(), normalization_pipeline_body()
    with translated(index=name, action="search pipeline check"):
        try:
            current = client.search_pipeline.get(id=name).get(name)
        except NotFoundError:
            current = None
        if current is not None and (
            _same_pipeline(current, preferred) or _same_pipeline(current, fallback)
        ):
            return "unchanged"
        verb = "created" if current is None else "updated"
        try:
            client.search_pipeline.put(id=name, body=preferred)
        except RequestError as exc:
            log.warning("RRF search pipeline refused (%s): using normalization-processor",
                        error_reason(exc))
            client.search_pipeline.put(id=name, body=fallback)
            return f"{verb} (normalization-processor: this cluster has no score-ranker-processor)"
    return f"{verb} (score-ranker-processor, rrf)"


def init_opensearch(settings: Settings, client: OpenSearch | None = None) -> dict[str, object]:
    """Create index, alias and (where supported) the hybrid pipeline; report what was done."""
    capabilities = capabilities_for(settings.opensearch_target)
    if client is None:
        client = build_client(settings)
    alias = settings.opensearch_index
    state = ensure_index(client, alias, settings.embedding_dimensions, capabilities)
    report: dict[str, object] = {
        "target": capabilities.target,
        "alias": alias,
        "indices": list(state.indices),
        "index_created": state.created,
        "alias_created": state.alias_created,
        "dimensions": settings.embedding_dimensions,
        "space_type": "innerproduct",
    }
    if capabilities.search_pipeline:
        name = pipeline_name(alias)
        report["pipeline"] = name
        report["pipeline_status"] = ensure_search_pipeline(client, name)
    else:
        report["pipeline"] = None
        report["pipeline_status"] = "not used: hybrid results are fused client-side (RRF)"
    return report


def index_mappings_by_name(client: OpenSearch, name: str) -> dict[str, Mapping[str, Any]] | None:
    """Concrete index name -> mappings, or None when nothing answers to ``name``."""
    try:
        response = client.indices.get_mapping(index=name)
    except NotFoundError as exc:
        if error_type(exc) in ("index_not_found_exception", ""):
            return None
        raise
    return {index: body.get("mappings", {}) for index, body in response.items()}


def _same_pipeline(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return all(current.get(key) == value for key, value in wanted.items())
