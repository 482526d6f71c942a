"""Exact request bodies and pure helpers of the OpenSearch adapter (no network)."""

from __future__ import annotations

import json
import math
import random
import struct

import pytest
from solar_rag.adapters.opensearch import mapping, queries
from solar_rag.adapters.opensearch.capabilities import capabilities_for
from solar_rag.domain import Chunk
from solar_rag.errors import NotConfigured

DOMAIN = capabilities_for("domain")
NEXTGEN = capabilities_for("serverless")
CLASSIC = capabilities_for("serverless-classic")


def test_capabilities_per_target() -> None:
    assert (DOMAIN.custom_ids, DOMAIN.delete_by_query, DOMAIN.refresh, DOMAIN.search_pipeline,
            DOMAIN.engine_configurable, DOMAIN.sigv4_service) == (True, True, True, True, True, "es")
    assert (NEXTGEN.custom_ids, NEXTGEN.delete_by_query, NEXTGEN.refresh,
            NEXTGEN.engine_configurable, NEXTGEN.sigv4_service) == (True, False, False, True, "aoss")
    assert (CLASSIC.custom_ids, CLASSIC.delete_by_query, CLASSIC.refresh,
            CLASSIC.engine_configurable, CLASSIC.sigv4_service) == (False, False, False, True, "aoss")
    # Only NextGen may refuse the engine, defaults to another compression, and is known to
    # be new enough (2.16+) for per-query ef_search.
    assert [(c.engine_fallback, c.default_compression, c.state_compression, c.query_ef_search)
            for c in (DOMAIN, NEXTGEN, CLASSIC)] == [
        (False, "1x", False, False), (True, "32x", True, True), (False, "1x", False, False)]
    with pytest.raises(ValueError, match="unknown OpenSearch target"):
        capabilities_for("nope")  # type: ignore[arg-type]


def test_vector_field_is_faiss_hnsw_innerproduct_and_never_nmslib() -> None:
    assert mapping.vector_field_mapping(1024, DOMAIN) == {
        "type": "knn_vector",
        "dimension": 1024,
        "method": {
            "name": "hnsw",
            "space_type": "innerproduct",
            "engine": "faiss",
            "parameters": {"m": 16, "ef_construction": 100, "ef_search": 100},
        },
    }
    # NextGen: explicit Faiss first, and the compression always stated (its default is 32x).
    assert mapping.vector_field_mapping(4096, NEXTGEN) == {
        "type": "knn_vector",
        "dimension": 4096,
        "method": {"name": "hnsw", "space_type": "innerproduct", "engine": "faiss",
                   "parameters": {"m": 16, "ef_construction": 100, "ef_search": 100}},
        "compression_level": "1x",
    }
    # ... and the body retried when the collection refuses the engine.
    assert mapping.vector_field_mapping(4096, NEXTGEN, explicit_engine=False) == {
        "type": "knn_vector",
        "dimension": 4096,
        "method": {"name": "hnsw", "space_type": "innerproduct"},
        "compression_level": "1x",
    }
    assert mapping.vector_field_mapping(8, CLASSIC)["method"]["engine"] == "faiss"


def test_ef_search_and_compression_settings_reach_the_mapping() -> None:
    field = mapping.vector_field_mapping(8, DOMAIN, ef_search=256, compression="32x")
    assert field["method"]["parameters"]["ef_search"] == 256
    assert field["compression_level"] == "32x"
    # The OpenSearch default (1x) is not sent to a domain: older versions reject the key.
    assert "compression_level" not in mapping.vector_field_mapping(8, DOMAIN)
    assert "compression_level" not in mapping.vector_field_mapping(8, CLASSIC)


def test_create_body_domain() -> None:
    body = mapping.create_index_body("rag-chunks", 1024, DOMAIN)
    assert body["aliases"] == {"rag-chunks": {}}
    assert body["settings"] == {"index": {
        "knn": True, "number_of_shards": 1, "auto_expand_replicas": "0-1",
    }}
    mappings = body["mappings"]
    assert mappings["dynamic"] == "strict"
    assert mappings["date_detection"] is False
    props = mappings["properties"]
    for keyword in ("document_id", "chunk_id", "version", "source"):
        assert props[keyword] == {"type": "keyword"}
    for text in ("text", "title"):
        assert props[text] == {"type": "text", "analyzer": "cjk"}
    assert props["metadata"] == {"type": "object", "enabled": False}
    assert props["metadata_terms"] == {"type": "keyword", "ignore_above": 4096}
    assert "dynamic_templates" not in mappings
    assert "nmslib" not in repr(body)


