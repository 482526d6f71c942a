"""Every Python function and every API route of the synthesized template, run as deployed."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from tests.deployment.harness import Deployed, Route

# What the harness plays itself instead of running: CDK's custom resource provider framework
# (Node.js, invokes the user onEvent function named in USER_ON_EVENT_FUNCTION_ARN, then the
# isComplete function named in USER_IS_COMPLETE_FUNCTION_ARN through its waiter state machine).
PROVIDER_FRAMEWORK_ENV = "USER_ON_EVENT_FUNCTION_ARN"


def _request_for(route: Route) -> tuple[str, dict[str, object] | None]:
    path = (route.resource_path.replace("{id+}", quote("reports/2026/q1 plan.md", safe=""))
            .replace("{name}", "playground.js"))
    body: dict[str, object] | None = {"unexpected": True} if route.method == "POST" else None
    return path, body


def test_every_function_of_the_template_is_run_or_played(deployed: Deployed) -> None:
    functions = deployed.assembly.of_type("AWS::Lambda::Function")
    python = {k for k, r in functions.items() if str(r["Properties"]["Runtime"]).startswith("python")}
    assert python == set(deployed.functions)
    others = set(functions) - python
    for logical_id in others:
        env = functions[logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        assert PROVIDER_FRAMEWORK_ENV in env, f"{logical_id} is neither Python nor CDK's provider framework"
    assert sorted(p.config.code_name or "?" for p in deployed.functions.values()) == [
        "chat", "indexer", "key_authorizer", "opensearch_init", "opensearch_init_event", "query", "stream"]
    # The streaming function runs behind the Lambda Web Adapter (played by the harness).
    assert {deployed.functions[f].config.code_name for f in deployed.web_adapted} == {"stream"}


def test_each_function_cold_starts_within_its_template_limits(deployed: Deployed) -> None:
    """A fresh process per function: init succeeds, no write is attempted outside /tmp (the
    assets ship bytecode that needs no recompiling), peak RSS stays under MemorySize."""
    deployed.set_secret()
    [init] = list(deployed.custom_resources())
    calls: dict[str, Callable[[], object]] = {
        "chat": lambda: deployed.http("GET", "/v1/health"),
        "query": lambda: deployed.http("POST", "/v1/search", {"query": "anything"}),
        "indexer": lambda: deployed.http("GET", "/v1/documents"),
        "opensearch_init": lambda: deployed.custom_resource(init, "Create"),
        "opensearch_init_event": lambda: deployed.custom_resource(init, "Create"),
        # Behind the played Lambda Web Adapter: init is run.sh until the readiness check passes.
        "stream": lambda: deployed.http("GET", "/v1/models"),
        "key_authorizer": lambda: deployed.http("GET", "/v1/documents"),
    }
    calls["opensearch_init"]()  # the index exists before the others search it
    for code_name, call in calls.items():
        process = deployed.function(code_name)
        process.cold()
        call()
        invocation = process.invocations[-1]
        assert invocation.cold and invocation.error is None, (code_name, invocation)
        assert invocation.denied_writes == [], (code_name, invocation.denied_writes[:5])
        assert invocation.peak_rss_mb < process.config.memory_mb, (code_name, invocation.peak_rss_mb)
        assert process.config.timeout_seconds >= 3 and process.config.memory_mb >= 128


def test_every_route_reaches_the_function_the_template_names(deployed: Deployed) -> None:
    """Each method+resource of the RestApi, sent as API Gateway would: the function behind it
    must serve it (a route wired to the wrong function answers FastAPI's 404 "Not Found")."""
    assert deployed.routes
    answered = {}
    authorizers = {deployed.authorizers[a]["function"] for a in deployed.authorizers}
    for route in deployed.routes:
        path, body = _request_for(route)
        authorized = len(deployed.function(next(iter(authorizers))).invocations) if authorizers else 0
        response = deployed.http(route.method, path, body)
        assert not response.gateway and response.function == route.function, (route, response)
        # The authorizer ran for the method that has one, and only for it.
        ran = len(deployed.function(next(iter(authorizers))).invocations) - authorized if authorizers else 0
        assert ran == (1 if route.authorizer else 0), route
        is_json = response.headers.get("content-type", "").startswith("application/json")
        detail = response.json().get("detail") if response.body and is_json else None
        assert response.status != 405 and detail != "Not Found", (route, response)
        assert response.status < 500, (route, response)
        answered[(route.method, route.resource_path)] = response.status
    # The public API of the README, exactly (no route lost, none added unnoticed).
    assert set(answered) == {
        ("GET", "/v1/health"), ("POST", "/v1/chat"), ("POST", "/v1/query"), ("POST", "/v1/search"),
        ("POST", "/v1/embeddings"), ("POST", "/agent/query"), ("POST", "/v1/documents"),
        ("GET", "/v1/documents"), ("GET", "/v1/documents/{id+}"), ("DELETE", "/v1/documents/{id+}"),
        ("POST", "/agent/knowledge"), ("POST", "/v1/uploads"), ("POST", "/v1/files"),
        ("POST", "/v1/chat/completions"), ("GET", "/v1/models"),
        ("GET", "/"), ("GET", "/playground"), ("GET", "/playground/{name}"),
    }
    # The streamed routes are served by the web-adapted function, the public ones need no key.
    assert {(r.method, r.resource_path) for r in deployed.routes if r.streamed} == {
        ("POST", "/v1/query"), ("POST", "/v1/chat"), ("POST", "/v1/chat/completions"), ("GET", "/v1/models")}
    assert {r.function for r in deployed.routes if r.streamed} == deployed.web_adapted
    assert {(r.method, r.resource_path) for r in deployed.routes if r.authorizer is None} == {
        ("GET", "/"), ("GET", "/playground"), ("GET", "/playground/{name}")}


def test_the_gateway_answers_what_never_reaches_a_function(deployed: Deployed) -> None:
    # No key: the REQUEST authorizer says Unauthorized (401); an unknown key passes the
    # authorizer but not the usage plan (403, API key source AUTHORIZER).
    assert deployed.api_key_source == "AUTHORIZER"
    no_key = deployed.http("GET", "/v1/health", api_key=None)
    assert (no_key.status, no_key.gateway, no_key.json()) == (401, True, {"message": "Unauthorized"})
    wrong = deployed.http("GET", "/v1/health", api_key="not-the-key")
    assert (wrong.status, wrong.gateway) == (403, True)
    assert deployed.http("GET", "/v1/nothing-here").json() == {"message": "Missing Authentication Token"}
    empty = deployed.http("POST", "/v1/query", {})
    assert (empty.status, empty.gateway) == (400, True)


def test_custom_resource_create_update_delete(deployed: Deployed) -> None:
    [init] = list(deployed.custom_resources())
    created = deployed.custom_resource(init, "Create")
    index = deployed.template["Resources"][init]["Properties"]["Index"]
    assert index in deployed.opensearch.aliases
    updated = deployed.custom_resource(init, "Update")
    assert updated.physical_id == created.physical_id  # same index: no replacement
    deleted = deployed.custom_resource(init, "Delete")
    assert deleted.physical_id == created.physical_id
    assert index in deployed.opensearch.aliases  # Delete keeps the data


def test_s3_notifications_follow_the_template(deployed: Deployed) -> None:
    """The bucket notifies exactly the template's events; an unsupported file is recorded as
    failed by the indexer without failing the batch (it would be retried forever)."""
    [bucket] = [r for r in deployed.assembly.of_type("AWS::S3::Bucket").values()
                if r["Properties"].get("NotificationConfiguration")]
    events_ = sorted(q["Event"] for q in bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"])
    configured = deployed.s3.get_bucket_notification_configuration(Bucket=deployed.documents_bucket)
    assert sorted(e for q in configured["QueueConfigurations"] for e in q["Events"]) == events_
    deployed.set_secret()
    deployed.put_object("images/logo.xyz", b"\x89PNG not a document")
    batches = deployed.deliver_notifications()
    [mapping] = deployed.event_source_mappings()
    assert all(len(b.message_ids) <= mapping["batch_size"] for b in batches)
    assert not [b for b in batches if b.failed_ids]
    status = deployed.http("GET", "/v1/documents/" + quote("images/logo.xyz", safe="")).json()
    assert status["status"] == "failed" and status["error"]


def test_platform_payload_limits(deployed: Deployed) -> None:
    """Above 10 MB API Gateway refuses the body; above 6 MB of event Lambda refuses the
    invocation and the client gets a bare gateway 502 (the function never runs)."""
    invocations = len(deployed.function("indexer").invocations)
    over_gateway = {"documents": [{"text": "x" * (10 * 1024 * 1024 + 1)}]}
    assert deployed.http("POST", "/v1/documents", over_gateway).status == 413
    over_lambda = deployed.http("POST", "/v1/documents", {"documents": [{"text": "x" * (6 * 1024 * 1024)}]})
    assert (over_lambda.status, over_lambda.gateway) == (502, True)
    assert len(deployed.function("indexer").invocations) == invocations
