"""The one retry mechanism: tenacity, configured per dependency in this module.

Every call to an outside dependency that may fail for a moment goes through ``retrying``
with the policy of that dependency below. The adapters only say which of their failures are
worth another attempt (``retry_on``) and, for HTTP, which server-given pause applies
(``retry_after``); the numbers live here. Guarantees of every policy:

- bounded: ``attempts`` (from the settings where there is one) and/or ``patience_seconds``;
- jittered exponential back-off (``Backoff``);
- deadline-aware (``solar_rag.resilience.deadline``): no back-off sleep is started when what
  it leaves of the request's budget is too little for another attempt; the attempt then
  fails with the last error. (Each attempt takes its own timeout from what is left:
  ``deadline.attempt_timeout``, called by the adapter inside the attempt.)
- a server-given pause (``Retry-After``) replaces the back-off, with a little extra so that
  clients told the same instant do not all come back at once; a pause longer than
  ``max_retry_after_seconds`` or past the deadline is not waited for at all;
- the last failure is re-raised as it was (``reraise``): the adapter maps it to the domain's
  error with its own message.

Not here: AWS SDK calls (botocore's own ``standard`` retry mode, which knows DynamoDB and S3
throttling, configured in ``adapters/aws_clients.py`` with the same deadline hook) and the
OpenSearch index bootstrap at deploy time (CDK's custom resource provider framework polls
its ``is_complete`` handler: ``OPENSEARCH_INIT_*`` below, used by ``infra_cdk``).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import tenacity

from solar_rag.resilience import deadline

logger = logging.getLogger("solar_rag.retry")

_RNG = random.Random()  # noqa: S311 (jitter, not cryptography)
RETRY_AFTER_JITTER = 0.1
"""Up to this share is added to a server-given pause."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential back-off with jitter: retry ``n`` (0-based) waits
    ``min(cap, base * 2**n)`` less a random share of up to ``jitter`` of it (1.0: "full
    jitter", anywhere between 0 and the ceiling; 0.0: no jitter)."""

    base_seconds: float = 0.25
    cap_seconds: float = 4.0
    jitter: float = 1.0
    rng: random.Random = field(default=_RNG, compare=False, repr=False)

    def delay(self, retry: int) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**retry)
        return ceiling * (1.0 - self.jitter * self.rng.random())


@dataclass(frozen=True, slots=True)
class Policy:
    """How one dependency is retried."""

    name: str
    backoff: Backoff
    attempts: int | None = None
    """All attempts, the first included (``None``: bounded by ``patience_seconds``)."""
    patience_seconds: float | None = None
    """Total time to keep trying (waiting for a lock): the last sleep is cut to what is left."""
    max_retry_after_seconds: float = math.inf
    """A longer server-given pause is not waited for: the failure surfaces at once."""
    retry_statuses: frozenset[int] = frozenset()
    """HTTP statuses worth another attempt (for the adapter's ``retry_on``)."""

    def __post_init__(self) -> None:
        if self.attempts is None and self.patience_seconds is None:
            raise ValueError(f"retry policy {self.name!r} is unbounded")
        if self.attempts is not None and self.attempts < 1:
            raise ValueError(f"retry policy {self.name!r} needs at least one attempt")

    def with_attempts(self, attempts: int) -> Policy:
        return replace(self, attempts=attempts)

    def with_patience(self, seconds: float) -> Policy:
        return replace(self, patience_seconds=seconds)

    def with_backoff(self, backoff: Backoff) -> Policy:
        return replace(self, backoff=backoff)


def _transient_http(status: int) -> bool:
    return status in (408, 429) or status >= 500


# --- the policies, one per dependency ----------------------------------------------------------

UPSTAGE_RETRY_STATUSES = frozenset({409} | {s for s in range(400, 600) if _transient_http(s)})
"""408, 409 (Upstage answers it for a conflicting concurrent request), 429 and every 5xx."""
UPSTAGE = Policy(
    "upstage",
    Backoff(base_seconds=0.5, cap_seconds=20.0, jitter=0.25),
    attempts=3,  # replaced by upstage_max_retries + 1
    max_retry_after_seconds=60.0,
    retry_statuses=UPSTAGE_RETRY_STATUSES,
)

DOCUMENT_PARSE = Policy(
    "upstage document parse",
    Backoff(base_seconds=0.5, cap_seconds=8.0, jitter=0.25),
    attempts=3,  # replaced by document_parse_max_retries + 1
    max_retry_after_seconds=60.0,
    retry_statuses=UPSTAGE_RETRY_STATUSES,
)
"""Document Parse's submit, poll and download requests (its own rate limits: 3 RPS sync,
6 RPS async; the polling of a running parse is not a retry and paces itself)."""

