"""OpenSearch's API specification (a pinned subset) as the judge of what the adapter sends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.opensearch_spec.validator import RECORD, Violation


def fail_on_new_violations(start: int) -> None:
    """Fail the running test if violations were recorded since ``start`` (and drop them)."""
    new = RECORD.violations[start:]
    if not new:
        return
    del RECORD.violations[start:]
    listed = "\n".join(f"  {v}" for v in new[:10])
    more = f"\n  ... and {len(new) - 10} more" if len(new) > 10 else ""
    pytest.fail(f"requests to the OpenSearch stub violate OpenSearch's API specification:"
                f"\n{listed}{more}", pytrace=False)


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
