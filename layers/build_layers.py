"""Docker-free build of the Lambda layers and function assets.

Three kinds of artefacts, each cached under ``layers/build/<kind>-<hash>/`` and rebuilt only
when its inputs change:

- ``deps-<architecture>``: third-party runtime dependencies exported from ``uv.lock`` (no
  dev/cdk groups), installed as manylinux wheels for the Lambda's CPU (``arm64`` →
  ``aarch64-manylinux2014``, ``x86_64`` → ``x86_64-manylinux2014``) and CPython 3.12 into
  ``python/``;
- ``shared``: the ``solar_rag`` package (``layers/shared/solar_rag``) under ``python/``;
- ``function-<name>``: the ``functions/<name>/`` directory (the handler module).

Every artefact ships bytecode compiled with ``unchecked-hash`` invalidation. The CDK CLI zips
assets with every file's mtime reset to 1980-01-01, so timestamp-based ``.pyc`` files would
never match their sources in Lambda and would be recompiled (and fail to be written, the
filesystem being read-only) on every cold start. Hash-based unchecked ``.pyc`` files are used
as they are.

Standard library only: runs from the CDK app (``infra_cdk``), CI and the command line::

    python layers/build_layers.py [--architecture arm64|x86_64] [--force] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR_NAME = Path("layers") / "build"
SHARED_PACKAGE = Path("layers") / "shared" / "solar_rag"
FUNCTIONS_DIR = Path("functions")

LAMBDA_PYTHON = "3.12"
# Lambda architecture → the platform uv installs wheels for.
PYTHON_PLATFORMS = {"arm64": "aarch64-manylinux2014", "x86_64": "x86_64-manylinux2014"}
DEFAULT_ARCHITECTURE = "arm64"
# In the Lambda Python runtime already; keeping them out of the layer saves ~32 MB unzipped.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
# Locked (pulled in by a runtime dependency) but never imported by the functions: left out of
# the layer. opensearch-py 3 requires opensearch-protobufs (and through it grpcio and protobuf)
# for its optional gRPC transport; the functions use its HTTP client only. Measured: 21.8 MB of
# the 75.1 MB layer. tests/deployment/test_layer_audit.py checks that no shipped module imports
# them and that the functions run without them.
UNUSED_IN_LAMBDA = {
    "opensearch-protobufs": "opensearch-py's gRPC transport (unused: HTTP client only)",
    "grpcio": "only required by opensearch-protobufs",
    "protobuf": "only required by opensearch-protobufs",
}
# Bump to invalidate every cached artefact when the build recipe itself changes.
RECIPE_VERSION = "3"

_IGNORED_NAMES = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_IGNORED_SUFFIXES = (".pyc", ".pyo")
_COMPLETE_MARKER = ".complete"
_DEPS_TRIM_DIRS = ("bin",)


class BuildError(RuntimeError):
    """The build could not produce an artefact (missing tool, failed install, wrong Python)."""


@dataclass(frozen=True)
class Artefact:
    """A built asset directory and the hash of the inputs it was built from."""

    kind: str
    path: Path
    content_hash: str


@dataclass(frozen=True)
class Size:
    unzipped_bytes: int
    zipped_bytes: int


# ---------------------------------------------------------------- hashing


def _source_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_NAMES)
        for name in sorted(filenames):
            if not name.endswith(_IGNORED_SUFFIXES):
                files.append(Path(dirpath) / name)
    return files


def _hash(parts: Iterable[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    digest.update(f"recipe={RECIPE_VERSION};python={LAMBDA_PYTHON};".encode())
    for label, data in parts:
        digest.update(label.encode())
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def _tree_parts(root: Path) -> Iterable[tuple[str, bytes]]:
    for path in _source_files(root):
        yield path.relative_to(root).as_posix(), path.read_bytes()


def python_platform(architecture: str) -> str:
    try:
        return PYTHON_PLATFORMS[architecture]
    except KeyError:
        raise BuildError(
            f"unknown Lambda architecture {architecture!r}: expected one of {sorted(PYTHON_PLATFORMS)}"
        ) from None


def deps_hash(repo_root: Path = REPO_ROOT, *, architecture: str = DEFAULT_ARCHITECTURE) -> str:
    lock = repo_root / "uv.lock"
    if not lock.is_file():
        raise BuildError(f"{lock} is missing: the dependency layer is built from the lock file")
    return _hash(
        [
            ("uv.lock", lock.read_bytes()),
            ("platform", python_platform(architecture).encode()),
            ("excluded", ",".join((*RUNTIME_PROVIDED, *sorted(UNUSED_IN_LAMBDA))).encode()),
        ]
    )


def shared_hash(repo_root: Path = REPO_ROOT) -> str:
    return _hash(_tree_parts(repo_root / SHARED_PACKAGE))


def function_hash(name: str, repo_root: Path = REPO_ROOT) -> str:
    return _hash([("name", name.encode()), *_tree_parts(repo_root / FUNCTIONS_DIR / name)])


# ---------------------------------------------------------------- building blocks


def python312() -> str:
    """An interpreter of the Lambda's minor version, to compile matching bytecode."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == LAMBDA_PYTHON:
        return sys.executable
    found = shutil.which(f"python{LAMBDA_PYTHON}")
    if found is None:
        raise BuildError(f"python{LAMBDA_PYTHON} is needed to compile bytecode for the Lambda")
    return found


