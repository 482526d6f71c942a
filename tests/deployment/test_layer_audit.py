"""What the layers ship, checked in the bare runtime: imports, sources of dependencies, size.

Figures (2026-12-06, x86_64 dependency layer built from uv.lock): 75.1 MB unzipped / 26.8 MB
zipped, of which grpcio (19.0 MB), protobuf (2.4 MB) and opensearch-protobufs (0.4 MB) came
with opensearch-py 3 and are never imported; without them (``UNUSED_IN_LAMBDA`` in
``layers/build_layers.py``) 53.3 MB unzipped / 18.4 MB zipped.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from layers.build_layers import UNUSED_IN_LAMBDA
from tests.deployment.harness import Deployed
from tests.deployment.runtime_env import RUNTIME_SDK, bare_runtime

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_BUDGET_MB = 60.0
"""Unzipped dependency layer; measured 53.3 MB. Raise it on purpose, with the reason."""
RUNTIME_PROVIDED = {spec.split("==")[0] for spec in RUNTIME_SDK} | {"jmespath", "dateutil", "urllib3", "six"}
LOCAL_ONLY = {
    # module → (missing third-party package, why no Lambda path imports it)
    "solar_rag.adapters.local_store": ("numpy", "the embedded store of `rag serve` (dependency group "
                                                "`local`); every function of the stack runs VECTOR_STORE=opensearch"),
    "solar_rag.evaluation.client": ("httpx", "`rag eval`, a command run from a laptop or CI (group `local`)"),
}
LOCAL_ONLY_IMPORTS = {
    "numpy": "solar_rag.adapters.local_store (see LOCAL_ONLY)",
    "simsimd": "solar_rag.adapters.local_store (see LOCAL_ONLY): its int8 scan kernels",
    "httpx": "solar_rag.evaluation (see LOCAL_ONLY): `rag eval`'s HTTP client",
}
UNUSED_MODULES = ("grpc", "google.protobuf", "opensearch.protobufs")

WALK = """
import importlib, json, os, pkgutil, sys
sys.path[:0] = json.loads(sys.argv[1])
import solar_rag
failed, names = {}, []
def skip(name):
    failed.setdefault(name, "walk: " + repr(sys.exc_info()[1]))
for info in pkgutil.walk_packages(solar_rag.__path__, "solar_rag.", onerror=skip):
    names.append(info.name)
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed[info.name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"names": names, "failed": failed, "modules": sorted(sys.modules)}))
"""


def _layer_paths(deployed: Deployed) -> list[str]:
    layers = deployed.function("query").config.layer_dirs
    return [str(layer / "python") for layer in layers]


def _dependency_layer(deployed: Deployed) -> Path:
    [layer] = [p for p in deployed.function("query").config.layer_dirs if not (p / "python" / "solar_rag").is_dir()]
    return layer / "python"


def _walk(deployed: Deployed) -> dict[str, object]:
    result = subprocess.run(
        [str(bare_runtime().python), "-I", "-c", WALK, json.dumps(_layer_paths(deployed))],
        capture_output=True, text=True, check=True, timeout=300, cwd=deployed.workdir,
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": deployed.region, "HOME": str(deployed.workdir)},
    )
    walked: dict[str, object] = json.loads(result.stdout)
    return walked


def test_every_module_of_solar_rag_imports_in_the_bare_runtime(deployed: Deployed) -> None:
    walked = _walk(deployed)
    names = walked["names"]
    assert isinstance(names, list) and len(names) > 50
    failed = walked["failed"]
    assert isinstance(failed, dict)
    expected = {module: f"ModuleNotFoundError: No module named '{package}'"
                for module, (package, _) in LOCAL_ONLY.items()}
    assert failed == expected
    for config in (p.config for p in deployed.functions.values() if p.config.layer_dirs):
        assert config.environment.get("VECTOR_STORE") == "opensearch", config.logical_id
    modules = walked["modules"]
    assert isinstance(modules, list)
    assert not [m for m in modules if m.startswith(UNUSED_MODULES)]


def test_every_handler_imports_with_its_template_environment(deployed: Deployed) -> None:
    for process in deployed.functions.values():
        process.cold()
    deployed.set_secret()
    for process in deployed.functions.values():
        # The handler module is imported at init; a health check or a Delete is harmless.
        if process.config.code_name in ("opensearch_init", "opensearch_init_event"):
            [init] = list(deployed.custom_resources())
            deployed.custom_resource(init, "Delete")
        elif process.config.code_name == "indexer":
            deployed.http("GET", "/v1/documents")
        elif process.config.code_name == "key_authorizer":
            deployed.http("GET", "/v1/documents")  # each authorized method runs it first
        else:
            deployed.invoke(process.config.logical_id, _health_event(deployed))
        assert process.invocations[-1].error is None


def _health_event(deployed: Deployed) -> dict[str, object]:
    from tests.fakes import events

    return events.api_event("GET", "/v1/health", stage=deployed.stage_name)


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party names imported by the shipped code, outside ``if TYPE_CHECKING``."""
    found: dict[str, set[str]] = {}
    for root in (REPO_ROOT / "layers" / "shared" / "solar_rag", REPO_ROOT / "functions"):
        for path in root.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            type_checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                             and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
            for node in ast.walk(tree):
                if id(node) in type_checking:
                    continue
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
                         else [])
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "solar_rag":
                        found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_nothing_the_functions_import_comes_only_from_dev_dependencies(deployed: Deployed) -> None:
    layer = _dependency_layer(deployed)
    shipped = {p.name.split(".")[0] for p in layer.iterdir() if not p.name.endswith((".dist-info", "__pycache__"))}
    missing = {name: sorted(paths) for name, paths in _third_party_imports().items()
               if name not in shipped and name not in RUNTIME_PROVIDED and name not in LOCAL_ONLY_IMPORTS}
    assert not missing, f"imported by shipped code but in neither the layer nor the runtime: {missing}"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime_dependencies = " ".join(project["project"]["dependencies"]).lower()
    for name in LOCAL_ONLY_IMPORTS:
        assert name not in runtime_dependencies, f"{name} is a runtime dependency: it belongs in the layer"


