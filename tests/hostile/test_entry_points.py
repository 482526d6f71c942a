"""The CLI and the S3 indexer fail a hostile file alone, record why, and go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from solar_rag.cli import main
from solar_rag.domain import Metadata, SourceDocument
from solar_rag.lambda_edge.events import parse_notification
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS, load_file
from solar_rag.parsing.parsers import parse_document
from solar_rag.services.indexing import IndexingService
from solar_rag.services.s3_ingestion import S3Ingestion
from solar_rag.settings import get_settings
from solar_rag.text.chunking import Chunker

from bench.hostile_inputs import BY_NAME
from tests.fakes import events
from tests.fakes.memory import FakeEmbedder, MemoryBucket, MemoryRegistry, MemoryStore

HOSTILE_FILES = ("json_deep", "docx_deep", "docx_elements", "pdf_ten_70mb_streams",
                 "md_unclosed_emphasis")


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    monkeypatch.setenv("EMBEDDING_DIMENSIONS", "256")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("isolated")
def test_rag_index_reports_each_bad_file_records_it_and_indexes_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a-first.md").write_text("# Before\n\nIndexed before the bad files.", encoding="utf-8")
    for name in HOSTILE_FILES:
        hostile = BY_NAME[name]
        (root / f"b-{hostile.filename}").write_bytes(hostile.data())
    (root / "z-last.txt").write_text("Indexed after the bad files.", encoding="utf-8")

    assert main(["index", str(root)]) == 1
    out, err = capsys.readouterr()
    assert f"indexed=2 unchanged=0 failed={len(HOSTILE_FILES)}" in out
    assert "Traceback" not in err
    assert "nested too deeply" in err and "PARSE_MAX_DEPTH" in err
    assert "PARSE_MAX_ELEMENTS" in err and "parsing limit" in err

    assert main(["documents", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("failed") == len(HOSTILE_FILES)
    assert listing.count("indexed") == 2


@pytest.mark.usefixtures("isolated")
def test_rag_index_goes_on_when_a_reader_breaks_unexpectedly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import solar_rag.parsing.files as files

    def broken(*args: object, **kwargs: object) -> SourceDocument:
        raise RecursionError("maximum recursion depth exceeded")

    (tmp_path / "bad.md").write_text("x", encoding="utf-8")
    (tmp_path / "good.txt").write_text("fine", encoding="utf-8")
    real = files.load_file
    monkeypatch.setattr(files, "load_file",
                        lambda data, name, **kw: broken() if name == "bad.md" else real(data, name, **kw))
    assert main(["index", str(tmp_path / "bad.md"), str(tmp_path / "good.txt")]) == 1
    out, err = capsys.readouterr()
    assert "indexed=1 unchanged=0 failed=1" in out
    assert "could not be read (RecursionError)" in err


def _ingestion(load: object = load_file) -> tuple[S3Ingestion, MemoryBucket, MemoryRegistry]:
    objects, registry = MemoryBucket(), MemoryRegistry()
    service = IndexingService(parse=parse_document,
                              chunker=Chunker(size_tokens=200, overlap_tokens=20),
                              chunker_signature="test", embedder=FakeEmbedder(),
                              store=MemoryStore(), registry=registry)
    ingestion = S3Ingestion(indexing=service, objects=objects, load=load,  # type: ignore[arg-type]
                            supported_extensions=SUPPORTED_EXTENSIONS,
                            max_object_bytes=50 * 1024 * 1024, bucket=events.BUCKET)
    return ingestion, objects, registry


@pytest.mark.parametrize("name", HOSTILE_FILES)
def test_s3_records_a_hostile_object_as_failed_and_acknowledges_it(name: str) -> None:
    ingestion, objects, registry = _ingestion()
    hostile = BY_NAME[name]
    key = f"uploads/{hostile.filename}"
    objects.objects[key] = hostile.data()
    results = ingestion.apply(
        [parse_notification(json.dumps(events.s3_notification(events.created(key, sequencer="01"))))])
    assert all(o.settled for o in results[0]), results[0]  # acknowledged, not retried
    assert [o.status for o in results[0]] == ["failed"]
    record = registry.get(key)
    assert record is not None and record.error


def test_s3_fails_a_recursion_error_instead_of_retrying_it() -> None:
    def recursing(data: bytes, filename: str, *, document_id: str,
                  metadata: Metadata | None = None, source: str | None = None) -> SourceDocument:
        raise RecursionError("maximum recursion depth exceeded")

    ingestion, objects, registry = _ingestion(recursing)
    assert registry.get("deep.json") is None
    objects.objects["deep.json"] = b"[]"
    [[outcome]] = ingestion.apply([parse_notification(events.s3_notification(events.created("deep.json")))])
    assert outcome.status == "failed" and "nested too deeply" in str(outcome.error)
    assert registry.get("deep.json") is not None
