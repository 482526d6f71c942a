"""The local embedded store: chunks, vectors and the document registry in one SQLite file.

Local use only (imports numpy, which the Lambda layer does not ship).
"""

from solar_rag.adapters.local_store.db import DB_FILENAME
from solar_rag.adapters.local_store.registry import LocalDocumentRegistry
from solar_rag.adapters.local_store.store import LocalVectorStore

__all__ = ["DB_FILENAME", "LocalDocumentRegistry", "LocalVectorStore"]
