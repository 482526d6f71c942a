"""The script ranges are defined once (solar_rag.text.scripts) and each named set keeps exactly
the code points its users had before: the chunker's (its chunks must not change), the local
store's keyword tokens and the offline embedder's features (both are stored)."""

from __future__ import annotations

import re

import pytest
from solar_rag.adapters import extractive_answers
from solar_rag.text import scripts

# The character classes as they were written in each module before they were defined once
# (verbatim; the chunker's is also in tests/reference/chunking_v1.py).
CHUNKER_AS_WRITTEN = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
LOCAL_FTS_AS_WRITTEN = (
    "\u1100-\u11ff\u3040-\u309f\u30a0-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7a3\ud7b0-\ud7ff\uf900-\ufaff\U00020000-\U0002ffff"
)
OFFLINE_HASH_AS_WRITTEN = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
    "\uf900-\ufaff"
)
EXTRACTIVE_AS_WRITTEN = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af"

ALL_CODE_POINTS = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def members(char_class: str) -> set[int]:
    return {ord(c) for c in re.findall(f"[{char_class}]", ALL_CODE_POINTS)}


@pytest.mark.parametrize(("name", "written"), [
    ("CJK", CHUNKER_AS_WRITTEN),
    ("LOCAL_FTS_V1_CJK", LOCAL_FTS_AS_WRITTEN),
    ("OFFLINE_HASH_V1_CJK", OFFLINE_HASH_AS_WRITTEN),
])
def test_each_set_has_exactly_the_code_points_it_had(name: str, written: str) -> None:
    assert members(getattr(scripts, name)) == members(written)


def test_the_frozen_sets_are_subsets_of_the_one_set() -> None:
    everything = members(scripts.CJK)
    assert members(scripts.LOCAL_FTS_V1_CJK) < everything
    assert members(scripts.OFFLINE_HASH_V1_CJK) < everything


def test_cjk_char_is_one_character_of_the_set() -> None:
    assert re.fullmatch(scripts.CJK_CHAR, "한")
    assert re.fullmatch(scripts.CJK_CHAR, "\U00030000")  # extension G
    assert not re.fullmatch(scripts.CJK_CHAR, "a")
    assert not re.fullmatch(scripts.CJK_CHAR, "한국")


def test_offline_answers_use_the_one_set() -> None:
    """The offline answers kept nothing (no stored format), so they moved to CJK: the
    difference is the rare blocks the old class missed, and the Yijing hexagram symbols
    (U+4DC0-U+4DFF, not a script) it took in by writing U+3400-U+9FFF as one range."""
    before, after = members(EXTRACTIVE_AS_WRITTEN), members(scripts.CJK)
    assert before - after == set(range(0x4DC0, 0x4E00))
    assert {0x31F0, 0xA960, 0xD7B0, 0xF900, 0xFF66, 0x20000, 0x30000} <= after - before
    assert extractive_answers.passage_terms("서울에서 東京まで") >= {"서울", "울에", "東京", "京ま"}
    assert extractive_answers.passage_terms("𠀀𠀁") == {"𠀀𠀁"}  # extension B, missed before
    assert extractive_answers.passage_terms("䷀䷁") == set()  # hexagrams are symbols, not words