OPENSEARCH_RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Throttling and the gateway statuses of an overloaded or restarting cluster. Not 500: from
OpenSearch that is mostly a request it cannot run (a script or query error), not a moment."""
OPENSEARCH = Policy(
    "opensearch",
    Backoff(base_seconds=0.25, cap_seconds=4.0),
    attempts=4,  # replaced by opensearch_max_retries + 1
    retry_statuses=OPENSEARCH_RETRY_STATUSES,
)
OPENSEARCH_BULK_ITEMS = Policy(
    "opensearch bulk items",
    Backoff(base_seconds=0.5, cap_seconds=8.0),
    attempts=5,
    retry_statuses=frozenset({429}),
)
"""Items a bulk request answered with 429 (the request itself succeeded) are sent again."""

DOCUMENT_LOCK_DYNAMODB_SECONDS = 10.0
DOCUMENT_LOCK_DYNAMODB = Policy(
    "dynamodb document lock",
    Backoff(base_seconds=0.05, cap_seconds=1.0, jitter=0.5),
    patience_seconds=DOCUMENT_LOCK_DYNAMODB_SECONDS,
)
"""Waiting for a lock item another writer holds (a conditional put that failed)."""
DOCUMENT_LOCK_LOCAL_SECONDS = 30.0
DOCUMENT_LOCK_LOCAL = Policy(
    "local document lock",
    Backoff(base_seconds=0.002, cap_seconds=0.05, jitter=0.0),
    patience_seconds=DOCUMENT_LOCK_LOCAL_SECONDS,
)
"""Polling a ``flock`` another thread or process holds."""
SQLITE_OPEN_SECONDS = 60.0
SQLITE_OPEN = Policy(
    "sqlite open",
    Backoff(base_seconds=0.005, cap_seconds=0.25, jitter=0.5),
    patience_seconds=SQLITE_OPEN_SECONDS,
)
"""Steps of opening the local store that SQLite answers "busy" without its busy handler."""

OPENSEARCH_INIT_RETRY_STATUSES = frozenset({403}) | OPENSEARCH_RETRY_STATUSES | {408, 500}
"""At deploy time also 403 (fresh access policies take minutes to apply) and 500 (a new
domain settling)."""
OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS = 15
OPENSEARCH_INIT_TOTAL_TIMEOUT_SECONDS = 600
"""The provider framework asks the init function every interval until the total timeout."""
OPENSEARCH_INIT_ATTEMPT_SECONDS = 180
"""The init function's Lambda timeout: one attempt (its HTTP calls retried under
``OPENSEARCH`` within it)."""


# --- the mechanism ------------------------------------------------------------------------------

def retrying(
    policy: Policy,
    *,
    retry_on: Callable[[BaseException], bool],
    retry_after: Callable[[BaseException], float | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one call under ``policy``: ``retrying(...)(function)``.

    ``retry_on`` says whether a failure is worth another attempt; ``retry_after`` reads a
    server-given pause from it. ``before_sleep`` replaces the default log line.
    """
    started = clock()

    def patience_left() -> float:
        if policy.patience_seconds is None:
            return math.inf
        return policy.patience_seconds - (clock() - started)

    def server_pause(state: tenacity.RetryCallState) -> float | None:
        if retry_after is None or state.outcome is None:
            return None
        error = state.outcome.exception()
        return retry_after(error) if error is not None else None

    def wait(state: tenacity.RetryCallState) -> float:
        pause = server_pause(state)
        if pause is not None:
            delay = pause * (1.0 + RETRY_AFTER_JITTER * policy.backoff.rng.random())
        else:
            delay = policy.backoff.delay(state.attempt_number - 1)
        return max(0.0, min(delay, patience_left()))

    def stop(state: tenacity.RetryCallState) -> bool:
        if policy.attempts is not None and state.attempt_number >= policy.attempts:
            return True
        if patience_left() <= 0.0:
            return True
        if (server_pause(state) or 0.0) > policy.max_retry_after_seconds:
            return True
        # No sleep that would leave too little of the budget for the next attempt.
        return deadline.time_left(math.inf) < state.upcoming_sleep + deadline.MIN_ATTEMPT_SECONDS

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(retry_on),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep or _log_retry(policy),
        reraise=True,
    )


def quiet(state: tenacity.RetryCallState) -> None:
    """``before_sleep`` for expected waits (another writer holds a lock): no line per attempt."""


def _log_retry(policy: Policy) -> Callable[[tenacity.RetryCallState], None]:
    def log(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        status = getattr(error, "status_code", None)
        logger.info("%s: %s%s, retry %d in %.2f s", policy.name, type(error).__name__,
                    f" {status}" if isinstance(status, int) else "", state.attempt_number,
                    state.upcoming_sleep)
    return log
