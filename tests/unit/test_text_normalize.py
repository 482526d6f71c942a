import math
import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.text.normalize import _INVISIBLE, normalize_text
from solar_rag.text.scripts import CJK_CHAR
from solar_rag.text.tokens import estimate_tokens


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３　ｘ", "ABC123 x"),  # full-width letters, digits and ideographic space
        ("ﬁne ①", "fine 1"),  # ligature and circled digit (NFKC)
        ("zero\u200bwidth\u200d joiner\ufeff", "zerowidth joiner"),
        ("\ufeffBOM at start", "BOM at start"),
        ("soft\u00adhyphen", "softhyphen"),
        ("bidi \u202eoverride\u202c", "bidi override"),
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("bell\x07 null\x00 esc\x1b[0m del\x7f c1\x9b", "bell null esc[0m del c1"),
        ("page\x0cbreak", "page\nbreak"),
        ("line\u2028sep\u2029para\x85nel", "line\nsep\npara\nnel"),
        ("tabs\t\tand   spaces \u00a0here", "tabs and spaces here"),
        ("trailing   \nspaces\t\n", "trailing\nspaces"),
        ("   leading\n   indent", "leading\nindent"),
        ("a\n\n\n\n\nb\n \n \n c", "a\n\nb\n\nc"),
        ("  \n\n whole \n\n ", "whole"),
        ("lone surrogate \ud800 gone", "lone surrogate gone"),
        ("한글 ｶﾀｶﾅ", "한글 カタカナ"),
        ("", ""),
        (" \t\r\n\u200b ", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_is_idempotent() -> None:
    raw = "Ｔｉｔｌｅ\r\n\r\n\r\n  body\u200b  text\t\n\n\n더 많은　텍스트 \x00"
    once = normalize_text(raw)
    assert normalize_text(once) == once


LINE_BREAKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85"


def test_invisible_class_matches_unicode_categories() -> None:
    """The hard-coded class covers every Cf/Cc code point (other than the line breaks)."""
    missing = []
    for cp in range(sys.maxunicode + 1):
        char = chr(cp)
        category = unicodedata.category(char)
        invisible = category in ("Cf", "Cs") or (category == "Cc" and char not in LINE_BREAKS)
        if invisible and not _INVISIBLE.fullmatch(char):
            missing.append(hex(cp))
    assert missing == []


def test_visible_text_is_not_dropped() -> None:
    sample = "Hello, 세계! 日本語 カナ Ελληνικά кириллица عربى 🙂 €100"
    assert _INVISIBLE.search(sample) is None
    assert normalize_text(sample) == sample


# -- token estimate --------------------------------------------------------------------

def test_estimate_tokens_rules() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("   ") == 0
    assert estimate_tokens("a") == 1
    assert estimate_tokens("abcd") == 2  # ceil(4 / 3.5)
    assert estimate_tokens("abcdefg") == 2  # ceil(7 / 3.5)
    assert estimate_tokens("한국어") == 3
    assert estimate_tokens("日本語です") == 5
    assert estimate_tokens("2024") == 4  # digits one by one
    assert estimate_tokens("hi!") == 2
    assert estimate_tokens("a\nb") == 3
    assert estimate_tokens("привет") == 6


def test_estimate_tokens_is_additive_across_whitespace() -> None:
    parts = ["The year 2024 was 좋은 해였다.", "日本語の文。", "Ünïcödé wörds!", "x"]
    for separator in (" ", "\n", "\n\n"):
        joined = separator.join(parts)
        expected = sum(map(estimate_tokens, parts)) + estimate_tokens(separator) * (len(parts) - 1)
        assert estimate_tokens(joined) == expected


def test_estimate_tokens_overestimates_typical_english() -> None:
    sentence = "The quick brown fox jumps over the lazy dog."
    # A Llama-style tokenizer needs 10-11 tokens here; the estimate must not be lower.
    assert 11 <= estimate_tokens(sentence) <= 20


_RULE_LATIN = re.compile(r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]+")
_RULE_CJK = re.compile(CJK_CHAR)


def rule_by_rule(text: str) -> int:
    """The module doc's rules, one count each (the estimate computes the same faster)."""
    runs = _RULE_LATIN.findall(text)
    latin = sum(math.ceil(len(run) / 3.5) for run in runs)
    cjk = len(_RULE_CJK.findall(text))
    spaces = sum(1 for c in text if c.isspace())
    other = len(text) - spaces - sum(map(len, runs)) - cjk
    return latin + cjk + other + text.count("\n")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(
    "abcXYZ éüß0129.,!?-\n\t\r\x0b\x0c\x1c\u00a0\u2003\u3000한국어日本語カナпи\U00020000😀\u0301"))))
def test_estimate_tokens_follows_the_rules(text: str) -> None:
    assert estimate_tokens(text) == rule_by_rule(text)


_TRICKY = [" ", "  ", "\n", "\n\n\n", "\r\n", "\r", "\t", "\u200b", "\u3000", "\ufb01", "\uff21",
           "\uac00", "\u11a8", "\u0301", "a", "bc", "`", ".", "\u2028", "\x0c", "\u00a0", "\ufe70",
           "\u1100\u1161", "\ufeff"]


def test_long_texts_are_normalised_in_slices_with_the_same_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from solar_rag.text import normalize

    rng = random.Random(5)
    texts = ["".join(rng.choice(_TRICKY) for _ in range(rng.randint(1, 400))) for _ in range(400)]
    whole = [normalize._normalize(t).strip() for t in texts]
    monkeypatch.setattr(normalize, "SLICE_CHARS", 7)
    assert [normalize.normalize_text(t) for t in texts] == whole
