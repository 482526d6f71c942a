"""GitHub Actions → AWS trust: the OIDC provider and one deploy role per GitHub environment.

Deployed once per AWS account by hand (see docs/github-deploy.md), separately from the
application stack. Each role trusts exactly one environment's subject
(``repo:<owner>/<repo>:environment:<env>``), so a job without that environment (and its
protection rules: branch policy, reviewers) cannot assume it. A role can do almost nothing
by itself: it may only assume the CDK bootstrap roles (which perform the actual deployment)
and read API key values for the post-deploy smoke test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct, Node

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
DEFAULT_QUALIFIER = "hnb659fds"
DEFAULT_ENVIRONMENTS = ("dev", "prod")
# A first zone-aware OpenSearch domain takes 30-60 minutes; the CDK CLI's chained sessions
# of the bootstrap roles are refreshed from this one, so it must outlast the deploy job.
SESSION_DURATION = cdk.Duration.hours(2)

# Context keys read by GithubOidcConfig.from_context.
CTX_REPO = "github_repo"
CTX_PROVIDER_ARN = "github_oidc_provider_arn"
CTX_QUALIFIER = "@aws-cdk/core:bootstrapQualifier"  # the key the CDK synthesizer reads too
CTX_REINDEX_ROLES = "github_reindex_roles"
# The reindex workflow's role: no policy here; the application stack deployed with
# -c reindex_principal_arn=<it> attaches exactly what `rag reindex` needs. One hour: the
# workflow's job stops before (a longer run is dispatched again and resumes).
REINDEX_SESSION_DURATION = cdk.Duration.hours(1)

# owner/name, or the immutable form owner@<org id>/name@<repo id> that GitHub emits in the
# `sub` claim for repositories created from July 2026 (or opted in).
_REPO_RE = re.compile(
    r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))(?P<owner_id>@[0-9]+)?"
    r"/(?P<name>[A-Za-z0-9._-]{1,100})(?P<name_id>@[0-9]+)?$"
)
_QUALIFIER_RE = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._/-]{1,255}$")
_PROVIDER_ARN_RE = re.compile(
    rf"^arn:aws(?:-[a-z]+)*:iam::[0-9]{{12}}:oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$"
)


class GithubOidcConfigError(ValueError):
    """The CDK context for the GitHub OIDC stack is missing or invalid."""


@dataclass(frozen=True)
class GithubOidcConfig:
    repo: str
    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    provider_arn: str | None = None
    qualifier: str = DEFAULT_QUALIFIER
    reindex_roles: bool = False

    def __post_init__(self) -> None:
        match = _REPO_RE.match(self.repo)
        if match is None or match.group("name") in {".", ".."}:
            raise GithubOidcConfigError(
                f"{CTX_REPO}={self.repo!r} is not a GitHub repository: expected "
                "'<owner>/<repo>' (or the immutable form '<owner>@<org id>/<repo>@<repo id>'), "
                "without wildcards"
            )
        if (match.group("owner_id") is None) != (match.group("name_id") is None):
            raise GithubOidcConfigError(
                f"{CTX_REPO}={self.repo!r}: the immutable form needs both ids, "
                "'<owner>@<org id>/<repo>@<repo id>'"
            )
        if not self.environments:
            raise GithubOidcConfigError("at least one GitHub environment is required")
        for env in self.environments:
            if not _NAME_RE.match(env):
                raise GithubOidcConfigError(f"invalid GitHub environment name {env!r}")
        if not _QUALIFIER_RE.match(self.qualifier):
            raise GithubOidcConfigError(
                f"{CTX_QUALIFIER}={self.qualifier!r}: a CDK bootstrap qualifier is 1-10 "
                "letters, digits, '-' or '_'"
            )
        if self.provider_arn is not None and not _PROVIDER_ARN_RE.match(self.provider_arn):
            raise GithubOidcConfigError(
                f"{CTX_PROVIDER_ARN}={self.provider_arn!r} is not the ARN of an IAM OIDC "
                f"provider for {GITHUB_OIDC_HOST}"
            )

    @classmethod
    def from_context(cls, node: Node) -> GithubOidcConfig:
        repo = node.try_get_context(CTX_REPO)
        if not repo:
            raise GithubOidcConfigError(
                f"CDK context '{CTX_REPO}' is required: pass "
                f"-c {CTX_REPO}=<owner>/<repo> (the GitHub repository allowed to deploy)"
            )
        provider_arn = node.try_get_context(CTX_PROVIDER_ARN) or None
        qualifier = node.try_get_context(CTX_QUALIFIER) or DEFAULT_QUALIFIER
        reindex = node.try_get_context(CTX_REINDEX_ROLES)
        if reindex not in (None, True, False, "true", "false"):
            raise GithubOidcConfigError(f"{CTX_REINDEX_ROLES}={reindex!r}: true or false")
        return cls(
            repo=str(repo),
            provider_arn=None if provider_arn is None else str(provider_arn),
            qualifier=str(qualifier),
            reindex_roles=reindex in (True, "true"),
        )

    def subject(self, environment: str) -> str:
        """The exact `sub` claim of a job running in ``environment``."""
        return f"repo:{self.repo}:environment:{environment}"


class GithubOidcDeployRole(Construct):
    """The OIDC provider (created or imported) and one role per GitHub environment."""

    def __init__(self, scope: Construct, construct_id: str, *, config: GithubOidcConfig) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)

        self.provider: iam.IOidcProvider
        if config.provider_arn is None:
            self.provider = iam.OidcProviderNative(
                self, "Provider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE]
            )
        else:
            self.provider = iam.OidcProviderNative.from_oidc_provider_arn(
                self, "Provider", config.provider_arn
            )

        self.bootstrap_roles_arn = f"arn:{stack.partition}:iam::{stack.account}:role/cdk-{config.qualifier}-*"
        self.api_keys_arn = f"arn:{stack.partition}:apigateway:{stack.region}::/apikeys/*"
        self.roles = {
            env: self._role(f"Role{env.capitalize()}", config, env) for env in config.environments
        }
        self.reindex_roles = {
            env: iam.Role(
                self,
                f"ReindexRole{env.capitalize()}",
                assumed_by=self._principal(config, env),
                description=f"GitHub Actions `rag reindex` role for {config.repo}, environment "
                f"{env}: its policy comes from the application stack (reindex_principal_arn)",
                max_session_duration=REINDEX_SESSION_DURATION,
            )
            for env in (config.environments if config.reindex_roles else ())
        }

    def _principal(self, config: GithubOidcConfig, environment: str) -> iam.WebIdentityPrincipal:
        return iam.WebIdentityPrincipal(
            self.provider.oidc_provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": config.subject(environment),
                }
            },
        )

    def _role(self, construct_id: str, config: GithubOidcConfig, environment: str) -> iam.Role:
        principal = self._principal(config, environment)
        role = iam.Role(
            self,
            construct_id,
            assumed_by=principal,
            description=f"GitHub Actions deploy role for {config.repo}, environment {environment}",
            max_session_duration=SESSION_DURATION,
            inline_policies={
                "deploy": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(
                            sid="AssumeCdkBootstrapRoles",
                            actions=["sts:AssumeRole"],
                            resources=[self.bootstrap_roles_arn],
                        ),
                        iam.PolicyStatement(
                            sid="ReadApiKeyForSmokeTest",
                            actions=["apigateway:GET"],
                            resources=[self.api_keys_arn],
                        ),
                    ]
                )
            },
        )
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_nag_token(self.bootstrap_roles_arn)}]",
                reason=(
                    "The CDK bootstrap roles (deploy, file/image publishing, lookup) carry "
                    "account and region suffixes; the wildcard is limited to roles of this "
                    "bootstrap qualifier in this account, and only sts:AssumeRole is allowed."
                ),
            )
        )
        cdk.Validations.of(role).acknowledge(
            cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{_nag_token(self.api_keys_arn)}]",
                reason=(
                    "The API key id is only known after deployment; the smoke test reads the "
                    "key value with apigateway:GET (read-only), limited to API keys in this "
                    "region."
                ),
            )
        )
        return role


class GithubOidcStack(cdk.Stack):
    """One-time stack: GitHub OIDC trust for the deploy workflow (see docs/github-deploy.md)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: GithubOidcConfig,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=env,
            description=f"GitHub Actions OIDC deploy role for {config.repo}",
        )
        self.config = config
        self.deploy = GithubOidcDeployRole(self, "GithubDeploy", config=config)
        for environment, role in self.deploy.roles.items():
            cdk.CfnOutput(
                self,
                f"DeployRoleArn{environment.capitalize()}",
                value=role.role_arn,
                description=f"Set as AWS_DEPLOY_ROLE_ARN of the GitHub environment '{environment}'",
            )
        for environment, role in self.deploy.reindex_roles.items():
            cdk.CfnOutput(
                self,
                f"ReindexRoleArn{environment.capitalize()}",
                value=role.role_arn,
                description=f"Set as AWS_REINDEX_ROLE_ARN of the GitHub environment "
                f"'{environment}' (the deploy passes it as reindex_principal_arn)",
            )
        cdk.CfnOutput(
            self,
            "OidcProviderArn",
            value=self.deploy.provider.oidc_provider_arn,
            description=f"Reuse with -c {CTX_PROVIDER_ARN}=... in other stacks of this account",
        )


def _nag_token(arn: str) -> str:
    """Render an ARN the way cdk-nag names it in finding ids (pseudo parameters as <AWS::X>)."""
    return (
        arn.replace(cdk.Aws.PARTITION, "<AWS::Partition>")
        .replace(cdk.Aws.ACCOUNT_ID, "<AWS::AccountId>")
        .replace(cdk.Aws.REGION, "<AWS::Region>")
    )
