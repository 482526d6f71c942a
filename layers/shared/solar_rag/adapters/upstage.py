"""Upstage Solar through the ``openai`` SDK: chat completions and embeddings.

The SDK's own retries are switched off (``max_retries=0``): calls are retried under the
project's Upstage policy (``solar_rag.resilience.retry.UPSTAGE``) so that every attempt goes
through the rate limiter, ``Retry-After`` also pauses the other threads, no attempt or
back-off runs past the request's deadline (``solar_rag.resilience.deadline``: the SDK would
sleep out a ``Retry-After`` of up to two minutes, past API Gateway's 29 s), and the errors
that finally surface are the domain's (``solar_rag.errors``) with messages safe to show
callers. The API key is passed in (resolved elsewhere), never read from
the environment here, and never appears in a message or a log record.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import random
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import openai
import tenacity
from openai.types.chat import ChatCompletionMessageParam

from solar_rag.domain import ChatCompletion, ChatMessage, EmbeddingKind, Usage
from solar_rag.errors import (
    InvalidInput,
    NotConfigured,
    RagError,
    UpstageKeyRejected,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from solar_rag.resilience import deadline, retry
from solar_rag.resilience.rate_limit import RateLimiter, WaitTooLong
from solar_rag.retrieval.vectors import l2_normalise
from solar_rag.settings import Settings
from solar_rag.text.tokens import estimate_tokens

logger = logging.getLogger("solar_rag.upstage")

T = TypeVar("T")

_MAX_UPSTREAM_MESSAGE = 300


@dataclass(slots=True)
class UpstageStats:
    """Counters for logs, metrics and benchmarks."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    rate_limited: int = 0


class _Attempt:
    """What went wrong in one attempt: enough to decide on a retry and to build the error."""

    def __init__(self, kind: str, status: int | None = None, retry_after: float | None = None,
                 upstream_message: str | None = None, request_id: str | None = None,
                 timeout: float | None = None, elapsed_ms: float = 0.0) -> None:
        self.kind = kind  # "status", "timeout", "connection", "invalid"
        self.timeout = timeout
        self.status = status
        self.retry_after = retry_after
        self.upstream_message = upstream_message
        self.request_id = request_id
        self.elapsed_ms = elapsed_ms

    @property
    def retryable(self) -> bool:
        if self.kind in ("timeout", "connection"):
            return True
        return self.kind == "status" and self.status in retry.UPSTAGE.retry_statuses

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.kind == "status" else self.kind


class _Failed(Exception):
    """Carries a failed attempt through the retry loop (never leaves this module)."""

    def __init__(self, failure: _Attempt) -> None:
        super().__init__(failure.describe())
        self.failure = failure


def _failure_of(state: tenacity.RetryCallState) -> _Attempt:
    error = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(error, _Failed)  # retry_on lets only these through
    return error.failure


