"""Custom resource ``onEvent`` handler (CDK provider framework) of the OpenSearch bootstrap:
names the resource; the work and the waiting are ``opensearch_init``'s and the framework's
(``solar_rag.lambda_edge.opensearch_init``)."""

from collections.abc import Mapping
from typing import Any

from solar_rag.lambda_edge.opensearch_init import on_event


def handler(event: Mapping[str, Any], context: object) -> dict[str, Any]:
    return on_event(event)
