"""The Docker-free asset build: caching by input hash, layout, bytecode the Lambda can use."""

from __future__ import annotations

import marshal
import shutil
from pathlib import Path

import pytest

from layers import build_layers as bl

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A minimal copy of the repository: uv.lock, the shared package, two functions."""
    root = tmp_path / "repo"
    package = root / "layers" / "shared" / "solar_rag"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""pkg"""\nVALUE = 1\n')
    (package / "sub").mkdir()
    (package / "sub" / "mod.py").write_text("def f() -> int:\n    return 2\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "stale.cpython-312.pyc").write_bytes(b"junk")
    (root / "uv.lock").write_text("version = 1\n")
    handler = root / "functions" / "demo"
    handler.mkdir(parents=True)
    (handler / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (root / "functions" / "empty").mkdir()
    return root


def pyc_header(path: Path) -> tuple[int, object]:
    data = path.read_bytes()
    flags = int.from_bytes(data[4:8], "little")
    code = marshal.loads(data[16:])
    return flags, code.co_filename


def test_shared_layer_layout_and_unchecked_hash_bytecode(repo: Path, tmp_path: Path) -> None:
    artefact = bl.build_shared(repo, tmp_path / "build")
    python = artefact.path / "python" / "solar_rag"
    assert (python / "__init__.py").is_file() and (python / "sub" / "mod.py").is_file()
    assert not (python / "__pycache__" / "stale.cpython-312.pyc").exists()
    pyc = python / "sub" / "__pycache__" / "mod.cpython-312.pyc"
    flags, filename = pyc_header(pyc)
    # PEP 552: bit 0 = hash-based, bit 1 = check_source. CDK zips with mtime 1980-01-01,
    # so only unchecked hash-based .pyc files are used as they are in Lambda.
    assert flags == 0b01
    assert filename == "/opt/python/solar_rag/sub/mod.py"


def test_builds_are_cached_by_input_hash(repo: Path, tmp_path: Path) -> None:
    build_root = tmp_path / "build"
    first = bl.build_shared(repo, build_root)
    marker = first.path / "python" / "solar_rag" / "__init__.py"
    again = bl.build_shared(repo, build_root)
    assert again == first and marker.exists()
    (repo / "layers" / "shared" / "solar_rag" / "sub" / "mod.py").write_text("X = 3\n")
    changed = bl.build_shared(repo, build_root)
    assert changed.content_hash != first.content_hash
    assert not first.path.exists()  # the stale build was dropped
    assert [p.name for p in build_root.iterdir()] == [changed.path.name]


def test_hashes_ignore_bytecode_and_track_the_lock(repo: Path) -> None:
    shared = bl.shared_hash(repo)
    (repo / "layers" / "shared" / "solar_rag" / "__pycache__" / "x.pyc").write_bytes(b"1")
    assert bl.shared_hash(repo) == shared
    deps = bl.deps_hash(repo)
    (repo / "uv.lock").write_text("version = 2\n")
    assert bl.deps_hash(repo) != deps
    (repo / "uv.lock").unlink()
    with pytest.raises(bl.BuildError, match=r"uv\.lock"):
        bl.deps_hash(repo)


def test_dependency_hash_includes_the_platform(repo: Path) -> None:
    arm, x86 = bl.deps_hash(repo, architecture="arm64"), bl.deps_hash(repo, architecture="x86_64")
    assert arm != x86
    assert bl.deps_hash(repo) == arm  # arm64 (Graviton) by default
    with pytest.raises(bl.BuildError, match="unknown Lambda architecture 'aarch64'"):
        bl.deps_hash(repo, architecture="aarch64")


def test_function_asset(repo: Path, tmp_path: Path) -> None:
    artefact = bl.build_function("demo", repo, tmp_path / "build")
    assert (artefact.path / "handler.py").is_file()
    flags, filename = pyc_header(artefact.path / "__pycache__" / "handler.cpython-312.pyc")
    assert flags == 0b01 and filename == "/var/task/handler.py"
    empty = bl.build_function("empty", repo, tmp_path / "build")
    assert (empty.path / "MISSING_HANDLER.txt").is_file()
    with pytest.raises(bl.BuildError):
        bl.build_function("absent", repo, tmp_path / "build")


@pytest.mark.parametrize(("architecture", "machine"), [("x86_64", "x86_64"), ("arm64", "aarch64")])
def test_dependency_layer_from_the_real_lock(architecture: str, machine: str) -> None:
    """Built once per architecture into layers/build (cached afterwards; synths use it)."""
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    artefact = bl.build_deps(architecture=architecture)
    assert artefact.path.name.startswith(f"deps-{architecture}-")
    python = artefact.path / "python"
    for package in ("openai", "opensearchpy", "pydantic", "aws_lambda_powertools", "fastapi"):
        assert (python / package).is_dir(), package
    for excluded in ("boto3", "botocore", "s3transfer", "grpc", "google"):
        assert not (python / excluded).exists(), excluded
    assert not (python / "bin").exists()
    assert (python / "pydantic_core").is_dir()
    extensions = [p.name for p in (python / "pydantic_core").iterdir() if p.name.endswith(".so")]
    assert extensions and all(name.endswith(f"{machine}-linux-gnu.so") for name in extensions)
    lock = (artefact.path / "requirements.lock.txt").read_text()
    pins = {line.split("==")[0] for line in lock.splitlines() if "==" in line}
    assert "openai" in pins and not pins & {"boto3", "botocore", "s3transfer"}
    assert not pins & set(bl.UNUSED_IN_LAMBDA)
    flags, filename = pyc_header(next((python / "openai" / "__pycache__").glob("__init__.cpython-312.pyc")))
    assert flags == 0b01 and filename == "/opt/python/openai/__init__.py"
