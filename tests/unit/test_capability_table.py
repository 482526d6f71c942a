"""Every field of every OpenSearch target, written out: the table derives targets from one
another (``dataclasses.replace``), and a changed base must not change a target by accident."""

from __future__ import annotations

from dataclasses import asdict

import pytest
from solar_rag.adapters.opensearch.capabilities import capabilities_for

EXPECTED = {
    "domain": dict(custom_ids=True, delete_by_query=True, refresh=True, search_pipeline=True,
                   engine_configurable=True, engine_fallback=False, default_compression="1x",
                   state_compression=False, query_ef_search=False, index_settings=True,
                   require_alias=True, sigv4_service="es"),
    "serverless": dict(custom_ids=True, delete_by_query=False, refresh=False,
                       search_pipeline=False, engine_configurable=True, engine_fallback=True,
                       default_compression="32x", state_compression=True, query_ef_search=True,
                       index_settings=False, require_alias=False, sigv4_service="aoss"),
    "serverless-classic": dict(custom_ids=False, delete_by_query=False, refresh=False,
                               search_pipeline=False, engine_configurable=True,
                               engine_fallback=False, default_compression="1x",
                               state_compression=False, query_ef_search=False,
                               index_settings=False, require_alias=False, sigv4_service="aoss"),
}


@pytest.mark.parametrize("target", sorted(EXPECTED))
def test_every_capability_of_every_target(target: str) -> None:
    assert asdict(capabilities_for(target)) == {"target": target, **EXPECTED[target]}  # type: ignore[arg-type]


def test_an_unknown_target_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'elastic'"):
        capabilities_for("elastic")  # type: ignore[arg-type]
