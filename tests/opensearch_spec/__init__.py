"""OpenSearch's API specification (a pinned subset) as the judge of what the adapter sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.opensearch_spec.validator import RECORD, Violation


@contextmanager
def expect_violations() -> Iterator[list[Violation]]:
    """Collect (and take out of the session record) the violations raised inside the block."""
    start = len(RECORD.violations)
    found: list[Violation] = []
    try:
        yield found
    finally:
        found.extend(RECORD.violations[start:])
        del RECORD.violations[start:]
