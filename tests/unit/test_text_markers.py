"""Citation markers are defined once (solar_rag.text.markers) and are found exactly where the
regex the prompt and the post-check each had found them, without its nested repeats."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from solar_rag.text.markers import marker, replace_markers

AS_WRITTEN = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")  # services/citations.py, prompt.py

_TEXT = st.text(alphabet=st.sampled_from(list("[]0123456789 ,;\n\tx١\u00a0\u2003\x1c")),
                max_size=60)


@settings(max_examples=1000, deadline=None)
@given(_TEXT)
def test_found_and_replaced_exactly_as_by_the_two_copies(text: str) -> None:
    assert replace_markers(text, lambda _, inside: f"({inside})") == AS_WRITTEN.sub(r"(\1)", text)
    assert _numbers_found(text) == [[int(n.strip()) for n in re.split(r"[,;]", m.group(1))]
                                    for m in AS_WRITTEN.finditer(text)]


def _numbers_found(text: str) -> list[list[int]]:
    found: list[list[int]] = []

    def keep(numbers: list[int], _: str) -> str:
        found.append(numbers)
        return ""

    replace_markers(text, keep)
    return found


def test_a_space_int_does_not_strip_is_no_crash() -> None:
    """The post-check's copy passed a marker's numbers to int() as the regex cut them: an
    answer citing "[0" + U+001C + "]" raised ValueError (a 500), since the regex's spaces
    include U+001C and int() does not strip it."""
    try:
        int("0\x1c")
    except ValueError:
        pass
    else:  # pragma: no cover - a Python that strips it makes the case moot
        raise AssertionError("int() strips U+001C now")
    assert _numbers_found("see [0\x1c]") == [[0]]


def test_numbers_and_the_marker_of_a_number() -> None:
    text = "a [1] b [2, 3] c [4 ;5] [x] [1 2] [,] [6,]"
    assert _numbers_found(text) == [[1], [2, 3], [4, 5]]
    assert replace_markers(text, lambda *_: "#") == "a # b # c # [x] [1 2] [,] [6,]"
    assert marker(7) == "[7]"
