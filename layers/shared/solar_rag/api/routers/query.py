from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from solar_rag.api.dependencies import get_container
from solar_rag.api.presenters import answer_out, search_result
from solar_rag.api.schemas import (
    EmbeddingOut,
    EmbeddingsIn,
    EmbeddingsOut,
    QueryIn,
    QueryOut,
    SearchIn,
    SearchOut,
)
from solar_rag.api.sse import STREAM_RESPONSE_DOC
from solar_rag.api.streaming import stream_query
from solar_rag.composition import Container
from solar_rag.domain import ChatMessage, EmbeddingKind, Filters

router = APIRouter(tags=["query"])
ContainerDep = Annotated[Container, Depends(get_container)]


@router.post("/v1/search", response_model=SearchOut)
def search(body: SearchIn, container: ContainerDep) -> SearchOut:
    hits = container.search_service.search(body.query, top_k=body.top_k, mode=body.mode,
                                           filters=_filters(body))
    return SearchOut(results=[search_result(hit) for hit in hits])


@router.post("/v1/query", response_model=QueryOut, responses=STREAM_RESPONSE_DOC)
def query(body: QueryIn, container: ContainerDep) -> QueryOut | StreamingResponse:
    if body.stream:
        return stream_query(body, container)
    answer = container.query_service.ask(
        body.query, top_k=body.top_k, mode=body.mode, filters=_filters(body),
        history=[ChatMessage(m.role, m.content) for m in body.history],
        temperature=body.temperature,
    )
    return answer_out(answer)


@router.post("/agent/query", response_model=QueryOut, summary="Alias of POST /v1/query",
             responses=STREAM_RESPONSE_DOC)
def agent_query(body: QueryIn, container: ContainerDep) -> QueryOut | StreamingResponse:
    return query(body, container)


@router.post("/v1/embeddings", response_model=EmbeddingsOut)
def embeddings(body: EmbeddingsIn, container: ContainerDep) -> EmbeddingsOut:
    texts = [body.input] if isinstance(body.input, str) else body.input
    kind = EmbeddingKind(body.kind)
    embedder = container.embedder
    vectors = embedder.embed(texts, kind)
    return EmbeddingsOut(model=embedder.model_for(kind), dimensions=embedder.dimensions,
                         data=[EmbeddingOut(index=i, embedding=v) for i, v in enumerate(vectors)])


def _filters(body: SearchIn) -> Filters:
    return {key: list(value) if isinstance(value, list) else value
            for key, value in body.filters.items()}
