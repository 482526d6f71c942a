"""The OpenSearch adapter's test harness: the stub server fixtures, a store per target, chunks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from solar_rag.adapters.opensearch import (
    BulkLimits,
    OpenSearchVectorStore,
    build_client,
    capabilities_for,
    init_opensearch,
)
from solar_rag.adapters.opensearch.capabilities import Target
from solar_rag.adapters.opensearch.client import Backoff
from solar_rag.adapters.opensearch.queries import metadata_terms
from solar_rag.domain import Chunk, EmbeddedChunk, chunk_id_for
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub

DIMS = 8
ALIAS = "rag-chunks"


@pytest.fixture(scope="module")
def server() -> Iterator[OpenSearchStub]:
    with OpenSearchStub() as stub:
        yield stub


@pytest.fixture
def stub(server: OpenSearchStub) -> OpenSearchStub:
    server.reset("domain")
    return server


def settings_for(stub: OpenSearchStub, target: Target = "domain", dims: int = DIMS) -> Settings:
    return Settings(
        _env_file=None, vector_store="opensearch", opensearch_url=stub.url,
        opensearch_endpoint=None, opensearch_target=target, embedding_dimensions=dims,
        opensearch_max_retries=3,
    )


class Harness:
    def __init__(self, stub: OpenSearchStub, target: Target = "domain", *,
                 limits: BulkLimits | None = None, init: bool = True) -> None:
        stub.reset(target)
        self.stub = stub
        self.sleeps: list[float] = []
        self.settings = settings_for(stub, target)
        self.client = build_client(self.settings, sleep=self.sleeps.append)
        if init:
            init_opensearch(self.settings, self.client)
        self.store = OpenSearchVectorStore(
            self.client, index=ALIAS, dimensions=DIMS, capabilities=capabilities_for(target),
            bulk_limits=limits or BulkLimits(backoff=no_wait()), sleep=self.sleeps.append,
        )
        if init:
            self.store.ensure_index()  # what the first write would check
        stub.requests.clear()


def no_wait() -> Backoff:
    return Backoff(base_seconds=0.01, cap_seconds=0.02)


def unit(i: int, dims: int = DIMS) -> list[float]:
    vector = [0.0] * dims
    vector[i % dims] = 1.0
    return vector


def chunks(doc: str, version: str, texts: Sequence[str], *,
           metadata: dict[str, Any] | None = None, offset: int = 0) -> list[EmbeddedChunk]:
    return [
        EmbeddedChunk(
            Chunk(document_id=doc, chunk_id=chunk_id_for(doc, version, i), index=i, text=text,
                  title=f"{doc} title", section=None, start=0, end=len(text), version=version,
                  source=f"s3://bucket/{doc}", metadata=dict(metadata or {})),
            unit(i + offset),
        )
        for i, text in enumerate(texts)
    ]


def source_of(item: EmbeddedChunk) -> dict[str, Any]:
    c = item.chunk
    return {"document_id": c.document_id, "chunk_id": c.chunk_id, "chunk_index": c.index,
            "version": c.version, "text": c.text, "title": c.title, "section": c.section,
            "start": c.start, "end": c.end, "source": c.source, "metadata": c.metadata,
            "metadata_terms": metadata_terms(c.metadata), "embedding": item.vector}


def paths(stub: OpenSearchStub) -> list[str]:
    return [f"{r.method} {r.path}" for r in stub.requests]
