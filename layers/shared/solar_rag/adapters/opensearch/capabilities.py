"""What each OpenSearch deployment target can do, in one place.

The store and the bootstrap code ask this object instead of branching on the target name,
so a new target (or a capability found to exist after all) is a one-line change here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

Target = Literal["domain", "serverless", "serverless-classic"]


@dataclass(frozen=True, slots=True)
class Capabilities:
    target: Target
    custom_ids: bool
    """Bulk ``index`` with our own ``_id`` (deterministic chunk ids)."""
    delete_by_query: bool
    refresh: bool
    """``_refresh`` and the ``refresh`` request parameter exist."""
    search_pipeline: bool
    """Hybrid search through a ``normalization-processor`` pipeline (else client-side RRF)."""
    engine_configurable: bool
    """``method.engine`` (and the Faiss ``method.parameters``) are sent in the mapping."""
    engine_fallback: bool
    """The server may refuse ``method.engine`` (AWS documents it as unsupported on NextGen):
    on a recognisable refusal the index is created again without it, and the engine the
    server picked is then checked (read back, or probed with a filtered k-NN query)."""
    default_compression: str
    """The ``compression_level`` the server resolves when the mapping states none (AWS
    documents 32x, binary quantization with rescoring, for NextGen vector indexes)."""
    state_compression: bool
    """Send ``compression_level`` even when it is the OpenSearch default (1x): always on
    NextGen, whose own default differs; elsewhere only a non-default level is sent, so older
    domains that do not know the parameter keep working."""
    query_ef_search: bool
    """Send ``method_parameters.ef_search`` with every k-NN query (OpenSearch 2.16+). On
    NextGen the mapping may carry no Faiss parameters (engine refused), so the query is where
    Faiss reads it; a domain's version is not known up front, so there it is the mapping."""
    index_settings: bool
    """Shards/replicas settings may be sent at index creation (not on Serverless)."""
    require_alias: bool
    """Bulk writes carry ``require_alias=true`` so they never auto-create a concrete index
    named like the alias (documented for OpenSearch; unverified on Serverless)."""
    sigv4_service: Literal["es", "aoss"]


_DOMAIN = Capabilities(
    target="domain",
    custom_ids=True,
    delete_by_query=True,
    refresh=True,
    search_pipeline=True,
    engine_configurable=True,
    engine_fallback=False,
    default_compression="1x",
    state_compression=False,
    query_ef_search=False,
    index_settings=True,
    require_alias=True,
    sigv4_service="es",
)
_SERVERLESS_CLASSIC = replace(
    _DOMAIN,
    target="serverless-classic",
    custom_ids=False,
    delete_by_query=False,
    refresh=False,
    search_pipeline=False,
    index_settings=False,
    require_alias=False,
    sigv4_service="aoss",
)
"""A collection: a domain without the index APIs Serverless leaves out."""
_SERVERLESS = replace(
    _SERVERLESS_CLASSIC,
    target="serverless",
    custom_ids=True,
    engine_fallback=True,
    default_compression="32x",
    state_compression=True,
    query_ef_search=True,
)
"""A NextGen collection: what it adds to (and changes in) a classic one."""
_CAPABILITIES: dict[Target, Capabilities] = {
    caps.target: caps for caps in (_DOMAIN, _SERVERLESS, _SERVERLESS_CLASSIC)
}


def capabilities_for(target: Target) -> Capabilities:
    try:
        return _CAPABILITIES[target]
    except KeyError:
        raise ValueError(
            f"unknown OpenSearch target {target!r}: expected one of {sorted(_CAPABILITIES)}"
        ) from None
