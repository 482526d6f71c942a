"""`rag ask` names the page a PDF citation comes from, and the section of a document without
pages (offline provider, local store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from solar_rag.cli import main

from tests.fakes.cli_env import isolated_cli
from tests.fakes.documents import make_pdf


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with isolated_cli(tmp_path, monkeypatch, CHUNK_SIZE_TOKENS="32", CHUNK_OVERLAP_TOKENS="0"):
        yield


def test_ask_prints_the_page_of_each_citation(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "manual.pdf").write_bytes(make_pdf([
        "Chapter one covers the installation of the unit in a dry room.",
        "The pump seal must be replaced every 400 operating hours.",
        "Chapter three lists the spare parts and their order numbers."]))
    (tmp_path / "notes.md").write_text("# Notes\n\n## Seals\n\nSeal kits are in cabinet B.\n",
                                       encoding="utf-8")
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # offline: not picked
    assert main(["index", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["ask", "How often must the pump seal be replaced?"]) == 0
    out = capsys.readouterr().out
    manual = (tmp_path / "manual.pdf").as_posix()
    assert f"({manual}), p. 2" in out
    assert main(["ask", "Where are the seal kits?"]) == 0
    assert "Notes > Seals" in capsys.readouterr().out
