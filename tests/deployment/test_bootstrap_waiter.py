"""The index bootstrap as CDK's provider framework runs it: onEvent names the resource, the
waiter state machine asks the init function (one attempt per call) every query interval until
it is complete, fails for good, or the total timeout passes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from solar_rag.resilience import retry

from tests.deployment.harness import CustomResourceTimeout, Deployed, Variant


def _waiter(deployed: Deployed) -> dict[str, object]:
    [machine] = deployed.assembly.of_type("AWS::StepFunctions::StateMachine").values()
    definition = json.loads(deployed.resolver(machine["Properties"]["DefinitionString"]))
    [policy] = definition["States"]["framework-isComplete-task"]["Retry"]
    return dict(policy)


def test_the_waiter_polls_as_the_retry_module_says(deployed: Deployed) -> None:
    policy = _waiter(deployed)
    assert policy["IntervalSeconds"] == retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS
    assert policy["MaxAttempts"] == (retry.OPENSEARCH_INIT_TOTAL_TIMEOUT_SECONDS
                                     // retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS)
    init = deployed.function("opensearch_init").config
    assert init.timeout_seconds == retry.OPENSEARCH_INIT_ATTEMPT_SECONDS
    # onEvent does no work: it needs neither time nor memory.
    event = deployed.function("opensearch_init_event").config
    assert event.timeout_seconds <= 30 and event.memory_mb == 128


def test_fresh_access_policies_are_waited_out_by_the_framework(deploy: Callable[[Variant], Deployed]) -> None:
    """Two 403s while the domain's access policy applies: two incomplete answers, then done;
    no sleeping Lambda, the waiter's intervals in between."""
    deployed = deploy("domain")
    [init] = list(deployed.custom_resources())
    deployed.opensearch.inject(403, "security_exception", "no permissions for [indices:admin/create]",
                               method="PUT", path=r"/rag-chunks-v\d+", times=2)
    created = deployed.custom_resource(init, "Create")
    assert created.polls == 3
    assert created.waited_seconds == 2 * retry.OPENSEARCH_INIT_QUERY_INTERVAL_SECONDS
    assert created.data["alias"] == "rag-chunks"
    assert "rag-chunks" in deployed.opensearch.aliases
    attempts = deployed.function("opensearch_init").invocations[-3:]
    assert [a.payload for a in attempts[:2]] == [{"IsComplete": False}] * 2


def test_a_policy_that_never_applies_times_out_at_the_total_timeout(
        deploy: Callable[[Variant], Deployed]) -> None:
    deployed = deploy("domain")
    [init] = list(deployed.custom_resources())
    deployed.opensearch.inject(403, "security_exception", "no permissions", method="PUT",
                               path=r"/rag-chunks-v\d+", times=None)
    with pytest.raises(CustomResourceTimeout, match="Operation timed out"):
        deployed.custom_resource(init, "Create")
    polls = int(str(_waiter(deployed)["MaxAttempts"])) + 1
    assert len(deployed.function("opensearch_init").invocations) == polls
