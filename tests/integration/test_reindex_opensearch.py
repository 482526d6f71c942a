"""`rag reindex` on OpenSearch (issue 16 B), as deployed: documents in an S3 bucket, the
registry in DynamoDB (moto), the index on the OpenSearch stub (every request judged by the
pinned API specification). A populated index moves from one embedding setting to another
while queries run; the alias swap is one ``POST /_aliases``; rollback; the space check."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws
from solar_rag.adapters.opensearch import init_opensearch
from solar_rag.adapters.opensearch.reindex import reindex_opensearch
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.domain import SearchMode, SourceDocument
from solar_rag.errors import NotConfigured, SpaceMismatch
from solar_rag.reindexing import run_reindex
from solar_rag.services.doctor import Doctor
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import Mode as Target
from tests.fakes.opensearch_stub import OpenSearchStub

REGION, BUCKET, TABLE, ALIAS = "us-east-1", "docs-bucket", "documents", "rag-chunks"
DOCUMENTS = 12

pytest_plugins = ("tests.integration.opensearch_harness",)  # its server and stub fixtures


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                        "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield create_bucket_and_table()


def create_bucket_and_table() -> Any:
    """The documents bucket and the registry table of the stack, on whatever AWS answers
    (moto in process or a moto server); the S3 client."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}])
    return s3


def settings(stub: OpenSearchStub, data: Path, dimensions: int = 16,
             chunk: int = 400) -> Settings:
    return Settings(_env_file=None, vector_store="opensearch", opensearch_url=stub.url,
                    opensearch_endpoint=None, opensearch_target=stub.mode,
                    embedding_dimensions=dimensions,
                    chunk_size_tokens=chunk, documents_bucket=BUCKET, documents_table=TABLE,
                    rag_data_dir=data, opensearch_max_retries=1)


def text(number: int, extra: str = "") -> str:
    return f"# River {number}\n\n" + "\n\n".join(
        f"Part {p}: the river{number} carries boats past mill{p}. {extra}" for p in range(8))


def upload(container: Container, s3: Any, number: int, extra: str = "") -> None:
    """What the S3 pipeline does with an object: the bucket holds it, the index has it."""
    key = f"rivers/r{number}.md"
    body = text(number, extra)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
    container.indexing_service.index(SourceDocument(
        id=key, text=body, content_type="text/markdown", source=f"s3://{BUCKET}/{key}"))


def hits(container: Container, query: str) -> list[str]:
    found = container.search_service.search(query, top_k=3, mode=SearchMode.HYBRID, filters={})
    return [hit.chunk.document_id for hit in found]


def doctor_findings(container: Container) -> list[Any]:
    return Doctor(store=container.store, registry=container.registry).examine()  # type: ignore[arg-type]


def alias_swaps(stub: OpenSearchStub) -> list[Any]:
    return [request.json() for request in stub.find("POST", "/_aliases")]


