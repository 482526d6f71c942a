"""Issue 7.3: the time a query spends in our code, ours vs a LangChain retrieval chain.

Both run in this process as warm Lambda handlers (the deployed query function through
Mangum and FastAPI; the LangChain handler of ``bench/baselines``), fed the same API Gateway
events, against zero-latency fakes. Every HTTP round trip (to the fake Upstage server and
the OpenSearch stub) is timed at the transport; a request's own time is its total minus
those round trips. Both do the same work: embed the question, k-NN top 5, prompt, chat.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from solar_rag.adapters.opensearch import init_opensearch
from solar_rag.composition import Container

from bench import corpus
from bench.fakes import (
    API_KEY,
    TransportClock,
    fake_upstage,
    langchain_upstage_options,
    opensearch_stub,
    settings,
)
from bench.results import Figure, Section, percentile
from bench.scale import Scale
from tests.fakes import events

ROOT = Path(__file__).resolve().parents[1]
LANGCHAIN_INDEX = "langchain-query-bench"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _questions(count: int) -> list[str]:
    return [" ".join(text.split()[:12]).rstrip(".?!") + "?" for text in corpus.iter_sentences(count, seed=31)]


def _measure(handler: Handler, questions: list[str], requests: int,
             clock: TransportClock) -> tuple[list[float], list[float]]:
    totals: list[float] = []
    ours: list[float] = []
    context = events.lambda_context("solar-rag-query")
    for i in range(requests + 5):
        event = events.api_event("POST", "/v1/query",
                                 body={"query": questions[i % len(questions)], "top_k": 5,
                                       "mode": "vector"})
        clock.reset()
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink):  # Powertools' metrics and logs go to stdout
            started = time.perf_counter()
            response = handler(event, context)
            elapsed = time.perf_counter() - started
        if response.get("statusCode") != 200:
            raise RuntimeError(f"query failed: {str(response)[:300]}")
        if i >= 5:  # the first requests build clients and fill caches
            totals.append(elapsed * 1000)
            ours.append((elapsed - clock.seconds) * 1000)
    return totals, ours


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run(section: Section, scale: Scale) -> None:
    docs = corpus.documents(scale.query_documents, seed=41)
    questions = _questions(40)
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp, opensearch_stub() as stub, \
            fake_upstage() as fake:
        config = settings(fake, stub, Path(tmp))
        init_opensearch(config)
        indexing = Container(config).indexing_service
        for doc in docs:
            indexing.index(doc)
        env = {
            "UPSTAGE_API_KEY": API_KEY, "UPSTAGE_BASE_URL": fake.base_url,
            "VECTOR_STORE": "opensearch", "OPENSEARCH_URL": stub.url, "OPENSEARCH_INDEX": "rag-chunks",
            "RAG_DATA_DIR": tmp, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "SolarRagBench", "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1", "LANGCHAIN_INDEX": LANGCHAIN_INDEX,
            # Back to back with zero latency this is far above Upstage's 100 requests/min; our
            # client would (rightly) wait a minute at the 101st question. The fakes have no
            # limits, so neither does the client here: the wait is Upstage's, not our code's.
            "UPSTAGE_REQUESTS_PER_MINUTE": "1000000", "UPSTAGE_TOKENS_PER_MINUTE": "1000000000",
        }
        with _environment(env), TransportClock() as clock:
            from solar_rag.lambda_edge import runtime as lambda_runtime

            lambda_runtime.reset()
            handler = _load(ROOT / "functions" / "query" / "handler.py", "bench_query_handler").handler
            ours_total, ours_own = _measure(handler, questions, scale.query_requests, clock)
            lambda_runtime.reset()
            theirs_total: list[float] | None = None
            theirs_own: list[float] | None = None
            note = ""
            try:
                _index_langchain(docs, fake.base_url, stub.url)
                module = importlib.import_module("bench.baselines.langchain_query")
                theirs_total, theirs_own = _measure(module.handler, questions, scale.query_requests,
                                                    clock)
            except ImportError as exc:
                note = f"n/a: {exc} (install the bench group)"
    section.notes.append(
        f"{scale.query_requests} requests (after 5 warm-up) of POST /v1/query, mode vector, "
        f"top 5, over {len(docs)} documents in the OpenSearch stub; fake Upstage and stub answer "
        "without added latency. 'Own time' = total − time inside HTTP round trips (openai's "
        "httpx2 and urllib3 transports), i.e. what the handler itself costs. The LangChain "
        "chain is retriever | prompt | ChatUpstage | StrOutputParser behind a plain handler; "
        "ours adds request validation, citations and their check, Powertools logs and metrics. "
        "Our client-side rate limiter is lifted here (it would hold the 101st question of a "
        "minute for Upstage's 100 requests/min).")
    name = "LangChain LCEL retrieval chain"
    for label, ours_values, their_values in (("own time", ours_own, theirs_own),
                                             ("total incl. fakes", ours_total, theirs_total)):
        for q in (50, 95):
            section.add(Figure(f"{label} p{q}", "ms", percentile(ours_values, q),
                               percentile(their_values, q) if their_values else None,
                               baseline_name=name, note=note))


def _index_langchain(docs: list[Any], base_url: str, opensearch_url: str) -> None:
    from langchain_community.vectorstores import OpenSearchVectorSearch
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from langchain_upstage import UpstageEmbeddings

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    texts = [chunk for doc in docs for chunk in splitter.split_text(doc.text)]
    OpenSearchVectorSearch.from_texts(
        texts, UpstageEmbeddings(model="solar-embedding-2", **langchain_upstage_options(base_url)),
        opensearch_url=opensearch_url, index_name=LANGCHAIN_INDEX, engine="faiss",
        space_type="innerproduct", bulk_size=max(500, len(texts)))
