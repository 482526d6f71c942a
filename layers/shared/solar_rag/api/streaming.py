"""``"stream": true`` on ``POST /v1/query`` and ``POST /v1/chat``.

Time limits: retrieval and connecting to the model run under ``SETUP_BUDGET_SECONDS`` (a
nearer deadline, e.g. a Lambda invocation's, wins); once the answer streams, the only limits
are Upstage's idle timeout (no piece for ``UPSTAGE_TIMEOUT_SECONDS``) and, deployed, the
function's timeout and API Gateway's 5-minute idle timeout: see docs/decisions.md.
"""

from __future__ import annotations

from fastapi.responses import StreamingResponse

from solar_rag.api import sse
from solar_rag.api.schemas import ChatIn, QueryIn, SearchIn
from solar_rag.composition import Container
from solar_rag.domain import ChatMessage, Filters
from solar_rag.resilience import deadline

SETUP_BUDGET_SECONDS = 60.0


def stream_query(body: QueryIn, container: Container) -> StreamingResponse:
    with deadline.budget(SETUP_BUDGET_SECONDS):
        events = container.streaming_answers.ask(
            body.query, top_k=body.top_k, mode=body.mode, filters=filters(body),
            history=[ChatMessage(m.role, m.content) for m in body.history],
            temperature=body.temperature,
        )
    return sse.response(sse.query_events(events))


def stream_chat(body: ChatIn, container: Container) -> StreamingResponse:
    with deadline.budget(SETUP_BUDGET_SECONDS):
        events = container.streaming_answers.chat(
            [ChatMessage(m.role, m.content) for m in body.messages],
            temperature=body.temperature, max_tokens=body.max_tokens,
        )
    return sse.response(sse.chat_events(events))


def filters(body: SearchIn) -> Filters:
    return {key: list(value) if isinstance(value, list) else value
            for key, value in body.filters.items()}
