"""The playground's citation buttons follow the server's marker (text/markers.py): the page is
served with the pattern, and the script keeps no copy of its own."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from importlib import resources

import pytest
from fastapi.testclient import TestClient
from solar_rag.api.app import create_app
from solar_rag.composition import Container
from solar_rag.domain import Chunk, SearchHit
from solar_rag.services.citations import check_citations
from solar_rag.settings import Settings
from solar_rag.text.markers import MARKER_PATTERN, marker


@pytest.fixture
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, embedding_dimensions=64,
                        rag_data_dir=tmp_path_factory.mktemp("playground"))
    container = Container(settings)
    with TestClient(create_app(lambda: container), raise_server_exceptions=False) as test_client:
        yield test_client


def _meta_pattern(page: str) -> str:
    found = re.search(r'<meta name="citation-marker" content="([^"]*)">', page)
    assert found is not None, "the page carries no citation-marker <meta>"
    return html.unescape(found.group(1))


def test_the_page_is_served_with_the_servers_marker_pattern(client: TestClient) -> None:
    response = client.get("/playground")
    assert response.status_code == 200
    assert _meta_pattern(response.text) == MARKER_PATTERN
    assert "{{" not in response.text


def test_the_script_reads_the_pattern_and_keeps_no_copy(client: TestClient) -> None:
    script = client.get("/playground/playground.js").text
    assert 'meta[name="citation-marker"]' in script
    assert r"\[(\d+)\]" not in script


@pytest.mark.parametrize("number", [1, 9, 10, 123])
def test_the_pattern_matches_what_marker_writes(number: int) -> None:
    found = re.fullmatch(MARKER_PATTERN, marker(number))
    assert found is not None and found.group(1) == str(number)


def _hit(n: int) -> SearchHit:
    chunk = Chunk(document_id=f"d{n}", chunk_id=f"c{n}", index=0, text=f"text {n}", title=None,
                  section=None, start=0, end=6, version="v")
    return SearchHit(chunk, 1.0)


def test_every_marker_left_by_the_post_check_is_one_the_page_turns_into_a_citation() -> None:
    hits = [_hit(1), _hit(2), _hit(3)]
    text, citations = check_citations("A [2, 3] and [1;2] but not [7] nor [x] [ 3 ].", hits)
    numbers = [int(m.group(1)) for m in re.finditer(MARKER_PATTERN, text)]
    assert numbers == [2, 3, 1, 2, 3]
    assert sorted(set(numbers)) == [c.index for c in citations]
    assert "[7]" not in text and "[x]" in text


def test_the_packaged_page_keeps_the_slot_for_the_pattern() -> None:
    page = resources.files("solar_rag.api").joinpath("static", "index.html").read_text()
    assert '<meta name="citation-marker" content="{{citation_marker}}">' in page
