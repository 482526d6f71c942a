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
    translate,
    translated,
)
from solar_rag.adapters.opensearch.mapping import (
    ADDED_FIELDS,
    DEFAULT_COMPRESSION,
    ENGINE,
    VectorConfig,
    check_existing_mapping,
    create_index_body,
    engine_refusal,
    physical_index_name,
)
from solar_rag.adapters.opensearch.queries import (
    hybrid_pipeline_body,
    knn_clause,
    normalization_pipeline_body,
)
from solar_rag.adapters.opensearch.spaces import check_space, space_meta
from solar_rag.embedding_space import EmbeddingSpace
from solar_rag.errors import NotConfigured

if TYPE_CHECKING:
    from solar_rag.settings import Settings

log = logging.getLogger(__name__)

RRF_SINCE = (2, 19)
"""score-ranker-processor: https://docs.opensearch.org/latest/search-plugins/search-pipelines/score-ranker-processor/"""


@dataclass(frozen=True, slots=True)
class IndexState:
    alias: str
    indices: tuple[str, ...]
    """The concrete index (or indices) the alias resolves to."""
    created: bool
    alias_created: bool
    engine: str = ENGINE
    """The engine the server resolved (read back, or ``faiss (probed)``)."""
    compression: str = DEFAULT_COMPRESSION


PROBE_DOCUMENT_ID = "__solar_rag_engine_probe__"
NO_FILTER_MARKER = "does not support filters"  # compared lower-case
"""k-NN's refusal of a filter on an engine without efficient filtering
(``Engine [NMSLIB] does not support filters``)."""


def pipeline_name(alias: str) -> str:
    return f"{alias}-hybrid"


def ensure_index(
    client: OpenSearch,
    alias: str,
    dimensions: int,
    capabilities: Capabilities,
    *,
    config: VectorConfig | None = None,
    space: EmbeddingSpace | None = None,
) -> IndexState:
    """Create ``<alias>-v1`` with the alias unless the alias resolves; check what the server
    resolved.

    Raises ``NotConfigured`` when the index cannot serve this configuration's searches
    (dimension, space, engine or compression differ from what was asked): mappings are
    immutable, and silently mixing would corrupt rankings or fail every filtered search. An
    index this call created and then refused is deleted again, so a corrected
    configuration can simply run init once more.
    """
    config = config or VectorConfig(dimensions)
    with translated(index=alias, action="index check"):
        existing = index_mappings_by_name(client, alias)
    if existing is not None:
        resolved = [verify_index(client, name, mappings, config, capabilities)
                    for name, mappings in existing.items()]
        for name, mappings in existing.items():
            check_space(name, mappings, space)
            add_missing_fields(client, name, mappings)
        return IndexState(alias, tuple(sorted(existing)), created=False, alias_created=False,
                          engine=resolved[0][0], compression=resolved[0][1])

    physical = physical_index_name(alias)
    created = _create(client, alias, physical, config, capabilities,
                      meta=space_meta(space) if space else None)
    alias_created = created
    with translated(index=physical, action="index check"):
        if not created:
            # The physical index predates us (or a concurrent init won the race): make sure
            # the alias points at it. Adding an existing alias is a no-op.
            client.indices.put_alias(index=physical, name=alias)
            alias_created = True
        found = index_mappings_by_name(client, physical) or {}
    try:
        resolved = [verify_index(client, name, mappings, config, capabilities)
                    for name, mappings in found.items()]
        _check_settings(client, physical, capabilities)
    except NotConfigured as refusal:
        if not created:
            raise
        _delete_refused(client, physical)
        raise NotConfigured(f"{refusal.message} (the index {physical!r} this init had just "
                            f"created was deleted again)") from refusal
    engine, compression = resolved[0] if resolved else (ENGINE, config.compression)
    return IndexState(alias, (physical,), created=created, alias_created=alias_created,
                      engine=engine, compression=compression)


def _create(client: OpenSearch, alias: str, physical: str, config: VectorConfig,
            capabilities: Capabilities, *, meta: Mapping[str, Any] | None = None) -> bool:
    """Create the index: explicit Faiss first; where the target may refuse the engine,
    once more without it on a refusal that names the engine. False if it already existed."""
    explicit = True
    with translated(index=physical, action="index creation"):
        while True:
            body = create_index_body(
                alias, config.dimensions, capabilities, ef_search=config.ef_search,
                compression=config.compression, explicit_engine=explicit, meta=meta,
            )
            try:
                client.indices.create(index=physical, body=body)
            except TransportError as exc:
                if error_type(exc) == "resource_already_exists_exception":
                    return False
                if not (explicit and capabilities.engine_fallback and _refuses_engine(exc)):
                    raise
                log.warning("%s refused method.engine (%s): creating it without, then "
                            "checking which engine the server picked",
                            physical, error_reason(exc))
                explicit = False
            else:
                return True


def _refuses_engine(exc: TransportError) -> bool:
    """A 400 whose reason names the engine parameter (``engine is not supported ...``)."""
    return exc.status_code == 400 and "engine" in error_reason(exc).lower()


def verify_index(
    client: OpenSearch,
    name: str,
    mappings: Mapping[str, Any],
    config: VectorConfig,
    capabilities: Capabilities,
) -> tuple[str, str]:
    """Check the mapping the server reports; probe the engine when the mapping omits it.

    Returns (engine, compression level) as resolved.
    """
    field = check_existing_mapping(
        name, mappings, config.dimensions, capabilities=capabilities,
        compression=config.compression,
    )
    if field.engine is not None:
        return field.engine, field.compression
    probe_filter_support(client, name, config.dimensions, capabilities)
    return "faiss (probed)", field.compression