def uv_command() -> list[str]:
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False, timeout=60
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    raise BuildError("uv is needed to build the dependency layer: pip install uv")


def _run(argv: Sequence[str], *, cwd: Path, timeout: float) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    result = subprocess.run(  # noqa: S603 - argv built from constants and paths
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=timeout
    )
    if result.returncode != 0:
        raise BuildError(f"command failed ({result.returncode}): {' '.join(argv)}\n{result.stderr[-4000:]}")


def compile_tree(root: Path, *, runtime_prefix: str) -> None:
    """Compile every module under ``root`` to unchecked-hash ``.pyc`` for Python 3.12.

    ``runtime_prefix`` replaces ``root`` in the recorded file names so tracebacks show the
    paths the modules have in Lambda (``/opt/python/...`` or ``/var/task/...``).
    """
    script = (
        "import compileall, py_compile, sys\n"
        "ok = compileall.compile_dir(sys.argv[1], quiet=1, workers=0, stripdir=sys.argv[1],\n"
        "    prependdir=sys.argv[2],\n"
        "    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
        "sys.exit(0 if ok else 1)\n"
    )
    # Always in a child process: compileall's worker pool re-imports ``__main__``, which
    # breaks when the caller is the CDK app, a REPL or a test runner.
    interpreter = python312()
    _run([interpreter, "-c", script, str(root), runtime_prefix], cwd=root, timeout=600)


def _copy_sources(src: Path, dst: Path) -> None:
    shutil.copytree(
        src,
        dst,
        ignore=lambda _dir, names: [n for n in names if n in _IGNORED_NAMES or n.endswith(_IGNORED_SUFFIXES)],
        dirs_exist_ok=True,
    )


def _cached(build_root: Path, kind: str, content_hash: str) -> Path:
    return build_root / f"{kind}-{content_hash[:16]}"


def _publish(build_root: Path, kind: str, content_hash: str, staging: Path) -> Path:
    """Move a finished staging directory into the cache and drop older builds of ``kind``."""
    (staging / _COMPLETE_MARKER).write_text(content_hash + "\n", encoding="utf-8")
    final = _cached(build_root, kind, content_hash)
    if final.exists():  # another process won the race with the same inputs
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(final)
    for old in build_root.glob(f"{kind}-*"):
        if old != final and old.is_dir() and not old.name.startswith(f"{kind}-tmp"):
            shutil.rmtree(old, ignore_errors=True)
    return final


def _build(
    kind: str,
    content_hash: str,
    build_root: Path,
    force: bool,
    fill: Callable[[Path], None],
) -> Artefact:
    final = _cached(build_root, kind, content_hash)
    if not force and (final / _COMPLETE_MARKER).is_file():
        return Artefact(kind, final, content_hash)
    build_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{kind}-tmp", dir=build_root))
    try:
        fill(staging)
        if force and final.exists():
            shutil.rmtree(final)
        return Artefact(kind, _publish(build_root, kind, content_hash, staging), content_hash)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ---------------------------------------------------------------- artefacts


