"""The REST API's REQUEST authorizer and the streamed routes of the web-adapted function, run as
deployed: the harness plays API Gateway and the Lambda Web Adapter (see web_adapter.py)."""

from __future__ import annotations

from tests.deployment.harness import API_KEY_VALUE, Deployed, HttpResponse
from tests.deployment.web_adapter import StreamedResponse

LEAVE = {"id": "handbook/leave.md",
         "text": "# Leave policy\n\nEmployees get 25 days of paid leave per year. Unused days expire in March.\n"}


def _authorizer_calls(deployed: Deployed) -> int:
    [authorizer] = deployed.authorizers.values()
    return len(deployed.function(authorizer["function"]).invocations)


def test_the_key_comes_from_x_api_key_or_a_bearer_token(deployed: Deployed) -> None:
    deployed.set_secret()
    bearer = deployed.http("GET", "/v1/models", headers={"Authorization": f"Bearer {API_KEY_VALUE}"},
                           api_key=None)
    assert bearer.status == 200, bearer
    assert not bearer.gateway and bearer.function in deployed.web_adapted
    assert "solar-rag" in [m["id"] for m in bearer.json()["data"]]
    header = deployed.http("GET", "/v1/health")
    assert header.status == 200 and not header.gateway
    wrong_bearer = deployed.http("POST", "/v1/search", {"query": "x"},
                                 headers={"Authorization": "Bearer sk-unknown"}, api_key=None)
    assert (wrong_bearer.status, wrong_bearer.gateway) == (403, True)
    basic = deployed.http("GET", "/v1/health", headers={"Authorization": f"Basic {API_KEY_VALUE}"}, api_key=None)
    assert (basic.status, basic.gateway) == (401, True)


def test_public_playground_routes_answer_without_a_key_or_authorizer(deployed: Deployed) -> None:
    before = _authorizer_calls(deployed)
    page = deployed.http("GET", "/playground", api_key=None)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html"), page
    script = deployed.http("GET", "/playground/playground.js", api_key=None)
    assert script.status == 200 and script.headers["content-type"].startswith("text/javascript")
    root = deployed.http("GET", "/", api_key=None)
    assert root.status == 307 and root.headers["location"].endswith("playground")
    assert _authorizer_calls(deployed) == before


def test_streamed_query_sends_events_as_they_come(deployed: Deployed) -> None:
    deployed.set_secret()
    [init] = list(deployed.custom_resources())
    deployed.custom_resource(init, "Create")
    assert deployed.http("POST", "/v1/documents", {"documents": [LEAVE]}).status == 200
    deployed.upstage.stream_token_delay = 0.1
    try:
        response = deployed.stream("POST", "/v1/query", {"query": "How many days of paid leave?", "stream": True})
    finally:
        deployed.upstage.stream_token_delay = 0.0
    assert isinstance(response, StreamedResponse), response
    assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
    names = [line[7:] for line in response.body.decode().splitlines() if line.startswith("event: ")]
    assert names[0] == "citations" and names[-1] == "done" and "delta" in names, names
    total = response.ended - response.started
    citations, delta = response.first_arrival(b"event: citations"), response.first_arrival(b"event: delta")
    # Streamed, not buffered: the citations and the first words arrive while Upstage is still
    # producing the rest (one word every 0.1 s).
    assert citations <= delta < total - 0.3, (citations, delta, total, len(response.chunks))
    assert len(response.chunks) > 3
    assert LEAVE["id"] in response.body.decode()


def test_the_stream_function_refuses_what_the_gateway_refuses(deployed: Deployed) -> None:
    no_key = deployed.stream("POST", "/v1/chat", {"messages": [{"role": "user", "content": "hi"}]}, api_key=None)
    assert isinstance(no_key, HttpResponse) and (no_key.status, no_key.gateway) == (401, True)
    empty = deployed.stream("POST", "/v1/query", {})
    assert isinstance(empty, HttpResponse) and (empty.status, empty.gateway) == (400, True)
