"""A synthesized CDK app as the deployment tier sees it: template, assets, intrinsics.

``SynthJob`` runs the real CLI (``npx cdk synth``) as a user or the deploy workflow does;
``CloudAssembly`` reads the stack template and maps each Lambda ``Code``/``Content`` S3 key to
its ``asset.<hash>`` folder through the assets manifest. ``Resolver`` evaluates the intrinsic
functions CloudFormation would (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``,
``Fn::Select``, ``Fn::Split``) against values supplied for the resources the test created;
anything it cannot resolve raises, so a new reference in an environment variable fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SYNTH_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "CDK_DISABLE_CLI_TELEMETRY": "true",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "1",
}
# Pinned although the stack hardcodes x86_64 today: another branch makes arm64 the default.
BASE_CONTEXT = {"architecture": "x86_64"}


class SynthError(RuntimeError):
    pass


class Unresolved(KeyError):
    """An intrinsic refers to something the test environment does not provide."""


def synth_command(outdir: Path, context: Mapping[str, str]) -> list[str]:
    args = ["npx", "cdk", "synth", "-o", str(outdir), "--no-notices", "-q"]
    for key, value in {**BASE_CONTEXT, **context}.items():
        args += ["-c", f"{key}={value}"]
    return args


SYNTH_INPUTS = ("infra_cdk", "functions", "layers/shared", "layers/build_layers.py", "uv.lock", "cdk.json",
                "package-lock.json")
SYNTH_CACHE = REPO_ROOT / ".cache" / "cdk-synth"
_COMPLETE = ".complete"


def synth_key(context: Mapping[str, str], repo_root: Path = REPO_ROOT) -> str:
    """Hash of everything ``cdk synth`` reads (sources, locks, context, the environment variables
    the app or the CLI consult for account and region): equal keys, equal output."""
    environment = {k: os.environ.get(k) for k in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "AWS_REGION",
                                                  "AWS_DEFAULT_REGION", "AWS_PROFILE")}
    digest = hashlib.sha256(json.dumps([{**BASE_CONTEXT, **context}, environment], sort_keys=True).encode())
    for name in SYNTH_INPUTS:
        root = repo_root / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()
                                                      and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for path in files:
            digest.update(path.relative_to(repo_root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


class SynthJob:
    """``cdk synth`` for one context, reused from ``.cache/cdk-synth/`` when its inputs are
    unchanged (a fresh clone synthesizes, ≈20 s; several jobs can run at once)."""

    def __init__(self, name: str, context: Mapping[str, str], cache: Path = SYNTH_CACHE) -> None:
        self.outdir = cache / f"{name}-{synth_key(context)}"
        self._process: subprocess.Popen[bytes] | None = None
        if (self.outdir / _COMPLETE).is_file():
            return
        cache.mkdir(parents=True, exist_ok=True)
        for old in cache.glob(f"{name}-*"):
            shutil.rmtree(old, ignore_errors=True)
        self._staging = Path(tempfile.mkdtemp(prefix=f"{name}-tmp-", dir=cache))
        self._log = self._staging.with_suffix(".log")
        with open(self._log, "wb") as log:
            self._process = subprocess.Popen(synth_command(self._staging / "cdk.out", context), cwd=REPO_ROOT,
                                             env={**os.environ, **SYNTH_ENV}, stdout=log, stderr=subprocess.STDOUT)

    def result(self, timeout: float = 600) -> CloudAssembly:
        if self._process is not None:
            code = self._process.wait(timeout=timeout)
            self._process = None
            if code != 0:
                text = self._log.read_text(errors="replace")[-4000:]
                shutil.rmtree(self._staging, ignore_errors=True)
                raise SynthError(f"cdk synth failed ({code}):\n{text}")
            (self._staging / "cdk.out" / _COMPLETE).write_text("ok\n", encoding="utf-8")
            if (self.outdir / _COMPLETE).is_file():  # another session won
                shutil.rmtree(self._staging, ignore_errors=True)
            else:
                shutil.rmtree(self.outdir, ignore_errors=True)
                (self._staging / "cdk.out").rename(self.outdir)
                shutil.rmtree(self._staging, ignore_errors=True)
            self._log.unlink(missing_ok=True)
        return CloudAssembly.load(self.outdir)

    def cancel(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)


@dataclass(frozen=True)
class CloudAssembly:
    outdir: Path
    stack_name: str
    template: dict[str, Any]
    assets: Mapping[str, Path]
    """Asset object key (``<hash>.zip``) → its folder in ``cdk.out``."""

    @classmethod
    def load(cls, outdir: Path) -> CloudAssembly:
        manifest = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))
        # The stage's stack: the one with the functions (the account-wide API Gateway logging
        # stack beside it holds only a role and the account setting).
        stacks = []
        for name, artifact in manifest["artifacts"].items():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            found = json.loads((outdir / artifact["properties"]["templateFile"]).read_text(encoding="utf-8"))
            if any(r.get("Type") == "AWS::Lambda::Function" for r in found.get("Resources", {}).values()):
                stacks.append((name, artifact, found))
        if len(stacks) != 1:
            raise SynthError(f"expected one stack with functions in {outdir}, found {[n for n, *_ in stacks]}")
        name, artifact, template = stacks[0]
        assets: dict[str, Path] = {}
        for manifest_file in outdir.glob("*.assets.json"):
            files = json.loads(manifest_file.read_text(encoding="utf-8")).get("files", {})
            for entry in files.values():
                if entry["source"].get("packaging") != "zip":
                    continue
                for destination in entry["destinations"].values():
                    assets[destination["objectKey"]] = outdir / entry["source"]["path"]
        stack_name = artifact.get("properties", {}).get("stackName", name)
        return cls(outdir=outdir, stack_name=stack_name, template=template, assets=assets)

    @property
    def resources(self) -> Mapping[str, dict[str, Any]]:
        resources: Mapping[str, dict[str, Any]] = self.template["Resources"]
        return resources

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def asset_dir(self, code: Mapping[str, Any]) -> Path:
        key = code.get("S3Key")
        if not isinstance(key, str) or key not in self.assets:
            raise SynthError(f"no local asset for {code!r}")
        return self.assets[key]


@dataclass
class Resolver:
    """CloudFormation's intrinsic functions over supplied values.

    ``refs`` maps logical ids (and pseudo parameters) to their ``Ref`` value, ``attributes``
    maps ``(logical id, attribute)`` to ``Fn::GetAtt`` values; ``fallback`` may compute either
    on demand (return ``None`` for unknown).
    """

    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)
    fallback: Callable[[str, str | None], Any] | None = None

    def ref(self, name: str) -> Any:
        if name in self.refs:
            return self.refs[name]
        value = self.fallback(name, None) if self.fallback else None
        if value is None:
            raise Unresolved(f"Ref {name}")
        return value

    def get_att(self, name: str, attribute: str) -> Any:
        if (name, attribute) in self.attributes:
            return self.attributes[(name, attribute)]
        value = self.fallback(name, attribute) if self.fallback else None
        if value is None:
            raise Unresolved(f"Fn::GetAtt {name}.{attribute}")
        return value

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Join":
                separator, items = arg
                return str(separator).join(str(self(i)) for i in self(items))
            if key == "Fn::Select":
                index, items = arg
                return self(items)[int(self(index))]
            if key == "Fn::Split":
                separator, text = arg
                return str(self(text)).split(separator)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key.startswith("Fn::") or key == "Condition":
                raise Unresolved(f"{key} is not supported by the test resolver")
        return {k: self(v) for k, v in value.items()}

    def _sub(self, arg: str | Sequence[Any]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
