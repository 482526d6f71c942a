"""Per-document exclusive locks that hold across threads and processes (``flock``).

Each document has a lock file ``<data_dir>/locks/<sha256(id)>.lock``. ``flock`` locks belong
to an open file description, so two threads opening the file separately exclude each other
just as two processes do, and the kernel drops the lock if the holder dies. Lock files are
never deleted: removing one while another process waits on it would let two holders in.
The lock is not re-entrant: taking it again in the same thread waits for the timeout.
Waiting polls under ``retry.DOCUMENT_LOCK_LOCAL`` (2 ms doubling to 50 ms, until the timeout).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from solar_rag import errors
from solar_rag.resilience import retry

DEFAULT_TIMEOUT_SECONDS = retry.DOCUMENT_LOCK_LOCAL_SECONDS
_HELD = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def lock_path(directory: Path, document_id: str) -> Path:
    digest = hashlib.sha256(document_id.encode("utf-8")).hexdigest()
    return directory / f"{digest}.lock"


@contextmanager
def document_lock(
    directory: Path,
    document_id: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(directory, document_id), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            retry.retrying(
                retry.DOCUMENT_LOCK_LOCAL.with_patience(timeout), clock=clock, sleep=sleep,
                retry_on=lambda error: isinstance(error, OSError) and error.errno in _HELD,
                before_sleep=retry.quiet,
            )(fcntl.flock, fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _HELD:
                raise
            raise errors.ConcurrentUpdate(
                f"document {document_id!r} is being updated by another writer; retry later"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
