from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from solar_rag.adapters.offline_embedder import HashingEmbedder
from solar_rag.domain import EmbeddingKind
from solar_rag.errors import InvalidInput
from solar_rag.retrieval.vectors import dot, norm

Q = EmbeddingKind.QUERY
P = EmbeddingKind.PASSAGE


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder(1024)


def score(embedder: HashingEmbedder, query: str, passage: str) -> float:
    return dot(embedder.embed([query], Q)[0], embedder.embed([passage], P)[0])


def test_identity(embedder: HashingEmbedder) -> None:
    assert embedder.dimensions == 1024
    assert embedder.space == "offline-hash-v1:1024"
    assert embedder.model_for(Q) == embedder.model_for(P) == "offline-hash-v1"
    assert HashingEmbedder(256).space == "offline-hash-v1:256"
    with pytest.raises(ValueError):
        HashingEmbedder(4)


def test_vectors_are_unit_length_and_sized(embedder: HashingEmbedder) -> None:
    texts = ["Hello world", "서울은 대한민국의 수도", "東京は日本の首都です", "!!!", "42"]
    for vector in embedder.embed(texts, P):
        assert len(vector) == 1024
        assert norm(vector) == pytest.approx(1.0)


def test_empty_input_list_and_empty_texts(embedder: HashingEmbedder) -> None:
    assert embedder.embed([], P) == []
    with pytest.raises(InvalidInput, match="input 1"):
        embedder.embed(["fine", ""], P)
    with pytest.raises(InvalidInput):
        embedder.embed(["   \n"], P)


def test_deterministic_across_instances_and_processes(embedder: HashingEmbedder) -> None:
    text = "Deterministic vectors for 서울 and Tokyo"
    mine = embedder.embed([text], P)[0]
    assert HashingEmbedder(1024).embed([text], Q)[0] == mine
    code = (
        "import json, sys\n"
        "from solar_rag.adapters.offline_embedder import HashingEmbedder\n"
        "from solar_rag.domain import EmbeddingKind\n"
        "print(json.dumps(HashingEmbedder(1024).embed([sys.argv[1]], EmbeddingKind.PASSAGE)[0]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, text], capture_output=True, text=True, env=env,
        timeout=60, check=True,
    )
    assert json.loads(out.stdout) == pytest.approx(mine)


def test_case_and_unicode_normalisation(embedder: HashingEmbedder) -> None:
    a, b = embedder.embed(["SEOUL Population", "seoul population"], P)
    assert a == b
    # Full-width Latin letters are folded by NFKC.
    c = embedder.embed(["ｓｅｏｕｌ population"], P)[0]
    assert c == pytest.approx(b)


def test_english_lexical_relevance(embedder: HashingEmbedder) -> None:
    query = "What is the population of Seoul?"
    relevant = "Seoul is the capital of South Korea and has a population of about 9.4 million."
    unrelated = "The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
    good, bad = score(embedder, query, relevant), score(embedder, query, unrelated)
    assert good > 0.25
    assert good > bad + 0.2


def test_korean_particles_still_match(embedder: HashingEmbedder) -> None:
    query = "서울의 인구"
    relevant = "서울은 대한민국의 수도이며 인구는 약 940만 명이다."
    unrelated = "부산은 항구 도시로 해산물 요리가 유명하다."
    good, bad = score(embedder, query, relevant), score(embedder, query, unrelated)
    assert good > 0.2
    assert good > bad + 0.15


def test_ranking_over_a_small_corpus(embedder: HashingEmbedder) -> None:
    corpus = [
        "Lambda functions scale automatically with the number of requests.",
        "OpenSearch k-NN indexes store vectors in HNSW graphs built by faiss.",
        "The refund policy allows returns within 30 days of purchase.",
        "김치는 배추와 고춧가루로 만드는 한국의 전통 음식이다.",
        "제주도는 한국에서 가장 큰 섬으로 관광지로 유명하다.",
    ]
    queries = {
        "how do lambda functions scale": 0,
        "which engine builds the HNSW graphs for k-NN vectors": 1,
        "can I return a purchase after 20 days? refund": 2,
        "김치의 재료는 무엇인가": 3,
        "한국에서 가장 큰 섬은?": 4,
    }
    vectors = embedder.embed(corpus, P)
    for query, expected in queries.items():
        qv = embedder.embed([query], Q)[0]
        scores = [dot(qv, v) for v in vectors]
        assert max(range(len(corpus)), key=scores.__getitem__) == expected, (query, scores)


def test_word_order_matters_through_bigrams(embedder: HashingEmbedder) -> None:
    base = "new york city"
    assert score(embedder, base, "new york city") > score(embedder, base, "city york new")
    assert score(embedder, base, "city york new") > 0.5  # same words: still similar


def _sample_texts(seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    english = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(4000)]
    syllables = [chr(c) for c in range(0xAC00, 0xAC00 + 1200)]
    korean = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    texts = []
    for i in range(240):
        vocab = english if i % 2 else korean
        texts.append(" ".join(rng.choice(vocab) for _ in range(250)) + ".")
    return texts
