"""Which SQLite file under ``RAG_DATA_DIR`` is live: a small pointer file swapped atomically.

Without ``live.json`` the live file is ``rag.sqlite3`` (every store made before re-indexing
existed). ``rag reindex`` builds ``gen-<n>/rag.sqlite3`` beside it (its own folder, so its
document locks are its own) and then replaces ``live.json`` with ``os.replace``: a process
that opens the store afterwards opens the new file; one that already holds the old file
keeps reading it (it is kept for ``rag reindex --rollback``), but its writes are refused
from the swap on (``Database.write`` asks ``is_retired`` inside its transaction), so none
can land in a file nobody reads any more.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from solar_rag import errors

POINTER = "live.json"
DEFAULT_FILE = "rag.sqlite3"
GENERATION_DIR = re.compile(r"^gen-(\d+)$")


@dataclass(frozen=True, slots=True)
class Generations:
    live: str = DEFAULT_FILE
    """Path of the live file, relative to the data directory."""
    previous: str | None = None
    """The file that was live before the last swap (the rollback target)."""
    retired: tuple[str, ...] = field(default_factory=tuple)
    """Files that were live once and no longer are: their writes are refused."""
    swapped_at: str | None = None

    def to_json(self) -> str:
        return json.dumps({"live": self.live, "previous": self.previous,
                           "retired": list(self.retired), "swapped_at": self.swapped_at})


def read_generations(data_dir: Path) -> Generations:
    try:
        raw = (data_dir / POINTER).read_text(encoding="utf-8")
    except FileNotFoundError:
        return Generations()
    except OSError as exc:
        raise errors.NotConfigured(f"cannot read {data_dir / POINTER}: {exc.strerror}") from exc
    try:
        body = json.loads(raw)
        return Generations(live=_relative(body["live"]),
                           previous=None if body.get("previous") is None
                           else _relative(body["previous"]),
                           retired=tuple(_relative(r) for r in body.get("retired") or ()),
                           swapped_at=body.get("swapped_at"))
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.NotConfigured(
            f"{data_dir / POINTER} is not a valid pointer file ({exc}); it names the live "
            "store file, e.g. {\"live\": \"gen-2/rag.sqlite3\"}") from None


def _relative(value: object) -> str:
    text = str(value)
    if not text or text.startswith("/") or ".." in Path(text).parts:
        raise ValueError(f"{text!r} is not a path inside the data directory")
    return text


def live_database(data_dir: Path) -> Path:
    return data_dir / read_generations(data_dir).live


def new_generation(data_dir: Path) -> str:
    """A fresh ``gen-<n>/rag.sqlite3`` (relative), numbered after every existing one."""
    numbers = [int(m.group(1)) for child in data_dir.iterdir() if child.is_dir()
               and (m := GENERATION_DIR.match(child.name))] if data_dir.exists() else []
    return f"gen-{max([1, *numbers]) + 1}/{DEFAULT_FILE}"


def swap(data_dir: Path, new_live: str) -> Generations:
    """Make ``new_live`` the live file in one ``os.replace``; the old one is kept, retired."""
    current = read_generations(data_dir)
    retired = tuple(r for r in (*current.retired, current.live) if r != new_live)
    updated = Generations(live=new_live, previous=current.live,
                          retired=tuple(dict.fromkeys(retired)),
                          swapped_at=datetime.now(UTC).isoformat())
    write_generations(data_dir, updated)
    return updated


def write_generations(data_dir: Path, generations: Generations) -> None:
    fd, temp = tempfile.mkstemp(prefix=".live-", suffix=".json", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(generations.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, data_dir / POINTER)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class RetiredCheck:
    """Whether a database file has been replaced by a swap (pointer re-read only when the
    pointer file changes: one ``stat`` per write)."""

    def __init__(self, database: Path) -> None:
        database = database.resolve()
        self._candidates = [(database.parent, database.name)]
        if GENERATION_DIR.match(database.parent.name):
            self._candidates.append((database.parent.parent,
                                     f"{database.parent.name}/{database.name}"))
        self._state: dict[Path, tuple[tuple[int, int, int] | None, bool]] = {}

    def __call__(self) -> bool:
        for data_dir, name in self._candidates:
            pointer = data_dir / POINTER
            try:
                stat = pointer.stat()
                signature: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_ino,
                                                           stat.st_size)
            except FileNotFoundError:
                signature = None
            cached = self._state.get(pointer)
            if cached is None or cached[0] != signature:
                retired = signature is not None and name in read_generations(data_dir).retired
                cached = self._state[pointer] = (signature, retired)
            if cached[1]:
                return True
        return False


def unretire(data_dir: Path, name: str) -> None:
    """Let ``name`` take writes again (the file ``rag reindex --rollback`` rebuilds into)."""
    current = read_generations(data_dir)
    if name in current.retired:
        write_generations(data_dir, Generations(
            live=current.live, previous=current.previous,
            retired=tuple(r for r in current.retired if r != name),
            swapped_at=current.swapped_at))
