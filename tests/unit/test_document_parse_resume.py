"""A running or finished asynchronous parse is resumed, not paid for again: by the same
container (memory) and, deployed, by any container (the documents bucket)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from solar_rag.adapters.document_parse import DocumentParseClient
from solar_rag.adapters.parse_requests import (
    MAX_AGE_SECONDS,
    PREFIX,
    InMemoryRequestMemo,
    ObjectStoreRequestMemo,
    RequestMemo,
)
from solar_rag.errors import DocumentParsePending
from solar_rag.resilience import deadline
from solar_rag.settings import Settings

from tests.fakes.document_parse_fake import Element
from tests.fakes.memory import MemoryBucket
from tests.fakes.scans import make_scanned_pdf
from tests.fakes.upstage_server import FakeUpstage

KEY = "up-resume-key-0123456789"


@pytest.fixture
def upstage() -> Iterator[FakeUpstage]:
    with FakeUpstage(api_key=KEY) as fake:
        yield fake


def client(upstage: FakeUpstage, memo: RequestMemo | None = None, **extra: object
           ) -> DocumentParseClient:
    values: dict[str, object] = {"upstage_base_url": upstage.base_url,
                                 "document_parse_poll_seconds": 0.01,
                                 "document_parse_sync_max_pages": 0}
    settings = Settings(_env_file=None, **(values | extra))  # type: ignore[arg-type]
    return DocumentParseClient(settings, api_key=KEY, sleep=lambda _s: None, memo=memo)


def test_the_same_file_and_options_are_parsed_once(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(2, seed=21)
    upstage.document_parse.register(pdf, [Element("paragraph", 1, "once")])
    parser = client(upstage)
    assert parser.parse(pdf, "a.pdf")[0].text == "once"
    assert parser.parse(pdf, "renamed.pdf")[0].text == "once"
    assert len(upstage.document_parse.calls("submit")) == 1
    parser.parse(pdf, "a.pdf", force_ocr=True)  # other options: another parse
    assert len(upstage.document_parse.calls("submit")) == 2


def test_a_request_upstage_no_longer_knows_is_submitted_again(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(2, seed=22)
    upstage.document_parse.register(pdf, [Element("paragraph", 2, "fresh")])
    memo = InMemoryRequestMemo()
    parser = client(upstage, memo)
    parser.parse(pdf, "a.pdf")
    upstage.document_parse.jobs.clear()  # expired upstream
    (element,) = parser.parse(pdf, "a.pdf")
    assert element.text == "fresh"
    assert len(upstage.document_parse.calls("submit")) == 2


def test_another_container_resumes_through_the_bucket(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(4, seed=23)
    upstage.document_parse.register(pdf, [Element("paragraph", 4, "page four")], polls=10_000)
    bucket = MemoryBucket()
    first = client(upstage, ObjectStoreRequestMemo(bucket))
    with deadline.budget(1.0), pytest.raises(DocumentParsePending):
        first.parse(pdf, "slow.pdf")
    (key,) = [k for k in bucket.objects if k.startswith(PREFIX)]
    assert json.loads(bucket.objects[key])["request_id"].startswith("fake-")
    next(iter(upstage.document_parse.jobs.values())).script.polls = 0
    second = client(upstage, ObjectStoreRequestMemo(bucket))  # a new container
    (element,) = second.parse(pdf, "slow.pdf")
    assert element.text == "page four"
    assert len(upstage.document_parse.calls("submit")) == 1


def test_a_failed_parse_is_forgotten_in_the_bucket(upstage: FakeUpstage) -> None:
    pdf = make_scanned_pdf(2, seed=24)
    upstage.document_parse.register(pdf, [Element("paragraph", 1, "x")], failure="unreadable")
    bucket = MemoryBucket()
    with pytest.raises(Exception, match="unreadable"):
        client(upstage, ObjectStoreRequestMemo(bucket)).parse(pdf, "bad.pdf")
    (key,) = [k for k in bucket.objects if k.startswith(PREFIX)]
    assert json.loads(bucket.objects[key])["request_id"] is None
    assert ObjectStoreRequestMemo(bucket).get(key.removeprefix(PREFIX).removesuffix(".json")) is None


def test_the_bucket_memo_ignores_old_broken_and_unwritable_entries() -> None:
    bucket = MemoryBucket()
    now = [1_000_000_000.0]
    memo = ObjectStoreRequestMemo(bucket, clock=lambda: now[0])
    memo.put("d1", "req-1")
    assert ObjectStoreRequestMemo(bucket, clock=lambda: now[0]).get("d1") == "req-1"
    now[0] += MAX_AGE_SECONDS + 1  # Upstage keeps results 30 days
    assert ObjectStoreRequestMemo(bucket, clock=lambda: now[0]).get("d1") is None
    bucket.objects[PREFIX + "d2.json"] = b"{not json"
    assert ObjectStoreRequestMemo(bucket).get("d2") is None

    class Broken(MemoryBucket):
        def put(self, key: str, data: bytes, *, content_type: str) -> None:
            raise OSError("access denied")

        def read_optional(self, key: str, *, max_bytes: int) -> bytes | None:
            raise OSError("access denied")

    broken = ObjectStoreRequestMemo(Broken())
    broken.put("d3", "req-3")  # logged, not raised: the memo is an optimisation
    assert broken.get("d3") == "req-3"  # this process still remembers
    assert ObjectStoreRequestMemo(Broken()).get("d3") is None
