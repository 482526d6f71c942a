"""The embedding space an index is built in: embedder (provider, passage model, dimensions)
and chunker version. Vectors of two spaces never mix in one index; ``rag reindex`` moves a
corpus from one to another (docs/reindex.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from solar_rag.errors import SpaceMismatch

if TYPE_CHECKING:
    from solar_rag.settings import Settings

CHUNKER_VERSION = "chunker-v1"
REINDEX_HINT = ("run `rag reindex` with the settings you want (it builds the index again "
                "beside the live one and swaps), or restore the settings it was built with")


def chunker_signature(settings: Settings) -> str:
    """Changes whenever the chunker would cut the same text differently."""
    return f"{CHUNKER_VERSION}:{settings.chunk_size_tokens}:{settings.chunk_overlap_tokens}"


@dataclass(frozen=True, slots=True)
class EmbeddingSpace:
    embedder: str
    """``Embedder.space``: provider, passage model and dimensions."""
    dimensions: int
    chunker: str

    @property
    def key(self) -> str:
        return f"{self.embedder}|{self.dimensions}|{self.chunker}"

    def describe(self) -> str:
        return f"embedder {self.embedder!r}, {self.dimensions} dimensions, chunker {self.chunker!r}"

    def as_meta(self) -> dict[str, object]:
        return {"embedder": self.embedder, "dimensions": self.dimensions, "chunker": self.chunker}

    @classmethod
    def from_meta(cls, meta: object) -> EmbeddingSpace | None:
        if not isinstance(meta, dict):
            return None
        try:
            return cls(str(meta["embedder"]), int(meta["dimensions"]), str(meta["chunker"]))
        except (KeyError, TypeError, ValueError):
            return None


def mismatch(where: str, recorded: EmbeddingSpace, configured: EmbeddingSpace) -> SpaceMismatch:
    """The refusal to read or write ``where`` (built in ``recorded``) with ``configured``."""
    return SpaceMismatch(
        f"{where} was built in another embedding space ({recorded.describe()}) than the one "
        f"configured ({configured.describe()}); vectors of different spaces cannot be mixed: "
        f"{REINDEX_HINT}"
    )


OFFLINE_EMBEDDER = "offline-hash-v1"


def configured_space(settings: Settings) -> EmbeddingSpace:
    """The space ``settings`` describe, without building an embedder (the OpenSearch index
    records it at creation; ``Embedder.space`` of the two adapters gives the same string,
    tests/unit/test_embedding_space.py holds them together)."""
    dims = settings.embedding_dimensions
    embedder = (f"upstage:{settings.upstage_embedding_passage_model}:{dims}"
                if settings.provider == "upstage" else f"{OFFLINE_EMBEDDER}:{dims}")
    return EmbeddingSpace(embedder, dims, chunker_signature(settings))
