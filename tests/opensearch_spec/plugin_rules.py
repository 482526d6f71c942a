"""k-NN and neural-search rules the API specification does not express (it types
``method.parameters``, ``method_parameters`` and processor configurations as open objects).

Each rule cites the OpenSearch documentation page it comes from (docs.opensearch.org,
``latest`` unless a version is named; the same pages live in
opensearch-project/documentation-website).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.opensearch_spec.validator import Context, RequestLike

Finding = tuple[str, str]

# https://docs.opensearch.org/latest/mappings/supported-field-types/knn-methods-engines/
# (method definitions: "Supported Faiss methods", "HNSW parameters", "IVF parameters",
# "Lucene HNSW"): the parameter names each engine/method accepts.
METHOD_PARAMETERS: dict[tuple[str, str], frozenset[str]] = {
    ("faiss", "hnsw"): frozenset({"m", "ef_construction", "ef_search", "encoder"}),
    ("faiss", "ivf"): frozenset({"nlist", "nprobes", "encoder"}),
    ("lucene", "hnsw"): frozenset({"m", "ef_construction", "encoder"}),
    ("lucene", "flat"): frozenset(),
}
# Same page, "Spaces" per engine; faiss cosinesimil from 2.19
# (https://docs.opensearch.org/latest/mappings/supported-field-types/knn-spaces/).
SPACES: dict[str, frozenset[str]] = {
    "faiss": frozenset({"l2", "innerproduct", "cosinesimil", "hamming"}),
    "lucene": frozenset({"l2", "innerproduct", "cosinesimil"}),
}
# https://docs.opensearch.org/latest/mappings/supported-field-types/knn-memory-optimized/
# ("Compression levels": 2x/8x/16x faiss only, 4x lucene only; "Vector workload modes").
COMPRESSION_LEVELS = frozenset({"1x", "2x", "4x", "8x", "16x", "32x"})
COMPRESSION_ENGINES: dict[str, frozenset[str]] = {
    "2x": frozenset({"faiss"}), "8x": frozenset({"faiss"}), "16x": frozenset({"faiss"}),
    "4x": frozenset({"lucene"}),
}
MODES = frozenset({"in_memory", "on_disk"})
# https://docs.opensearch.org/latest/query-dsl/specialized/k-nn/ ("Request body fields":
# method_parameters introduced 2.16, ef_search for hnsw, nprobes for ivf; k 1-10,000;
# exactly one of k, max_distance, min_score; rescore 2.17).
QUERY_METHOD_PARAMETERS = frozenset({"ef_search", "nprobes"})
MAX_K = 10_000
# https://docs.opensearch.org/latest/query-dsl/compound/hybrid/ ("The maximum number of
# query clauses is 5"; hybrid is a top-level query; `filter` on hybrid from 3.0).
MAX_HYBRID_QUERIES = 5


def check(group: str, request: RequestLike, context: Context) -> Iterable[Finding]:
    body = request.body
    if not body.strip():
        return
    if group == "indices.create":
        yield from _create_index(json.loads(body))
    elif group in ("search", "count"):
        yield from _search(json.loads(body), _index_of(request.path), context)
    elif group == "msearch":
        lines = [json.loads(line) for line in body.split(b"\n") if line.strip()]
        default = _index_of(request.path)
        for header, search in zip(lines[::2], lines[1::2], strict=False):
            index = header.get("index", default) if isinstance(header, dict) else default
            yield from _search(search, index if isinstance(index, str) else None, context)
    elif group == "search_pipeline.put":
        yield from _pipeline(json.loads(body), context)


def _index_of(path: str) -> str | None:
    head = path.strip("/").split("/", 1)[0]
    return head if head and not head.startswith("_") else None


# -- index creation -------------------------------------------------------------------------


def _create_index(body: Mapping[str, Any]) -> Iterable[Finding]:
    mappings = body.get("mappings") or {}
    for name, field in _vector_fields(mappings.get("properties") or {}):
        yield from _vector_field(name, field)


def _vector_fields(properties: Mapping[str, Any], prefix: str = ""
                   ) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            continue
        if prop.get("type") == "knn_vector":
            yield prefix + name, prop
        if isinstance(prop.get("properties"), Mapping):
            yield from _vector_fields(prop["properties"], f"{prefix}{name}.")


def _vector_field(name: str, field: Mapping[str, Any]) -> Iterable[Finding]:
    method = field.get("method") or {}
    engine = method.get("engine")
    if engine == "nmslib":
        # https://docs.opensearch.org/latest/vector-search/filter-search-knn/efficient-knn-filtering/
        # (efficient filtering: lucene, faiss only) and _about/breaking-changes (3.0 blocks
        # new nmslib indexes): every filtered search of this adapter would fail.
        yield "knn-engine", (f"{name}: engine nmslib cannot run filtered k-NN queries and is "
                             f"refused for new indexes from OpenSearch 3.0")
    method_name = method.get("name")
    parameters = method.get("parameters") or {}
    allowed = METHOD_PARAMETERS.get((engine or "", method_name or ""))
    if engine is not None and parameters and allowed is None and engine != "nmslib":
        yield "knn-method", f"{name}: unknown method {method_name!r} for engine {engine!r}"
    if allowed is not None:
        unknown = sorted(set(parameters) - allowed)
        if unknown:
            yield "knn-method-parameters", (f"{name}: {engine}/{method_name} does not take "
                                            f"{unknown} (allowed: {sorted(allowed)})")
        for key in ("m", "ef_construction", "ef_search", "nlist", "nprobes"):
            value = parameters.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                      or value < 1):
                yield "knn-method-parameters", f"{name}: {key} must be a positive integer"
    space = field.get("space_type") or method.get("space_type")
    if engine in SPACES and space is not None and space not in SPACES[engine]:
        yield "knn-space", f"{name}: space {space!r} is not available on {engine}"
    dimension = field.get("dimension")
    if isinstance(dimension, int) and not 1 <= dimension <= 16_000:
        yield "knn-dimension", f"{name}: dimension {dimension} outside [1, 16000]"
    level = field.get("compression_level")
    if level is not None:
        if level not in COMPRESSION_LEVELS:
            yield "knn-compression", f"{name}: compression_level {level!r} is not one of " \
                                     f"{sorted(COMPRESSION_LEVELS)}"
        elif engine is not None and engine not in COMPRESSION_ENGINES.get(level, {engine}):
            yield "knn-compression", f"{name}: compression_level {level} is not available " \
                                     f"on {engine}"
    mode = field.get("mode")
    if mode is not None and mode not in MODES:
        yield "knn-mode", f"{name}: mode {mode!r} is not one of {sorted(MODES)}"


# -- queries --------------------------------------------------------------------------------


def _search(body: Any, index: str | None, context: Context) -> Iterable[Finding]:
    if not isinstance(body, Mapping):
        return
    query = body.get("query")
    if isinstance(query, Mapping) and "hybrid" in query:
        hybrid = query["hybrid"] or {}
        queries = hybrid.get("queries") or []
        if not 1 <= len(queries) <= MAX_HYBRID_QUERIES:
            yield "hybrid", f"{len(queries)} sub-queries; a hybrid query takes 1 to " \
                            f"{MAX_HYBRID_QUERIES}"
        if "filter" in hybrid and context.version < (3, 0):
            yield "hybrid", "a top-level hybrid filter needs OpenSearch 3.0"
        for sub in queries:
            yield from _query(sub, index, context, top=False)
        if "filter" in hybrid:
            yield from _query(hybrid["filter"], index, context, top=False)
        return
    if query is not None:
        yield from _query(query, index, context, top=True)


def _query(query: Any, index: str | None, context: Context, *, top: bool) -> Iterable[Finding]:
    """Walk every query clause (lists and nested clauses), applying the clause rules."""
    if isinstance(query, list):
        for item in query:
            yield from _query(item, index, context, top=False)
        return
    if not isinstance(query, Mapping):
        return
    for kind, spec in query.items():
        if kind == "hybrid":
            yield "hybrid", "hybrid must be the top-level query, not nested in another clause"
        elif kind == "knn" and isinstance(spec, Mapping):
            for field, params in spec.items():
                yield from _knn(field, params, index, context)
        elif isinstance(spec, Mapping | list):
            yield from _query(spec, index, context, top=False)


def _knn(field: str, params: Any, index: str | None, context: Context) -> Iterable[Finding]:
    if not isinstance(params, Mapping):
        return
    limits = [key for key in ("k", "max_distance", "min_score") if key in params]
    if len(limits) != 1:
        yield "knn-query", f"{field}: exactly one of k, max_distance, min_score (got {limits})"
    k = params.get("k")
    if k is not None and not (isinstance(k, int) and 1 <= k <= MAX_K):
        yield "knn-query", f"{field}: k={k!r} outside [1, {MAX_K}]"
    method_parameters = params.get("method_parameters")
    if method_parameters is not None:
        if context.version < (2, 16):
            yield "knn-query", f"{field}: method_parameters needs OpenSearch 2.16"
        unknown = sorted(set(method_parameters) - QUERY_METHOD_PARAMETERS)
        if unknown:
            yield "knn-query", f"{field}: method_parameters does not take {unknown}"
        for key, value in method_parameters.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                yield "knn-query", f"{field}: method_parameters.{key} must be a positive integer"
    if "rescore" in params and context.version < (2, 17):
        yield "knn-query", f"{field}: rescore needs OpenSearch 2.17"
    if params.get("filter") is not None:
        engine = context.engine_of(index, field) if context.engine_of and index else None
        if engine == "nmslib":
            # https://docs.opensearch.org/latest/query-dsl/specialized/k-nn/ (`filter`: "can
            # only be used with the faiss or lucene engines").
            yield "knn-filter-engine", (f"{field}: a filter inside knn on an index whose "
                                        f"engine resolved to nmslib")
        yield from _query(params["filter"], index, context, top=False)


# -- search pipelines -----------------------------------------------------------------------


def _pipeline(body: Mapping[str, Any], context: Context) -> Iterable[Finding]:
    for processor in body.get("phase_results_processors") or []:
        if not isinstance(processor, Mapping):
            continue
        if "score-ranker-processor" in processor:
            # https://docs.opensearch.org/latest/search-plugins/search-pipelines/score-ranker-processor/
            # ("Introduced 2.19"; rank_constant in [1, 10000]).
            if context.version < (2, 19):
                yield "pipeline-version", "score-ranker-processor needs OpenSearch 2.19 " \
                                          f"(cluster is {context.version})"
            combination = processor["score-ranker-processor"].get("combination") or {}
            constant = combination.get("rank_constant")
            if constant is not None and not (isinstance(constant, int) and
                                             1 <= constant <= 10_000):
                yield "pipeline-rrf", f"rank_constant {constant!r} outside [1, 10000]"
        if "normalization-processor" in processor:
            # https://docs.opensearch.org/latest/search-plugins/search-pipelines/normalization-processor/
            # ("Introduced 2.10"; weights in [0.0, 1.0] that must add up to 1.0).
            if context.version < (2, 10):
                yield "pipeline-version", "normalization-processor needs OpenSearch 2.10"
            combination = processor["normalization-processor"].get("combination") or {}
            weights = (combination.get("parameters") or {}).get("weights")
            if weights is not None:
                if any(not isinstance(w, int | float) or not 0.0 <= w <= 1.0 for w in weights):
                    yield "pipeline-weights", f"weights {weights} must each be in [0.0, 1.0]"
                elif abs(sum(weights) - 1.0) > 1e-6:
                    yield "pipeline-weights", f"weights {weights} add up to {sum(weights)}, " \
                                              "not 1.0"
