"""`.github/workflows/reindex.yml`: the one-off `rag reindex` of a deployed stage, with the
OIDC role pattern of deploy.yml (docs/deploy.md, "Re-embedding")."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load("reindex.yml")


@pytest.fixture(scope="module")
def job(workflow: dict[str, Any]) -> dict[str, Any]:
    (only,) = workflow["jobs"].values()
    return dict(only)


def step(job: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if s.get("name") == name]
    return dict(found)


def test_on_demand_only_with_a_stage_choice(workflow: dict[str, Any]) -> None:
    raw: dict[Any, Any] = workflow
    triggers: dict[str, Any] = raw["on"] if "on" in raw else raw[True]  # PyYAML: `on` is True
    assert set(triggers) == {"workflow_dispatch"}
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["stage"]["options"] == ["dev", "prod"]
    assert inputs["action"]["options"] == ["reindex", "status", "rollback"]
    assert inputs["action"]["default"] == "status"  # dispatching by mistake changes nothing


def test_the_environment_role_through_oidc_like_deploy(job: dict[str, Any],
                                                       workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert job["environment"] == {"name": "${{ inputs.stage }}"}
    (aws,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(CONFIGURE_AWS + "@")]
    deploy_uses = {s["uses"] for j in load("deploy.yml")["jobs"].values()
                   for s in j.get("steps", []) if str(s.get("uses", "")).startswith(CONFIGURE_AWS)}
    assert deploy_uses == {aws["uses"]}  # the same pinned action as the deploy
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_REINDEX_ROLE_ARN }}"
    assert aws["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(aws["with"])
    # the job ends before its session: a killed run is dispatched again and resumes
    assert job["timeout-minutes"] * 60 < aws["with"]["role-duration-seconds"] <= 3600
    steps = job["steps"]
    assert steps.index(aws) < steps.index(step(job, "rag reindex"))


def test_one_run_per_stage_at_a_time(workflow: dict[str, Any]) -> None:
    assert workflow["concurrency"] == {"group": "reindex-${{ inputs.stage }}",
                                       "cancel-in-progress": False}


def test_inputs_never_reach_a_script_unquoted(job: dict[str, Any]) -> None:
    """Inputs pass through env (no `${{ inputs.* }}` expanded inside a script)."""
    for each in job["steps"]:
        assert not re.search(r"\$\{\{\s*(inputs|github\.event)\.", each.get("run", "")), each


def test_runs_the_command_with_the_stack_outputs(job: dict[str, Any]) -> None:
    names = step(job, "The stack's names (output ReindexEnvironment)")["run"]
    assert "OutputKey=='ReindexEnvironment'" in names and '"SolarRag-$STAGE"' in names
    assert ">> \"$GITHUB_ENV\"" in names
    run = step(job, "rag reindex")
    for command in (".venv/bin/rag reindex --status", ".venv/bin/rag reindex --rollback",
                    ".venv/bin/rag reindex --force", ".venv/bin/rag reindex;"):
        assert command in run["run"]
    assert run["env"]["RAG_DATA_DIR"].startswith("${{ runner.temp }}")


def test_the_deploy_keeps_granting_the_same_role(job: dict[str, Any]) -> None:
    """A deploy from CI passes the environment's reindex role to the stack, so the role the
    reindex workflow assumes keeps its grants across deploys."""
    for deploy_job in ("deploy-dev", "deploy-prod"):
        (deploy,) = [s for s in load("deploy.yml")["jobs"][deploy_job]["steps"]
                     if s.get("name") == "Deploy"]
        assert deploy["env"] == {"SOLAR_RAG_REINDEX_PRINCIPAL_ARN": "${{ vars.AWS_REINDEX_ROLE_ARN }}"}
