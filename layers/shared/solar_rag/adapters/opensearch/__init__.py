"""OpenSearch k-NN vector store: managed domain, AOSS NextGen (`serverless`) or AOSS Classic."""

from solar_rag.adapters.opensearch.bootstrap import ensure_index, init_opensearch
from solar_rag.adapters.opensearch.bulk import BulkLimits
from solar_rag.adapters.opensearch.capabilities import Capabilities, capabilities_for
from solar_rag.adapters.opensearch.client import build_client
from solar_rag.adapters.opensearch.store import OpenSearchVectorStore, build_opensearch_store

__all__ = [
    "BulkLimits",
    "Capabilities",
    "OpenSearchVectorStore",
    "build_client",
    "build_opensearch_store",
    "capabilities_for",
    "ensure_index",
    "init_opensearch",
]
