from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from solar_rag.adapters.local_store import LocalVectorStore, keyword
from solar_rag.adapters.local_store.keyword import (
    MAX_QUERY_TOKENS,
    index_text,
    match_expression,
    tokenize,
)
from solar_rag.domain import SearchMode, SearchQuery
from solar_rag.text.scripts import LOCAL_FTS_V1_CJK

from tests.contract.vector_store_contract import DIMENSIONS, embed, make_chunks


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("서울은", ["서울", "울은"]),
        ("서 울", ["서", "울"]),
        ("2024년 3월", ["2024", "년", "3", "월"]),
        ("ＦＵＬＬ width", ["full", "width"]),
        ("東京タワー", ["東京", "京タ", "タワ", "ワー"]),
        ("snake_case-and-dashes", ["snake", "case", "and", "dashes"]),
        ("Straße", ["strasse"]),
        ("!!! ... ???", []),
        ("", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_index_text_joins_title_section_and_body() -> None:
    assert index_text("Title", None, "서울은 좋다") == "title 서울 울은 좋다"


@pytest.mark.parametrize(
    "query",
    ['"a', 'a"b', "NEAR(a b)", "a*", "-a", "(a", "a OR", "col:a", "a AND NOT b", "^a", "{a}"],
)
def test_match_expression_quotes_every_token(query: str) -> None:
    expression = match_expression(query)
    assert expression is not None
    for part in expression.split(" OR "):
        assert part.startswith('"') and part.endswith('"')
        assert '"' not in part[1:-1]


def test_match_expression_is_none_without_tokens() -> None:
    assert match_expression("?!* ()") is None


def test_match_expression_deduplicates_and_caps_tokens() -> None:
    expression = match_expression(" ".join(f"w{i} w{i}" for i in range(1000)))
    assert expression is not None
    assert expression.count(" OR ") == MAX_QUERY_TOKENS - 1


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_valid_fts5_query(text: str) -> None:
    expression = match_expression(text)
    if expression is None:
        return
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(tokens, tokenize = 'unicode61 "
                 "remove_diacritics 2')")
    conn.execute("INSERT INTO t (tokens) VALUES (?)", (index_text(text),))
    assert conn.execute("SELECT count(*) FROM t WHERE t MATCH ?", (expression,)).fetchone() == (1,)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVectorStore]:
    path: Path = tmp_path_factory.mktemp("keyword")
    store = LocalVectorStore(path, space="test", dimensions=DIMENSIONS)
    store.upsert_document("d", "v1", make_chunks("d", "v1", ["hello (world) \"quoted\" NEAR*"]))
    yield store
    store.close()


@given(st.text(max_size=100))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_queries_never_break_search(store: LocalVectorStore, text: str) -> None:
    for mode in (SearchMode.KEYWORD, SearchMode.HYBRID):
        hits = store.search(SearchQuery(text, embed(text or "x"), mode, 3))
        assert len(hits) <= 3


_REFERENCE_TOKEN = re.compile(
    rf"(?P<cjk>[{LOCAL_FTS_V1_CJK}]+)|(?P<word>[^\W_{LOCAL_FTS_V1_CJK}]+)")


def _reference_tokenize(text: str) -> list[str]:
    """The tokenizer as first written (one match per run, bigrams cut in Python): the
    index's tokens must not change, or stored FTS rows stop matching new queries."""
    normalised = unicodedata.normalize("NFKC", text).casefold()
    tokens: list[str] = []
    for match in _REFERENCE_TOKEN.finditer(normalised):
        run = match.group("cjk")
        if run is None:
            tokens.append(match.group("word"))
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


_MIXED = st.text(alphabet=st.sampled_from(list("ab1_ -.,é서울은東京カナ\u3131\u00a0Ａ\U00020001")),
                 max_size=40)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(_MIXED, st.text(max_size=40)))
def test_tokens_equal_the_reference_tokenizer(text: str) -> None:
    assert keyword.tokenize(text) == _reference_tokenize(text)
