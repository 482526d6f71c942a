"""`rag index`: ids derived from paths follow the id grammar; a file whose name breaks it is
reported and recorded `failed`, the other files are indexed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from solar_rag.cli import document_id_for, main
from solar_rag.document_ids import document_id_problem
from solar_rag.settings import get_settings


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("UPSTAGE_API_KEY", raising=False)
    monkeypatch.delenv("UPSTAGE_SECRET_ID", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_paths_through_dotdot_become_absolute_ids(tmp_path: Path) -> None:
    assert document_id_for(Path("docs/a.md")) == "docs/a.md"
    assert document_id_for(Path("./docs/a.md")) == "docs/a.md"
    outside = document_id_for(Path("../elsewhere/b.md"))
    assert outside == (tmp_path / "elsewhere" / "b.md").as_posix()
    assert document_id_problem(outside) is None


def test_a_file_name_outside_the_grammar_fails_alone(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "work" / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Good text about tea.", encoding="utf-8")
    (folder / "bad\nname.txt").write_text("Bad name, fine text.", encoding="utf-8")
    assert main(["index", "docs"]) == 1
    out, err = capsys.readouterr()
    assert "indexed=1 unchanged=0 failed=1" in out
    assert "control characters" in err
    assert main(["documents", "list"]) == 0
    listed = capsys.readouterr().out
    assert "indexed" in listed and "docs/good.txt" in listed
    assert "failed" in listed  # recorded under its id, readable and deletable
    assert main(["documents", "delete", "docs/bad\nname.txt"]) == 0


def test_index_from_a_sibling_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    (sibling / "c.md").write_text("# C\n\nSibling text.", encoding="utf-8")
    assert main(["index", "../sibling"]) == 0
    capsys.readouterr()
    assert main(["documents", "show", (sibling / "c.md").as_posix()]) == 0
