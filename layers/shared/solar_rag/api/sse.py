"""Server-Sent Events: streamed answers as ``citations``, ``delta``, ``done`` and ``error``
events, each ``data`` a JSON object.

The response starts only once the stream is open (retrieval done, the model connected): any
failure before that is an ordinary HTTP error. A failure after it is an ``error`` event
(``{"detail": ..., "status": ...}``, the status the request would have had), so a client never
sees a body cut short without an explanation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from solar_rag.api.presenters import answer_out, citation_out, usage_out
from solar_rag.errors import RagError
from solar_rag.services.streaming import Delta, Done, Sources, StreamEvent

logger = logging.getLogger("solar_rag.api")

MEDIA_TYPE = "text/event-stream"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""No caching, and no buffering by proxies that honour it (nginx)."""


def encode(event: str, data: Any) -> bytes:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n".encode()


def query_events(events: Iterator[StreamEvent]) -> Iterator[bytes]:
    def done(event: Done) -> dict[str, Any]:
        return answer_out(event.answer).model_dump()

    return _guarded(events, done)


def chat_events(events: Iterator[StreamEvent]) -> Iterator[bytes]:
    def done(event: Done) -> dict[str, Any]:
        answer = event.answer
        return {"answer": answer.text, "model": answer.model,
                "usage": usage_out(answer.usage).model_dump()}

    return _guarded(events, done)


def _guarded(events: Iterator[StreamEvent], done: Callable[[Done], dict[str, Any]]) -> Iterator[bytes]:
    try:
        for event in events:
            if isinstance(event, Sources):
                sources = [citation_out(i, hit).model_dump() for i, hit in enumerate(event.hits, 1)]
                yield encode("citations", {"citations": sources})
            elif isinstance(event, Delta):
                yield encode("delta", {"text": event.text})
            else:
                yield encode("done", done(event))
    except RagError as error:
        logger.warning("stream failed: %s (HTTP %d)", type(error).__name__, error.status)
        yield encode("error", {"detail": error.message, "status": error.status})
    except Exception as error:
        logger.error("stream failed: %s", type(error).__name__, exc_info=error)
        yield encode("error", {"detail": "internal error", "status": 500})


def response(body: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(body, media_type=MEDIA_TYPE, headers=HEADERS)


EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event; `data` is a JSON object",
    "properties": {"event": {"type": "string", "enum": ["citations", "delta", "done", "error"]},
                   "data": {"type": "string", "contentMediaType": "application/json"}},
    "required": ["event", "data"],
}
STREAM_RESPONSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {"schema": EVENT_SCHEMA}},
          "description": "With `\"stream\": true`: Server-Sent Events `citations`, `delta`..., "
                         "then `done` (or `error`); see the README"},
}
