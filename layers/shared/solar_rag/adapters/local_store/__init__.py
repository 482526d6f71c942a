"""The local embedded store: chunks, vectors and the document registry in one SQLite file.

Local use only (imports numpy, which the Lambda layer does not ship).
"""

import os

# Exact k-NN is one matrix-vector product: memory-bound, so extra BLAS threads barely help,
# while OpenBLAS's spinning workers fight the web server for the cores. Measured on 2 busy
# cores at 100k x 1024: p50 44 ms with the default threads, 26 ms with one. Only effective
# when numpy is not imported yet; an explicit setting always wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from solar_rag.adapters.local_store.db import DB_FILENAME
from solar_rag.adapters.local_store.registry import LocalDocumentRegistry
from solar_rag.adapters.local_store.store import LocalVectorStore

__all__ = ["DB_FILENAME", "LocalDocumentRegistry", "LocalVectorStore"]
