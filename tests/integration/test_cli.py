"""The `rag` command on real files, the local store and the offline provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from solar_rag.cli import main, parse_filters
from solar_rag.settings import get_settings

from tests.fakes.cli_env import isolated_cli


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with isolated_cli(tmp_path, monkeypatch):
        yield


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "hr").mkdir(parents=True)
    (root / "hr" / "leave.md").write_text(
        "# Leave\n\nEmployees get 25 days of paid leave per year.\n", encoding="utf-8")
    (root / "hr" / "leave.md.metadata.json").write_text(
        json.dumps({"metadataAttributes": {"team": "hr", "year": 2025}}), encoding="utf-8")
    (root / "office.html").write_text(
        "<title>Office</title><p>The office opens at 8:00.</p>", encoding="utf-8")
    (root / "faq.json").write_text(json.dumps({"documents": [
        {"title": "Parking", "text": "Parking is free for bicycles."}]}), encoding="utf-8")
    (root / "empty.txt").write_text("   \n", encoding="utf-8")
    (root / "image.png").write_bytes(b"\x89PNG")
    (root / ".hidden.md").write_text("secret notes", encoding="utf-8")
    return root


def test_index_reports_progress_and_summary(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index", str(corpus)]) == 1  # empty.txt fails; the rest is indexed
    out, err = capsys.readouterr()
    assert "indexed=3 unchanged=0 failed=1" in out
    assert "empty.txt" in err and "4/4" in err
    assert ".hidden" not in err and "image.png" not in err

    assert main(["index", str(corpus / "hr" / "leave.md")]) == 0
    assert "indexed=0 unchanged=1 failed=0" in capsys.readouterr().out


def test_ask_search_and_documents(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["index", str(corpus)])
    capsys.readouterr()
    leave_id = (corpus / "hr" / "leave.md").as_posix()

    assert main(["ask", "How many days of paid leave?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Offline extractive answer") and f"({leave_id})" in out

    assert main(["search", "leave", "--mode", "keyword", "--filter", "team=hr", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["document_id"] for r in results] == [leave_id]
    assert main(["search", "leave", "--filter", "year=2024"]) == 0
    assert "no results" in capsys.readouterr().out

    assert main(["documents", "list"]) == 0
    listing = capsys.readouterr().out
    assert "failed" in listing and "has no text" in listing and leave_id in listing
    assert main(["documents", "show", leave_id]) == 0
    assert json.loads(capsys.readouterr().out)["metadata"] == {"team": "hr", "year": 2025}
    assert main(["documents", "delete", leave_id]) == 0
    assert main(["documents", "show", leave_id]) == 2
    assert "not found" in capsys.readouterr().err


def test_bad_invocations_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "x", "--filter", "novalue"]) == 2
    assert main(["ask", "   "]) == 2
    assert main(["documents", "show"]) == 2
    assert "error:" in capsys.readouterr().err


def test_filters_parse_types_and_repeat_as_any_of() -> None:
    assert parse_filters(["a=1", "b=true", "c=x", "a=2"]) == {"a": [1, 2], "b": True, "c": "x"}


def test_cli_on_opensearch(corpus: Path, monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    """VECTOR_STORE=opensearch: `rag opensearch init`, then the same commands on the cluster."""
    from tests.fakes.opensearch_stub import OpenSearchStub

    with OpenSearchStub() as stub:
        monkeypatch.setenv("VECTOR_STORE", "opensearch")
        monkeypatch.setenv("OPENSEARCH_URL", stub.url)
        get_settings.cache_clear()
        assert main(["search", "leave"]) == 2  # before init: a clear error, not a crash
        assert "rag opensearch init" in capsys.readouterr().err
        assert main(["opensearch", "init"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["index_created"] is True and report["dimensions"] == 256
        assert main(["opensearch", "init"]) == 0  # idempotent
        assert json.loads(capsys.readouterr().out)["index_created"] is False
        assert main(["index", str(corpus / "hr")]) == 0
        assert "indexed=1" in capsys.readouterr().out
        assert main(["search", "paid leave", "--json", "--filter", "team=hr"]) == 0
        hits = json.loads(capsys.readouterr().out)
        assert hits and hits[0]["document_id"].endswith("hr/leave.md")
