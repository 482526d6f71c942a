"""S3 object changes to indexing changes: read, decide, hand to ``IndexingService.apply``.

Rules (see docs/ingestion.md):

- A created object is read as it is *now* (S3 may already hold newer content than the event
  describes); ordering is the indexing service's job, with the event's sequencer.
- Problems of the document itself (unsupported type, too big, unreadable, invalid sidecar,
  no text) are recorded as ``failed`` with the reason and acknowledged: retrying cannot help.
  Retryable errors (upstream, vector store, registry, ``ConcurrentUpdate``) and configuration
  errors (``NotConfigured``) leave the outcome unsettled, so the message is redelivered and,
  after its retries, lands in the dead-letter queue, from where it can be redriven.
- ``<key>.metadata.json`` is a sidecar (``{"metadataAttributes": {...}}``, the Bedrock
  Knowledge Bases convention), never a document: any event for it re-indexes ``<key>``.
- Keys under ``.solar-rag/`` are the service's own. ``.solar-rag/queued/…`` holds documents
  that ``POST /v1/documents`` could not index within its deadline (``services/intake.py``):
  each is indexed under its own id while the registry still waits for that version, then
  the object is removed (its removal event is ignored).

Parsing notifications and answering SQS live at the edge (``lambda_edge``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import PurePosixPath
from typing import Literal, Protocol

from solar_rag.document_ids import document_id_problem
from solar_rag.domain import (
    Change,
    ChangeMarker,
    DocumentStatus,
    Outcome,
    Rejection,
    Removal,
    Upsert,
    is_permanent,
)
from solar_rag.errors import DocumentNotFound, InvalidInput, PayloadTooLarge, RagError
from solar_rag.parsing.sources import (
    MAX_SIDECAR_BYTES,
    SIDECAR_SUFFIX,
    FileLoader,
    document_key,
    invalid_sidecar,
    read_document,
)
from solar_rag.ports import DocumentRegistry, ObjectStore
from solar_rag.services.indexing import groups_by_size
from solar_rag.services.intake import (
    MAX_QUEUED_BYTES,
    QUEUE_PREFIX,
    QueuedDocument,
    is_reserved,
    still_queued,
)

__all__ = ["ChangeKind", "ObjectChange", "S3Ingestion"]

logger = logging.getLogger("solar_rag.s3_ingestion")

ChangeKind = Literal["created", "removed"]


@dataclass(frozen=True, slots=True)
class ObjectChange:
    kind: ChangeKind
    key: str
    bucket: str | None = None
    sequencer: str | None = None
    etag: str | None = None
    version_id: str | None = None
    size: int | None = None

    @property
    def marker(self) -> ChangeMarker:
        return ChangeMarker(sequencer=self.sequencer, etag=self.etag, version_id=self.version_id)


class Indexing(Protocol):
    """The part of ``IndexingService`` ingestion uses."""

    def apply(self, changes: Sequence[Change]) -> list[Outcome]: ...


@dataclass(frozen=True, slots=True)
class _Apply:
    """An object change that becomes a change to apply, and what to do with its outcome."""

    change: Change
    then: Callable[[Outcome], Outcome] | None = None


_Plan = Outcome | _Apply
"""What an object change becomes: an outcome at once, or a change to apply."""


class S3Ingestion:
    def __init__(
        self,
        *,
        indexing: Indexing,
        objects: ObjectStore,
        load: FileLoader,
        supported_extensions: Collection[str],
        max_object_bytes: int,
        bucket: str | None = None,
        registry: DocumentRegistry | None = None,
    ) -> None:
        self._indexing = indexing
        self._registry = registry
        self._objects = objects
        self._load_file = load
        self._extensions = frozenset(e.lower() for e in supported_extensions)
        self._max_object_bytes = max_object_bytes
        self.bucket = bucket

    def apply(self, messages: Sequence[Sequence[ObjectChange]]) -> list[list[Outcome]]:
        """One outcome per object change of each message (an SQS batch of notifications).

        Every message's changes are applied together, in message order, in groups of
        ``MAX_GROUP_CHARS`` (documents of different messages share embedding requests and
        one vector store write; a key named twice is changed in order).
        """
        plans = [self._plan(change) for message in messages for change in message]
        applied = iter(self._apply([plan.change for plan in plans if isinstance(plan, _Apply)]))
        outcomes = iter([self._settle(plan, next(applied)) if isinstance(plan, _Apply) else plan
                         for plan in plans])
        return [[next(outcomes) for _ in message] for message in messages]

    def _apply(self, changes: Sequence[Change]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for group in groups_by_size(changes):
            batch = [changes[position] for position in group]
            try:
                outcomes += self._indexing.apply(batch)
            except Exception as error:  # broad on purpose: not one document's (the registry or
                # the store failing in a way nobody foresaw): the group's messages come again
                # and end in the DLQ after their retries; the other groups go on.
                logger.error("indexing a group failed: %s", type(error).__name__, exc_info=error)
                outcomes += [Outcome(c.document_id, "deferred", error=error) for c in batch]
        return outcomes

    def _plan(self, change: ObjectChange) -> _Plan:
        try:
            return self._decide(change)
        except Exception as error:  # broad on purpose: whatever stops reading this change (S3,
            # the registry, a bug) makes its message come again alone, not the whole batch.
            logger.warning("s3 change cannot be read now: %s", type(error).__name__,
                           extra={"document_id": change.key})
            return Outcome(change.key, "deferred", error=error)

    @staticmethod
    def _settle(plan: _Apply, outcome: Outcome) -> Outcome:
        try:
            return plan.then(outcome) if plan.then is not None else outcome
        except RagError as error:  # S3 or the registry: the message comes again
            return Outcome(outcome.id, "deferred", error=error)

    def _decide(self, change: ObjectChange) -> _Plan:
        key = change.key
        if is_reserved(key):
            return self._reserved(change)
        if document_key(key) != key:
            if not self._supported(document_key(key)):
                return Outcome(document_key(key), "skipped")
            # Sequencers order events of one key only: the sidecar's cannot order the document.
            return self._created(document_key(key), ChangeMarker(), None)
        if change.kind == "created":
            return self._created(key, change.marker, change.size)
        if change.sequencer is None and self._objects.exists(key):
            # Without a sequencer (not S3 itself) the only safe order is the bucket's state: the
            # object was created again after this removal, and its own event indexes it.
            logger.info("object exists again; removal skipped", extra={"document_id": key})
            return Outcome(key, "skipped")
        return _Apply(Removal(key, change.marker))

    def _source(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}" if self.bucket else key

    def _supported(self, key: str) -> bool:
        return PurePosixPath(key).suffix.lower() in self._extensions

    def _created(self, key: str, marker: ChangeMarker, declared_size: int | None) -> _Plan:
        """The document to index, or its rejection; skipped when the object is gone."""
        problem = document_id_problem(key)
        if problem is not None:  # recorded under the key as it is: never silently renamed
            return self._reject(key, f"the object key cannot be a document id: {problem}", marker)
        if not self._supported(key):
            suffix = PurePosixPath(key).suffix or "(no extension)"
            return self._reject(key, f"unsupported file type {suffix}; supported: "
                                     f"{', '.join(sorted(self._extensions))}", marker)
        if declared_size is not None and declared_size > self._max_object_bytes:
            return self._reject(key, f"object is {declared_size} bytes, over the limit of "
                                     f"{self._max_object_bytes} (MAX_OBJECT_BYTES)", marker)
        try:
            data, attributes = self._objects.read(key, max_bytes=self._max_object_bytes)
        except DocumentNotFound:  # gone since the event was sent: its removal event (or none) decides
            return Outcome(key, "skipped")
        except PayloadTooLarge as error:
            return self._reject(key, error.message, marker)
        marker = replace(marker, etag=attributes.get("etag") or marker.etag,
                         version_id=attributes.get("version_id") or marker.version_id)
        try:
            doc = read_document(self._load_file, data, key, document_id=key,
                                sidecar=self._sidecar(key), source=self._source(key))
        except RagError as error:
            if not is_permanent(error):
                raise
            return self._reject(key, error.message, marker)
        return _Apply(Upsert(doc, marker, replaces=True))

    def _sidecar(self, key: str) -> bytes | None:
        try:
            return self._objects.read_optional(key + SIDECAR_SUFFIX, max_bytes=MAX_SIDECAR_BYTES)
        except PayloadTooLarge:
            raise invalid_sidecar(key, f"it is larger than {MAX_SIDECAR_BYTES} bytes") from None

    def _reject(self, key: str, reason: str, marker: ChangeMarker) -> _Plan:
        return _Apply(Rejection(key, reason, marker, self._source(key)))

    def _reserved(self, change: ObjectChange) -> _Plan:
        if change.kind == "removed" or not change.key.startswith(QUEUE_PREFIX):
            return Outcome(change.key, "skipped")
        try:
            data, _ = self._objects.read(change.key, max_bytes=MAX_QUEUED_BYTES)
            queued = QueuedDocument.from_json(data)
        except DocumentNotFound:  # indexed and removed already (a duplicate event)
            return Outcome(change.key, "skipped")
        except (PayloadTooLarge, InvalidInput) as error:  # not a queued document of ours
            logger.warning("ignoring %s: %s", change.key, error.message)
            return Outcome(change.key, "skipped")
        document_id = queued.document.id
        current = self._registry.get(document_id) if self._registry is not None else None
        if not still_queued(current, queued):
            logger.info("queued version superseded", extra={"document_id": document_id})
            self._objects.delete(change.key)
            return Outcome(document_id, "skipped")
        return _Apply(Upsert(queued.document), then=partial(self._queued_done, change.key))

    def _queued_done(self, key: str, outcome: Outcome) -> Outcome:
        if not outcome.settled:
            return outcome  # the object stays for the redelivery
        if outcome.status == "failed" and self._registry is not None:
            # Refused before any work (invalid): the registry still says queued.
            still = self._registry.get(outcome.id)
            if still is not None and still.status == DocumentStatus.QUEUED:
                self._registry.put(replace(still, status=DocumentStatus.FAILED, error=str(outcome.error)))
        self._objects.delete(key)
        return outcome
