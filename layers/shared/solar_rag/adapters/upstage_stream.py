"""Streamed Upstage chat completions (``stream=True``): the ``StreamingChatModel`` port.

Connecting goes through ``UpstageClient.call``: with ``stream=True`` the SDK returns once the
status line and headers have arrived, so the client's retries, back-off, deadline and error
mapping cover everything up to the first byte of the answer (429, 5xx, timeouts, refused
connections). Once text has been handed on it cannot be taken back, so nothing after that is
retried: a stream that breaks off raises ``UpstreamError`` (``UpstreamTimeout`` when Upstage
goes quiet for longer than the configured timeout, which the SDK applies to every read: it is
the stream's idle timeout, not a limit on its length).

``stream_options.include_usage`` asks for the usage chunk OpenAI sends last; Upstage does not
document it, so when no usage arrives it is estimated (``text.tokens.estimate_tokens``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from solar_rag.adapters.upstage import UpstageChatModel
from solar_rag.domain import ChatCompletion, ChatMessage, Usage
from solar_rag.errors import RagError, UpstreamError, UpstreamRejected, UpstreamTimeout
from solar_rag.ports import ChatDelta, ChatStreamPart
from solar_rag.text.tokens import estimate_tokens

logger = logging.getLogger("solar_rag.upstage")


class UpstageStreamingChatModel(UpstageChatModel):
    """``StreamingChatModel`` port: the same requests as ``UpstageChatModel``, streamed."""

    _usage_chunk_refused = False
    """Set once Upstage has refused ``stream_options`` (shared by the process's instances)."""

    def _open(self, payload: list[ChatCompletionMessageParam],
              options: dict[str, Any]) -> openai.Stream[ChatCompletionChunk]:
        return self._client.call(
            "chat stream",
            lambda api: api.chat.completions.create(
                model=self._model, messages=payload, stream=True, **options),
        )

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[ChatStreamPart]:
        payload, options = self._request(messages, temperature, max_tokens)
        started = time.monotonic()
        if self._usage_chunk_refused:
            response = self._open(payload, options)
        else:
            try:
                response = self._open(payload, {**options, "stream_options": {"include_usage": True}})
            except UpstreamRejected as error:
                # Upstage does not document ``stream_options``: if a request with it is refused,
                # ask again without it (usage is then estimated) and stop sending it.
                logger.warning("streamed chat refused with stream_options (%s); retrying without",
                               error.message)
                response = self._open(payload, options)
                UpstageStreamingChatModel._usage_chunk_refused = True
        prompt_estimate = sum(estimate_tokens(m.content) for m in messages)
        return self._read(response, started, prompt_estimate)

    def _read(self, response: openai.Stream[ChatCompletionChunk], started: float,
              prompt_estimate: int) -> Iterator[ChatStreamPart]:
        parts: list[str] = []
        model = self._model
        usage: Usage | None = None
        finish: str | None = None
        timeout = self._client.timeout_seconds
        try:
            for chunk in response:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens,
                                  chunk.usage.total_tokens)
                for choice in chunk.choices[:1]:
                    finish = choice.finish_reason or finish
                    text = choice.delta.content
                    if text:
                        parts.append(text)
                        yield ChatDelta(text)
        except RagError:
            raise
        except openai.APITimeoutError:
            raise UpstreamTimeout(
                f"Upstage sent nothing for {timeout:.3g} s in the middle of the answer") from None
        except Exception as error:  # the SDK or its HTTP stack: the stream broke off
            logger.warning("upstage chat stream broke off after %d pieces: %s", len(parts),
                           type(error).__name__)
            if "timeout" in type(error).__name__.lower():
                raise UpstreamTimeout(
                    f"Upstage sent nothing for {timeout:.3g} s in the middle of the answer"
                ) from None
            raise UpstreamError("The Upstage answer stream broke off before the end") from None
        finally:
            response.close()
        text = "".join(parts).strip()
        if finish is None:
            raise UpstreamError("The Upstage answer stream ended without finishing the answer")
        if not text:
            raise UpstreamError("Upstage returned an empty answer")
        if usage is None:
            completion_tokens = estimate_tokens(text)
            usage = Usage(prompt_estimate, completion_tokens, prompt_estimate + completion_tokens)
        logger.debug("upstage chat stream: model=%s finish=%s tokens=%d in %.0f ms", model, finish,
                     usage.total_tokens, (time.monotonic() - started) * 1000)
        yield ChatCompletion(text=text, model=model, usage=usage)
