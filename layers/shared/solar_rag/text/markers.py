"""Citation markers: how an answer names its numbered sources (``[1]``, ``[2][3]``).

A marker is ``[`` numbers separated by ``,`` or ``;`` (spaces around them allowed) ``]``, as
models write them: ``[1]``, ``[2, 3]``, ``[2; 3]``. The post-check rewrites markers, and the
prompt defuses them inside quoted sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_BRACKETED = re.compile(r"\[([\d\s,;]++)\]")
"""A candidate: brackets around digits, spaces and separators only (one flat possessive run,
linear on any text); :func:`_numbers` then checks the list. A candidate holds no ``[``, so a
refused one never hides a marker."""
_SEPARATOR = re.compile("[,;]")


def marker(number: int) -> str:
    """The marker for source ``number``, as the prompt numbers sources and answers cite them."""
    return f"[{number}]"


MARKER_PATTERN = r"\[(\d+)\]"
"""What :func:`marker` writes, as a regular expression that Python and JavaScript (ECMA-262)
read alike; group 1 is the number. The citation post-check writes every marker it keeps in
this form, and the playground (served this pattern with its page) turns these into buttons."""


def replace_markers(text: str, replace: Callable[[list[int], str], str]) -> str:
    """``text`` with every marker replaced by ``replace(its numbers, the text between its
    brackets)``; everything else unchanged."""

    def one(match: re.Match[str]) -> str:
        numbers = _numbers(match.group(1))
        return match.group(0) if numbers is None else replace(numbers, match.group(1))

    return _BRACKETED.sub(one, text)


def _numbers(inside: str) -> list[int] | None:
    """The numbers of a marker's inside, or None when it is not a list of numbers."""
    parts = [part.strip() for part in _SEPARATOR.split(inside)]
    if all(part.isdecimal() for part in parts):
        return [int(part) for part in parts]
    return None
