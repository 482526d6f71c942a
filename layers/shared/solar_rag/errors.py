"""Domain exceptions. The HTTP layer maps each to a status in one table (api/errors.py).

Messages are safe to show to API callers: never a secret, never a stack trace.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class; ``status`` is the HTTP status the API answers with."""

    status: int = 500
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(RagError):
    status = 400


class UnsupportedDocument(InvalidInput):
    """A document whose type or content cannot be indexed (fails alone, never retried)."""


class UnsupportedMediaType(UnsupportedDocument):
    """A file type this deployment does not read (as configured): 415."""

    status = 415


class DocumentParsePending(RagError):
    """Upstage Document Parse is still reading the file when the time budget ends: retry
    later (the same file then picks up the same request instead of paying for another)."""

    status = 503
    retryable = True


class DocumentNotFound(RagError):
    status = 404


class PayloadTooLarge(RagError):
    status = 413


class ConcurrentUpdate(RagError):
    """Another writer holds the document; retry later."""

    status = 409
    retryable = True


class UpstreamRateLimited(RagError):
    status = 429
    retryable = True


class UpstreamError(RagError):
    status = 502
    retryable = True


class UpstreamRejected(UpstreamError):
    """The upstream refused the request itself (4xx other than 429): retrying cannot help."""

    retryable = False


class VectorStoreError(RagError):
    status = 502
    retryable = True


class NotConfigured(RagError):
    status = 503


class SpaceMismatch(NotConfigured):
    """The index (or local store) was built in another embedding space than the settings
    describe: nothing is read or written until ``rag reindex`` (or the old settings)."""

    status = 409


class NotAvailableHere(RagError):
    """The operation exists only where its infrastructure does (uploads need the bucket)."""

    status = 501


class UpstageKeyRejected(NotConfigured):
    """Upstage refused the configured key (401/403): a configuration problem, not the request's.

    S3 ingestion keeps such records for a redrive once the key is fixed.
    """


class UpstreamTimeout(RagError):
    status = 504
    retryable = True


class DeadlineExceeded(UpstreamTimeout):
    """The request's time budget ran out (API Gateway's 29 s, or the function's timeout)."""
