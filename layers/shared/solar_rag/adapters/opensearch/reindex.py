"""`rag reindex` on OpenSearch: build ``<alias>-v<n+1>`` beside the live index, swap the alias
in one ``POST /_aliases`` (remove + add), keep the old index for ``--rollback``.

- Sources of truth: the documents bucket (``DOCUMENTS_BUCKET``; a document's id is its key,
  its sidecar adds metadata, as in the S3 pipeline). A live document with no object there
  (indexed over HTTP within the request) cannot be rebuilt and is reported failed.
- The target's registry and the progress record are a SQLite file on the machine that runs
  the command (``RAG_DATA_DIR/reindex/<index>.sqlite3``), mirrored with the run file to the
  documents bucket (``reindex_record.py``): a killed run continues from it, on any machine.
- The live registry (DynamoDB deployed) lists what is live; after the swap each record the
  run rebuilt, still as it was, gets the target's version and chunk ids (under the
  document's lock), so ``rag doctor`` and "unchanged" detection agree with the new index.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opensearchpy import OpenSearch

from solar_rag.adapters.opensearch.bootstrap import (
    create_unaliased_index,
    index_mappings_by_name,
    vector_config,
    verify_index,
)
from solar_rag.adapters.opensearch.capabilities import capabilities_for
from solar_rag.adapters.opensearch.client import build_client, translated
from solar_rag.adapters.opensearch.mapping import physical_index_name
from solar_rag.adapters.opensearch.reindex_record import RunRecord, run_record
from solar_rag.adapters.opensearch.spaces import (
    previous_index,
    recorded_space,
    space_meta,
)
from solar_rag.adapters.opensearch.store import OpenSearchVectorStore
from solar_rag.domain import DocumentStatus, SourceDocument
from solar_rag.embedding_space import EmbeddingSpace, configured_space, mismatch
from solar_rag.errors import DocumentNotFound, NotConfigured, SpaceMismatch
from solar_rag.parsing.sources import MAX_SIDECAR_BYTES, SIDECAR_SUFFIX, FileLoader, read_document
from solar_rag.ports import DocumentRegistry, ObjectStore
from solar_rag.services.reindex import LiveDocument, Reindexer, ReindexReport

if TYPE_CHECKING:
    from solar_rag.adapters.local_store import LocalDocumentRegistry
    from solar_rag.adapters.local_store.reindex import SqliteProgress
    from solar_rag.composition import Container

log = logging.getLogger(__name__)

_VERSIONED = re.compile(r"^(?P<alias>.+)-v(?P<n>\d+)$")


class BucketCorpus:
    """Live records from the registry; each document read again from the bucket."""

    def __init__(self, registry: DocumentRegistry, objects: ObjectStore | None, *,
                 load: FileLoader,
                 max_object_bytes: int, bucket: str | None) -> None:
        self._registry = registry
        self._objects = objects
        self._load = load
        self._max_object_bytes = max_object_bytes
        self._bucket = bucket

    def documents(self) -> Iterable[LiveDocument]:
        cursor: str | None = None
        while True:
            records, cursor = self._registry.list(limit=1000, cursor=cursor)
            for record in records:
                yield LiveDocument(record.id, record.content_hash, DocumentStatus(record.status),
                                   record.chunks)
            if cursor is None:
                return

    def source(self, document: LiveDocument) -> tuple[SourceDocument, str | None] | None:
        if self._objects is None:
            return None
        try:
            data, _ = self._objects.read(document.id, max_bytes=self._max_object_bytes)
        except DocumentNotFound:
            return None
        sidecar = self._objects.read_optional(document.id + SIDECAR_SUFFIX,
                                              max_bytes=MAX_SIDECAR_BYTES)
        source = f"s3://{self._bucket}/{document.id}" if self._bucket else document.id
        return read_document(self._load, data, document.id, document_id=document.id,
                             sidecar=sidecar, source=source), document.version


def live_index(client: OpenSearch, alias: str) -> tuple[str, Mapping[str, Any]]:
    with translated(index=alias, action="index check"):
        found = index_mappings_by_name(client, alias)
    if not found:
        raise NotConfigured(f"OpenSearch alias {alias!r} does not exist: run `rag opensearch "
                            "init` first (there is nothing to re-index)")
    if len(found) != 1:
        raise NotConfigured(f"OpenSearch alias {alias!r} points at {len(found)} indices "
                            f"({', '.join(sorted(found))}); `rag reindex` needs exactly one")
    ((name, mappings),) = found.items()
    return name, mappings


def next_index_name(client: OpenSearch, alias: str, live: str) -> str:
    """``<alias>-v<n+1>`` past the live index and any index of that name that exists."""
    match = _VERSIONED.match(live)
    number = int(match.group("n")) + 1 if match and match.group("alias") == alias else 2
    while True:
        name = physical_index_name(alias, number)
        with translated(index=name, action="index check"):
            if index_mappings_by_name(client, name) is None:
                return name
        number += 1


def swap_alias(client: OpenSearch, alias: str, old: str, new: str) -> None:
    """One request, so searches see the old index or the new one, never neither or both."""
    with translated(index=alias, action="alias swap"):
        client.indices.update_aliases(body={"actions": [
            {"remove": {"index": old, "alias": alias}},
            {"add": {"index": new, "alias": alias}},
        ]})


def reconcile_registry(live: DocumentRegistry, target: LocalDocumentRegistry,
                       built: Mapping[str, str]) -> int:
    """Give each live record the rebuilt copy's version, chunk ids and count, if it is still
    the version the copy was built from (under its lock: a newer write wins)."""
    updated = 0
    for document_id, from_version in built.items():
        copy = target.get(document_id)
        if copy is None or copy.status != DocumentStatus.INDEXED:
            continue
        with live.locked(document_id):
            current = live.get(document_id)
            if current is None or current.content_hash != from_version:
                continue
            live.put(replace(current, content_hash=copy.content_hash, chunks=copy.chunks,
                             chunk_ids=list(copy.chunk_ids)))
            updated += 1
    return updated


def _run_file(container: Container, alias: str) -> Path:
    return container.settings.rag_data_dir / "reindex" / f"{alias}.json"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _write_json(path: Path, body: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    with open(temp, "w", encoding="utf-8") as out:
        json.dump(body, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temp, path)


def _discard(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def reindex_opensearch(container: Container, *, rollback: bool, force: bool,
                       on_progress: Callable[[int, int, str], None] | None,
                       client: OpenSearch | None = None,
                       record: RunRecord | None = None) -> ReindexReport:
    from solar_rag.adapters.local_store import LocalDocumentRegistry
    from solar_rag.adapters.local_store.reindex import SqliteProgress
    from solar_rag.reindexing import target_indexing

    settings = container.settings
    client = client or build_client(settings)
    capabilities = capabilities_for(settings.opensearch_target)
    alias = settings.opensearch_index
    space = configured_space(settings)
    live, live_mappings = live_index(client, alias)
    record = record or run_record(settings.documents_bucket)
    run_file, run_name = _run_file(container, alias), f"{alias}.json"
    if not record.pull(run_name, run_file) and record.shared:
        run_file.unlink(missing_ok=True)  # finished elsewhere (or never started): not ours
    run = _read_json(run_file)
    resumed = False
    if rollback:
        target = previous_index(live_mappings)
        if target is None or index_mappings_by_name(client, target) is None:
            raise NotConfigured(f"nothing to roll back to: the live index {live!r} names no "
                                "earlier index that still exists")
        _require_space(client, target, space, rollback=True)
        for name, mappings in (index_mappings_by_name(client, target) or {}).items():
            # an index built before spaces were recorded: its mapping still tells the
            # dimensions (the model it cannot tell: roll back with its settings)
            verify_index(client, name, mappings, vector_config(settings), capabilities)
    elif run.get("from") == live and run.get("target") and \
            _space_of(client, str(run["target"])) == space:
        target, resumed = str(run["target"]), True
    else:
        target = next_index_name(client, alias, live)
        _write_json(run_file, {"from": live, "target": target})
        record.push(run_name, run_file)  # before the index: a concurrent second run stops here
        create_unaliased_index(client, target, vector_config(settings),
                               capabilities, space_meta(space, previous=live))

    store = OpenSearchVectorStore(
        client, index=target, dimensions=settings.embedding_dimensions,
        capabilities=replace(capabilities, require_alias=False), vector=vector_config(settings),
        space=space)
    progress_name = f"{target}.sqlite3"
    progress_file = settings.rag_data_dir / "reindex" / progress_name
    progress_file.parent.mkdir(parents=True, exist_ok=True)
    record.pull(progress_name, progress_file)
    if not resumed and not rollback:
        _discard(progress_file)  # a new index: any record of that name is an older run's
    if rollback:
        record.pull(f"{live}.sqlite3", settings.rag_data_dir / "reindex" / f"{live}.sqlite3")

    def checkpoint(done: int, total: int, label: str) -> None:
        record.push(progress_name, progress_file)  # after each batch: at most one is lost
        if on_progress is not None:
            on_progress(done, total, label)

    target_registry = LocalDocumentRegistry(progress_file)
    progress = SqliteProgress(progress_file, target_registry)
    try:
        if rollback:
            _seed_rollback(container, live, store, target_registry, progress)
        objects = container.object_store if settings.documents_bucket else None
        corpus = BucketCorpus(container.registry, objects, load=container.file_loader,
                              max_object_bytes=settings.max_object_bytes,
                              bucket=settings.documents_bucket)
        report = ReindexReport(detail={"store": "opensearch", "alias": alias, "live": live,
                                       "target": target, "resumed": resumed,
                                       "rollback": rollback, "space": space.key,
                                       "record": record.where})
        reindexer = Reindexer(corpus, target_indexing(container, store, target_registry),
                              progress, on_progress=checkpoint)
        reindexer.converge(report)
        record.push(progress_name, progress_file)
        if report.failed and not force:
            if not rollback:  # for `rag reindex --status`
                _write_json(run_file, {**_read_json(run_file), "failed": report.failed})
                record.push(run_name, run_file)
            return report
        swap_alias(client, alias, live, target)
        report.swapped = True
        reindexer.run_pass(report)  # writes that reached the old index during the last pass
        report.detail["registry_updated"] = reconcile_registry(
            container.registry, target_registry, progress.built())
        record.push(progress_name, progress_file)  # kept: a rollback reads it
        run_file.unlink(missing_ok=True)
        record.remove(run_name)
        return report
    finally:
        progress.close()
        target_registry.close()


def _space_of(client: OpenSearch, index: str) -> EmbeddingSpace | None:
    found = index_mappings_by_name(client, index) or {}
    spaces = [recorded_space(mappings) for mappings in found.values()]
    return spaces[0] if spaces else None


def _require_space(client: OpenSearch, index: str, space: EmbeddingSpace, *,
                   rollback: bool) -> None:
    recorded = _space_of(client, index)
    if recorded is not None and recorded != space:
        error = mismatch(f"OpenSearch index {index!r}", recorded, space)
        if rollback:
            raise SpaceMismatch(f"cannot roll back: {error.message}. Roll back with the "
                                "settings the previous index was built with.")
        raise error


def _seed_rollback(container: Container, live: str, store: OpenSearchVectorStore,
                   target_registry: LocalDocumentRegistry, progress: SqliteProgress) -> None:
    """The previous index still holds every document as it was at the swap. From the record
    of the run that built the live index: each document's previous version goes into the
    rollback target's registry, and a document the live registry has not changed since the
    swap is marked built (nothing to embed); the others are rebuilt by the pass."""
    from solar_rag.adapters.local_store import LocalDocumentRegistry
    from solar_rag.adapters.local_store.reindex import SqliteProgress as Progress

    progress.clear()
    forward_file = container.settings.rag_data_dir / "reindex" / f"{live}.sqlite3"
    if not forward_file.exists():
        log.warning("no record of the run that built %s here: every document is rebuilt", live)
        return
    forward = LocalDocumentRegistry(forward_file)
    forward_progress = Progress(forward_file, forward)
    try:
        before = forward_progress.built()
        held = store.document_versions()  # what the previous index holds, per document
        for document_id in sorted(forward_progress.target_documents()):
            copy, previous_version = forward.get(document_id), before.get(document_id)
            if copy is None or previous_version is None or copy.content_hash is None:
                continue
            target_registry.put(replace(
                copy, content_hash=previous_version, chunk_ids=[],
                chunks=held.get(document_id, {}).get(previous_version, 0)))
            now = container.registry.get(document_id)
            if now is not None and now.content_hash == copy.content_hash:
                progress.mark(document_id, copy.content_hash)
    finally:
        forward_progress.close()
        forward.close()


def reindex_status(container: Container, *, record: RunRecord | None = None) -> dict[str, Any]:
    """The unfinished run of this alias, as any machine sees it (the shared record): target,
    documents built / live total, the failures its last pass reported."""
    import sqlite3
    import tempfile

    settings = container.settings
    alias = settings.opensearch_index
    record = record or run_record(settings.documents_bucket)
    local = settings.rag_data_dir / "reindex"
    with tempfile.TemporaryDirectory() as temp:
        run_file = Path(temp) / f"{alias}.json"
        if not record.pull(f"{alias}.json", run_file) and not record.shared:
            run_file = local / f"{alias}.json"
        run = _read_json(run_file)
        status: dict[str, Any] = {"alias": alias, "record": record.where,
                                  "running": bool(run.get("target"))}
        if not status["running"]:
            return status
        target = str(run["target"])
        progress_file = Path(temp) / f"{target}.sqlite3"
        if not record.pull(f"{target}.sqlite3", progress_file) and not record.shared:
            progress_file = local / f"{target}.sqlite3"
        built = 0
        if progress_file.exists():
            conn = sqlite3.connect(f"file:{progress_file}?mode=ro", uri=True)
            try:
                (built,) = conn.execute("SELECT count(*) FROM reindex_progress").fetchone()
            except sqlite3.OperationalError:
                built = 0  # killed before its first batch
            finally:
                conn.close()
    live = [doc for doc in BucketCorpus(container.registry, None, load=container.file_loader,
                                        max_object_bytes=0, bucket=None).documents()
            if doc.status != DocumentStatus.DELETED and doc.version is not None]
    failed = run.get("failed") if isinstance(run.get("failed"), dict) else {}
    return {**status, "live": run.get("from"), "target": target, "built": int(built),
            "total": len(live), "failed": failed}
