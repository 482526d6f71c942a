"""Where the Document Parse adapter remembers the asynchronous request of a file (by its
SHA-256), so that a retry resumes polling it instead of paying for a second parse.

In memory for one process (local use, tests); in the documents bucket when there is one
(deployed): a retry of an S3 message, or a client sending a file again after a 503, usually
lands on another container. The objects live under the reserved prefix, which the S3 pipeline
never indexes. The memo is an optimisation: failing to read or write it only costs a second
parse, so its errors are logged, never raised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from solar_rag.ports import ObjectStore

logger = logging.getLogger("solar_rag.document_parse")

PREFIX = ".solar-rag/document-parse/"
"""Under ``services.intake.RESERVED_PREFIX``: skipped by the S3 pipeline."""
MAX_AGE_SECONDS = 29 * 24 * 3600
"""Upstage keeps results 30 days: an older request id is not resumed."""
_MAX_BYTES = 4096


class RequestMemo(Protocol):
    def get(self, digest: str) -> str | None: ...

    def put(self, digest: str, request_id: str) -> None: ...

    def forget(self, digest: str) -> None: ...


class InMemoryRequestMemo:
    """The last ``size`` requests of this process."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._requests: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> str | None:
        with self._lock:
            return self._requests.get(digest)

    def put(self, digest: str, request_id: str) -> None:
        with self._lock:
            self._requests[digest] = request_id
            self._requests.move_to_end(digest)
            while len(self._requests) > self._size:
                self._requests.popitem(last=False)

    def forget(self, digest: str) -> None:
        with self._lock:
            self._requests.pop(digest, None)


class ObjectStoreRequestMemo:
    """One small JSON object per file in the documents bucket, in front of a process memo.

    Forgetting overwrites the object with an empty request (the indexer may put any key but
    delete only queued documents)."""

    def __init__(self, objects: ObjectStore, *, clock: Callable[[], float] = time.time) -> None:
        self._objects = objects
        self._clock = clock
        self._local = InMemoryRequestMemo()

    def get(self, digest: str) -> str | None:
        found = self._local.get(digest)
        if found is not None:
            return found
        try:
            data = self._objects.read_optional(PREFIX + digest + ".json", max_bytes=_MAX_BYTES)
            body = json.loads(data) if data is not None else None
        except Exception as error:  # the memo is an optimisation
            logger.warning("document parse memo unreadable: %s", type(error).__name__)
            return None
        if not isinstance(body, dict):
            return None
        request_id, at = body.get("request_id"), body.get("submitted_at")
        if not isinstance(request_id, str) or not request_id or not isinstance(at, (int, float)):
            return None
        if self._clock() - at > MAX_AGE_SECONDS:
            return None
        self._local.put(digest, request_id)
        return request_id

    def put(self, digest: str, request_id: str) -> None:
        self._local.put(digest, request_id)
        self._write(digest, {"request_id": request_id, "submitted_at": self._clock()})

    def forget(self, digest: str) -> None:
        self._local.forget(digest)
        self._write(digest, {"request_id": None, "submitted_at": self._clock()})

    def _write(self, digest: str, body: dict[str, object]) -> None:
        try:
            self._objects.put(PREFIX + digest + ".json", json.dumps(body).encode("utf-8"),
                              content_type="application/json")
        except Exception as error:
            logger.warning("document parse memo not written: %s", type(error).__name__)
