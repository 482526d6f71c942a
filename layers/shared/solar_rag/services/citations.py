"""Post-checks an answer's ``[n]`` markers against the sources it was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from solar_rag.domain import Citation, SearchHit
from solar_rag.text.markers import marker, replace_markers


def check_citations(text: str, hits: Sequence[SearchHit]) -> tuple[str, tuple[Citation, ...]]:
    """Keep markers that name a given source, drop the rest, list what is cited.

    A marker like ``[7]`` when five sources were given is removed from the text, so every
    marker left refers to an entry of the returned citations (numbered as in the prompt).
    """
    cited: set[int] = set()

    def replace(numbers: list[int], _: str) -> str:
        valid = [n for n in numbers if 1 <= n <= len(hits)]
        cited.update(valid)
        return "".join(marker(n) for n in dict.fromkeys(valid))

    checked = replace_markers(text, replace)
    checked = re.sub(r"[ \t]+([.,;:!?])", r"\1", checked)
    checked = re.sub(r"[ \t]{2,}", " ", checked).strip()
    citations = tuple(Citation(index=n, hit=hits[n - 1]) for n in sorted(cited))
    return checked, citations
