"""`rag reindex` on OpenSearch reads each document again from the bucket the way the S3
pipeline does: the same reader (the container's file loader, so Document Parse where
``DOCUMENT_PARSE_TYPES`` routes a type) and the same sidecar rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from solar_rag.adapters.opensearch.reindex import BucketCorpus
from solar_rag.domain import DocumentStatus, Metadata, SourceDocument
from solar_rag.errors import RagError, UnsupportedDocument
from solar_rag.services.reindex import LiveDocument

from tests.fakes.memory import MemoryBucket, MemoryRegistry

LIVE = LiveDocument("scans/report.png", "v1", DocumentStatus.INDEXED, 3)


class Loader:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data: bytes, filename: str, *, document_id: str,
                 metadata: Metadata | None = None, source: str | None = None) -> SourceDocument:
        self.calls.append({"data": data, "filename": filename, "id": document_id,
                           "metadata": metadata, "source": source})
        if data == b"unreadable":
            raise UnsupportedDocument("Document Parse rejected the file (HTTP 400)")
        return SourceDocument(document_id, "text", metadata=dict(metadata or {}), source=source)


def corpus(bucket: MemoryBucket, load: Loader) -> BucketCorpus:
    return BucketCorpus(MemoryRegistry(), bucket, load=load, max_object_bytes=1024,
                        bucket="docs")


def test_the_document_is_read_by_the_given_loader_with_its_sidecar() -> None:
    bucket, load = MemoryBucket(), Loader()
    bucket.objects[LIVE.id] = b"\x89PNG..."
    bucket.objects[LIVE.id + ".metadata.json"] = json.dumps(
        {"metadataAttributes": {"team": "ops"}}).encode()
    found = corpus(bucket, load).source(LIVE)
    assert found is not None
    document, version = found
    assert version == "v1" and document.metadata == {"team": "ops"}
    assert load.calls == [{"data": b"\x89PNG...", "filename": LIVE.id, "id": LIVE.id,
                           "metadata": {"team": "ops"}, "source": "s3://docs/scans/report.png"}]


def test_a_bad_sidecar_or_an_unreadable_file_is_that_documents_failure() -> None:
    bucket, load = MemoryBucket(), Loader()
    bucket.objects[LIVE.id] = b"\x89PNG..."
    bucket.objects[LIVE.id + ".metadata.json"] = b'{"metadataAttributes": {"a": {"b": 1}}}'
    with pytest.raises(RagError, match="invalid metadata sidecar"):
        corpus(bucket, load).source(LIVE)
    del bucket.objects[LIVE.id + ".metadata.json"]
    bucket.objects[LIVE.id] = b"unreadable"
    with pytest.raises(RagError, match="rejected the file"):
        corpus(bucket, load).source(LIVE)


def test_a_document_gone_from_the_bucket_has_no_source() -> None:
    assert corpus(MemoryBucket(), Loader()).source(LIVE) is None
