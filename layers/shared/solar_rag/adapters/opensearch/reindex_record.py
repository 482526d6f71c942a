"""Where `rag reindex` on OpenSearch keeps its run record, so any machine can resume a run.

The record is two files the run works on locally (``RAG_DATA_DIR/reindex/``): the run file
``<alias>.json`` (which index is being built from which) and the target's SQLite file
``<target>.sqlite3`` (the target's registry and the progress: which document is in the
target, built from which live version). With a documents bucket they are mirrored to
``s3://<bucket>/.solar-rag/reindex/`` (the reserved prefix the indexer ignores): pulled when
a run starts (the bucket's copy wins over a local one), pushed after every batch of
documents (a consistent SQLite snapshot). A killed run loses at most one batch of progress,
wherever it is resumed (docs/decisions.md, "Re-embedding operations").

Every push is conditional: ``If-Match`` the ETag this run read or wrote last, or
``If-None-Match: *`` when there was none. A second run of the same re-index writing
meanwhile makes the first one stop (``RecordTaken``) instead of both overwriting each
other's progress.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from solar_rag.adapters.aws_clients import client, error_code
from solar_rag.errors import ConcurrentUpdate, UpstreamError, UpstreamTimeout

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = ".solar-rag/reindex/"
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_TAKEN = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


class RecordTaken(ConcurrentUpdate):
    """Another run wrote the record since this one read it."""


class RunRecord(Protocol):
    def pull(self, name: str, path: Path) -> bool:
        """Replace ``path`` with the shared copy of ``name``; False when there is none."""
        ...

    def push(self, name: str, path: Path) -> None:
        """Share ``path`` (a SQLite file is snapshotted) as ``name``."""
        ...

    def remove(self, name: str) -> None: ...

    @property
    def where(self) -> str: ...

    @property
    def shared(self) -> bool:
        """Whether other machines see the record (then its absence there is authoritative)."""
        ...


class LocalRecord:
    """No bucket: the record stays on this machine."""

    def pull(self, name: str, path: Path) -> bool:
        return False

    def push(self, name: str, path: Path) -> None:
        return None

    def remove(self, name: str) -> None:
        return None

    @property
    def where(self) -> str:
        return "local"

    @property
    def shared(self) -> bool:
        return False


def snapshot(path: Path) -> bytes:
    """The file's bytes; for a SQLite file a consistent copy (the backup API, WAL included)."""
    if path.suffix != ".sqlite3":
        return path.read_bytes()
    with tempfile.TemporaryDirectory() as temp:
        copy = Path(temp) / "snapshot.sqlite3"
        source = sqlite3.connect(path)
        target = sqlite3.connect(copy)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        return copy.read_bytes()


def replace_file(path: Path, data: bytes) -> None:
    """Atomically, with a SQLite file's stale WAL/journal removed (they belong to the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".pull")
    with open(temp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    for suffix in _SQLITE_SIDECARS:
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    os.replace(temp, path)


class S3RunRecord:
    def __init__(self, bucket: str, *, s3_client: S3Client | None = None) -> None:
        self._bucket = bucket
        self._client = s3_client
        self._etags: dict[str, str] = {}
        self._digests: dict[str, str] = {}

    @property
    def where(self) -> str:
        return f"s3://{self._bucket}/{PREFIX}"

    @property
    def shared(self) -> bool:
        return True

    def _s3(self) -> S3Client:
        if self._client is None:
            self._client = client("s3")
        return self._client

    def _key(self, name: str) -> str:
        return PREFIX + name

    def pull(self, name: str, path: Path) -> bool:
        try:
            response = self._s3().get_object(Bucket=self._bucket, Key=self._key(name))
            data = response["Body"].read()
        except Exception as error:
            if error_code(error) in _NOT_FOUND:
                self._etags.pop(name, None)
                return False
            raise self._failed("read", name, error) from None
        replace_file(path, data)
        self._etags[name] = str(response["ETag"])
        self._digests[name] = hashlib.sha256(data).hexdigest()
        return True

    def push(self, name: str, path: Path) -> None:
        data = snapshot(path)
        digest = hashlib.sha256(data).hexdigest()
        if self._digests.get(name) == digest and name in self._etags:
            return  # nothing changed since the last push
        etag = self._etags.get(name)
        try:
            if etag is None:
                response = self._s3().put_object(Bucket=self._bucket, Key=self._key(name),
                                                 Body=data, IfNoneMatch="*")
            else:
                response = self._s3().put_object(Bucket=self._bucket, Key=self._key(name),
                                                 Body=data, IfMatch=etag)
        except Exception as error:
            if error_code(error) in _TAKEN:
                raise RecordTaken(
                    f"another `rag reindex` wrote {self.where}{name} since this run read it: "
                    "two runs of one re-index at once. This one stops; let the other finish "
                    "(`rag reindex --status`)") from None
            raise self._failed("write", name, error) from None
        self._etags[name] = str(response["ETag"])
        self._digests[name] = digest

    def remove(self, name: str) -> None:
        try:
            self._s3().delete_object(Bucket=self._bucket, Key=self._key(name))
        except Exception as error:
            if error_code(error) not in _NOT_FOUND:
                raise self._failed("delete", name, error) from None
        self._etags.pop(name, None)
        self._digests.pop(name, None)

    def _failed(self, action: str, name: str, error: Exception) -> Exception:
        kind = type(error).__name__
        if "Timeout" in kind or "EndpointConnection" in kind or "ConnectionClosed" in kind:
            return UpstreamTimeout(f"S3 timed out when asked to {action} the reindex record "
                                   f"{self.where}{name} ({kind})")
        return UpstreamError(f"could not {action} the reindex record {self.where}{name} in S3 "
                             f"({error_code(error) or kind})")


def run_record(bucket: str | None) -> RunRecord:
    return S3RunRecord(bucket) if bucket else LocalRecord()
