"""Per-document exclusive locks that hold across threads and processes (``flock``).

Each document has a lock file ``<data_dir>/locks/<sha256(id)>.lock``. ``flock`` locks belong
to an open file description, so two threads opening the file separately exclude each other
just as two processes do, and the kernel drops the lock if the holder dies. Lock files are
never deleted: removing one while another process waits on it would let two holders in.
The lock is not re-entrant: taking it again in the same thread waits for the timeout.
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

DEFAULT_TIMEOUT_SECONDS = 30.0
_FIRST_POLL = 0.002
_MAX_POLL = 0.05


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
        deadline = clock() + timeout
        poll = _FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            remaining = deadline - clock()
            if remaining <= 0:
                raise errors.ConcurrentUpdate(
                    f"document {document_id!r} is being updated by another writer; retry later"
                )
            sleep(min(poll, remaining))
            poll = min(poll * 2, _MAX_POLL)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
