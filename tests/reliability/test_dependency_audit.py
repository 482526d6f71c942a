"""No known-vulnerable runtime dependency (issue 8.5): pip-audit over the locked runtime set.

``uv export --frozen --no-default-groups`` gives exactly what the Lambda layer ships (pinned by
uv.lock); pip-audit checks each pin against PyPI's vulnerability data (OSV-backed).

This test needs the internet (PyPI's JSON API), so it runs only in CI (``CI`` is set, as on
GitHub Actions) or with ``RAG_DEPENDENCY_AUDIT=1``. When the vulnerability data cannot be
reached (no pin could be audited) it skips and says why, rather than passing silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.conftest import Recorder

ROOT = Path(__file__).resolve().parents[2]
PIP_AUDIT = ROOT / ".venv" / "bin" / "pip-audit"
ENABLED = bool(os.environ.get("CI")) or os.environ.get("RAG_DEPENDENCY_AUDIT") == "1"

pytestmark = pytest.mark.skipif(
    not ENABLED, reason="needs the internet: runs in CI or with RAG_DEPENDENCY_AUDIT=1")


def test_runtime_dependencies_have_no_known_vulnerability(tmp_path: Path, figures: Recorder) -> None:
    uv = shutil.which("uv")
    if uv is None or not PIP_AUDIT.exists():
        pytest.skip("uv or .venv/bin/pip-audit is missing")
    requirements = tmp_path / "runtime-requirements.txt"
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-default-groups", "--no-hashes", "--no-emit-project",
         "--output-file", str(requirements)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=os.environ | {"UV_PYTHON_DOWNLOADS": "never"}, check=False)
    assert exported.returncode == 0, exported.stderr
    pins = [line for line in requirements.read_text().splitlines() if "==" in line]
    assert pins, "uv export produced no pinned requirement"

    report = tmp_path / "audit.json"
    audited = subprocess.run(
        [str(PIP_AUDIT), "-r", str(requirements), "--disable-pip", "--no-deps",
         "--vulnerability-service", "pypi", "--progress-spinner", "off", "--timeout", "30",
         "--format", "json", "--output", str(report)],
        capture_output=True, text=True, timeout=600, check=False)
    if not report.exists():
        pytest.skip(f"pip-audit produced no report: {audited.stderr.strip()[-500:]}")
    dependencies = json.loads(report.read_text())["dependencies"]
    skipped = {d["name"]: d["skip_reason"] for d in dependencies if "skip_reason" in d}
    checked = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in checked if d.get("vulns")}
    figures(pins=len(pins), audited=len(checked), not_audited=len(skipped),
            vulnerable=vulnerable)
    if not checked:
        reason = next(iter(skipped.values()), "no data")
        pytest.skip(f"no dependency could be audited (vulnerability data unreachable): {reason}")
    assert not vulnerable, f"known-vulnerable runtime dependencies: {vulnerable}"
    assert audited.returncode == 0, audited.stderr[-2000:]
