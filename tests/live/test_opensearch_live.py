"""The shared VectorStore contract against a real OpenSearch (opt-in).

Runs only when OPENSEARCH_URL is set, e.g. with the local cluster of
``docker compose -f docker-compose.opensearch.yml up -d``:

    OPENSEARCH_URL=http://localhost:9200 .venv/bin/pytest -m opensearch_live tests/live

Every test gets its own alias (``rag-live-<random>``) and removes its index and pipeline.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from solar_rag.adapters.opensearch import (
    OpenSearchVectorStore,
    build_client,
    capabilities_for,
    init_opensearch,
)
from solar_rag.adapters.opensearch.bootstrap import pipeline_name
from solar_rag.ports import VectorStore
from solar_rag.settings import Settings

from tests.contract.vector_store_contract import VectorStoreContract

pytestmark = [
    pytest.mark.opensearch_live,
    pytest.mark.skipif(not os.environ.get("OPENSEARCH_URL"),
                       reason="set OPENSEARCH_URL to run against a real OpenSearch"),
]


class TestLiveOpenSearchContract(VectorStoreContract):
    @pytest.fixture
    def store(self, dimensions: int) -> Iterator[VectorStore]:
        alias = f"rag-live-{uuid.uuid4().hex[:10]}"
        settings = Settings(
            vector_store="opensearch", opensearch_index=alias, embedding_dimensions=dimensions,
            opensearch_target="domain",
        )
        client = build_client(settings)
        report = init_opensearch(settings, client)
        store = OpenSearchVectorStore(client, index=alias, dimensions=dimensions,
                                      capabilities=capabilities_for("domain"))
        try:
            yield store
        finally:
            for index in report["indices"]:  # type: ignore[attr-defined]
                client.indices.delete(index=index, ignore=[404])
            client.search_pipeline.delete(id=pipeline_name(alias), ignore=[404])
