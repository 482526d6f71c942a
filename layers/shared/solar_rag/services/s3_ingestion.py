"""S3 notifications to index operations: parse, read, decide, delegate to ``IndexingService``.

Rules (see docs/ingestion.md):

- ``s3:TestEvent`` and event kinds other than ObjectCreated/ObjectRemoved are ignored.
- A created object is read as it is *now* (S3 may already hold newer content than the event
  describes); ordering is the indexing service's job, with the event's sequencer.
- Problems of the document itself (unsupported type, too big, unreadable, invalid sidecar,
  no text) are recorded as ``failed`` with the reason and acknowledged: retrying cannot help.
  Retryable errors (upstream, vector store, registry, ``ConcurrentUpdate``) and configuration
  errors (``NotConfigured``) propagate, so the message is redelivered and, after its retries,
  lands in the dead-letter queue, from where it can be redriven.
- ``<key>.metadata.json`` is a sidecar (``{"metadataAttributes": {...}}``, the Bedrock
  Knowledge Bases convention), never a document: any event for it re-indexes ``<key>``.
- Keys under ``.solar-rag/`` are the service's own. ``.solar-rag/queued/…`` holds documents
  that ``POST /v1/documents`` could not index within its deadline (``services/intake.py``):
  each is indexed under its own id while the registry still waits for that version, then
  the object is removed (its removal event is ignored).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any, Literal, Protocol

from solar_rag.document_ids import document_id_problem
from solar_rag.domain import ChangeMarker, DocumentStatus, Metadata, MetadataValue, SourceDocument
from solar_rag.errors import DocumentNotFound, InvalidInput, NotConfigured, PayloadTooLarge, RagError
from solar_rag.ports import DocumentRegistry, ObjectStore
from solar_rag.services.indexing import IndexOutcome, groups_by_size
from solar_rag.services.intake import (
    MAX_QUEUED_BYTES,
    QUEUE_PREFIX,
    QueuedDocument,
    is_reserved,
    still_queued,
)

logger = logging.getLogger("solar_rag.s3_ingestion")

SIDECAR_SUFFIX = ".metadata.json"
MAX_SIDECAR_BYTES = 10 * 1024  # Bedrock's limit for a metadata file
MAX_METADATA_KEYS = 64
MAX_METADATA_VALUE_CHARS = 2048
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

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

    def index(self, doc: SourceDocument, *, marker: ChangeMarker | None = None) -> IndexOutcome: ...

    def index_each(self, docs: Sequence[SourceDocument],
                   markers: Sequence[ChangeMarker | None] | None = None,
                   ) -> list[IndexOutcome | RagError]: ...

    def delete(self, document_id: str, *, marker: ChangeMarker | None = None) -> IndexOutcome: ...

    def mark_failed(self, document_id: str, reason: str, *, marker: ChangeMarker | None = None,
                    source: str | None = None) -> IndexOutcome: ...


def _document_key(key: str) -> str:
    """The document an object belongs to: a sidecar belongs to the object it describes."""
    if key.endswith(SIDECAR_SUFFIX) and len(key) > len(SIDECAR_SUFFIX):
        return key.removesuffix(SIDECAR_SUFFIX)
    return key


class FileLoader(Protocol):
    def __call__(self, data: bytes, filename: str, *, document_id: str,
                 metadata: Metadata | None = None, source: str | None = None) -> SourceDocument: ...


# --- sidecar metadata ---------------------------------------------------------------------------

def parse_sidecar(data: bytes) -> Metadata:
    """``{"metadataAttributes": {...}}`` with plain values or Bedrock's typed values."""
    try:
        body = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("it is not valid UTF-8 JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("metadataAttributes"), dict):
        raise InvalidInput('it must be an object with a "metadataAttributes" object')
    attributes: dict[str, Any] = body["metadataAttributes"]
    if len(attributes) > MAX_METADATA_KEYS:
        raise InvalidInput(f"it has more than {MAX_METADATA_KEYS} attributes")
    metadata: Metadata = {}
    for key, raw in attributes.items():
        if not _METADATA_KEY.match(key):
            raise InvalidInput(f"attribute name {key[:130]!r} is not allowed (letters, digits, _.:-)")
        metadata[key] = _attribute_value(key, raw)
    return metadata


def _attribute_value(key: str, raw: object) -> MetadataValue:
    value = raw
    if isinstance(raw, dict) and isinstance(raw.get("value"), dict):  # {"value": {"type": ...}}
        typed = raw["value"]
        field = {"STRING": "stringValue", "NUMBER": "numberValue",
                 "BOOLEAN": "booleanValue"}.get(str(typed.get("type", "")).upper())
        if field is None or field not in typed:
            raise InvalidInput(f"attribute {key!r} has an unsupported typed value")
        value = typed[field]
    if isinstance(value, bool | int | float) and not (isinstance(value, float) and value != value):
        return value
    if isinstance(value, str):
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise InvalidInput(f"attribute {key!r} is longer than {MAX_METADATA_VALUE_CHARS} characters")
        return value
    raise InvalidInput(f"attribute {key!r} must be a string, number or boolean")


# --- the use case -------------------------------------------------------------------------------

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
        self._bucket = bucket

    def handle_message(self, changes: Sequence[ObjectChange]) -> list[IndexOutcome]:
        return [self.handle(change) for change in changes]

    def handle_messages(self, messages: Sequence[Sequence[ObjectChange] | Exception]
                        ) -> list[list[IndexOutcome] | Exception]:
        """A batch of messages, each the changes of one notification (or the error that made
        it unreadable); one result per message: its outcomes, or the exception that must send
        it back to the queue.

        Objects created by different messages are indexed together (shared embedding
        requests, one vector store write). Everything else (removals, sidecars, a key named
        by more than one message, messages with several records) is handled message by
        message, in order, as ``handle_message`` does.
        """
        results: dict[int, list[IndexOutcome] | Exception] = {}
        changes: dict[int, list[ObjectChange]] = {}
        for position, message in enumerate(messages):
            if isinstance(message, Exception):
                results[position] = message
            else:
                changes[position] = list(message)
        together = self._indexable_together(changes)
        results.update(self._index_together({p: changes[p][0] for p in together}))
        for position, found in changes.items():
            if position not in together:
                try:
                    results[position] = [self.handle(change) for change in found]
                except Exception as error:
                    results[position] = error
        return [results[position] for position in range(len(messages))]

    def _indexable_together(self, changes: Mapping[int, list[ObjectChange]]) -> list[int]:
        """Messages that are one creation of a document no other message of the batch names."""
        named = Counter(_document_key(c.key) for found in changes.values() for c in found)
        return [position for position, found in changes.items()
                if len(found) == 1 and found[0].kind == "created"
                and _document_key(found[0].key) == found[0].key and not is_reserved(found[0].key)
                and named[found[0].key] == 1 and not self._foreign(found[0])]

    def _foreign(self, change: ObjectChange) -> bool:
        return bool(self._bucket and change.bucket and change.bucket != self._bucket)

    def _index_together(self, changes: Mapping[int, ObjectChange]
                        ) -> dict[int, list[IndexOutcome] | Exception]:
        results: dict[int, list[IndexOutcome] | Exception] = {}
        loaded: dict[int, tuple[SourceDocument, ChangeMarker]] = {}
        for position, change in changes.items():
            try:
                found = self._load(change.key, change.marker, change.size)
            except Exception as error:
                results[position] = error
                continue
            if isinstance(found, IndexOutcome):
                results[position] = [found]
            else:
                loaded[position] = found
        order = list(loaded)
        for group in groups_by_size([loaded[p][0] for p in order]):
            positions = [order[i] for i in group]
            try:
                indexed = self._indexing.index_each([loaded[p][0] for p in positions],
                                                    [loaded[p][1] for p in positions])
            except Exception as error:  # not one document's: every message of the group retries
                results.update(dict.fromkeys(positions, error))
                continue
            for position, result in zip(positions, indexed, strict=True):
                try:
                    results[position] = [self._settled(changes[position].key,
                                                       loaded[position][1], result)]
                except Exception as error:
                    results[position] = error
        return results

    def handle(self, change: ObjectChange) -> IndexOutcome:
        if self._foreign(change):
            raise InvalidInput(f"event for bucket {change.bucket!r}, expected {self._bucket!r}")
        if is_reserved(change.key):
            return self._reserved(change)
        if _document_key(change.key) != change.key:
            return self._sidecar_changed(_document_key(change.key))
        if change.kind == "removed":
            return self._removed(change)
        return self._index(change.key, change.marker, change.size)

    def _source(self, key: str) -> str:
        return f"s3://{self._bucket}/{key}" if self._bucket else key

    def _supported(self, key: str) -> bool:
        return PurePosixPath(key).suffix.lower() in self._extensions

    def _removed(self, change: ObjectChange) -> IndexOutcome:
        if change.sequencer is None and self._exists(change.key):
            # Without a sequencer (not S3 itself) the only safe order is the bucket's state: the
            # object was created again after this removal, and its own event indexes it.
            logger.info("object exists again; removal skipped", extra={"document_id": change.key})
            return IndexOutcome(change.key, "skipped")
        return self._indexing.delete(change.key, marker=change.marker)

    def _exists(self, key: str) -> bool:
        return self._objects.exists(key)

    def _reserved(self, change: ObjectChange) -> IndexOutcome:
        if change.kind == "removed" or not change.key.startswith(QUEUE_PREFIX):
            return IndexOutcome(change.key, "skipped")
        try:
            data, _ = self._objects.read(change.key, max_bytes=MAX_QUEUED_BYTES)
        except DocumentNotFound:  # indexed and removed already (a duplicate event)
            return IndexOutcome(change.key, "skipped")
        except PayloadTooLarge:
            logger.warning("ignoring %s: larger than any queued document", change.key)
            return IndexOutcome(change.key, "skipped")
        try:
            queued = QueuedDocument.from_json(data)
        except InvalidInput as error:
            logger.warning("ignoring %s: %s", change.key, error.message)
            return IndexOutcome(change.key, "skipped")
        document_id = queued.document.id
        current = self._registry.get(document_id) if self._registry is not None else None
        if not still_queued(current, queued):
            logger.info("queued version superseded", extra={"document_id": document_id})
            self._objects.delete(change.key)
            return IndexOutcome(document_id, "skipped")
        try:
            outcome = self._indexing.index(queued.document)
        except RagError as error:
            if error.retryable or isinstance(error, NotConfigured):
                raise
            outcome = IndexOutcome(document_id, "failed", 0, error.message)
            still = self._registry.get(document_id) if self._registry is not None else None
            if self._registry is not None and still is not None and still.status == DocumentStatus.QUEUED:
                self._registry.put(replace(still, status=DocumentStatus.FAILED, error=error.message))
        self._objects.delete(change.key)
        return outcome

    def _sidecar_changed(self, main_key: str) -> IndexOutcome:
        if not self._supported(main_key):
            return IndexOutcome(main_key, "skipped")
        # Sequencers order events of one key only: the sidecar's cannot order the document.
        return self._index(main_key, ChangeMarker(), None)

    def _index(self, key: str, marker: ChangeMarker, declared_size: int | None) -> IndexOutcome:
        found = self._load(key, marker, declared_size)
        if isinstance(found, IndexOutcome):
            return found
        doc, marker = found
        try:
            outcome: IndexOutcome | RagError = self._indexing.index(doc, marker=marker)
        except RagError as error:
            outcome = error
        return self._settled(key, marker, outcome)

    def _load(self, key: str, marker: ChangeMarker, declared_size: int | None
              ) -> IndexOutcome | tuple[SourceDocument, ChangeMarker]:
        """The document to index with its marker, or the outcome when there is none."""
        problem = document_id_problem(key)
        if problem is not None:  # recorded under the key as it is: never silently renamed
            return self._failed(key, f"the object key cannot be a document id: {problem}", marker)
        if not self._supported(key):
            suffix = PurePosixPath(key).suffix or "(no extension)"
            return self._failed(key, f"unsupported file type {suffix}; supported: "
                                     f"{', '.join(sorted(self._extensions))}", marker)
        if declared_size is not None and declared_size > self._max_object_bytes:
            return self._failed(key, f"object is {declared_size} bytes, over the limit of "
                                     f"{self._max_object_bytes} (MAX_OBJECT_BYTES)", marker)
        try:
            data, attributes = self._objects.read(key, max_bytes=self._max_object_bytes)
        except DocumentNotFound:
            # Gone since the event was sent: its removal event (or none) decides.
            return IndexOutcome(key, "skipped")
        except PayloadTooLarge as error:
            return self._failed(key, error.message, marker)
        marker = replace(marker, etag=attributes.get("etag") or marker.etag,
                         version_id=attributes.get("version_id") or marker.version_id)
        try:
            metadata = self._sidecar(key)
        except InvalidInput as error:
            return self._failed(key, f"invalid metadata sidecar {key}{SIDECAR_SUFFIX}: "
                                     f"{error.message}", marker)
        try:
            doc = self._load_file(data, key, document_id=key, metadata=metadata,
                                  source=self._source(key))
        except RagError as error:
            # An outage or a parse still running (Document Parse) is not the file's fault:
            # the message goes back to the queue, like a configuration problem.
            if error.retryable or isinstance(error, NotConfigured):
                raise
            return self._failed(key, error.message, marker)
        except RecursionError:
            return self._failed(key, "the file is nested too deeply to be read", marker)
        except (ValueError, TypeError, LookupError, ArithmeticError) as error:
            # A parser choking on a malformed file: the same file fails the same way every time.
            return self._failed(key, f"the file could not be read ({type(error).__name__})", marker)
        return doc, marker

    def _settled(self, key: str, marker: ChangeMarker, outcome: IndexOutcome | RagError
                 ) -> IndexOutcome:
        if not isinstance(outcome, RagError):
            return outcome
        # Configuration problems are not the document's: keep the event for a redrive.
        if outcome.retryable or isinstance(outcome, NotConfigured):
            raise outcome
        return self._failed(key, outcome.message, marker)

    def _sidecar(self, key: str) -> Metadata:
        try:
            data = self._objects.read_optional(key + SIDECAR_SUFFIX, max_bytes=MAX_SIDECAR_BYTES)
        except PayloadTooLarge:
            raise InvalidInput(f"it is larger than {MAX_SIDECAR_BYTES} bytes") from None
        return parse_sidecar(data) if data is not None else {}

    def _failed(self, key: str, reason: str, marker: ChangeMarker) -> IndexOutcome:
        logger.warning("document cannot be indexed: %s", reason, extra={"document_id": key})
        return self._indexing.mark_failed(key, reason, marker=marker, source=self._source(key))
