"""Custom resource ``isComplete`` handler (CDK provider framework): one attempt at creating the
OpenSearch index, alias and search pipeline; the framework asks again until it is done
(``solar_rag.lambda_edge.opensearch_init``)."""

from collections.abc import Mapping
from typing import Any

from solar_rag.lambda_edge.opensearch_init import LambdaContext, is_complete


def _init_from_environment() -> Mapping[str, object]:
    from solar_rag.adapters.opensearch.bootstrap import init_opensearch
    from solar_rag.settings import Settings

    return init_opensearch(Settings())


def handler(event: Mapping[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    return is_complete(event, context, init=_init_from_environment)