class UpstageClient:
    """The ``openai`` client pointed at Upstage, with retries, back-off and error mapping."""

    def __init__(
        self,
        settings: Settings,
        api_key: str | Callable[[], str],
        *,
        on_key_rejected: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """``api_key`` is the key or a function returning the current key (read per request,
        so a rotated secret is picked up without a new container; the source caches it).
        ``on_key_rejected`` runs after a 401/403, e.g. to drop a cached secret."""
        if isinstance(api_key, str):
            if not api_key.strip():
                raise NotConfigured("The Upstage API key is empty")
            fixed = api_key.strip()
            self._key_provider: Callable[[], str] = lambda: fixed
        else:
            self._key_provider = api_key
        self.settings = settings
        self.max_retries = settings.upstage_max_retries
        self.timeout_seconds = settings.upstage_timeout_seconds
        self.stats = UpstageStats()
        self._on_key_rejected = on_key_rejected
        self._known_keys: list[str] = []
        self._current_key: str | None = None
        self._openai: openai.OpenAI | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UpstageClient(base_url={self.settings.upstage_base_url!r})"

    @property
    def attempts(self) -> int:
        return self.max_retries + 1

    @property
    def policy(self) -> retry.Policy:
        """``retry.UPSTAGE`` with the configured attempts and this client's jitter source."""
        policy = retry.UPSTAGE.with_attempts(self.attempts)
        return policy.with_backoff(replace(policy.backoff, rng=self._rng))

    @property
    def sdk(self) -> openai.OpenAI:
        """The SDK client for the current key (rebuilt when the key changes)."""
        key = self._key_provider().strip()
        if not key:
            raise NotConfigured("The Upstage API key is empty")
        with self._lock:
            if self._openai is None or key != self._current_key:
                self._openai = openai.OpenAI(
                    api_key=key,
                    base_url=self.settings.upstage_base_url,
                    timeout=self.settings.upstage_timeout_seconds,
                    max_retries=0,
                )
                self._current_key = key
                if key not in self._known_keys:
                    self._known_keys.append(key)
            return self._openai

    def call(
        self,
        operation: str,
        request: Callable[[openai.OpenAI], T],
        *,
        before_attempt: Callable[[], object] | None = None,
        on_retry_after: Callable[[float], None] | None = None,
    ) -> T:
        """Run ``request`` under the Upstage retry policy; raise a domain error when it
        finally fails.

        ``before_attempt`` runs before every attempt (a rate limiter's ``acquire``);
        ``on_retry_after`` receives a server-given pause (a rate limiter's ``penalise``).
        """
        sdk = self.sdk
        what = f"the Upstage {operation} request"
        tried = 0

        def attempt() -> T:
            nonlocal tried
            if before_attempt is not None:
                before_attempt()
            timeout = deadline.attempt_timeout(self.timeout_seconds, what)
            tried += 1
            self._count(requests=1)
            started = time.monotonic()
            try:
                return request(sdk if timeout == self.timeout_seconds
                               else sdk.with_options(timeout=timeout))
            except openai.OpenAIError as exc:
                failure = self._classify(exc, timeout, time.monotonic() - started)
            if failure.status == 429:
                self._count(rate_limited=1)
            if failure.retry_after is not None and on_retry_after is not None:
                on_retry_after(min(failure.retry_after, self.policy.max_retry_after_seconds))
            raise _Failed(failure)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            failure = _failure_of(state)
            self._count(retries=1)
            logger.info("upstage %s: %s after %.0f ms, retrying in %.2f s (attempt %d/%d)",
                        operation, failure.describe(), failure.elapsed_ms, state.upcoming_sleep,
                        state.attempt_number, self.attempts)

        retrying = retry.retrying(
            self.policy, sleep=self._sleep, before_sleep=before_sleep,
            retry_on=lambda error: isinstance(error, _Failed) and error.failure.retryable,
            retry_after=lambda error: error.failure.retry_after
            if isinstance(error, _Failed) else None)
        try:
            return retrying(attempt)
        except _Failed as failed:
            failure = failed.failure
        self._count(failures=1)
        logger.warning("upstage %s failed: %s after %.0f ms (attempt %d/%d, request id %s)",
                       operation, failure.describe(), failure.elapsed_ms, tried, self.attempts,
                       failure.request_id)
        if failure.status in (401, 403) and self._on_key_rejected is not None:
            self._on_key_rejected()
        raise self._error(failure, operation, tried) from None

    def _count(self, *, requests: int = 0, retries: int = 0, failures: int = 0,
               rate_limited: int = 0) -> None:
        with self._lock:
            self.stats.requests += requests
            self.stats.retries += retries
            self.stats.failures += failures
            self.stats.rate_limited += rate_limited

    def _classify(self, exc: openai.OpenAIError, timeout: float, elapsed: float) -> _Attempt:
        elapsed_ms = elapsed * 1000
        if isinstance(exc, openai.APITimeoutError):
            return _Attempt("timeout", timeout=timeout, elapsed_ms=elapsed_ms)
        if isinstance(exc, openai.APIConnectionError):
            return _Attempt("connection", elapsed_ms=elapsed_ms)
        if isinstance(exc, openai.APIStatusError):
            return _Attempt(
                "status", exc.status_code, _retry_after(exc),
                self._redact(_upstream_message(exc.body)), exc.request_id, elapsed_ms=elapsed_ms)
        return _Attempt("invalid", elapsed_ms=elapsed_ms)

    def _error(self, failure: _Attempt, operation: str, attempts: int) -> RagError:
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        status = failure.status
        if failure.kind == "timeout":
            return UpstreamTimeout(
                f"Upstage did not answer the {operation} request within "
                f"{failure.timeout or self.timeout_seconds:.3g} s ({tries})")
        if failure.kind == "connection":
            return UpstreamError(f"Could not connect to Upstage for {operation} ({tries})")
        if failure.kind == "invalid" or status is None:
            return UpstreamError(f"Upstage returned an unusable {operation} response")
        if status == 429:
            return UpstreamRateLimited(
                f"Upstage rate limit exceeded for {operation} ({tries}); try again later")
        if status in (401, 403):
            return UpstageKeyRejected(
                f"Upstage rejected the API key ({status}); check UPSTAGE_API_KEY or the "
                "configured secret")
        detail = f": {failure.upstream_message}" if failure.upstream_message else ""
        if 400 <= status < 500 and status not in (408, 409):
            return UpstreamRejected(f"Upstage rejected the {operation} request ({status}){detail}")
        return UpstreamError(f"Upstage {operation} failed with HTTP {status} ({tries}){detail}")

    def _redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        for key in self._known_keys:
            text = text.replace(key, "***")
        if len(text) > _MAX_UPSTREAM_MESSAGE:
            text = text[: _MAX_UPSTREAM_MESSAGE - 3] + "..."
        return text


def _upstream_message(body: object) -> str | None:
    """The ``message`` of the OpenAI error envelope (the SDK may hand over the inner object)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            return message if isinstance(message, str) and message else None
        if isinstance(inner, str):
            return inner
    return None


def _retry_after(exc: openai.APIStatusError) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    headers = exc.response.headers
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            value = float(millis) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - time.time())


class UpstageChatModel:
    """``ChatModel`` port: non-streamed chat completions with the configured Solar model."""

    def __init__(self, client: UpstageClient) -> None:
        self._client = client
        self._model = client.settings.upstage_chat_model
        self._max_tokens = client.settings.chat_max_tokens

    @property
    def model(self) -> str:
        return self._model

    def _request(self, messages: Sequence[ChatMessage], temperature: float | None,
                 max_tokens: int | None) -> tuple[list[ChatCompletionMessageParam], dict[str, Any]]:
        """The messages and options of a chat completion request (streamed or not)."""
        if not messages:
            raise InvalidInput("A chat needs at least one message")
        payload: list[ChatCompletionMessageParam] = [_message_param(m) for m in messages]
        options: dict[str, Any] = {"max_tokens": max_tokens or self._max_tokens}
        if temperature is not None:
            options["temperature"] = temperature
        return payload, options

    def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatCompletion:
        payload, options = self._request(messages, temperature, max_tokens)
        started = time.monotonic()
        response = self._client.call(
            "chat",
            lambda api: api.chat.completions.create(
                model=self._model, messages=payload, **options),
        )
        choice = response.choices[0] if response.choices else None
        text = (choice.message.content or "").strip() if choice is not None else ""
        if not text:
            raise UpstreamError("Upstage returned an empty answer")
        usage = response.usage
        mapped = Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) \
            if usage is not None else Usage()
        logger.debug("upstage chat: model=%s finish=%s tokens=%d in %.0f ms", response.model,
                     choice.finish_reason if choice else None, mapped.total_tokens,
                     (time.monotonic() - started) * 1000)
        return ChatCompletion(text=text, model=response.model or self._model, usage=mapped)


def _message_param(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "assistant":
        return {"role": "assistant", "content": message.content}
    return {"role": "user", "content": message.content}


BATCHES_PER_MINUTE = 8
"""An embedding request's estimated tokens stay within 1/8 of the limiter's tokens a minute."""
BATCH_TOKENS_FLOOR = 512


class UpstageEmbedder:
    """``Embedder`` port: Upstage passage/query embeddings, batched and rate limited."""

    def __init__(self, client: UpstageClient, settings: Settings, limiter: RateLimiter) -> None:
        self._client = client
        self._limiter = limiter
        self._passage_model = settings.upstage_embedding_passage_model
        self._query_model = settings.upstage_embedding_query_model
        self._dimensions = settings.embedding_dimensions
        self._batch_size = settings.embedding_batch_size
        # A request is charged its (conservative) estimate until the server's count replaces
        # it: one estimated at half a container's share of the minute would leave a quarter
        # to half of that share unused (issue 17: a dev indexer container has 60k of 300k).
        self._batch_tokens = min(settings.embedding_batch_tokens,
                                 max(BATCH_TOKENS_FLOOR, limiter.tokens_per_minute // BATCHES_PER_MINUTE))

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def space(self) -> str:
        return f"upstage:{self._passage_model}:{self._dimensions}"

    def model_for(self, kind: EmbeddingKind) -> str:
        return self._query_model if kind == EmbeddingKind.QUERY else self._passage_model

    def embed(self, texts: Sequence[str], kind: EmbeddingKind) -> list[list[float]]:
        if not texts:
            return []
        for position, text in enumerate(texts):
            if not text.strip():
                raise InvalidInput(f"Cannot embed an empty text (input {position})")
        model = self.model_for(kind)
        started = time.monotonic()
        vectors: list[list[float]] = []
        batches = self.batches(texts)
        for batch, tokens in batches:
            vectors.extend(self._embed_batch(model, batch, tokens))
        logger.debug("upstage embeddings: %d texts, %d requests, model=%s, %.0f ms",
                     len(texts), len(batches), model, (time.monotonic() - started) * 1000)
        return vectors

    def batches(self, texts: Sequence[str]) -> list[tuple[list[str], int]]:
        """Consecutive groups within both the count and the (estimated) token budget."""
        result: list[tuple[list[str], int]] = []
        batch: list[str] = []
        batch_tokens = 0
        for text in texts:
            tokens = estimate_tokens(text)
            if batch and (len(batch) >= self._batch_size
                          or batch_tokens + tokens > self._batch_tokens):
                result.append((batch, batch_tokens))
                batch, batch_tokens = [], 0
            batch.append(text)
            batch_tokens += tokens
        if batch:
            result.append((batch, batch_tokens))
        return result

    def _acquire(self, tokens: int) -> None:
        """Wait for the rate limit, but not past the request's deadline."""
        max_wait = deadline.time_left(math.inf) - deadline.MIN_ATTEMPT_SECONDS
        try:
            self._limiter.acquire(tokens, max_wait=max_wait)
        except WaitTooLong as error:
            current = deadline.current()
            budget = f" of {current.budget_seconds:.0f} s" if current else ""
            raise UpstreamRateLimited(
                f"the Upstage rate limit cannot take this request within the time budget"
                f"{budget} ({error}); try again later") from None

    def _embed_batch(self, model: str, batch: list[str], tokens: int) -> list[list[float]]:
        raw = self._client.call(
            "embeddings",
            # The raw body: the SDK's typed parsing builds a model object per float (about
            # 5 ms per 1024-d vector), slower than the request itself.
            lambda api: api.embeddings.with_raw_response.create(
                model=model, input=batch, encoding_format="float"),
            before_attempt=lambda: self._acquire(tokens),
            on_retry_after=self._limiter.penalise,
        )
        data, used_tokens = _embedding_body(raw.http_response.content, model)
        self._limiter.reconcile(tokens, used_tokens)
        if len(data) != len(batch):
            raise UpstreamError(
                f"Upstage returned {len(data)} embeddings for {len(batch)} inputs "
                f"(model {model})")
        ordered: list[list[float] | None] = [None] * len(batch)
        for index, embedding in data:
            if not 0 <= index < len(batch) or ordered[index] is not None:
                raise UpstreamError(f"Upstage returned an invalid embedding index (model {model})")
            vector = _floats(embedding)
            if len(vector) != self._dimensions:
                raise UpstreamError(
                    f"Upstage model {model} returned {len(vector)}-dimensional embeddings, "
                    f"expected {self._dimensions} (EMBEDDING_DIMENSIONS)")
            normalised = l2_normalise(vector)
            if not any(normalised):
                raise UpstreamError(f"Upstage returned a zero embedding (model {model})")
            ordered[index] = normalised
        return [vector for vector in ordered if vector is not None]


def _embedding_body(content: bytes, model: str) -> tuple[list[tuple[int, object]], int]:
    """``(index, embedding)`` pairs and the server's token count (0 if absent) from the body."""
    unusable = UpstreamError(f"Upstage returned an unusable embeddings response (model {model})")
    try:
        body = json.loads(content)
    except ValueError:
        raise unusable from None
    items = body.get("data") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise unusable
    data: list[tuple[int, object]] = []
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise unusable
        data.append((index, item.get("embedding")))
    usage = body.get("usage")
    used = usage.get("total_tokens") if isinstance(usage, dict) else None
    return data, used if isinstance(used, int) and not isinstance(used, bool) else 0


def _floats(embedding: object) -> list[float]:
    """Float list from the response (base64 float32 if a server ignores ``encoding_format``)."""
    if isinstance(embedding, list):
        try:
            return [float(x) for x in embedding]
        except (TypeError, ValueError):
            raise UpstreamError("Upstage returned a non-numeric embedding") from None
    if isinstance(embedding, str):
        try:
            raw = base64.b64decode(embedding, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if raw and len(raw) % 4 == 0:
            return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    raise UpstreamError("Upstage returned an embedding in an unknown format")
