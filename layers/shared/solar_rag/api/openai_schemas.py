"""Request body of the OpenAI-compatible ``POST /v1/chat/completions``.

Lenient where OpenAI clients send fields this service does not use (``user``, ``top_p``,
``seed``, ``metadata``... are accepted and ignored, as OpenAI-compatible servers do), strict
where a field would change the answer and is not supported (``n`` > 1, tools, images).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from solar_rag.api.schemas import LIMITS, FilterValue, MaxTokens, MetadataKey, StrictFloat, TopK
from solar_rag.domain import SearchMode

RAG_MODEL = "solar-rag"


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: Annotated[bool, Field(strict=True)] = False


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    @field_validator("content")
    @classmethod
    def _text_only(cls, value: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        if isinstance(value, list):
            for part in value:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts are supported")
        return value

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part["text"]) for part in self.content)
        return self.content or ""


class ChatCompletionsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: Annotated[str, Field(min_length=1, max_length=200)]
    messages: Annotated[list[OpenAIMessage], Field(min_length=1, max_length=LIMITS.max_messages)]
    stream: Annotated[bool, Field(strict=True)] = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[StrictFloat, Field(ge=0.0, le=2.0)] | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    n: Annotated[int, Field(strict=True, ge=1, le=1)] = 1
    # Retrieval options for the ``solar-rag`` model (``extra_body`` in the openai SDK).
    top_k: TopK = 5
    search_mode: SearchMode = SearchMode.HYBRID
    filters: Annotated[dict[MetadataKey, FilterValue], Field(max_length=32)] = Field(default_factory=dict)
    tools: list[Any] | None = None

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tools are not supported")
        return value

    @field_validator("messages")
    @classmethod
    def _bounded(cls, value: list[OpenAIMessage]) -> list[OpenAIMessage]:
        if sum(len(m.text()) for m in value) > LIMITS.max_chat_chars:
            raise ValueError(f"messages are longer than {LIMITS.max_chat_chars} characters in total")
        return value
