"""CDK entry point: ``npx cdk synth`` runs ``python -m infra_cdk.app`` (see cdk.json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra_cdk.api_gateway_account import STACK_NAME as API_GATEWAY_ACCOUNT_STACK
from infra_cdk.api_gateway_account import ApiGatewayAccountStack
from infra_cdk.config import ConfigError, load_config
from infra_cdk.stack import SolarRagStack

__all__ = ["API_GATEWAY_ACCOUNT_STACK", "build_app"]

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def cdk_json_context() -> dict[str, object]:
    if not CDK_JSON.is_file():
        return {}
    context = json.loads(CDK_JSON.read_text(encoding="utf-8")).get("context", {})
    return dict(context) if isinstance(context, dict) else {}


def build_app(
    context: Mapping[str, object] | None = None,
    *,
    outdir: str | None = None,
    nag: bool | None = None,
) -> tuple[cdk.App, SolarRagStack]:
    """The app and its stack, configured from CDK context (``-c key=value`` or ``context``).

    cdk-nag's AwsSolutions pack runs as a validation plugin unless ``nag`` is False (or
    context ``nag=false``): synthesis fails on any unacknowledged finding.
    """
    # cdk.json's context (feature flags, defaults) also applies when the app is built outside
    # the CLI, e.g. in tests; context from the CLI (-c, cdk.json) takes precedence anyway.
    app = cdk.App(context={**cdk_json_context(), **(context or {})}, outdir=outdir)
    config = load_config(app.node.try_get_context)
    env = (
        cdk.Environment(account=config.account, region=config.region)
        if config.account or config.region
        else None
    )
    account_stack = ApiGatewayAccountStack(app, API_GATEWAY_ACCOUNT_STACK, env=env)
    stack = SolarRagStack(
        app,
        config.stack_name,
        config=config,
        env=env,
        description=f"solar-rag ({config.stage}): serverless RAG with Upstage Solar and OpenSearch",
    )
    stack.add_stack_dependency(account_stack, "API Gateway needs the account's CloudWatch Logs role")
    use_nag = nag if nag is not None else str(app.node.try_get_context("nag")).lower() != "false"
    if use_nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    try:
        app, _ = build_app()
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from exc
    app.synth()


if __name__ == "__main__":
    main()