def test_create_body_serverless_has_no_shard_settings() -> None:
    for caps in (NEXTGEN, CLASSIC):
        assert mapping.create_index_body("a", 8, caps)["settings"] == {
            "index": {"knn": True}
        }


def test_physical_name_is_versioned() -> None:
    assert mapping.physical_index_name("rag-chunks") == "rag-chunks-v1"


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (None, "no knn_vector field"),
        ({"type": "knn_vector", "dimension": 512,
          "method": {"space_type": "innerproduct"}}, "512-dimensional.*EMBEDDING_DIMENSIONS is 1024"),
        ({"type": "knn_vector", "dimension": 1024,
          "method": {"space_type": "l2", "engine": "faiss"}}, "space_type 'l2'"),
        ({"type": "knn_vector", "dimension": 1024,
          "method": {"space_type": "innerproduct", "engine": "nmslib"}}, "nmslib"),
    ],
)
def test_existing_mapping_mismatch_refused(field: object, message: str) -> None:
    props = {} if field is None else {"embedding": field}
    with pytest.raises(NotConfigured, match=message):
        mapping.check_existing_mapping("rag-chunks-v1", {"properties": props}, 1024)


def test_existing_mapping_compression_is_what_was_asked() -> None:
    field = {"type": "knn_vector", "dimension": 8, "space_type": "innerproduct"}
    # No level stated: the target's documented default (NextGen 32x, OpenSearch 1x).
    with pytest.raises(NotConfigured, match="compression_level 32x but OPENSEARCH_COMPRESSION_LEVEL is 1x"):
        mapping.check_existing_mapping("i", {"properties": {"embedding": field}}, 8,
                                       capabilities=NEXTGEN, compression="1x")
    assert mapping.check_existing_mapping(
        "i", {"properties": {"embedding": field}}, 8, capabilities=DOMAIN, compression="1x",
    ).compression == "1x"
    on_disk = {**field, "mode": "on_disk"}
    with pytest.raises(NotConfigured, match="set OPENSEARCH_COMPRESSION_LEVEL=32x"):
        mapping.check_existing_mapping("i", {"properties": {"embedding": on_disk}}, 8,
                                       capabilities=DOMAIN, compression="1x")
    stated = {**field, "compression_level": "2x"}
    resolved = mapping.check_existing_mapping("i", {"properties": {"embedding": stated}}, 8,
                                              capabilities=NEXTGEN, compression="2x")
    assert (resolved.engine, resolved.compression) == (None, "2x")


def test_existing_mapping_accepts_top_level_space_type() -> None:
    mapping.check_existing_mapping(
        "i", {"properties": {"embedding": {"type": "knn_vector", "dimension": 8,
                                           "space_type": "innerproduct"}}}, 8)


def test_metadata_terms_follow_the_reference_equality() -> None:
    term = queries.metadata_term
    assert term("year", 2024) == term("year", 2024.0) == '["year",2024]'
    assert term("flag", True) == '["flag",true]' != term("flag", 1)
    assert term("lang", "en") == '["lang","en"]' != term("lang", "EN")
    assert term("rating", 4.5) == '["rating",4.5]'
    assert term("언어", "한국어") == '["언어","한국어"]'
    # keys and values cannot collide through separators
    assert term("a=b", "c") != term("a", "b=c")
    assert queries.metadata_terms({"b": 1, "a": "x"}) == ['["a","x"]', '["b",1]']


def test_filters_become_terms_clauses() -> None:
    assert queries.filter_clauses({"lang": "ko", "document_id": "d/1", "year": [2023, 2024.0],
                                   "draft": False, "none": []}) == [
        {"terms": {"document_id": ["d/1"]}},
        {"terms": {"metadata_terms": ['["draft",false]']}},
        {"terms": {"metadata_terms": ['["lang","ko"]']}},
        {"terms": {"metadata_terms": []}},
        {"terms": {"metadata_terms": ['["year",2023]', '["year",2024]']}},
    ]
    # a document id is a string: other values can never match it
    assert queries.filter_clauses({"document_id": [1, "a"]}) == [
        {"terms": {"document_id": ["a"]}}]


