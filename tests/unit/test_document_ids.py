"""The id grammar: the code and the patterns published in the OpenAPI schema agree."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.document_ids import (
    ID_PATTERN,
    MAX_DOCUMENT_ID_CHARS,
    NOT_BLANK_PATTERN,
    check_document_id,
    document_id_problem,
)
from solar_rag.errors import InvalidInput

_ID = re.compile(ID_PATTERN)
_NOT_BLANK = re.compile(NOT_BLANK_PATTERN)


def by_pattern(value: str) -> bool:
    return (1 <= len(value) <= MAX_DOCUMENT_ID_CHARS and _ID.fullmatch(value) is not None
            and _NOT_BLANK.search(value) is not None)


@pytest.mark.parametrize("value", [
    "a", "docs/guide.md", "/abs/path.txt", "a//b", "a/", "...x", "a/.hidden", "a/..b",
    "my file (1).pdf", "서울/보고서.docx", "emoji 🎉.md", "x" * MAX_DOCUMENT_ID_CHARS,
    "a.b.c", " leading space", "café\u200dzwj",
])
def test_valid_ids(value: str) -> None:
    assert document_id_problem(value) is None
    assert by_pattern(value)
    assert check_document_id(value) == value


@pytest.mark.parametrize(("value", "reason"), [
    ("", "empty"), ("   ", "blank"), ("\u3000", "blank"),
    ("x" * (MAX_DOCUMENT_ID_CHARS + 1), "longer"),
    ("a\nb", "control"), ("a\rb", "control"), ("tab\there", "control"), ("nul\x00", "control"),
    ("del\x7f", "control"), ("c1\x85x", "control"), ("line\u2028sep", "control"),
    ("rtl\u202eoverride", "control"), ("iso\u2066late", "control"),
    (".", "dots"), ("..", "dots"), ("a/..", "dots"), ("../etc/passwd", "dots"), ("a/./b", "dots"),
    ("a/.../b", "dots"),
])
def test_invalid_ids(value: str, reason: str) -> None:
    problem = document_id_problem(value)
    assert problem is not None and reason in problem
    assert not by_pattern(value)
    with pytest.raises(InvalidInput):
        check_document_id(value)


def test_lone_surrogates_are_refused_by_the_code() -> None:
    assert document_id_problem("a\ud800b") is not None


def test_not_blank_pattern_is_exactly_str_isspace() -> None:
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        assert (_NOT_BLANK.search(char) is None) == char.isspace(), hex(code)


_ALPHABET = st.sampled_from(["a", "Z", "0", ".", "/", " ", "-", "\t", "\n", "\x00", "\x7f",
                             "\x9f", "\u2028", "\u202e", "\u2067", "\u3000", "é", "한", "🎉"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ALPHABET, max_size=12).map("".join))
def test_code_and_published_patterns_agree(value: str) -> None:
    assert (document_id_problem(value) is None) == by_pattern(value)
