from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from solar_rag.api.dependencies import get_container
from solar_rag.api.presenters import usage_out
from solar_rag.api.schemas import ChatIn, ChatOut
from solar_rag.api.sse import STREAM_RESPONSE_DOC
from solar_rag.api.streaming import stream_chat
from solar_rag.composition import Container
from solar_rag.domain import ChatMessage

router = APIRouter(tags=["chat"])


@router.post("/v1/chat", response_model=ChatOut, responses=STREAM_RESPONSE_DOC)
def chat(body: ChatIn,
         container: Annotated[Container, Depends(get_container)]) -> ChatOut | StreamingResponse:
    if body.stream:
        return stream_chat(body, container)
    completion = container.chat_service.chat(
        [ChatMessage(m.role, m.content) for m in body.messages],
        temperature=body.temperature, max_tokens=body.max_tokens,
    )
    return ChatOut(answer=completion.text, model=completion.model, usage=usage_out(completion.usage))
