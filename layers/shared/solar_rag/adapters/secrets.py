"""Secrets Manager through Powertools parameters: cached, with clear errors.

A ``SecretsProvider`` of our own (not the module-level ``get_secret``) so that its client has
explicit timeouts and retries; caching and ``max_age`` are Powertools' own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from solar_rag.adapters.aws_clients import client, error_code
from solar_rag.errors import NotConfigured, UpstreamError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_MAX_AGE_SECONDS = 300
_MISSING = {"ResourceNotFoundException"}
_DENIED = {"AccessDeniedException", "AccessDenied", "DecryptionFailure", "KMSAccessDeniedException",
           "UnrecognizedClientException", "InvalidRequestException"}


def _how_to_set(name: str) -> str:
    return f"`aws secretsmanager put-secret-value --secret-id {name} --secret-string <your Upstage key>`"


PLACEHOLDER_FIELD = "placeholder"
"""The stack creates the secret as ``{"placeholder": "<random>", ...}``: no key in the template."""
KEY_FIELDS = ("api_key", "UPSTAGE_API_KEY")


def _key_from(name: str, value: str) -> str:
    """The key itself, or the ``api_key`` field of a JSON secret; the placeholder is refused."""
    if not value.startswith("{"):
        return value
    try:
        document = json.loads(value)
    except ValueError:
        return value
    if not isinstance(document, dict):
        return value
    if PLACEHOLDER_FIELD in document:
        raise NotConfigured(f"the secret {name!r} (UPSTAGE_SECRET_ID) still holds the placeholder "
                            f"the stack created: set the Upstage key with {_how_to_set(name)}")
    for field in KEY_FIELDS:
        key = document.get(field)
        if isinstance(key, str) and key.strip():
            return key.strip()
    raise NotConfigured(f"the secret {name!r} (UPSTAGE_SECRET_ID) is JSON without an \"api_key\" "
                        f"field: store the key itself with {_how_to_set(name)}")


class SecretsManagerSource:
    def __init__(self, *, max_age: int = DEFAULT_MAX_AGE_SECONDS,
                 secrets_client: SecretsManagerClient | None = None) -> None:
        self._max_age = max_age
        self._client = secrets_client
        self._provider: SecretsProvider | None = None

    def _secrets(self) -> SecretsProvider:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=self._client or client("secretsmanager"))
        return self._provider

    def get(self, name: str) -> str:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            value = self._secrets().get(name, max_age=self._max_age)
        except GetParameterError as error:
            raise self._translate(name, error) from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        if not isinstance(value, str) or not value.strip():
            self.clear_cache()
            raise NotConfigured(f"the secret {name!r} (UPSTAGE_SECRET_ID) is empty: set it with "
                                f"{_how_to_set(name)}")
        try:
            return _key_from(name, value.strip())
        except NotConfigured:
            self.clear_cache()  # the operator is about to store the key: read it afresh
            raise

    def clear_cache(self) -> None:
        if self._provider is not None:
            self._provider.clear_cache()  # type: ignore[no-untyped-call]

    @staticmethod
    def _translate(name: str, error: Exception) -> Exception:
        # Powertools wraps the botocore error raised inside its ``except`` block: the original
        # is the implicit context. Its text is not repeated: callers see the code only.
        cause = error.__context__
        code = error_code(cause) if cause is not None else ""
        if code in _MISSING:
            return NotConfigured(f"the secret {name!r} (UPSTAGE_SECRET_ID) does not exist or has no "
                                 f"value: create it and set it with {_how_to_set(name)}")
        if code in _DENIED:
            return NotConfigured(f"this function may not read the secret {name!r} (UPSTAGE_SECRET_ID, "
                                 f"{code}): grant secretsmanager:GetSecretValue (and kms:Decrypt) on it")
        detail = code or (type(cause).__name__ if cause is not None else "unknown error")
        return UpstreamError(f"could not read the secret {name!r} from Secrets Manager ({detail}); "
                             "try again")
