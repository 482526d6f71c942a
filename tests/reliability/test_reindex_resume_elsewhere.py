"""A deployed `rag reindex` killed with SIGKILL half-way resumes from another machine
(issue 16, "the same operation from the deployed stack").

The run record lives in the documents bucket (``.solar-rag/reindex/``), so the second run
starts from an empty ``RAG_DATA_DIR``, as a fresh CI runner or a colleague's workstation
would. AWS is a moto server (the child process reaches it over HTTP), the index the
OpenSearch stub (every request judged by the pinned API specification). The requests the
runs sent are also checked against what the stack grants an operator role
(``infra_cdk``'s ``DOMAIN_GRANTS["reindex"]``).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from solar_rag.adapters import aws_clients
from solar_rag.adapters.opensearch import init_opensearch
from solar_rag.composition import Container
from solar_rag.domain import SourceDocument
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.test_reindex_opensearch import (
    ALIAS,
    BUCKET,
    REGION,
    TABLE,
    create_bucket_and_table,
)
from tests.reliability.conftest import Recorder
from tests.reliability.test_reindex_kills import kill_after

DOCUMENTS = 400  # the kill helper's bound
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_SECRET_ID", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_env(url).items():
        monkeypatch.setenv(name, value)
    aws_clients.reset()
    try:
        yield url
    finally:
        aws_clients.reset()
        server.stop()


def aws_env(url: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true"}


def settings(stub: OpenSearchStub, data: Path, dimensions: int) -> Settings:
    return Settings(_env_file=None, vector_store="opensearch", opensearch_url=stub.url,
                    opensearch_endpoint=None, opensearch_target=stub.mode,
                    embedding_dimensions=dimensions, documents_bucket=BUCKET,
                    documents_table=TABLE, rag_data_dir=data, opensearch_max_retries=1)


def populate(stub: OpenSearchStub, data: Path) -> None:
    s3 = create_bucket_and_table()
    live = settings(stub, data, 16)
    init_opensearch(live)
    container = Container(live)
    docs = []
    for n in range(DOCUMENTS):
        key = f"notes/n{n:04}.md"
        body = f"# Note {n}\n\n" + "\n\n".join(
            f"Line {p}: token{n} walks with marker{p} through the valley." for p in range(6))
        s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())
        docs.append(SourceDocument(id=key, text=body, content_type="text/markdown",
                                   source=f"s3://{BUCKET}/{key}"))
    for start in range(0, DOCUMENTS, 100):
        container.indexing_service.index_many(docs[start:start + 100])


def cli_env(stub: OpenSearchStub, moto_url: str, data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("UPSTAGE_", "AWS_", "OPENSEARCH_", "DOCUMENTS_"))}
    env.update(aws_env(moto_url))
    env.update(VECTOR_STORE="opensearch", OPENSEARCH_URL=stub.url, OPENSEARCH_TARGET=stub.mode,
               OPENSEARCH_MAX_RETRIES="1", DOCUMENTS_BUCKET=BUCKET, DOCUMENTS_TABLE=TABLE,
               RAG_DATA_DIR=str(data), EMBEDDING_DIMENSIONS="24")  # the new setting
    return env


def rag(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "solar_rag.cli", "reindex", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(
        process.stderr.read() if process.stderr else b""))
    reader.start()
    out = process.stdout.read() if process.stdout else b""
    process.wait(timeout=300)
    reader.join()
    return process.returncode, out.decode(), errors[0].decode(errors="replace")


def record_keys() -> set[str]:
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=BUCKET, Prefix=".solar-rag/reindex/")
    return {item["Key"] for item in listed.get("Contents", [])}


@pytest.mark.timeout(600)
def test_a_killed_deployed_reindex_resumes_from_another_data_dir(
        tmp_path: Path, moto_url: str, figures: Recorder) -> None:
    with OpenSearchStub() as stub:
        populate(stub, tmp_path / "populate")
        first = len(stub.requests)

        machine_a = tmp_path / "machine-a"
        process = rag(cli_env(stub, moto_url, machine_a))
        try:
            shown = kill_after(process, 64)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
        assert process.returncode == -9
        assert stub.aliases[ALIAS] == {f"{ALIAS}-v1"}  # nothing swapped
        assert record_keys() == {f".solar-rag/reindex/{ALIAS}.json",
                                 f".solar-rag/reindex/{ALIAS}-v2.sqlite3"}
        shutil.rmtree(machine_a)  # that machine is gone

        # another machine sees the run
        code, out, err = finish(rag(cli_env(stub, moto_url, tmp_path / "machine-c"), "--status"))
        assert code == 0, err[-2000:]
        status = json.loads(out)
        assert status["running"] is True and status["target"] == f"{ALIAS}-v2"
        assert status["live"] == f"{ALIAS}-v1" and status["total"] == DOCUMENTS
        assert shown <= status["built"] < DOCUMENTS and status["failed"] == {}

        code, out, err = finish(rag(cli_env(stub, moto_url, tmp_path / "machine-b")))
        assert code == 0, err[-2000:]
        summary = json.loads(out)
        assert summary["swapped"] is True and summary["resumed"] is True
        assert summary["target"] == f"{ALIAS}-v2"  # the same target, not a new one
        assert summary["already_built"] == status["built"]
        assert summary["already_built"] + summary["rebuilt"] + summary["unchanged"] == DOCUMENTS
        assert summary["rebuilt"] <= DOCUMENTS - shown  # what machine A finished is not redone
        assert stub.aliases[ALIAS] == {f"{ALIAS}-v2"}
        assert len({doc["document_id"]
                    for doc in stub.documents(f"{ALIAS}-v2").values()}) == DOCUMENTS
        # the run file is gone (nothing unfinished); the target's record stays for --rollback
        assert record_keys() == {f".solar-rag/reindex/{ALIAS}-v2.sqlite3"}
        code, out, _ = finish(rag(cli_env(stub, moto_url, tmp_path / "machine-c"), "--status"))
        assert code == 0 and json.loads(out)["running"] is False
        record_bytes = boto3.client("s3", region_name=REGION).head_object(
            Bucket=BUCKET, Key=f".solar-rag/reindex/{ALIAS}-v2.sqlite3")["ContentLength"]
        figures(documents=DOCUMENTS, built_before_kill=status["built"],
                rebuilt_after_resume=summary["rebuilt"], record_bytes=record_bytes,
                chunks=len(stub.documents(f"{ALIAS}-v2")))
        sent = [(r.method, r.path) for r in stub.requests[first:]]
    assert_granted(sent)


def assert_granted(sent: list[tuple[str, str]]) -> None:
    """Each request matches a (verb, path) the stack grants the operator role."""
    from infra_cdk.constructs.vector_store import DOMAIN_GRANTS

    grants = [(actions, [p.format(alias=ALIAS) for p in paths])
              for actions, paths in DOMAIN_GRANTS["reindex"]]
    missing: set[tuple[str, str]] = set()
    for method, path in sent:
        action = "es:ESHttp" + method.capitalize()
        resource = path.split("?")[0].lstrip("/")
        if not any(action in actions and any(fnmatch.fnmatchcase(resource, p) for p in paths)
                   for actions, paths in grants):
            missing.add((method, resource))
    assert sent and not missing, sorted(missing)