def build_deps(
    repo_root: Path = REPO_ROOT,
    build_root: Path | None = None,
    *,
    force: bool = False,
    architecture: str = DEFAULT_ARCHITECTURE,
) -> Artefact:
    """Third-party runtime dependencies from ``uv.lock`` for one Lambda architecture."""
    root = build_root or repo_root / BUILD_DIR_NAME
    platform = python_platform(architecture)

    def fill(staging: Path) -> None:
        requirements = staging / "requirements.txt"
        uv = uv_command()
        excluded = [arg for name in (*RUNTIME_PROVIDED, *sorted(UNUSED_IN_LAMBDA))
                    for arg in ("--no-emit-package", name)]
        _run(
            [
                *uv,
                "export",
                "--frozen",
                "--no-default-groups",
                "--no-hashes",
                "--no-emit-project",
                "--no-header",
                *excluded,
                "-o",
                str(requirements),
            ],
            cwd=repo_root,
            timeout=300,
        )
        target = staging / "python"
        _run(
            [
                *uv,
                "pip",
                "install",
                "--no-deps",
                "--no-config",
                "--target",
                str(target),
                "--python-platform",
                platform,
                "--python-version",
                LAMBDA_PYTHON,
                "--only-binary",
                ":all:",
                "-r",
                str(requirements),
            ],
            cwd=repo_root,
            timeout=900,
        )
        for name in _DEPS_TRIM_DIRS:
            shutil.rmtree(target / name, ignore_errors=True)
        requirements.rename(staging / "requirements.lock.txt")
        compile_tree(target, runtime_prefix="/opt/python")

    # One cache entry per architecture: building one must not evict the other.
    kind = f"deps-{architecture}"
    return _build(kind, deps_hash(repo_root, architecture=architecture), root, force, fill)


def build_shared(
    repo_root: Path = REPO_ROOT, build_root: Path | None = None, *, force: bool = False
) -> Artefact:
    """The ``solar_rag`` package as ``python/solar_rag`` (layer layout)."""
    root = build_root or repo_root / BUILD_DIR_NAME
    source = repo_root / SHARED_PACKAGE
    if not (source / "__init__.py").is_file():
        raise BuildError(f"{source} is not a package")

    def fill(staging: Path) -> None:
        _copy_sources(source, staging / "python" / "solar_rag")
        compile_tree(staging / "python", runtime_prefix="/opt/python")

    return _build("shared", shared_hash(repo_root), root, force, fill)


def build_function(
    name: str,
    repo_root: Path = REPO_ROOT,
    build_root: Path | None = None,
    *,
    force: bool = False,
) -> Artefact:
    """``functions/<name>/`` as a Lambda code asset (handler module at the root).

    Builds whatever the directory holds; the CDK construct warns when ``handler.py`` is absent.
    """
    root = build_root or repo_root / BUILD_DIR_NAME
    source = repo_root / FUNCTIONS_DIR / name
    if not source.is_dir():
        raise BuildError(f"{source} is missing")

    def fill(staging: Path) -> None:
        _copy_sources(source, staging)
        if not (staging / "handler.py").is_file():
            # CDK refuses an empty asset; the CDK app also warns about the missing handler.
            (staging / "MISSING_HANDLER.txt").write_text(
                f"functions/{name}/handler.py did not exist when this asset was built.\n",
                encoding="utf-8",
            )
        compile_tree(staging, runtime_prefix="/var/task")

    return _build(f"function-{name}", function_hash(name, repo_root), root, force, fill)


# ---------------------------------------------------------------- measuring


def measure(path: Path) -> Size:
    """Unzipped size and the size of a deflate zip (as the CDK CLI uploads it)."""
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name != _COMPLETE_MARKER]
    unzipped = sum(p.stat().st_size for p in files)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "asset.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in files:
                zf.write(p, p.relative_to(path).as_posix())
        zipped = archive.stat().st_size
    return Size(unzipped, zipped)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--json", action="store_true", help="print sizes as JSON")
    parser.add_argument("--functions", nargs="*",
                        default=["chat", "query", "stream", "indexer", "opensearch_init",
                                 "opensearch_init_event", "key_authorizer"])
    parser.add_argument("--architecture", choices=sorted(PYTHON_PLATFORMS), default=DEFAULT_ARCHITECTURE)
    args = parser.parse_args(argv)
    artefacts = [
        build_deps(force=args.force, architecture=args.architecture),
        build_shared(force=args.force),
    ]
    artefacts += [
        build_function(name, force=args.force)
        for name in args.functions
        if (REPO_ROOT / FUNCTIONS_DIR / name / "handler.py").is_file()
    ]
    report = {}
    for artefact in artefacts:
        size = measure(artefact.path)
        report[artefact.kind] = {
            "path": str(artefact.path.relative_to(REPO_ROOT)),
            "unzipped_mb": round(size.unzipped_bytes / 1e6, 1),
            "zipped_mb": round(size.zipped_bytes / 1e6, 1),
        }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for kind, info in report.items():
            print(f"{kind:28} {info['unzipped_mb']:7.1f} MB unzipped {info['zipped_mb']:6.1f} MB zipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