def probe_filter_support(
    client: OpenSearch, index: str, dimensions: int, capabilities: Capabilities
) -> None:
    """A filtered k-NN query matching nothing: refused by an engine without filters.

    The engine check runs when the query is built on each shard, whether or not the shard
    holds documents, so an empty index answers it too.
    """
    vector = [0.0] * dimensions
    vector[0] = 1.0
    body = {"size": 0, "query": knn_clause(vector, 1, {"document_id": PROBE_DOCUMENT_ID})}
    with translated(index=index, action="k-NN filter probe"):
        try:
            client.search(index=index, body=body)
        except TransportError as exc:
            if exc.status_code == 400 and NO_FILTER_MARKER in error_reason(exc).lower():
                raise NotConfigured(engine_refusal(index, "nmslib", capabilities)) from exc
            raise


def _check_settings(client: OpenSearch, index: str, capabilities: Capabilities) -> None:
    """``index.knn`` must be on, or the vectors get no ANN structure at all (exact search
    only). Serverless may not expose ``_settings`` (unverified): a refusal there is logged,
    not fatal."""
    try:
        response = client.indices.get_settings(index=index)
    except TransportError as exc:
        if capabilities.index_settings or error_type(exc) == "index_not_found_exception":
            raise translate(exc, index=index, action="index settings check") from exc
        log.warning("cannot read the settings of %s (%s): index.knn not verified",
                    index, exc.status_code)
        return
    for name, body in response.items():
        index_settings = (body.get("settings") or {}).get("index") or {}
        knn = index_settings.get("knn")
        if str(knn).lower() != "true":
            raise NotConfigured(
                f"OpenSearch index {name!r} has index.knn={knn!r}: without it the vectors "
                f"get no k-NN graph; create a new index version with `rag opensearch init`"
            )


def _delete_refused(client: OpenSearch, index: str) -> None:
    try:
        client.indices.delete(index=index)
    except TransportError:
        log.exception("could not delete the refused index %s; delete it by hand", index)


def cluster_version(client: OpenSearch) -> tuple[int, int] | None:
    """(major, minor) from ``GET /``, or None when it cannot be told."""
    info = client.info()
    number = str((info.get("version") or {}).get("number", ""))
    parts = number.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def ensure_search_pipeline(client: OpenSearch, name: str) -> str:
    """Create or fix the hybrid pipeline; returns what happened.

    RRF (``score-ranker-processor``) where the cluster has it (2.19+, read from ``GET /``),
    else the ``normalization-processor`` (2.10+). An existing pipeline of either kind is
    kept. When the version cannot be read, RRF is tried and a refusal falls back.
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
        version = cluster_version(client)
        if version is not None and version < RRF_SINCE:
            client.search_pipeline.put(id=name, body=fallback)
            return (f"{verb} (normalization-processor: OpenSearch "
                    f"{version[0]}.{version[1]} has no score-ranker-processor)")
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
    # No space is recorded here: the deploy-time init function does not know the provider
    # (it has no UPSTAGE_SECRET_ID). An index without one is taken to be in the configured
    # space; `rag reindex` records it on the indexes it builds (docs/decisions.md).
    state = ensure_index(client, alias, settings.embedding_dimensions, capabilities,
                         config=vector_config(settings))
    report: dict[str, object] = {
        "target": capabilities.target,
        "alias": alias,
        "indices": list(state.indices),
        "index_created": state.created,
        "alias_created": state.alias_created,
        "dimensions": settings.embedding_dimensions,
        "space_type": "innerproduct",
        "engine": state.engine,
        "compression_level": state.compression,
        "ef_search": settings.opensearch_ef_search,
    }
    if capabilities.search_pipeline:
        name = pipeline_name(alias)
        report["pipeline"] = name
        report["pipeline_status"] = ensure_search_pipeline(client, name)
    else:
        report["pipeline"] = None
        report["pipeline_status"] = "not used: hybrid results are fused client-side (RRF)"
    return report


def vector_config(settings: Settings) -> VectorConfig:
    return VectorConfig(
        dimensions=settings.embedding_dimensions,
        ef_search=settings.opensearch_ef_search,
        compression=settings.opensearch_compression_level,
    )


def add_missing_fields(client: OpenSearch, index: str, mappings: Mapping[str, Any]) -> None:
    """Add the fields this version writes that an older index's (strict) mapping lacks:
    adding fields is the one mapping change an index accepts in place."""
    properties = mappings.get("properties") or {}
    missing = {name: dict(spec) for name, spec in ADDED_FIELDS.items() if name not in properties}
    if not missing:
        return
    with translated(index=index, action="mapping update"):
        client.indices.put_mapping(index=index, body={"properties": missing})
    log.info("added fields %s to the mapping of %s", sorted(missing), index)


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


def create_unaliased_index(client: OpenSearch, physical: str, config: VectorConfig,
                           capabilities: Capabilities, meta: Mapping[str, Any]) -> bool:
    """An index like ``init``'s, without the alias (``rag reindex``'s target); its
    mapping is checked as ``init`` checks it. False if it already existed."""
    created = _create(client, "", physical, config, capabilities, meta=meta)
    with translated(index=physical, action="index check"):
        found = index_mappings_by_name(client, physical) or {}
    for name, mappings in found.items():
        verify_index(client, name, mappings, config, capabilities)
    return created
