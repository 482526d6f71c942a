"""Post-checks an answer's ``[n]`` markers against the sources it was given."""

from __future__ import annotations

import re
from collections.abc import Sequence

from solar_rag.domain import Citation, SearchHit
from solar_rag.text.markers import CITATION_MARKERS, marker, marker_numbers


def check_citations(text: str, hits: Sequence[SearchHit]) -> tuple[str, tuple[Citation, ...]]:
    """Keep markers that name a given source, drop the rest, list what is cited.

    A marker like ``[7]`` when five sources were given is removed from the text, so every
    marker left refers to an entry of the returned citations (numbered as in the prompt).
    """
    cited: set[int] = set()

    def replace(match: re.Match[str]) -> str:
        valid = [n for n in marker_numbers(match) if 1 <= n <= len(hits)]
        cited.update(valid)
        return "".join(marker(n) for n in dict.fromkeys(valid))

    checked = CITATION_MARKERS.sub(replace, text)
    checked = re.sub(r"[ \t]+([.,;:!?])", r"\1", checked)
    checked = re.sub(r"[ \t]{2,}", " ", checked).strip()
    citations = tuple(Citation(index=n, hit=hits[n - 1]) for n in sorted(cited))
    return checked, citations
