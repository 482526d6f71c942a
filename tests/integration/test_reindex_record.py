"""The shared run record of `rag reindex` (``adapters/opensearch/reindex_record.py``): S3
(moto) with conditional writes, SQLite snapshots taken while the run holds the file open."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from solar_rag.adapters.opensearch.reindex_record import (
    PREFIX,
    LocalRecord,
    RecordTaken,
    S3RunRecord,
    run_record,
)
from solar_rag.errors import UpstreamError

BUCKET = "docs"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def record(s3: Any) -> S3RunRecord:
    return S3RunRecord(BUCKET, s3_client=s3)


def test_a_second_writer_makes_the_first_stop(s3: Any, tmp_path: Path) -> None:
    a, b = record(s3), record(s3)
    path_a, path_b = tmp_path / "a" / "rag-chunks.json", tmp_path / "b" / "rag-chunks.json"
    assert a.pull("rag-chunks.json", path_a) is False
    path_a.parent.mkdir()
    path_a.write_text('{"target": "rag-chunks-v2"}')
    a.push("rag-chunks.json", path_a)
    # b resumes it elsewhere, and writes
    assert b.pull("rag-chunks.json", path_b) is True
    assert path_b.read_text() == '{"target": "rag-chunks-v2"}'
    path_b.write_text('{"target": "rag-chunks-v2", "failed": {}}')
    b.push("rag-chunks.json", path_b)
    # a was not dead after all: its next write is refused, b's is kept
    path_a.write_text('{"target": "rag-chunks-v3"}')
    with pytest.raises(RecordTaken, match="two runs of one re-index"):
        a.push("rag-chunks.json", path_a)
    body = s3.get_object(Bucket=BUCKET, Key=PREFIX + "rag-chunks.json")["Body"].read()
    assert b'"failed"' in body


def test_two_fresh_runs_cannot_both_create_the_record(s3: Any, tmp_path: Path) -> None:
    a, b = record(s3), record(s3)
    path = tmp_path / "x.json"
    for run in (a, b):
        assert run.pull("x.json", tmp_path / "unused.json") is False
    path.write_text("{}")
    a.push("x.json", path)
    with pytest.raises(RecordTaken):
        b.push("x.json", path)


def test_a_sqlite_snapshot_holds_uncheckpointed_wal_writes(s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "rag-chunks-v2.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE reindex_progress (document_id TEXT PRIMARY KEY, version TEXT)")
    conn.executemany("INSERT INTO reindex_progress VALUES (?, ?)",
                     [(f"d{n}", "v") for n in range(50)])
    assert path.with_name(path.name + "-wal").stat().st_size > 0  # still in the WAL
    run = record(s3)
    run.push(path.name, path)
    conn.execute("INSERT INTO reindex_progress VALUES ('late', 'v')")  # after the push
    elsewhere = tmp_path / "elsewhere" / path.name
    elsewhere.parent.mkdir()
    elsewhere.with_name(path.name + "-wal").write_bytes(b"stale wal of another file")
    assert record(s3).pull(path.name, elsewhere) is True
    assert not elsewhere.with_name(path.name + "-wal").exists()  # stale WAL removed
    with sqlite3.connect(elsewhere) as copy:
        assert copy.execute("SELECT count(*) FROM reindex_progress").fetchone() == (50,)
    conn.close()


def test_an_unchanged_file_is_not_uploaded_again(s3: Any, tmp_path: Path) -> None:
    puts: list[str] = []
    s3.meta.events.register("provide-client-params.s3.PutObject",
                            lambda params, **_: puts.append(params["Key"]))
    path = tmp_path / "r.json"
    path.write_text("{}")
    run = record(s3)
    run.pull("r.json", tmp_path / "none.json")
    run.push("r.json", path)
    run.push("r.json", path)  # a pass with nothing built: no upload
    path.write_text('{"failed": {}}')
    run.push("r.json", path)
    assert puts == [PREFIX + "r.json"] * 2


def test_a_missing_bucket_is_a_clear_error(s3: Any, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{}")
    run = S3RunRecord("no-such-bucket", s3_client=s3)
    with pytest.raises(UpstreamError, match=r"reindex record s3://no-such-bucket/\.solar-rag/"):
        run.push("r.json", path)
    with pytest.raises(UpstreamError, match="could not read"):
        run.pull("r.json", path)


def test_without_a_bucket_the_record_is_local(tmp_path: Path) -> None:
    local = run_record(None)
    assert isinstance(local, LocalRecord) and local.where == "local"
    path = tmp_path / "r.json"
    assert local.pull("r.json", path) is False and not path.exists()
    path.write_text("{}")
    local.push("r.json", path)
    local.remove("r.json")
    assert path.exists()


def test_status_is_for_opensearch_runs(tmp_path: Path) -> None:
    from solar_rag.errors import NotAvailableHere
    from solar_rag.reindexing import reindex_status
    from solar_rag.settings import Settings

    with pytest.raises(NotAvailableHere, match="reports OpenSearch runs"):
        reindex_status(Settings(_env_file=None, rag_data_dir=tmp_path))
