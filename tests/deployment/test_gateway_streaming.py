"""The REST API's REQUEST authorizer and the streamed routes of the web-adapted function, run as
deployed: the harness plays API Gateway and the Lambda Web Adapter (see web_adapter.py)."""

from __future__ import annotations

from pathlib import Path

from tests.deployment.harness import API_KEY_VALUE, Deployed, HttpResponse, _policy_effect
from tests.deployment.web_adapter import StreamedResponse, WebAdapterProcess, is_web_adapter_layer

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


def test_run_sh_serves_the_app_from_the_bare_runtime_and_the_layers(deployed: Deployed) -> None:
    """``python`` in run.sh is the bare interpreter; uvicorn and the app come from the layers."""
    [logical_id] = deployed.web_adapted
    process = deployed.function(logical_id)
    assert isinstance(process, WebAdapterProcess)
    process.cold()
    assert deployed.http("GET", "/v1/models").status == 200
    pid = process.pid
    assert pid is not None
    environ = dict(item.split("=", 1) for item in
                   Path(f"/proc/{pid}/environ").read_text(errors="replace").split("\0") if "=" in item)
    shipped = [str(layer) for layer in process.config.layer_dirs]
    paths = [p for p in environ["PYTHONPATH"].split(":") if p]
    assert paths and all(p == "/opt/python" or p == str(process.config.code_dir) or p.startswith(tuple(shipped))
                         for p in paths), paths
    assert environ["PATH"].split(":")[0] == str(deployed.environment.runtime.root / "bin")
    assert ".venv" not in environ["PATH"] and ".venv" not in environ["PYTHONPATH"]
    # Extension modules (pydantic_core, ...) are loaded from the staged layer, none from .venv.
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert ".venv" not in maps and any(layer in maps for layer in shipped)


def test_the_adapter_layer_is_recognised_by_its_name() -> None:
    assert is_web_adapter_layer("arn:aws:lambda:us-east-1:753240598075:layer:LambdaAdapterLayerX86:26")
    assert is_web_adapter_layer("arn:aws:lambda:ap-northeast-2:753240598075:layer:LambdaAdapterLayerArm64:26")
    assert not is_web_adapter_layer("arn:aws:lambda:us-east-1:123456789012:layer:StreamFunction:1")
    assert not is_web_adapter_layer("arn:aws:lambda:us-east-1:123456789012:function:LambdaAdapterLayerX86")


def test_authorizer_policies_are_evaluated_as_api_gateway_does() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/GET/v1/health"

    def policy(*statements: tuple[str, str]) -> dict[str, object]:
        return {"Version": "2012-10-17", "Statement": [
            {"Effect": effect, "Action": "execute-api:Invoke", "Resource": resource}
            for effect, resource in statements]}

    assert _policy_effect(policy(("Allow", arn)), arn) == "Allow"
    assert _policy_effect(policy(("Allow", "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/*")), arn) == "Allow"
    assert _policy_effect(policy(("Allow", "*"), ("Deny", arn)), arn) == "Deny"
    assert _policy_effect(policy(("Allow", arn.replace("GET", "POST"))), arn) is None
