"""The bare runtime holds what the python3.12 Lambda runtime holds, and nothing leaks into it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.deployment.runtime_env import RUNTIME_SDK, bare_runtime

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib.util, json, site, sys
print(json.dumps({
    "path": sys.path,
    "user_site": site.ENABLE_USER_SITE,
    "prefix": sys.prefix, "base_prefix": sys.base_prefix,
    "found": {name: importlib.util.find_spec(name) is not None
              for name in ("boto3", "botocore", "s3transfer", "fastapi", "pydantic", "solar_rag",
                           "aws_lambda_powertools", "moto", "pytest", "aws_xray_sdk")},
    "versions": {name: __import__(name).__version__ for name in ("boto3", "botocore", "s3transfer")},
}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    runtime = bare_runtime()
    result = subprocess.run([str(runtime.python), "-I", "-c", PROBE], env=env, capture_output=True,
                            text=True, check=True, timeout=60)
    probe: dict[str, object] = json.loads(result.stdout)
    return probe


def test_only_the_sdk_is_installed_and_pinned_to_the_runtime_version() -> None:
    probe = _probe({"PATH": "/usr/bin:/bin"})
    found = probe["found"]
    assert isinstance(found, dict)
    assert found["boto3"] and found["botocore"] and found["s3transfer"]
    for name in ("fastapi", "pydantic", "solar_rag", "aws_lambda_powertools", "moto", "pytest", "aws_xray_sdk"):
        assert found[name] is False, f"{name} leaked into the bare runtime"
    assert probe["versions"] == {spec.split("==")[0]: spec.split("==")[1] for spec in RUNTIME_SDK}


def test_nothing_of_the_project_environment_leaks_in() -> None:
    """Even with the developer's variables set, the isolated interpreter ignores them."""
    venv = REPO_ROOT / ".venv"
    hostile = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}:{REPO_ROOT / 'layers' / 'shared'}",
               "VIRTUAL_ENV": str(venv), "PYTHONUSERBASE": str(venv), "PYTHONHOME": ""}
    hostile.pop("PYTHONHOME")
    probe = _probe(hostile)
    path = probe["path"]
    assert isinstance(path, list)
    assert not [p for p in path if str(REPO_ROOT) in p and ".cache" not in p], path
    assert probe["user_site"] is False
    assert probe["prefix"] != probe["base_prefix"]  # a virtualenv of its own...
    assert not str(probe["base_prefix"]).startswith(str(venv))  # ...made from the base interpreter
    found = probe["found"]
    assert isinstance(found, dict) and found["solar_rag"] is False and found["fastapi"] is False
    site_packages = bare_runtime().site_packages
    assert not [p.name for p in site_packages.glob("*.pth") if p.name != "_virtualenv.pth"]
