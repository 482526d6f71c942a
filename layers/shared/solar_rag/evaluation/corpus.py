"""``rag eval --index DIR``: send a folder of documents to the service before the questions.

Each file goes through ``POST /v1/files`` (parsed by its extension, as ``rag index``), with the
document id = its path relative to ``DIR`` (``ko/leave-policy.md``), the ids the questions file
names. Sending the same files again is cheap: unchanged documents are not re-embedded. Files
the deployed API queues (``202``) are waited for until indexed. Only the types every service
reads are sent (the built-in readers'): whether a service reads images or office files depends
on its Document Parse settings (``DOCUMENT_PARSE_TYPES``), which a client cannot see.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from solar_rag.evaluation.errors import RequestFailed
from solar_rag.parsing.content_types import BUILT_IN_EXTENSIONS

if TYPE_CHECKING:
    from solar_rag.evaluation.client import ServiceClient

QUEUED_WAIT_SECONDS = 300.0
POLL_SECONDS = 2.0
MAX_FILE_BYTES = 3 * 1024 * 1024
"""A file travels base64 in a JSON body; the deployed API takes 4 MiB bodies."""


def corpus_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ValueError(f"--index {directory}: not a directory")
    files = sorted(p for p in directory.rglob("*") if p.is_file()
                   and p.suffix.lower() in BUILT_IN_EXTENSIONS
                   and not p.name.endswith(".metadata.json")
                   and not any(part.startswith(".") for part in p.relative_to(directory).parts))
    if not files:
        raise ValueError(f"--index {directory}: no {' '.join(sorted(BUILT_IN_EXTENSIONS))} files")
    return files


def index_directory(client: ServiceClient, directory: Path, *,
                    sleep: Callable[[float], None] = time.sleep,
                    wait_seconds: float = QUEUED_WAIT_SECONDS) -> dict[str, int]:
    """Counts of ``indexed``/``unchanged``/``queued`` (then waited for); ``ValueError`` naming the
    files that could not be indexed."""
    counts: Counter[str] = Counter()
    failures: list[str] = []
    queued: list[str] = []
    for path in corpus_files(directory):
        document_id = path.relative_to(directory).as_posix()
        data = path.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            failures.append(f"{document_id}: larger than {MAX_FILE_BYTES} bytes (use rag index or "
                            "an upload for big files)")
            continue
        try:
            body = client.call("POST", "v1/files", {
                "filename": path.name, "id": document_id,
                "data_base64": base64.b64encode(data).decode("ascii")}).body
        except RequestFailed as error:
            failures.append(f"{document_id}: {error}")
            continue
        for item in body.get("documents", []):
            status = str(item.get("status"))
            counts[status] += 1
            if status == "queued":
                queued.append(str(item.get("id")))
    if failures:
        raise ValueError("could not index:\n" + "\n".join(f"  {f}" for f in failures))
    _wait_for(client, queued, sleep=sleep, wait_seconds=wait_seconds)
    return dict(counts)


def _wait_for(client: ServiceClient, queued: list[str], *, sleep: Callable[[float], None],
              wait_seconds: float) -> None:
    waited = 0.0
    pending = list(queued)
    while pending:
        still: list[str] = []
        for document_id in pending:
            try:
                status = client.call("GET", f"v1/documents/{_quote(document_id)}").body.get("status")
            except RequestFailed as error:
                raise ValueError(f"{document_id}: status unknown ({error})") from None
            if status == "failed":
                raise ValueError(f"{document_id}: indexing failed (see GET /v1/documents/{document_id})")
            if status != "indexed":
                still.append(document_id)
        pending = still
        if pending:
            if waited >= wait_seconds:
                raise ValueError(f"not indexed after {wait_seconds:.0f} s: {', '.join(pending)}")
            sleep(POLL_SECONDS)
            waited += POLL_SECONDS


def _quote(document_id: str) -> str:
    from urllib.parse import quote

    return quote(document_id, safe="/")
