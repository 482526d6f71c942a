"""Session-wide: every request an OpenSearch stub receives is judged by the API specification.

The stub validates each request as it arrives (``tests/fakes/opensearch_stub.py``) and adds
what is wrong to ``RECORD``; this fixture fails the test during which a violation arrived,
with the request and the rule in the message. Tests that send broken requests on purpose
take them back out with ``tests.opensearch_spec.expect_violations``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.opensearch_spec import fail_on_new_violations
from tests.opensearch_spec.validator import RECORD


@pytest.fixture(autouse=True)
def _opensearch_requests_follow_the_spec() -> Iterator[None]:
    start = len(RECORD.violations)
    yield
    fail_on_new_violations(start)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECORD.checked:
        counts = ", ".join(f"{target} {n}" for target, n in sorted(RECORD.checked.items()))
        terminalreporter.write_line(
            f"OpenSearch stub requests judged by the API specification: {counts}")
