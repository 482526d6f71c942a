"""opensearch-py client construction, HTTP retries (``retry.OPENSEARCH``), error translation.

The composition root builds one client per Lambda container; this module only builds it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opensearchpy import OpenSearch, Transport, Urllib3HttpConnection
from opensearchpy.exceptions import (
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    TransportError,
)

from solar_rag.adapters.opensearch.capabilities import Capabilities, capabilities_for
from solar_rag.errors import (
    NotConfigured,
    RagError,
    UpstreamRateLimited,
    UpstreamTimeout,
    VectorStoreError,
)
from solar_rag.resilience import deadline, retry
from solar_rag.resilience.retry import Backoff as Backoff  # re-exported (callers configure it here)

if TYPE_CHECKING:
    import boto3

    from solar_rag.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
INIT_HINT = "run `rag opensearch init` to create it"


class BackoffTransport(Transport):
    """Retries 429/502/503/504 and dropped connections under ``retry.OPENSEARCH``.

    opensearch-py's own retry loop retries at once (and never on 429); with a single host
    that just hammers an overloaded cluster. Timeouts are not retried: the API Gateway
    deadline is better spent failing fast.
    """

    def __init__(
        self,
        hosts: Any,
        *,
        max_retries: int = 3,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_statuses: Collection[int] = retry.OPENSEARCH_RETRY_STATUSES,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("retry_on_status", None)
        super().__init__(hosts, max_retries=0, retry_on_status=(), **kwargs)
        self.default_timeout = float(kwargs.get("timeout") or DEFAULT_TIMEOUT_SECONDS)
        self.policy = retry.OPENSEARCH.with_attempts(max_retries + 1).with_backoff(
            backoff or retry.OPENSEARCH.backoff)
        self.sleep = sleep
        self.retry_statuses = frozenset(retry_statuses)

    def perform_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """Each attempt's timeout is cut to what the request's deadline leaves; no retry
        starts when the back-off would leave too little for it."""
        what = f"the OpenSearch request {method} {url.split('?')[0]}"

        def attempt() -> Any:
            if deadline.current() is not None:
                configured = kwargs.get("timeout") or self.default_timeout
                kwargs["timeout"] = deadline.attempt_timeout(float(configured), what)
            return super(BackoffTransport, self).perform_request(method, url, *args, **kwargs)

        def warn(state: Any) -> None:
            error = state.outcome.exception()
            log.warning("OpenSearch %s %s failed (%s), retry %d in %.2fs", method, url,
                         getattr(error, "status_code", None), state.attempt_number,
                         state.upcoming_sleep)

        return retry.retrying(self.policy, retry_on=self._retryable, sleep=self.sleep,
                              before_sleep=warn)(attempt)

    def _retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, TransportError) or isinstance(exc, ConnectionTimeout):
            return False
        if isinstance(exc, ConnectionError):
            return True
        return exc.status_code in self.retry_statuses


POOL_CONNECTIONS = 10
"""Idle connections kept per host (opened only when requests overlap)."""


def build_client(
    settings: Settings,
    *,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> OpenSearch:
    """A client for OPENSEARCH_URL (plain/basic auth) or OPENSEARCH_ENDPOINT (SigV4)."""
    common: dict[str, Any] = {
        "connection_class": Urllib3HttpConnection,
        "transport_class": BackoffTransport,
        "timeout": settings.opensearch_timeout_seconds,
        "max_retries": settings.opensearch_max_retries,
        "sleep": sleep,
        # Off with SigV4 (signature mismatches) and off for plain URLs too: gzip of
        # multi-megabyte vector bulks costs more Lambda CPU than it saves on the wire.
        "http_compress": False,
        # urllib3 keeps one connection by default: concurrent requests of `rag serve` or of
        # parallel indexing groups each opened one more and threw it away after use.
        "pool_maxsize": POOL_CONNECTIONS,
    }
    if settings.opensearch_url:
        auth = None
        if settings.opensearch_username:
            password = (
                settings.opensearch_password.get_secret_value()
                if settings.opensearch_password
                else ""
            )
            auth = (settings.opensearch_username, password)
        return OpenSearch(hosts=[settings.opensearch_url], http_auth=auth, **common)
    if settings.opensearch_endpoint:
        capabilities = capabilities_for(settings.opensearch_target)
        host = _host_config(settings.opensearch_endpoint)
        auth = sigv4_auth(settings, capabilities, session=session)
        return OpenSearch(hosts=[host], http_auth=auth, **common)
    raise NotConfigured(
        "VECTOR_STORE=opensearch needs OPENSEARCH_URL (self-hosted) or OPENSEARCH_ENDPOINT "
        "with OPENSEARCH_TARGET (AWS)"
    )


def sigv4_auth(
    settings: Settings, capabilities: Capabilities, *, session: boto3.Session | None = None
) -> Any:
    """``Urllib3AWSV4SignerAuth`` over the session's (refreshing) credentials object.

    Not ``AWSV4SignerAuth`` + ``RequestsHttpConnection``: opensearch-py 3.2.0 signs
    hop-by-hop headers on that path and AOSS answers 403.
    """
    from opensearchpy import Urllib3AWSV4SignerAuth

    if session is None:
        import boto3

        session = boto3.Session()
    region = settings.aws_region or session.region_name
    if not region:
        raise NotConfigured("OPENSEARCH_ENDPOINT is set but no AWS region: set AWS_REGION")
    credentials = session.get_credentials()
    if credentials is None:
        raise NotConfigured("OPENSEARCH_ENDPOINT is set but no AWS credentials were found")
    return Urllib3AWSV4SignerAuth(credentials, region, capabilities.sigv4_service)


def _host_config(endpoint: str) -> dict[str, Any]:
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not parts.hostname:
        raise NotConfigured(f"OPENSEARCH_ENDPOINT {endpoint!r} has no host name")
    secure = parts.scheme != "http"
    return {
        "host": parts.hostname,
        "port": parts.port or (443 if secure else 80),
        "use_ssl": secure,
        "verify_certs": secure,
    }


def error_type(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, Mapping) else {}
    error = info.get("error")
    if isinstance(error, Mapping):
        return str(error.get("type", ""))
    return str(exc.error or "")


def error_reason(exc: TransportError) -> str:
    info = exc.info if isinstance(exc.info, Mapping) else {}
    error = info.get("error")
    if isinstance(error, Mapping):
        return str(error.get("reason") or error.get("type") or exc.error)
    return str(error or exc.error or exc)


def translate(exc: Exception, *, index: str, action: str) -> RagError:
    """Map an opensearch-py exception to the project's errors (messages safe for callers)."""
    if isinstance(exc, RagError):
        return exc
    if isinstance(exc, ConnectionTimeout):
        return UpstreamTimeout(f"OpenSearch timed out during {action}")
    if isinstance(exc, ConnectionError):
        return VectorStoreError(f"cannot reach OpenSearch during {action}: {exc.error}")
    if isinstance(exc, AuthenticationException | AuthorizationException):
        return NotConfigured(
            f"OpenSearch refused {action} ({exc.status_code}): check the credentials, the "
            f"domain access policy or the AOSS data access policy"
        )
    if isinstance(exc, TransportError):
        kind = error_type(exc)
        if kind == "index_not_found_exception":
            return NotConfigured(f"OpenSearch index {index!r} does not exist: {INIT_HINT}")
        if exc.status_code == 429:
            return UpstreamRateLimited(f"OpenSearch is rejecting {action} (429) after retries")
        return VectorStoreError(
            f"OpenSearch {action} failed ({exc.status_code} {kind or 'error'}): "
            f"{error_reason(exc)}"
        )
    return VectorStoreError(f"OpenSearch {action} failed: {type(exc).__name__}")


@contextmanager
def translated(*, index: str, action: str) -> Iterator[None]:
    try:
        yield
    except TransportError as exc:
        raise translate(exc, index=index, action=action) from exc
