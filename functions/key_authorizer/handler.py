"""API Gateway REQUEST authorizer: hands API Gateway the caller's API key from ``x-api-key`` or
``Authorization: Bearer <key>``, so OpenAI clients (which send the key as a bearer token)
work with the REST API's API keys and usage plans.

The REST API's ``apiKeySource`` is ``AUTHORIZER``: API Gateway still checks the returned
``usageIdentifierKey`` against the usage plan (an unknown key is a 403, throttling and quotas
apply as before). This function only extracts the key; it never logs it. Standard library
only, no layers: it runs on every request (results are not cached, see docs/deploy.md).
"""

from __future__ import annotations

from typing import Any


def api_key(headers: dict[str, str] | None) -> str | None:
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    key = (lowered.get("x-api-key") or "").strip()
    if key:
        return key
    scheme, _, token = (lowered.get("authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    key = api_key(event.get("headers"))
    if key is None:
        # The documented way to make API Gateway answer 401 Unauthorized.
        raise Exception("Unauthorized")
    return {
        "principalId": "api-key",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow",
                           "Resource": event["methodArn"]}],
        },
        "usageIdentifierKey": key,
    }
