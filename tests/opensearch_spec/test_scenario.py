"""One scenario over every target and server behaviour, judged request by request.

init, re-init, upserts (new, changed, unchanged), vector/keyword/hybrid searches with and
without filters, delete. The session fixture already fails on any violation; this test also
shows that each target's traffic was judged and which operations it covered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from solar_rag.adapters.opensearch import build_client, build_opensearch_store, init_opensearch
from solar_rag.adapters.opensearch.capabilities import Target
from solar_rag.domain import Filters, SearchMode, SearchQuery
from solar_rag.settings import Settings

from tests.fakes.opensearch_stub import OpenSearchStub
from tests.integration.opensearch_harness import DIMS, chunks, unit
from tests.opensearch_spec.validator import RECORD, shared

CASES: list[tuple[str, Target, dict[str, object]]] = [
    ("domain-3.1", "domain", {}),
    ("domain-2.17", "domain", {"version": (2, 17)}),
    ("nextgen-engine-refused", "serverless", {}),
    ("nextgen-engine-refused-probed", "serverless", {"mapping_shows_resolved": False}),
    ("nextgen-engine-accepted", "serverless", {"serverless_engine": "accepted"}),
    ("classic", "serverless-classic", {}),
]
COMMON = {"indices.get_mapping", "indices.create", "indices.get_settings", "bulk", "search"}
EXPECTED: dict[Target, set[str]] = {
    "domain": COMMON | {"search_pipeline.get", "search_pipeline.put", "info",
                        "indices.refresh", "delete_by_query"},
    "serverless": COMMON | {"msearch"},
    "serverless-classic": COMMON | {"msearch"},
}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenSearchStub]:
    with OpenSearchStub() as stub:
        yield stub


@pytest.mark.parametrize(("target", "behaviour"), [(t, b) for _, t, b in CASES],
                         ids=[name for name, _, _ in CASES])
def test_every_request_of_the_scenario_follows_the_spec(
    server: OpenSearchStub, target: Target, behaviour: dict[str, object]
) -> None:
    server.reset(target)
    for name, value in behaviour.items():
        setattr(server, name, value)
    judged_before = RECORD.checked.get(target, 0)
    config = Settings(_env_file=None, vector_store="opensearch", opensearch_url=server.url,
                      opensearch_endpoint=None, opensearch_target=target,
                      embedding_dimensions=DIMS, opensearch_max_retries=0)
    init_opensearch(config, build_client(config))
    init_opensearch(config, build_client(config))
    store = build_opensearch_store(config)
    store.upsert_document("a", "v1", chunks("a", "v1", ["alpha one", "alpha two"],
                                             metadata={"lang": "en"}))
    store.upsert_document("b", "v1", chunks("b", "v1", ["beta"], metadata={"lang": "ko"}))
    previous = store.upsert_document("a", "v2", chunks("a", "v2", ["alpha three"],
                                                       metadata={"lang": "en"}))
    for mode in SearchMode:
        cases: list[Filters] = [{}, {"lang": "en"}, {"lang": ["en", "ko"], "document_id": "a"}]
        for filters in cases:
            store.search(SearchQuery("alpha", unit(0), mode, 3, filters))
    store.delete_document("a", chunk_ids=previous)

    assert server.violations == []
    assert RECORD.checked[target] - judged_before == len(server.requests)
    groups = Counter(_group(r.method, r.path) for r in server.requests)
    assert EXPECTED[target] <= set(groups), sorted(groups)


def _group(method: str, path: str) -> str:
    operation = shared().match(method, path)
    assert operation is not None, f"{method} {path}"
    return operation.group