@pytest.mark.parametrize("target", ["domain", "serverless", "serverless-classic"])
def test_reindex_switches_the_alias_under_a_query_load_and_rolls_back(
        stub: OpenSearchStub, aws: Any, tmp_path: Path, target: Target) -> None:
    stub.reset(target)
    data = tmp_path / "rag"
    s1, s2 = settings(stub, data), settings(stub, data, dimensions=24, chunk=200)
    init_opensearch(s1)
    old = Container(s1)
    for number in range(DOCUMENTS):
        upload(old, aws, number)
    old.indexing_service.index(SourceDocument(id="typed-in", text="posted over HTTP only"))

    # 1. a document with no object in the bucket: the run refuses to swap
    report = run_reindex(s2)
    assert not report.swapped and set(report.failed) == {"typed-in"}
    assert "no source of truth" in report.failed["typed-in"]
    assert stub.aliases[ALIAS] == {"rag-chunks-v1"} and not alias_swaps(stub)
    old.indexing_service.delete("typed-in")

    # 2. again, resumed, under a query load, with writes while the target is built
    statuses: list[int] = []
    stop = threading.Event()
    client = TestClient(create_app(lambda: old))

    def load() -> None:
        while not stop.is_set():
            response = client.post("/v1/search", json={"query": "river3 boats", "top_k": 3})
            statuses.append(response.status_code)

    def meanwhile(done: int, total: int, label: str) -> None:
        if done and not getattr(meanwhile, "fired", False):
            meanwhile.fired = True  # type: ignore[attr-defined]
            upload(old, aws, 4, extra="a heron waits")
            upload(old, aws, 40)
            old.indexing_service.delete("rivers/r5.md")
            aws.delete_object(Bucket=BUCKET, Key="rivers/r5.md")

    runner = threading.Thread(target=load)
    runner.start()
    try:
        report = reindex_opensearch(Container(s2), rollback=False, force=False,
                                    on_progress=meanwhile)
        after = len(statuses)
        while len(statuses) < after + 5:
            stop.wait(0.01)
    finally:
        stop.set()
        runner.join()
    assert report.swapped and report.detail["resumed"] is True and not report.failed
    assert len(statuses) > 5 and set(statuses) == {200}  # zero failed queries
    (swap,) = alias_swaps(stub)  # one atomic request: remove + add
    assert swap == {"actions": [{"remove": {"index": "rag-chunks-v1", "alias": ALIAS}},
                                {"add": {"index": "rag-chunks-v2", "alias": ALIAS}}]}
    assert stub.aliases[ALIAS] == {"rag-chunks-v2"} and "rag-chunks-v1" in stub.indices
    meta = stub.indices["rag-chunks-v2"].mappings["_meta"]
    assert meta["solar_rag_space"] == {"embedder": "offline-hash-v1:24", "dimensions": 24,
                                       "chunker": "chunker-v1:200:60"}
    assert meta["solar_rag_previous"] == "rag-chunks-v1"

    new = Container(s2)
    assert hits(new, "heron")[0] == "rivers/r4.md"
    assert hits(new, "river40")[0] == "rivers/r40.md"
    assert "rivers/r5.md" not in hits(new, "river5 mill2")
    assert doctor_findings(new) == []  # registry versions follow the new index
    # the old container keeps answering from the old index, and its writes are refused
    assert hits(old, "river7")[0] == "rivers/r7.md"
    with pytest.raises(SpaceMismatch, match="rag reindex"):
        upload(old, aws, 41)
    stale = TestClient(create_app(lambda: Container(s1)))
    response = stale.post("/v1/search", json={"query": "river7"})
    assert response.status_code == 409 and "rag reindex" in response.json()["detail"]
    assert TestClient(create_app(lambda: new)).post(
        "/v1/search", json={"query": "river7"}).status_code == 200

    # 3. rollback: written since the swap, then back to the previous index (old settings)
    upload(new, aws, 50)
    new.indexing_service.delete("rivers/r6.md")
    aws.delete_object(Bucket=BUCKET, Key="rivers/r6.md")
    # v1 was made by `rag opensearch init`, which records no space: its mapping still
    # tells the dimensions
    with pytest.raises(NotConfigured, match="16-dimensional vectors but EMBEDDING_DIMENSIONS"):
        run_reindex(s2, rollback=True)
    back = run_reindex(s1, rollback=True)
    assert back.swapped and back.rebuilt == 1 and back.deleted == 1 and not back.failed
    assert alias_swaps(stub)[-1]["actions"][1] == {"add": {"index": "rag-chunks-v1",
                                                           "alias": ALIAS}}
    restored = Container(s1)
    assert hits(restored, "river50")[0] == "rivers/r50.md"
    assert "rivers/r6.md" not in hits(restored, "river6 mill3")
    assert hits(restored, "heron")[0] == "rivers/r4.md"
    # r41 never reached an index (its write was refused): not carried over, the pipeline's
    # retry of its event indexes it
    assert "rivers/r41.md" not in hits(restored, "river41")
    assert doctor_findings(restored) == []


def test_the_stub_refuses_removing_an_alias_the_index_lacks(stub: OpenSearchStub,
                                                           aws: Any, tmp_path: Path) -> None:
    """The swap is all or nothing: an action that fails leaves every alias as it was."""
    s1 = settings(stub, tmp_path)
    init_opensearch(s1)
    stub.indices["other"] = type(stub.indices["rag-chunks-v1"])(mappings={}, settings={})
    from opensearchpy.exceptions import NotFoundError

    client = Container(s1).store.client  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError):
        client.indices.update_aliases(body={"actions": [
            {"add": {"index": "other", "alias": ALIAS}},
            {"remove": {"index": "other", "alias": "no-such-alias"}}]})
    assert stub.aliases[ALIAS] == {"rag-chunks-v1"}
