"""Upstage Document Parse end to end, offline: the real app and local store, the fake
Upstage server (embeddings, chat and Document Parse), files sent over HTTP and through the
S3 pipeline. A question about a table cell cites the page the table is on."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.domain import DocumentStatus
from solar_rag.parsing.files import SUPPORTED_EXTENSIONS
from solar_rag.services.s3_ingestion import S3Ingestion
from solar_rag.settings import Settings

from tests.fakes import events
from tests.fakes.document_parse_fake import Element
from tests.fakes.documents import make_pdf
from tests.fakes.memory import MemoryBucket
from tests.fakes.scans import make_png, make_scanned_pdf
from tests.fakes.upstage_server import FakeUpstage

KEY = "up-test-key-docparse-42"
TABLE = ("| Quarter | Revenue | Headcount |\n| --- | --- | --- |\n"
         "| Q2 | 3.9 M | 41 |\n| Q3 | 4.2 M | 44 |")

SCAN = make_scanned_pdf(3, seed=11)  # image only: no text layer at all
SCAN_ELEMENTS = [
    Element("heading1", 1, "Safety inspection", markdown="# Safety inspection"),
    Element("paragraph", 1, "The boiler room was inspected on 3 March by the facilities team."),
    Element("paragraph", 2, "Fire extinguishers on floor two must be replaced before June."),
    Element("footer", 2, "Page 2 of 3"),
    Element("paragraph", 3, "The next inspection is scheduled for September."),
]
REPORT = make_pdf(["Quarterly report", "Revenue Q2 3.9 M Q3 4.2 M", "Outlook"])  # text + table
REPORT_ELEMENTS = [
    Element("heading1", 1, "Quarterly report", markdown="# Quarterly report"),
    Element("paragraph", 1, "This report summarises the second and third quarters."),
    Element("heading1", 2, "Revenue by quarter", markdown="## Revenue by quarter"),
    Element("table", 2, "Q2 3.9 M 41 Q3 4.2 M 44", markdown=TABLE),
    Element("heading1", 3, "Outlook", markdown="## Outlook"),
    Element("paragraph", 3, "We expect steady growth in the fourth quarter."),
]


@pytest.fixture
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY, dimensions=256) as fake:
        fake.document_parse.register(SCAN, SCAN_ELEMENTS)
        fake.document_parse.register(REPORT, REPORT_ELEMENTS, polls=2)
        yield fake


def settings(tmp_path: Path, upstage: FakeUpstage | None, **extra: object) -> Settings:
    values: dict[str, object] = {"rag_data_dir": tmp_path / "data", "embedding_dimensions": 256,
                                 "upstage_timeout_seconds": 2.0, "upstage_max_retries": 1,
                                 "document_parse_types": "pdf,image/*",
                                 "document_parse_poll_seconds": 0.05}
    if upstage is not None:
        values |= {"upstage_api_key": KEY, "upstage_base_url": upstage.base_url}
    return Settings(_env_file=None, **(values | extra))  # type: ignore[arg-type]


def client_for(container: Container) -> TestClient:
    return TestClient(create_app(lambda: container), raise_server_exceptions=False)


def send(client: TestClient, filename: str, data: bytes) -> Any:
    return client.post("/v1/files", json={"filename": filename,
                                          "data_base64": base64.b64encode(data).decode()})


def test_scans_and_tables_are_indexed_and_a_table_cell_cites_its_page(
        tmp_path: Path, upstage: FakeUpstage) -> None:
    container = Container(settings(tmp_path, upstage))
    with client_for(container) as client:
        for name, data in (("scans/inspection.pdf", SCAN), ("reports/q3.pdf", REPORT)):
            response = send(client, name, data)
            assert response.status_code == 200, response.text
            assert response.json()["documents"][0]["status"] == "indexed"
        parse = upstage.document_parse
        # both within DOCUMENT_PARSE_SYNC_MAX_PAGES (counted with pypdf): synchronous
        assert len(parse.calls("sync")) == 2 and parse.calls("submit") == []
        # a scan (no text layer) is sent with OCR forced: "auto" reads only image files
        assert [c.fields["ocr"] for c in parse.calls("sync")] == ["force", "auto"]

        question = {"query": "What was the revenue in Q3 by quarter?"}
        body = client.post("/v1/query", json=question).json()
        first = body["citations"][0]
        assert "[1]" in body["answer"]
        assert first["document_id"] == "reports/q3.pdf"
        assert "| Q3 | 4.2 M | 44 |" in first["text"]  # the table kept as a table
        assert (first["page"], first["location"]) == (2, "p. 2")
        assert first["section"] == "Quarterly report > Revenue by quarter"

        scan_hit = client.post("/v1/search", json={"query": "fire extinguishers floor two"}).json()
        top = scan_hit["results"][0]
        assert top["document_id"] == "scans/inspection.pdf"
        assert (top["page"], top["page_end"]) == (1, 3)  # one short section over three pages
        assert "Page 2 of 3" not in top["text"]  # footers dropped

        stream = client.post("/v1/query", json=question | {"stream": True})
        cited = next(json.loads(line.removeprefix("data: "))
                     for block in stream.text.split("\n\n") if block.startswith("event: citations")
                     for line in block.splitlines() if line.startswith("data: "))
        assert cited["citations"][0]["page"] == 2

        compat = client.post("/v1/chat/completions", json={
            "model": "solar-rag", "messages": [{"role": "user", "content": question["query"]}]})
        assert compat.status_code == 200, compat.text
        assert compat.json()["citations"][0]["location"] == "p. 2"

        record = client.get("/v1/documents/reports/q3.pdf").json()
        assert record["content_type"] == "text/markdown" and record["title"] == "Quarterly report"


def test_the_async_path_and_a_parse_that_fails_through_the_s3_pipeline(
        tmp_path: Path, upstage: FakeUpstage) -> None:
    broken = make_scanned_pdf(12, seed=99)
    upstage.document_parse.register(broken, [Element("paragraph", 1, "x")],
                                    failure="The document is corrupted on page 7")
    container = Container(settings(tmp_path, upstage, document_parse_sync_max_pages=0))
    bucket = MemoryBucket()
    ingestion = S3Ingestion(indexing=container.indexing_service, objects=bucket,
                            load=container.file_loader, supported_extensions=SUPPORTED_EXTENSIONS,
                            max_object_bytes=10 * 1024 * 1024, registry=container.registry)
    bucket.objects["reports/q3.pdf"] = REPORT
    bucket.objects["scans/broken.pdf"] = broken
    sequencer = events.Sequencer()
    outcomes = ingestion.apply([
        [change] for change in _changes(sequencer, "reports/q3.pdf", "scans/broken.pdf")])
    assert [[o.status for o in result] for result in outcomes] == [["indexed"], ["failed"]]
    parse = upstage.document_parse
    assert parse.calls("sync") == [] and len(parse.calls("submit")) == 2
    assert len(parse.calls("download")) == 1  # the report's one batch; none for the failure
    failed = container.registry.get("scans/broken.pdf")
    assert failed is not None and failed.status == DocumentStatus.FAILED
    assert failed.error is not None and "corrupted on page 7" in failed.error
    hits = container.search_service.search("Q3 revenue", top_k=1)
    assert hits[0].chunk.document_id == "reports/q3.pdf" and hits[0].chunk.page == 2


def test_a_parse_still_running_goes_back_to_the_queue_and_resumes(
        tmp_path: Path, upstage: FakeUpstage) -> None:
    slow = make_scanned_pdf(4, seed=5)
    upstage.document_parse.register(slow, [Element("paragraph", 4, "Late answer on page four.")],
                                    polls=10_000)
    container = Container(settings(tmp_path, upstage, document_parse_sync_max_pages=0))
    bucket = MemoryBucket()
    bucket.objects["slow.pdf"] = slow
    ingestion = S3Ingestion(indexing=container.indexing_service, objects=bucket,
                            load=container.file_loader, supported_extensions=SUPPORTED_EXTENSIONS,
                            max_object_bytes=10 * 1024 * 1024, registry=container.registry)
    from solar_rag.resilience import deadline

    sequencer = events.Sequencer()
    with deadline.budget(1.5):
        (result,) = ingestion.apply([_changes(sequencer, "slow.pdf")])
    assert [o.status for o in result] == ["deferred"]  # redelivered
    assert "still reading" in str(result[0].error)
    assert container.registry.get("slow.pdf") is None  # not marked failed
    next(iter(upstage.document_parse.jobs.values())).script.polls = 0  # it finishes meanwhile
    (result,) = ingestion.apply([_changes(sequencer, "slow.pdf")])
    assert [o.status for o in result] == ["indexed"]
    assert len(upstage.document_parse.calls("submit")) == 1  # resumed: paid once


def test_offline_a_type_only_document_parse_reads_is_a_clear_415(tmp_path: Path) -> None:
    container = Container(settings(tmp_path, None))
    with client_for(container) as client:
        response = send(client, "scan.png", make_png())
        assert response.status_code == 415
        detail = response.json()["detail"]
        assert "DOCUMENT_PARSE_TYPES" in detail and "UPSTAGE_API_KEY" in detail
        deck = send(client, "deck.pptx", b"PK\x03\x04 not really")
        assert deck.status_code == 415
        pdf = send(client, "words.pdf", make_pdf(["Words on a page."]))
        assert pdf.status_code == 200  # pdf selected, no key: the built-in reader
    bucket = MemoryBucket()
    bucket.objects["photo.jpg"] = b"\xff\xd8\xff\xe0 jpeg"
    ingestion = S3Ingestion(indexing=container.indexing_service, objects=bucket,
                            load=container.file_loader, supported_extensions=SUPPORTED_EXTENSIONS,
                            max_object_bytes=1024 * 1024, registry=container.registry)
    (result,) = ingestion.apply([_changes(events.Sequencer(), "photo.jpg")])
    assert [o.status for o in result] == ["failed"]
    record = container.registry.get("photo.jpg")
    assert record is not None and record.error is not None
    assert "DOCUMENT_PARSE_TYPES" in record.error


def _changes(sequencer: events.Sequencer, *keys: str) -> list[Any]:
    from solar_rag.lambda_edge.events import parse_notification

    found = []
    for key in keys:
        body = json.dumps(events.s3_notification(
            events.created(key, size=1, sequencer=sequencer())))
        found.extend(parse_notification(body))
    return found
