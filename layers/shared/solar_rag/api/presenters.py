"""Domain objects to response bodies."""

from __future__ import annotations

from solar_rag.api import schemas
from solar_rag.domain import Answer, DocumentRecord, SearchHit, Usage
from solar_rag.parsing.pages import location


def usage_out(usage: Usage) -> schemas.UsageOut:
    return schemas.UsageOut(prompt_tokens=usage.prompt_tokens,
                            completion_tokens=usage.completion_tokens,
                            total_tokens=usage.total_tokens)


def search_result(hit: SearchHit) -> schemas.SearchResultOut:
    chunk = hit.chunk
    return schemas.SearchResultOut(document_id=chunk.document_id, chunk_id=chunk.chunk_id,
                                   text=chunk.text, score=hit.score, title=chunk.title,
                                   source=chunk.source, metadata=dict(chunk.metadata),
                                   page=chunk.page, page_end=chunk.page_end,
                                   section=chunk.section)


def citation_out(index: int, hit: SearchHit) -> schemas.CitationOut:
    chunk = hit.chunk
    return schemas.CitationOut(index=index, document_id=chunk.document_id,
                               chunk_id=chunk.chunk_id, title=chunk.title, source=chunk.source,
                               text=chunk.text, score=hit.score, page=chunk.page,
                               page_end=chunk.page_end, section=chunk.section,
                               location=location(chunk))


def answer_out(answer: Answer) -> schemas.QueryOut:
    citations = [citation_out(c.index, c.hit) for c in answer.citations]
    return schemas.QueryOut(answer=answer.text, citations=citations, model=answer.model,
                            usage=usage_out(answer.usage))


def document_out(record: DocumentRecord) -> schemas.DocumentOut:
    return schemas.DocumentOut(
        id=record.id, title=record.title, source=record.source, content_type=record.content_type,
        status=record.status.value, chunks=record.chunks, content_hash=record.content_hash,
        metadata=dict(record.metadata),
        indexed_at=record.indexed_at.isoformat() if record.indexed_at else None,
        error=record.error,
    )
