"""Crash suite (issue 13): `rag serve` and `rag index` killed with SIGKILL in the middle of writes.

Each kill: a child process runs the real command (``solar_rag.cli.main(["serve", ...])`` or
``main(["index", ...])``) on a local store; it is forked from this process, which imported
everything once, so a restart costs milliseconds instead of an interpreter start. A write is
sent (``POST /v1/documents`` of 1-4 documents, or a ``DELETE``; for the CLI, a folder whose files
changed), and the child is killed with SIGKILL after a seeded random delay drawn around the
write's measured duration, so kills land before, inside and after the store's transaction.
After each kill (and the restart that follows) the checks are:

- **registry and store agree**: every chunk belongs to a live registry row, of the version it
  acknowledges (content hash), with exactly the recorded chunk ids; no row is left
  ``indexing``; the keyword index has a row per chunk; SQLite's ``quick_check`` passes;
- **every searchable chunk belongs to a listed document**: through the restarted server,
  ``GET /v1/documents`` lists exactly the live rows and a keyword search returns only chunks
  of listed documents, of the version listed;
- **acknowledged versions are served**: a document whose last write was acknowledged (a 2xx
  read from the socket, or the CLI's completed run) serves exactly that version; after a write
  killed before its answer, the document serves the previous acknowledged version or the new
  one, nothing else (never a mixture: chunks and title carry the version's tag).

Run the long variant: ``python -m tests.reliability.crash --serve-kills 1000 --index-kills 500``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

DOCUMENTS = 8
DIMENSIONS = 64
PARAGRAPHS = 40
"""Paragraphs per document: ~6 KB, a dozen chunks, so a write lasts long enough to be hit."""


SERVE_KILLS, INDEX_KILLS, SEED = 120, 80, 13
"""The CI variant."""


@dataclass(frozen=True, slots=True)
class CrashConfig:
    serve_kills: int = SERVE_KILLS
    index_kills: int = INDEX_KILLS
    seed: int = SEED


@dataclass
class CrashResult:
    serve_kills: int = 0
    index_kills: int = 0
    killed_before_answer: int = 0
    answered_before_kill: int = 0
    acknowledged_writes: int = 0
    unanswered_none_applied: int = 0
    unanswered_partly_applied: int = 0
    """Killed after some documents of the request were committed and before the others."""
    unanswered_all_applied: int = 0
    checks: int = 0
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def kills(self) -> int:
        return self.serve_kills + self.index_kills

    def as_dict(self) -> dict[str, Any]:
        return {"kills_total": self.kills, "serve_kills": self.serve_kills,
                "index_kills": self.index_kills,
                "killed_before_answer": self.killed_before_answer,
                "answered_before_kill": self.answered_before_kill,
                "acknowledged_writes": self.acknowledged_writes,
                "unanswered_none_applied": self.unanswered_none_applied,
                "unanswered_partly_applied": self.unanswered_partly_applied,
                "unanswered_all_applied": self.unanswered_all_applied, "checks": self.checks,
                "mismatches": len(self.mismatches), "seconds": round(self.seconds, 1)}


def _tag(document: str, version: int) -> str:
    return f"{document} v{version}"


def _text(document: str, version: int) -> str:
    tag = _tag(document, version).replace(" ", "-")
    return "\n\n".join(f"Paragraph {i} of {tag}: alpha beta gamma delta {tag} epsilon zeta "
                       f"eta theta iota kappa lambda {i * version}." for i in range(PARAGRAPHS))


# -- the child processes -----------------------------------------------------------------------

def _fork(argv: Sequence[str], data_dir: Path, cwd: Path, log: Path) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:  # the child: the real command, never back into the caller's stack
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.chdir(cwd)
        for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "DOCUMENTS_TABLE",
                     "OPENSEARCH_URL", "OPENSEARCH_ENDPOINT"):
            os.environ.pop(name, None)
        os.environ.update(RAG_DATA_DIR=str(data_dir), VECTOR_STORE="local",
                          EMBEDDING_DIMENSIONS=str(DIMENSIONS))
        from solar_rag.cli import main

        code = main(list(argv))
    finally:
        os._exit(code)


def _kill(pid: int) -> int | None:
    """SIGKILL ``pid`` (if still running) and reap it; its exit code if it ended by itself."""
    with contextlib.suppress(ProcessLookupError):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(port: int, method: str, path: str, body: Any = None,
             timeout: float = 10.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload,
                     headers={"content-type": "application/json"} if payload else {})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()


def _wait_ready(port: int, pid: int, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if _request(port, "GET", "/v1/health", timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            raise RuntimeError("rag serve exited before answering")
        time.sleep(0.005)
    raise RuntimeError("rag serve did not start")


# -- what must hold ----------------------------------------------------------------------------

@dataclass
class Expectation:
    """Per document: the versions it may serve (None = absent)."""

    allowed: dict[str, set[int | None]] = field(default_factory=dict)

    def attempted(self, document: str, version: int | None) -> None:
        self.allowed.setdefault(document, {None}).add(version)

    def acknowledged(self, document: str, version: int | None) -> None:
        self.allowed[document] = {version}


def served_versions(database: Path) -> dict[str, int | None]:
    conn = _open(database)
    if conn is None:
        return {}
    try:
        return {row[0]: _served_version(row[1]) for row in conn.execute(
            "SELECT id, title FROM documents WHERE status = 'indexed'")}
    finally:
        conn.close()


def count_applied(result: CrashResult, writes: dict[str, int | None],
                  served: dict[str, int | None]) -> None:
    """How much of an unanswered write the store holds (all of a document, or none of it)."""
    applied = sum(1 for document, version in writes.items() if served.get(document) == version)
    if applied == 0:
        result.unanswered_none_applied += 1
    elif applied < len(writes):
        result.unanswered_partly_applied += 1
    else:
        result.unanswered_all_applied += 1


def _served_version(title: str | None) -> int | None:
    return int(title.rsplit(" v", 1)[1]) if title else None


def check_store(database: Path, expectation: Expectation, where: str) -> list[str]:
    """Registry and chunks in the file agree, and serve an allowed version of each document."""
    problems: list[str] = []
    conn = _open(database)
    try:
        if conn is None:  # killed before the store was ever created: nothing is served
            records: dict[str, tuple[Any, ...]] = {}
            chunks: dict[str, list[tuple[str, str, str]]] = {}
            fts = total = 0
            return _compare(records, chunks, fts, total, expectation, where)
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            problems.append(f"{where}: quick_check failed")
        records = {row[0]: row[1:] for row in conn.execute(
            "SELECT id, status, title, chunks, content_hash, chunk_ids FROM documents")}
        chunks = {}
        for document, version, chunk_id, title in conn.execute(
                "SELECT document_id, version, chunk_id, title FROM chunks"):
            chunks.setdefault(document, []).append((version, chunk_id, title))
        fts = conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    finally:
        if conn is not None:
            conn.close()
    return problems + _compare(records, chunks, fts, total, expectation, where)


def _open(database: Path) -> sqlite3.Connection | None:
    """The file if it exists and has the schema (the schema is created in one transaction)."""
    try:
        conn = sqlite3.connect(f"file:{database}?mode=rw", uri=True)
    except sqlite3.OperationalError:
        return None
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if "documents" not in tables:
        conn.close()
        return None
    return conn


def _compare(records: dict[str, tuple[Any, ...]], chunks: dict[str, list[tuple[str, str, str]]],
             fts: int, total: int, expectation: Expectation, where: str) -> list[str]:
    problems: list[str] = []
    if fts != total:
        problems.append(f"{where}: {fts} keyword rows for {total} chunks")
    for document, rows in chunks.items():
        record = records.get(document)
        if record is None or record[0] in ("deleted", "indexing"):
            problems.append(f"{where}: {len(rows)} chunks of {document!r} not listed ({record})")
            continue
        status, title, count, content_hash, chunk_ids = record
        if {v for v, _, _ in rows} != {content_hash}:
            problems.append(f"{where}: {document!r} chunks of versions {({v for v, _, _ in rows})}"
                            f", registry acknowledges {content_hash}")
        if sorted(c for _, c, _ in rows) != sorted(json.loads(chunk_ids)) or len(rows) != count:
            problems.append(f"{where}: {document!r} chunk ids differ from the registry's")
        if {t for _, _, t in rows} != {title}:
            problems.append(f"{where}: {document!r} chunks titled {({t for _, _, t in rows})}, "
                            f"registry {title!r}")
    for document, (status, _, count, _, _) in records.items():
        if status == "indexing":
            problems.append(f"{where}: {document!r} left indexing")
        if status == "indexed" and count != len(chunks.get(document, [])):
            problems.append(f"{where}: {document!r} indexed with {count} chunks, store has "
                            f"{len(chunks.get(document, []))}")
    for document, allowed in expectation.allowed.items():
        record = records.get(document)
        served = (_served_version(record[1]) if record is not None and record[0] == "indexed"
                  else None)
        if served not in allowed:
            problems.append(f"{where}: {document!r} serves v{served}, allowed {sorted(allowed, key=str)}")
    return problems


def check_api(port: int, database: Path, where: str) -> list[str]:
    """Through the restarted server: listed == live rows; search finds listed versions only."""
    problems: list[str] = []
    status, body = _request(port, "GET", "/v1/documents?limit=1000")
    listed = {d["id"]: d for d in body["documents"]} if status == 200 else {}
    conn = _open(database)
    live: set[str] = set()
    if conn is not None:
        try:
            live = {row[0] for row in conn.execute(
                "SELECT id FROM documents WHERE status != 'deleted'")}
        finally:
            conn.close()
    if set(listed) != live:
        problems.append(f"{where}: API lists {sorted(listed)}, registry {sorted(live)}")
    status, body = _request(port, "POST", "/v1/search",
                            {"query": "alpha epsilon", "mode": "keyword", "top_k": 50})
    for hit in body["results"] if status == 200 else []:
        document = listed.get(hit["document_id"])
        if document is None or document["status"] != "indexed":
            problems.append(f"{where}: search returned a chunk of unlisted {hit['document_id']!r}")
        elif hit["title"] != document["title"]:
            problems.append(f"{where}: search serves {hit['title']!r}, listed {document['title']!r}")
    return problems


# -- the two scenarios -------------------------------------------------------------------------

class _Pace:
    """Kill delays around the duration of a write (seeded), learnt from the kills themselves:
    a write answered before its kill took less than the delay, one cut took more."""

    def __init__(self, rng: random.Random, first: float) -> None:
        self.rng = rng
        self.estimate = first
        self.last = first

    def answered(self) -> None:
        self.estimate = 0.75 * self.estimate + 0.25 * 0.9 * self.last

    def cut(self) -> None:
        self.estimate = 0.75 * self.estimate + 0.25 * max(self.estimate, 1.2 * self.last)

    def delay(self) -> float:
        """Mostly in the last quarter of a write (where the store is written), sometimes
        anywhere, or after the answer."""
        if self.rng.random() < 0.7:
            self.last = self.rng.uniform(0.75 * self.estimate, 1.05 * self.estimate)
        else:
            self.last = self.rng.uniform(0.0, 1.3 * self.estimate)
        return self.last


def run_serve(kills: int, rng: random.Random, workdir: Path, result: CrashResult) -> None:
    data_dir, port = workdir / "serve-data", _free_port()
    database, log = data_dir / "rag.sqlite3", workdir / "serve.log"
    expectation, versions = Expectation(), dict.fromkeys(range(DOCUMENTS), 0)
    pace = _Pace(rng, 0.05)
    for kill in range(kills):
        pid = _fork(["serve", "--port", str(port), "--log-level", "warning"], data_dir, workdir,
                    log)
        try:
            _wait_ready(port, pid)
            if kill:
                result.mismatches += check_api(port, database, f"serve kill {kill}")
            ids = rng.sample(range(DOCUMENTS), rng.randint(1, 4))
            if rng.random() < 0.15:
                method, path, body = "DELETE", "/v1/documents/" + quote(f"doc/{ids[0]}"), None
                writes: dict[str, int | None] = {f"doc/{ids[0]}": None}
            else:
                for i in ids:
                    versions[i] += 1
                writes = {f"doc/{i}": versions[i] for i in ids}
                method, path = "POST", "/v1/documents"
                body = {"documents": [{"id": d, "title": _tag(d, v or 0), "text": _text(d, v or 0)}
                                      for d, v in writes.items()]}
            for document, version in writes.items():
                expectation.attempted(document, version)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            payload = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=payload,
                         headers={"content-type": "application/json"} if payload else {})
            time.sleep(pace.delay())
        finally:
            _kill(pid)
        result.serve_kills += 1
        try:
            response = conn.getresponse()
            status = response.status
            response.read()
        except (OSError, http.client.HTTPException):
            status = None
        finally:
            conn.close()
        if status in (200, 204, 404):  # answered before the kill: acknowledged
            pace.answered()
            result.answered_before_kill += 1
            result.acknowledged_writes += 1
            for document, version in writes.items():
                expectation.acknowledged(document, version)
        elif status is None:
            pace.cut()
            result.killed_before_answer += 1
            count_applied(result, writes, served_versions(database))
        else:
            result.mismatches.append(f"serve kill {kill}: unexpected HTTP {status}")
        result.checks += 1
        result.mismatches += check_store(database, expectation, f"serve kill {kill}")


def run_index(kills: int, rng: random.Random, workdir: Path, result: CrashResult) -> None:
    data_dir, corpus = workdir / "index-data", workdir / "corpus"
    database, log = data_dir / "rag.sqlite3", workdir / "index.log"
    corpus.mkdir(exist_ok=True)
    expectation, versions = Expectation(), dict.fromkeys(range(DOCUMENTS), 0)
    pace = _Pace(rng, 0.15)

    def write_file(i: int) -> None:
        document = f"corpus/f{i}.md"
        (workdir / document).write_text(f"# {_tag(document, versions[i])}\n\n"
                                        + _text(document, versions[i]), encoding="utf-8")
        expectation.attempted(document, versions[i])

    for i in range(DOCUMENTS):
        write_file(i)
    for kill in range(kills):
        for i in rng.sample(range(DOCUMENTS), rng.randint(1, 4)):
            versions[i] += 1
            write_file(i)
        writes: dict[str, int | None] = {f"corpus/f{i}.md": versions[i] for i in range(DOCUMENTS)}
        before = served_versions(database)
        pid = _fork(["index", "corpus"], data_dir, workdir, log)
        time.sleep(pace.delay())
        code = _kill(pid)
        result.index_kills += 1
        if code is None:
            pace.cut()
            result.killed_before_answer += 1
            count_applied(result, {d: v for d, v in writes.items() if before.get(d) != v},
                          served_versions(database))
        elif code == 0:  # the run finished: every file's current version is acknowledged
            pace.answered()
            result.answered_before_kill += 1
            result.acknowledged_writes += 1
            for i in range(DOCUMENTS):
                expectation.acknowledged(f"corpus/f{i}.md", versions[i])
        else:
            result.mismatches.append(f"index kill {kill}: rag index exited {code}")
        result.checks += 1
        result.mismatches += check_store(database, expectation, f"index kill {kill}")


def preload() -> None:
    """Import what the children run, once, before forking them."""
    import uvicorn
    from solar_rag.adapters.local_store import LocalVectorStore  # noqa: F401
    from solar_rag.adapters.offline_embedder import HashingEmbedder  # noqa: F401
    from solar_rag.api.app import create_app
    from solar_rag.cli import main  # noqa: F401
    from solar_rag.parsing.files import load_file  # noqa: F401
    from solar_rag.parsing.parsers import parse_document  # noqa: F401
    from solar_rag.services.indexing import IndexingService  # noqa: F401
    from solar_rag.text.chunking import Chunker  # noqa: F401

    for name in ("health", "chat", "query", "documents"):
        __import__(f"solar_rag.api.routers.{name}")
    # What uvicorn imports when it starts (loop, protocols, lifespan), without serving.
    uvicorn.Config(create_app(lambda: None), log_level="warning").load()  # type: ignore[arg-type, return-value]


def run_crash_suite(config: CrashConfig, workdir: Path) -> CrashResult:
    preload()
    result = CrashResult()
    started = time.monotonic()
    rng = random.Random(config.seed)
    run_serve(config.serve_kills, rng, workdir, result)
    run_index(config.index_kills, rng, workdir, result)
    result.seconds = time.monotonic() - started
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve-kills", type=int, default=SERVE_KILLS)
    parser.add_argument("--index-kills", type=int, default=INDEX_KILLS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--figures", type=Path, default=None,
                        help="write the figures and mismatches here as JSON")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run_crash_suite(CrashConfig(args.serve_kills, args.index_kills, args.seed),
                                 workdir)
    print(json.dumps(result.as_dict(), indent=2))
    if args.figures:
        args.figures.write_text(json.dumps({**result.as_dict(), "mismatch_examples":
                                            result.mismatches[:20]}, indent=2), encoding="utf-8")
    for mismatch in result.mismatches[:20]:
        print(mismatch, file=sys.stderr)
    return 1 if result.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