def test_dependency_layer_stays_within_its_size_budget(deployed: Deployed) -> None:
    layer = _dependency_layer(deployed).parent
    unzipped = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file() and p.name != ".complete")
    assert unzipped / 1e6 <= LAYER_BUDGET_MB, f"dependency layer {unzipped / 1e6:.1f} MB > {LAYER_BUDGET_MB} MB"


def test_unused_packages_are_never_imported_by_shipped_code(deployed: Deployed) -> None:
    """grpcio/protobuf come with opensearch-py 3 (via opensearch-protobufs) for its optional
    gRPC transport; nothing in the layer outside those packages imports them, except
    Powertools' Kafka protobuf deserializer, which the functions do not use."""
    layer = _dependency_layer(deployed)
    own = {"grpc", "google", "opensearch"}
    users = []
    for path in layer.rglob("*.py"):
        if path.relative_to(layer).parts[0] in own:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "import grpc" in text or "from grpc" in text or "google.protobuf" in text or "opensearch.protobufs" in text:
            users.append(path.relative_to(layer).as_posix())
    assert users in ([], ["aws_lambda_powertools/utilities/kafka/deserializer/protobuf.py"]), users


def test_packages_unused_in_lambda_are_left_out_of_the_layer(deployed: Deployed) -> None:
    layer = _dependency_layer(deployed)
    assert {"grpcio", "protobuf", "opensearch-protobufs"} <= set(UNUSED_IN_LAMBDA)
    leftovers = [p.name for p in layer.iterdir()
                 if p.name in {"grpc", "google"} or p.name.startswith(("grpcio-", "protobuf-", "opensearch_protobufs-"))
                 or (p.name == "opensearch" and (p / "protobufs").exists())]
    assert not leftovers
    assert (layer / "opensearchpy").is_dir()


def test_layers_do_not_overlap(deployed: Deployed) -> None:
    """Lambda extracts the layers into one /opt, a later layer overwriting an earlier one's
    files; the harness puts each layer's python/ on sys.path in order instead. Both agree
    only while no file is in two layers (and no layer shadows the code asset)."""
    for process in deployed.functions.values():
        seen: dict[str, Path] = {}
        roots = [process.config.code_dir, *process.config.layer_dirs]
        for root in roots:
            base = root / "python" if root != process.config.code_dir else root
            for path in base.rglob("*"):
                if path.is_file() and "__pycache__" not in path.parts:
                    relative = path.relative_to(base).as_posix()
                    assert relative not in seen, f"{relative} is in {seen[relative]} and {root}"
                    seen[relative] = root
