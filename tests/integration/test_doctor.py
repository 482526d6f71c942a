"""`rag doctor`: every kind of disagreement between index and registry is found, repaired, and
gone on the next look; on the local store and, through the store port, on OpenSearch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from solar_rag.adapters.local_store import LocalDocumentRegistry, LocalVectorStore
from solar_rag.cli import main
from solar_rag.domain import DocumentRecord, DocumentStatus
from solar_rag.ports import DocumentRegistry, StoreInventory
from solar_rag.services.doctor import Doctor
from solar_rag.settings import get_settings

from tests.contract.vector_store_contract import DIMENSIONS, make_chunks
from tests.fakes.memory import MemoryRegistry
from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.opensearch_harness import Harness, chunks
from tests.unit.test_write_consistency import NOW

pytest_plugins = ("tests.integration.opensearch_harness",)  # its fixtures

LATE = NOW + timedelta(days=1)
KINDS = {"orphan": {"orphaned_chunks"},
         "stale": {"stale_versions"},
         "crashed": {"interrupted_write"},
         "crashed-new": {"interrupted_write"},
         "empty": {"missing_chunks"},
         "short": {"chunk_count_mismatch"},
         "in-flight": set(),
         "healthy": set()}


def _record(document_id: str, version: str | None, chunks_: int, **kw: object) -> DocumentRecord:
    return DocumentRecord(id=document_id, status=kw.pop("status", DocumentStatus.INDEXED),  # type: ignore[arg-type]
                          content_hash=version, chunks=chunks_, updated_at=NOW, **kw)  # type: ignore[arg-type]


def break_everything(write: Callable[[str, str, int], None], registry: DocumentRegistry) -> None:
    """One document per kind of disagreement. ``write(doc, version, n)`` stores n chunks of a
    version (replacing the document's others)."""
    w = write
    w("healthy", "A", 2)
    registry.put(_record("healthy", "A", 2))
    w("orphan", "A", 2)  # no registry row
    w("stale", "B", 1)  # failed without content (e.g. unsupported), the index holds B
    registry.put(_record("stale", None, 0, status=DocumentStatus.FAILED, error="unsupported"))
    w("crashed", "B", 2)  # an intent for B over acknowledged A, the writer died after the sweep
    registry.put(_record("crashed", "A", 2, status=DocumentStatus.INDEXING, pending_version="B",
                         pending_since=NOW - timedelta(hours=1)))
    w("crashed-new", "A", 1)
    registry.put(_record("crashed-new", None, 0, status=DocumentStatus.INDEXING,
                         pending_version="A", pending_since=NOW - timedelta(hours=1)))
    w("in-flight", "B", 1)
    registry.put(_record("in-flight", "A", 0, status=DocumentStatus.INDEXING,
                         pending_version="B", pending_since=LATE - timedelta(seconds=5)))
    registry.put(_record("empty", "A", 3))
    w("short", "A", 1)
    registry.put(_record("short", "A", 3))


def check_doctor(store: StoreInventory, registry: DocumentRegistry) -> None:
    doctor = Doctor(store=store, registry=registry, clock=lambda: LATE)
    found = doctor.examine()
    by_document: dict[str, set[str]] = {}
    for finding in found:
        by_document.setdefault(finding.document_id, set()).add(finding.kind)
    assert {d: by_document.get(d, set()) for d in KINDS} == KINDS
    repaired = doctor.fix(found)
    assert {f.document_id for f in repaired} == {d for d, k in KINDS.items() if k}
    assert doctor.examine() == []
    inventory = store.document_versions()
    assert "orphan" not in inventory
    assert "stale" not in inventory
    assert inventory["healthy"] == {"A": 2}
    assert inventory["in-flight"] == {"B": 1}  # a live write is left alone
    crashed = registry.get("crashed")
    assert crashed is not None and crashed.status is DocumentStatus.FAILED
    assert crashed.content_hash is None and "crashed" not in inventory
    for name in ("empty", "short", "crashed-new"):
        record = registry.get(name)
        assert record is not None and record.status is DocumentStatus.FAILED, name
        assert "send it again" in (record.error or "")


def test_doctor_on_the_local_store(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space="test:doctor", dimensions=DIMENSIONS)
    registry = LocalDocumentRegistry(tmp_path)

    def write(document_id: str, version: str, n: int) -> None:
        store.upsert_document(document_id, version,
                              make_chunks(document_id, version, [f"t{i}" for i in range(n)]))

    break_everything(write, registry)
    check_doctor(store, registry)


def test_doctor_restores_an_interrupted_write_whose_old_version_survived(tmp_path: Path) -> None:
    store = LocalVectorStore(tmp_path, space="test:doctor", dimensions=DIMENSIONS)
    registry = LocalDocumentRegistry(tmp_path)
    store.upsert_document("d", "A", make_chunks("d", "A", ["one", "two"]))
    registry.put(_record("d", "A", 2, status=DocumentStatus.INDEXING, pending_version="B",
                         pending_since=NOW))
    doctor = Doctor(store=store, registry=registry, clock=lambda: LATE)
    assert [f.kind for f in doctor.fix(doctor.examine())] == ["interrupted_write"]
    record = registry.get("d")
    assert record is not None and record.status is DocumentStatus.INDEXED
    assert (record.content_hash, record.pending_version) == ("A", None)


def test_doctor_on_opensearch_through_the_store_port(stub: OpenSearchStub) -> None:
    harness = Harness(stub)
    registry = MemoryRegistry()  # the DynamoDB registry's place

    def write(document_id: str, version: str, n: int) -> None:
        harness.store.upsert_document(document_id, version,
                                      chunks(document_id, version, [f"t{i}" for i in range(n)]))

    break_everything(write, registry)
    check_doctor(harness.store, registry)
    assert any(b'"composite"' in r.body for r in stub.requests)  # one aggregation, no scan


@pytest.mark.parametrize("target", ["serverless", "serverless-classic"])
def test_version_removal_without_delete_by_query(stub: OpenSearchStub, target: str) -> None:
    harness = Harness(stub, target)  # type: ignore[arg-type]
    harness.store.upsert_document("d", "A", chunks("d", "A", ["x", "y", "z"]))
    assert harness.store.document_versions() == {"d": {"A": 3}}
    assert harness.store.remove_versions("d", keep=None) == 3
    assert harness.store.document_versions() == {}


# -- the command -------------------------------------------------------------------------------

@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_rag_doctor_reports_then_fixes(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cli_env / "a.txt").write_text("Alpha text.", encoding="utf-8")
    assert main(["index", "a.txt"]) == 0
    assert main(["doctor"]) == 0
    registry = LocalDocumentRegistry(cli_env / "data")
    registry.put(DocumentRecord(id="ghost", status=DocumentStatus.INDEXED, chunks=2,
                                content_hash="x", updated_at=datetime.now(UTC)))
    registry.close()
    capsys.readouterr()
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "missing_chunks" in out and "'ghost'" in out and "found=1 repaired=0 left=1" in out
    assert main(["doctor", "--fix"]) == 0
    assert "found=1 repaired=1 left=0" in capsys.readouterr().out
    assert main(["doctor", "--json"]) == 0
    assert '"found": []' in capsys.readouterr().out
