"""`rag reindex --status` from another data dir: a refused swap's failures and progress, as
the record in the bucket holds them (moto S3 and DynamoDB, the OpenSearch stub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from solar_rag.adapters.opensearch import init_opensearch
from solar_rag.composition import Container
from solar_rag.domain import SourceDocument
from solar_rag.reindexing import reindex_status, run_reindex

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.test_reindex_opensearch import (  # noqa: F401 (fixtures)
    ALIAS,
    BUCKET,
    aws,
    settings,
    upload,
)

pytest_plugins = ("tests.integration.opensearch_harness",)  # its server and stub fixtures


def test_status_shows_a_refused_swap_from_elsewhere(stub: OpenSearchStub, aws: Any,  # noqa: F811
                                                    tmp_path: Path) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    init_opensearch(settings(stub, here))
    old = Container(settings(stub, here))
    for number in range(3):
        upload(old, aws, number)
    old.indexing_service.index(SourceDocument(id="typed-in", text="posted over HTTP only"))
    assert reindex_status(settings(stub, elsewhere, dimensions=24))["running"] is False

    report = run_reindex(settings(stub, here, dimensions=24))
    assert not report.swapped

    status = reindex_status(settings(stub, elsewhere, dimensions=24))
    assert status["running"] is True
    assert status["live"] == f"{ALIAS}-v1" and status["target"] == f"{ALIAS}-v2"
    assert status["built"] == 3 and status["total"] == 4
    assert set(status["failed"]) == {"typed-in"}
    assert "no source of truth" in status["failed"]["typed-in"]
    assert status["record"] == f"s3://{BUCKET}/.solar-rag/reindex/"
    assert not elsewhere.exists() or not any(elsewhere.rglob("*.json"))  # read, not copied


def test_a_local_run_file_the_bucket_does_not_hold_is_stale(
        stub: OpenSearchStub, aws: Any, tmp_path: Path) -> None:  # noqa: F811
    """A run finished (or abandoned and cleared) elsewhere: this machine's leftover is ignored."""
    init_opensearch(settings(stub, tmp_path))
    upload(Container(settings(stub, tmp_path)), aws, 1)
    leftover = tmp_path / "reindex" / f"{ALIAS}.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_text('{"from": "rag-chunks-v1", "target": "rag-chunks-v2"}')
    assert reindex_status(settings(stub, tmp_path, dimensions=24))["running"] is False
    report = run_reindex(settings(stub, tmp_path, dimensions=24))
    assert report.swapped and report.detail["resumed"] is False
    assert not leftover.exists()


def test_a_second_run_writing_the_record_stops_the_first(
        stub: OpenSearchStub, aws: Any, tmp_path: Path) -> None:  # noqa: F811
    from solar_rag.adapters.opensearch.reindex_record import RecordTaken

    init_opensearch(settings(stub, tmp_path))
    old = Container(settings(stub, tmp_path))
    for number in range(3):
        upload(old, aws, number)
    key = f".solar-rag/reindex/{ALIAS}-v2.sqlite3"

    def another_run_writes(done: int, total: int, label: str) -> None:
        if done == 0:  # the record was just written; another machine overwrites it
            aws.put_object(Bucket=BUCKET, Key=key, Body=b"another run's progress")

    with pytest.raises(RecordTaken, match="two runs of one re-index"):
        run_reindex(settings(stub, tmp_path / "a", dimensions=24), on_progress=another_run_writes)
    assert stub.aliases[ALIAS] == {f"{ALIAS}-v1"}  # it stopped before any swap
    assert aws.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"another run's progress"
