"""The shared VectorStore contract against the OpenSearch adapter + stub, for every target."""

from __future__ import annotations

from collections.abc import Iterator

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
from solar_rag.ports import VectorStore
from solar_rag.settings import Settings

from tests.contract.vector_store_contract import VectorStoreContract
from tests.fakes.opensearch_stub import OpenSearchStub


@pytest.fixture(scope="module")
def server() -> Iterator[OpenSearchStub]:
    with OpenSearchStub() as stub:
        stub.record_requests = False
        yield stub


def stub_store(server: OpenSearchStub, target: Target, dimensions: int, *,
               engine_accepted: bool = False, mapping_shows_resolved: bool = True) -> VectorStore:
    server.reset(target)
    server.serverless_engine = "accepted" if engine_accepted else "rejected"
    server.mapping_shows_resolved = mapping_shows_resolved
    settings = Settings(
        _env_file=None, vector_store="opensearch", opensearch_url=server.url,
        opensearch_endpoint=None, opensearch_target=target, embedding_dimensions=dimensions,
    )
    client = build_client(settings)
    init_opensearch(settings, client)
    store = OpenSearchVectorStore(
        client, index=settings.opensearch_index, dimensions=dimensions,
        capabilities=capabilities_for(target),
        bulk_limits=BulkLimits(backoff=Backoff(0.01, 0.02)),
    )
    store.ensure_index()
    return store


class TestDomainContract(VectorStoreContract):
    @pytest.fixture
    def store(self, server: OpenSearchStub, dimensions: int) -> VectorStore:
        return stub_store(server, "domain", dimensions)


class TestServerlessNextGenContract(VectorStoreContract):
    @pytest.fixture
    def store(self, server: OpenSearchStub, dimensions: int) -> VectorStore:
        return stub_store(server, "serverless", dimensions)


class TestServerlessNextGenEngineAcceptedContract(VectorStoreContract):
    """The other possible NextGen behaviour: it takes the explicit Faiss method."""

    @pytest.fixture
    def store(self, server: OpenSearchStub, dimensions: int) -> VectorStore:
        return stub_store(server, "serverless", dimensions, engine_accepted=True)


class TestServerlessNextGenProbedEngineContract(VectorStoreContract):
    """NextGen refuses the engine and its mapping does not say which one it picked."""

    @pytest.fixture
    def store(self, server: OpenSearchStub, dimensions: int) -> VectorStore:
        return stub_store(server, "serverless", dimensions, mapping_shows_resolved=False)


class TestServerlessClassicContract(VectorStoreContract):
    @pytest.fixture
    def store(self, server: OpenSearchStub, dimensions: int) -> VectorStore:
        return stub_store(server, "serverless-classic", dimensions)