def test_knn_body_filters_inside_knn() -> None:
    assert queries.vector_search_body([0.5, 0.5], 3, {"lang": "ko"}) == {
        "size": 3,
        "_source": {"excludes": ["embedding"]},
        "query": {"knn": {"embedding": {
            "vector": [0.5, 0.5], "k": 3,
            "filter": {"bool": {"filter": [{"terms": {"metadata_terms": ['["lang","ko"]']}}]}},
        }}},
    }
    assert queries.vector_search_body([1.0], 2, {})["query"] == {
        "knn": {"embedding": {"vector": [1.0], "k": 2}}
    }
    # Faiss reads a per-query ef_search from method_parameters (2.16+).
    assert queries.vector_search_body([1.0], 2, {}, ef_search=64)["query"] == {
        "knn": {"embedding": {"vector": [1.0], "k": 2, "method_parameters": {"ef_search": 64}}}
    }
    hybrid = queries.hybrid_search_body("q", [1.0], 2, {}, ef_search=64)
    assert hybrid["query"]["hybrid"]["queries"][1]["knn"]["embedding"]["method_parameters"] == {
        "ef_search": 64}


def test_keyword_body() -> None:
    assert queries.keyword_search_body("서울 날씨", 5, {"document_id": ["a", "b"]}) == {
        "size": 5,
        "_source": {"excludes": ["embedding"]},
        "query": {"bool": {
            "must": [{"multi_match": {"query": "서울 날씨",
                                      "fields": ["text", "title", "section"]}}],
            "filter": [{"terms": {"document_id": ["a", "b"]}}],
        }},
    }


def test_hybrid_body_and_pipelines() -> None:
    body = queries.hybrid_search_body("q", [1.0, 0.0], 20, {"lang": "en"})
    lang = {"terms": {"metadata_terms": ['["lang","en"]']}}
    assert body == {
        "size": 20,
        "_source": {"excludes": ["embedding"]},
        "query": {"hybrid": {"queries": [
            {"bool": {"must": [{"multi_match": {"query": "q",
                                                "fields": ["text", "title", "section"]}}],
                      "filter": [lang]}},
            {"knn": {"embedding": {"vector": [1.0, 0.0], "k": 20,
                                   "filter": {"bool": {"filter": [lang]}}}}},
        ]}},
    }
    assert queries.hybrid_pipeline_body()["phase_results_processors"] == [
        {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": 60}}}
    ]
    assert queries.normalization_pipeline_body()["phase_results_processors"] == [
        {"normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean",
                            "parameters": {"weights": [0.5, 0.5]}},
        }}
    ]


@pytest.mark.parametrize("cos", [1.0, 0.8, 0.3, 0.0, -0.2, -0.9])
def test_cosine_from_faiss_innerproduct_score(cos: float) -> None:
    score = 1.0 + cos if cos >= 0 else 1.0 / (1.0 - cos)
    assert math.isclose(queries.cosine_from_score(score), cos, abs_tol=1e-12)


def test_chunk_round_trip_through_source() -> None:
    chunk = Chunk("doc", "c1", 2, "본문 text", "제목", "sec", 3, 9, "v1", "s3://b/k",
                  {"lang": "ko", "n": 2.5, "ok": True})
    source = queries.chunk_document(chunk, [0.5, 0.5])
    assert source["embedding"] == [0.5, 0.5]
    assert source["metadata_terms"] == ['["lang","ko"]', '["n",2.5]', '["ok",true]']
    del source["embedding"]
    assert queries.chunk_from_source(source) == chunk
    response = {"hits": {"hits": [{"_id": "x", "_score": 1.5, "_source": source}]}}
    (hit,) = queries.hits_from_response(response, vector_scores=True)
    assert hit.chunk == chunk
    assert hit.score == pytest.approx(0.5)


def test_vector_json_keeps_float32_precision_and_is_valid_json() -> None:
    rng = random.Random(3)
    vector = [rng.gauss(0.0, 0.05) for _ in range(512)] + [1.0, 0.0, -1e-7, 1e-30]
    parsed = json.loads(queries.vector_json(vector))
    assert len(parsed) == len(vector)
    for sent, original in zip(parsed, vector, strict=True):
        assert math.isclose(sent, original, rel_tol=1e-8, abs_tol=0.0)
        as32 = struct.unpack("f", struct.pack("f", original))[0]
        assert math.isclose(sent, as32, rel_tol=2**-23)  # within one float32 ulp


def test_pre_encoded_source_equals_the_document() -> None:
    chunk = Chunk("문서", "c", 0, 'quote " and \\ and 한글', None, None, 0, 1, "v", None,
                  {"k": "v", "n": 1})
    vector = [0.25, -0.5, 0.125]
    assert json.loads(queries.chunk_source_json(chunk, vector)) == queries.chunk_document(
        chunk, vector)
