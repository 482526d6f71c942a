"""Citation markers: how an answer names its numbered sources (``[1]``, ``[2][3]``)."""

from __future__ import annotations

import re

CITATION_MARKERS = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")
"""One marker as models write them: ``[1]``, ``[2, 3]``, ``[2; 3]``; group 1 holds the numbers.
The post-check rewrites these, and the prompt defuses them inside quoted sources."""

_SEPARATOR = re.compile(r"[,;]")


def marker(number: int) -> str:
    """The marker for source ``number``, as the prompt numbers sources and answers cite them."""
    return f"[{number}]"


def marker_numbers(match: re.Match[str]) -> list[int]:
    """The numbers of one :data:`CITATION_MARKERS` match, in order."""
    return [int(part) for part in _SEPARATOR.split(match.group(1))]
