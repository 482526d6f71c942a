"""RAG query as a LangChain tutorial deploys it: retriever | prompt | ChatUpstage (LCEL)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough

from bench.baselines.langchain_common import chat_model, vector_store

PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question using only the numbered context. Cite sources as [n]."),
    ("human", "Context:\n{context}\n\nQuestion: {question}"),
])


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(f"[{i}] {doc.page_content}" for i, doc in enumerate(docs, 1))


retriever = vector_store().as_retriever(search_kwargs={"k": 5})
chain = ({"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
         | PROMPT | chat_model() | StrOutputParser())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    question = json.loads(event["body"])["query"]
    answer = chain.invoke(question)
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"answer": answer})}
