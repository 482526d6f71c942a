"""OpenAI-compatible ``POST /v1/chat/completions`` and ``GET /v1/models``.

Point any OpenAI client's ``base_url`` at the service. The model ``solar-rag`` answers the
last user message from the indexed documents, with ``[n]`` markers in the content and the
sources in extra fields: ``citations`` (the cited sources, as in ``/v1/query``) on a
completion; streamed, ``sources`` (every retrieved source, numbered) on the first chunk and
``citations`` on the chunk that carries ``finish_reason``. The configured Upstage chat model
is plain chat. Errors have OpenAI's shape (``{"error": {"message", "type", "param", "code"}}``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from solar_rag.api.dependencies import get_container
from solar_rag.api.errors import RETRY_AFTER_SECONDS
from solar_rag.api.openai_schemas import RAG_MODEL, ChatCompletionsIn, OpenAIMessage
from solar_rag.api.presenters import citation_out
from solar_rag.api.sse import HEADERS, MEDIA_TYPE
from solar_rag.api.streaming import SETUP_BUDGET_SECONDS
from solar_rag.composition import Container
from solar_rag.domain import Answer, ChatMessage, Citation, Filters, Usage
from solar_rag.errors import InvalidInput, RagError, UpstreamRateLimited
from solar_rag.resilience import deadline
from solar_rag.services.streaming import Delta, Done, Sources, StreamEvent

logger = logging.getLogger("solar_rag.api")
router = APIRouter(tags=["openai"])
ContainerDep = Annotated[Container, Depends(get_container)]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                403: "permission_error", 404: "invalid_request_error", 413: "invalid_request_error",
                429: "rate_limit_error"}


def error_body(status: int, message: str, *, code: str | None = None,
               param: str | None = None) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error(status: int, message: str, *, code: str | None = None, param: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, code=code, param=param), status_code=status,
                        headers=headers)


def _rag_error(error: RagError) -> JSONResponse:
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if isinstance(error, UpstreamRateLimited) else None
    return _error(error.status, error.message, headers=headers)


def _models(container: Container) -> list[tuple[str, str]]:
    models = [(RAG_MODEL, "solar-rag")]
    if container.provider == "upstage":
        models.append((container.settings.upstage_chat_model, "upstage"))
    return models


@router.get("/v1/models", summary="Models (OpenAI-compatible)")
def list_models(container: ContainerDep) -> dict[str, Any]:
    return {"object": "list",
            "data": [{"id": name, "object": "model", "created": 0, "owned_by": owner}
                     for name, owner in _models(container)]}


@router.post(
    "/v1/chat/completions",
    summary="Chat completions (OpenAI-compatible)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": ChatCompletionsIn.model_json_schema()}}}},
    responses={200: {"content": {"application/json": {}, MEDIA_TYPE: {}}}},
)
def chat_completions(payload: Annotated[Any, Body()], container: ContainerDep) -> Response:
    try:
        body = ChatCompletionsIn.model_validate(payload)
    except ValidationError as error:
        first = error.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return _error(400, f"{where}: {first['msg']}" if where else first["msg"],
                      code="invalid_value", param=where or None)
    models = dict(_models(container))
    if body.model not in models:
        return _error(404, f"The model {body.model!r} does not exist; GET /v1/models lists the "
                           "models", code="model_not_found", param="model")
    try:
        if body.stream:
            with deadline.budget(SETUP_BUDGET_SECONDS):
                events = _start_stream(body, container)
            completion_id, created = _new_id(), int(time.time())
            return StreamingResponse(
                _chunks(events, body, completion_id, created), media_type=MEDIA_TYPE,
                headers=HEADERS)
        answer = _answer(body, container)
    except RagError as error:
        return _rag_error(error)
    content: dict[str, Any] = {
        "id": _new_id(), "object": "chat.completion", "created": int(time.time()),
        "model": body.model if body.model == RAG_MODEL else answer.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(answer.usage),
    }
    if body.model == RAG_MODEL:
        content["citations"] = _citations(answer.citations)
    return JSONResponse(content)


def _answer(body: ChatCompletionsIn, container: Container) -> Answer:
    if body.model == RAG_MODEL:
        question, history = _question(body.messages)
        return container.query_service.ask(
            question, top_k=body.top_k, mode=body.search_mode, filters=_filters(body),
            history=history, temperature=body.temperature)
    completion = container.chat_service.chat(
        _chat_messages(body.messages), temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens)
    return Answer(completion.text, (), completion.model, completion.usage)


def _start_stream(body: ChatCompletionsIn, container: Container) -> Iterator[StreamEvent]:
    streams = container.streaming_answers
    if body.model == RAG_MODEL:
        question, history = _question(body.messages)
        return streams.ask(question, top_k=body.top_k, mode=body.search_mode,
                           filters=_filters(body), history=history, temperature=body.temperature)
    return streams.chat(_chat_messages(body.messages), temperature=body.temperature,
                        max_tokens=body.max_completion_tokens or body.max_tokens)


def _chunks(events: Iterator[StreamEvent], body: ChatCompletionsIn, completion_id: str,
            created: int) -> Iterator[bytes]:
    rag = body.model == RAG_MODEL
    model = body.model

    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "system_fingerprint": None,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra}
        return _data(data)

    include_usage = body.stream_options is not None and body.stream_options.include_usage
    started = False
    try:
        for event in events:
            if isinstance(event, Sources):
                sources = [citation_out(i, hit).model_dump() for i, hit in enumerate(event.hits, 1)]
                yield chunk({"role": "assistant", "content": ""}, None, sources=sources)
                started = True
                continue
            if not started:
                yield chunk({"role": "assistant", "content": ""}, None)
                started = True
            if isinstance(event, Delta):
                yield chunk({"content": event.text}, None)
            elif isinstance(event, Done):
                extra = {"citations": _citations(event.answer.citations)} if rag else {}
                yield chunk({}, "stop", **extra)
                if include_usage:
                    yield _data({"id": completion_id, "object": "chat.completion.chunk",
                                 "created": created, "model": model, "system_fingerprint": None,
                                 "choices": [], "usage": _usage(event.answer.usage)})
        yield b"data: [DONE]\n\n"
    except RagError as error:
        logger.warning("stream failed: %s (HTTP %d)", type(error).__name__, error.status)
        yield _data(error_body(error.status, error.message))
    except Exception as error:
        logger.error("stream failed: %s", type(error).__name__, exc_info=error)
        yield _data(error_body(500, "internal error"))


def _data(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def _question(messages: list[OpenAIMessage]) -> tuple[str, list[ChatMessage]]:
    """The last message is the question (it must be the user's); the earlier user and
    assistant turns are the history. System messages are not passed on: the service's own
    instructions govern how it answers from the documents."""
    last = messages[-1]
    if last.role != "user" or not last.text().strip():
        raise _invalid("the last message must be a non-empty user message (the question)")
    history = [ChatMessage("user" if m.role == "user" else "assistant", m.text())
               for m in messages[:-1] if m.role in ("user", "assistant") and m.text().strip()]
    return last.text(), history[-50:]


def _chat_messages(messages: list[OpenAIMessage]) -> list[ChatMessage]:
    result: list[ChatMessage] = []
    for message in messages:
        role = message.role
        result.append(ChatMessage("system" if role == "developer" else role, message.text()))
    return result


def _invalid(message: str) -> RagError:
    return InvalidInput(message)


def _filters(body: ChatCompletionsIn) -> Filters:
    return {key: list(value) if isinstance(value, list) else value
            for key, value in body.filters.items()}


def _citations(citations: tuple[Citation, ...]) -> list[dict[str, Any]]:
    return [citation_out(c.index, c.hit).model_dump() for c in citations]


def _usage(usage: Usage) -> dict[str, int]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"
