from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import pytest

HANDLER = Path(__file__).resolve().parents[2] / "functions" / "key_authorizer" / "handler.py"
ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/POST/v1/chat/completions"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("key_authorizer_handler", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


authorizer = _module()


@pytest.mark.parametrize(("headers", "key"), [
    ({"x-api-key": "k1"}, "k1"),
    ({"X-Api-Key": " k1 "}, "k1"),
    ({"Authorization": "Bearer sk-abc"}, "sk-abc"),
    ({"authorization": "bearer   sk-abc  "}, "sk-abc"),
    ({"x-api-key": "k1", "Authorization": "Bearer other"}, "k1"),  # x-api-key wins, as before
])
def test_the_key_comes_from_either_header(headers: dict[str, str], key: str) -> None:
    answer = authorizer.handler({"headers": headers, "methodArn": ARN}, None)
    assert answer["usageIdentifierKey"] == key
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}


@pytest.mark.parametrize("headers", [None, {}, {"x-api-key": "  "}, {"Authorization": "Basic dXNlcjpwdw=="},
                                     {"Authorization": "Bearer"}, {"Authorization": "Bearer   "}])
def test_no_key_is_unauthorized(headers: dict[str, str] | None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler({"headers": headers, "methodArn": ARN}, None)
    assert caplog.records == []
