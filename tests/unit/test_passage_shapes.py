"""The line shapes of ``text.passages`` and the tokens of ``text.query_terms`` are recognised
without backtracking regexes; they must agree with the regexes they replaced."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.text import passages, query_terms

OLD_RULE = re.compile(r"\s*(?:[-=_*]\s*){3,}")
OLD_TABLE_RULE = re.compile(r"\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?\s*|\s*\|\s*:?-+:?\s*\|\s*")
OLD_ATX_HEADING = re.compile(r"\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*")
OLD_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
OLD_LATIN_TOKEN = re.compile(r"[0-9]+(?:[.,][0-9]+)+|[0-9a-z]+")
OLD_WH_HEAD = re.compile(r"\b(?:[Hh]ow\s+(?:long|often|far|old|soon|big|large|early|late)"
                         r"|(?<=[Ww]hat )[a-z]+|(?<=[Ww]hich )[a-z]+)\b")

lines = st.text(alphabet=st.sampled_from(list(" \t|:-=_*#aZ.1,é\u3000")), max_size=24)
words = st.text(alphabet=st.sampled_from(list("aZq.1 ,é-")), max_size=24)
questions = st.lists(st.sampled_from(["how", "How", "long", "what", "What", "which", "colour",
                                      "Orion", "longer", " ", "  ", "\t", "x1"]), max_size=8)


@settings(max_examples=3000, deadline=None)
@given(line=lines)
def test_line_shapes_agree_with_the_old_regexes(line: str) -> None:
    assert passages._is_rule(line) == bool(OLD_RULE.fullmatch(line))
    assert passages._is_table_rule(line) == bool(OLD_TABLE_RULE.fullmatch(line))
    old = OLD_ATX_HEADING.fullmatch(line)
    assert passages._atx_heading(line) == (old.group(1) if old else None)


@settings(max_examples=3000, deadline=None)
@given(text=words)
def test_tokens_agree_with_the_old_regexes(text: str) -> None:
    old = OLD_WORD_BEFORE.search(text)
    assert passages._word_before(text) == (old.group(1) if old else None)
    assert query_terms.LATIN_TOKEN.findall(text.lower()) == OLD_LATIN_TOKEN.findall(text.lower())


@settings(max_examples=2000, deadline=None)
@given(parts=questions)
def test_wh_heads_agree_with_the_old_regex(parts: list[str]) -> None:
    question = " ".join(parts)
    assert query_terms.WH_HEAD.sub(" ", question) == OLD_WH_HEAD.sub(" ", question)


def test_the_known_shapes() -> None:
    assert passages._is_table_rule("| --- | :-: |") and passages._is_table_rule("|---|")
    assert not passages._is_table_rule("---") and passages._is_rule("- - -")
    assert passages._atx_heading("## Title ##") == "Title"
    assert passages._atx_heading("# ##") == "##"
    assert passages._word_before("see e.g") == "e.g"
    assert query_terms.LATIN_TOKEN.findall("v3.2 costs 1,000.50 in 12a") == [
        "v3", "2", "costs", "1,000.50", "in", "12a"]
