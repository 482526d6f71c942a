"""The Secrets Manager secret holding the Upstage API key."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.nag import acknowledge


class UpstageSecret(Construct):
    """Created with a random placeholder: the key itself never appears in the template.

    Set the real key after the first deploy::

        aws secretsmanager put-secret-value --secret-id <name> --secret-string '<key>'
    """

    def __init__(self, scope: Construct, construct_id: str, *, prefix: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=f"{prefix}/upstage-api-key",
            description=(
                "Upstage API key used by the solar-rag functions. Created with a placeholder; "
                "set the real key with `aws secretsmanager put-secret-value`."
            ),
            # A JSON placeholder the functions recognise: until the real key is stored they
            # answer 503 "still holds the placeholder", not a confusing upstream 401.
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps(
                    {"note": "placeholder: store the Upstage API key with put-secret-value"}
                ),
                generate_string_key="placeholder",
                exclude_punctuation=True,
                password_length=32,
            ),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        acknowledge(
            self.secret,
            "AwsSolutions-SMG4",
            (
                "Third-party API key issued by Upstage: AWS cannot rotate it. Rotate it in "
                "the Upstage console and store the new value with put-secret-value."
            ),
        )

    @property
    def secret_name(self) -> str:
        return self.secret.secret_name

    def grant_read(self, role: iam.IRole) -> None:
        self.secret.grant_read(role)
