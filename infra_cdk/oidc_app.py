"""CDK app for the one-time GitHub OIDC stack.

npx cdk deploy -a ".venv/bin/python -m infra_cdk.oidc_app" -c github_repo=<owner>/<repo>
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra_cdk.github_oidc import GithubOidcConfig, GithubOidcStack

STACK_NAME = "SolarRagGithubOidc"


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, GithubOidcStack]:
    """Build the app (tests pass an App with context); raises GithubOidcConfigError early."""
    app = app if app is not None else cdk.App()
    config = GithubOidcConfig.from_context(app.node)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEFAULT_REGION")
    env = cdk.Environment(account=account, region=region) if account and region else None
    stack = GithubOidcStack(app, STACK_NAME, config=config, env=env)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()
