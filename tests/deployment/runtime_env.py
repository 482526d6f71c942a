"""The bare Python 3.12 environment the Lambda ``python3.12`` runtime gives a function.

Only the AWS SDK (boto3, botocore, s3transfer and their own dependencies) is installed: the
managed runtime provides exactly that, and everything else must come from the function's
code asset or its layers. Built once with the pyenv/system Python 3.12 (``venv
--without-pip``, no system site-packages) and cached under ``.cache/lambda-runtime-py312/``,
keyed by the pinned versions and the interpreter.

SDK version: AWS's "Building Lambda functions with Python" page
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html#python-sdk-included, section
"Runtime-included SDK versions") now says the version "depends on the runtime version and your
AWS Region" and shows how to print it from a function; the per-runtime table it listed for
``python3.12`` gave boto3 1.34.42 / botocore 1.34.42. That older figure is pinned on purpose:
code that works with it also works with the newer SDK a Region may have, while code that
needs a newer SDK than the runtime's fails here first. s3transfer 0.10.0 is the release
that boto3 1.34.42 shipped with.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "lambda-runtime-py312"
RUNTIME_SDK = ("boto3==1.34.42", "botocore==1.34.42", "s3transfer==0.10.0")
RECIPE = "1"  # bump when the way the environment is built changes
_MARKER = ".complete"


class RuntimeEnvError(RuntimeError):
    """No Python 3.12 or no uv: the bare runtime cannot be built."""


@dataclass(frozen=True)
class BareRuntime:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return self.root / "lib" / "python3.12" / "site-packages"


def base_python312() -> Path:
    """The interpreter to build from: never a virtualenv's (its site-packages would leak)."""
    candidates: list[Path] = []
    if sys.version_info[:2] == (3, 12):
        candidates.append(Path(sys.base_prefix) / "bin" / "python3.12")
    found = shutil.which("python3.12")
    if found:
        candidates.append(Path(found))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"))
    for candidate in candidates:
        probe = subprocess.run(
            [str(candidate), "-I", "-c",
             "import sys; assert sys.version_info[:2] == (3, 12) and sys.prefix == sys.base_prefix;"
             "print(sys.executable)"],
            capture_output=True, text=True, check=False, timeout=30,
        )
        if probe.returncode == 0:
            return Path(probe.stdout.strip())
    raise RuntimeEnvError("a Python 3.12 interpreter (not a virtualenv) is needed for the bare runtime")


def _uv(python: Path) -> list[str]:
    probe = subprocess.run([str(python), "-m", "uv", "--version"],
                           capture_output=True, check=False, timeout=60)
    if probe.returncode == 0:
        return [str(python), "-m", "uv"]
    found = shutil.which("uv")
    if found:
        return [found]
    raise RuntimeEnvError("uv is needed to build the bare runtime: pip install uv")


def _key(python: Path) -> str:
    version = subprocess.run([str(python), "-I", "-c", "import sys; print(sys.version)"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    digest = hashlib.sha256(f"{RECIPE}|{python}|{version}|{RUNTIME_SDK}".encode()).hexdigest()
    return digest[:16]


def bare_runtime(cache_dir: Path = CACHE_DIR) -> BareRuntime:
    """The cached environment, built on first use (~5 s with a warm uv cache)."""
    python = base_python312()
    final = cache_dir / _key(python)
    if (final / _MARKER).is_file():
        return BareRuntime(final)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f"tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    try:
        subprocess.run([str(python), "-I", "-m", "venv", "--without-pip", str(staging)],
                       check=True, capture_output=True, timeout=120, env=env)
        subprocess.run(
            [*_uv(python), "pip", "install", "--no-config", "--python", str(staging / "bin" / "python"),
             "--compile-bytecode", *RUNTIME_SDK],
            check=True, capture_output=True, timeout=600, env=env, cwd=cache_dir,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeEnvError(f"building the bare runtime failed: {exc.stderr!r}") from exc
    (staging / _MARKER).write_text("\n".join(RUNTIME_SDK) + "\n", encoding="utf-8")
    if final.exists():  # another session finished first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(final)
    return BareRuntime(final)
