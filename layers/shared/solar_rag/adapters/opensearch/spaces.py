"""The embedding space recorded in an index's mapping ``_meta`` (set at creation: by
``rag opensearch init`` and by ``rag reindex``; an index made before the record has none
and is taken to be in the configured space, see docs/decisions.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from solar_rag.adapters.opensearch.mapping import PREVIOUS_META, SPACE_META
from solar_rag.embedding_space import EmbeddingSpace, mismatch


def meta(mappings: Mapping[str, Any]) -> Mapping[str, Any]:
    found = mappings.get("_meta")
    return found if isinstance(found, Mapping) else {}


def recorded_space(mappings: Mapping[str, Any]) -> EmbeddingSpace | None:
    return EmbeddingSpace.from_meta(dict(meta(mappings).get(SPACE_META) or {}) or None)


def previous_index(mappings: Mapping[str, Any]) -> str | None:
    previous = meta(mappings).get(PREVIOUS_META)
    return str(previous) if previous else None


def space_meta(space: EmbeddingSpace, previous: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {SPACE_META: space.as_meta()}
    if previous:
        found[PREVIOUS_META] = previous
    return found


def check_space(index: str, mappings: Mapping[str, Any], space: EmbeddingSpace | None) -> None:
    """``SpaceMismatch`` (409, naming `rag reindex`) when the index records another space."""
    if space is None:
        return
    recorded = recorded_space(mappings)
    if recorded is not None and recorded != space:
        raise mismatch(f"OpenSearch index {index!r}", recorded, space)
