"""What each OpenSearch deployment target can do, in one place.

The store and the bootstrap code ask this object instead of branching on the target name,
so a new target (or a capability found to exist after all) is a one-line change here.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """``method.engine`` may be set in the mapping (NextGen rejects it)."""
    index_settings: bool
    """Shards/replicas settings may be sent at index creation (not on Serverless)."""
    require_alias: bool
    """Bulk writes carry ``require_alias=true`` so they never auto-create a concrete index
    named like the alias (documented for OpenSearch; unverified on Serverless)."""
    sigv4_service: Literal["es", "aoss"]


_CAPABILITIES: dict[Target, Capabilities] = {
    "domain": Capabilities(
        target="domain",
        custom_ids=True,
        delete_by_query=True,
        refresh=True,
        search_pipeline=True,
        engine_configurable=True,
        index_settings=True,
        require_alias=True,
        sigv4_service="es",
    ),
    "serverless": Capabilities(
        target="serverless",
        custom_ids=True,
        delete_by_query=False,
        refresh=False,
        search_pipeline=False,
        engine_configurable=False,
        index_settings=False,
        require_alias=False,
        sigv4_service="aoss",
    ),
    "serverless-classic": Capabilities(
        target="serverless-classic",
        custom_ids=False,
        delete_by_query=False,
        refresh=False,
        search_pipeline=False,
        engine_configurable=True,
        index_settings=False,
        require_alias=False,
        sigv4_service="aoss",
    ),
}


def capabilities_for(target: Target) -> Capabilities:
    try:
        return _CAPABILITIES[target]
    except KeyError:
        raise ValueError(
            f"unknown OpenSearch target {target!r}: expected one of {sorted(_CAPABILITIES)}"
        ) from None
