"""Re-extract the pinned subset of OpenSearch's API specification the tests judge requests by.

The source is opensearch-project/opensearch-api-specification (Apache-2.0): one OpenAPI 3.1
YAML file per namespace under ``spec/namespaces`` and shared schemas under ``spec/schemas``,
linked by relative ``$ref``s. This script keeps only the operation groups the adapter and its
tests use, inlines their parameters and request bodies, renames every schema to
``<file stem>___<Name>`` (the naming of the project's own bundled build), keeps the schemas
reachable from them and writes one JSON file. Only maintainers run it (it needs PyYAML and a
copy of the repository); the tests read the JSON with the standard library.

    python -m tests.opensearch_spec.extract --git-dir /path/to/opensearch-api-specification.git
    python -m tests.opensearch_spec.extract --checkout /path/to/checkout

Then update ``SOURCE.md`` (commit, date) and run the OpenSearch tests.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
OUTPUT = HERE / "spec" / "opensearch-openapi.subset.json"
REPOSITORY = "https://github.com/opensearch-project/opensearch-api-specification"

OPERATION_GROUPS = (
    "info",
    "bulk",
    "search",
    "msearch",
    "count",
    "get",
    "delete_by_query",
    "indices.create",
    "indices.delete",
    "indices.exists",
    "indices.get",
    "indices.get_mapping",
    "indices.put_mapping",
    "indices.get_settings",
    "indices.get_alias",
    "indices.put_alias",
    "indices.update_aliases",
    "indices.refresh",
    "search_pipeline.get",
    "search_pipeline.put",
    "search_pipeline.delete",
)
"""What the adapter sends, plus what the OpenSearch tests send to the stub directly."""

Reader = Callable[[str], Any]


def git_reader(git_dir: Path, commit: str) -> Reader:
    import yaml

    def read(path: str) -> Any:
        text = subprocess.run(
            ["git", f"--git-dir={git_dir}", "show", f"{commit}:{path}"],
            check=True, capture_output=True, text=True,
        ).stdout
        return yaml.safe_load(text)

    return read


def checkout_reader(root: Path) -> Reader:
    import yaml

    def read(path: str) -> Any:
        return yaml.safe_load((root / path).read_text(encoding="utf-8"))

    return read


def schema_key(file_stem: str, name: str) -> str:
    return f"{file_stem}___{name}"


class Bundler:
    def __init__(self, read: Reader) -> None:
        self.read = read
        self.files: dict[str, Any] = {}
        self.schemas: dict[str, Any] = {}

    def load(self, path: str) -> Any:
        if path not in self.files:
            self.files[path] = self.read(path)
        return self.files[path]

    def rewrite(self, node: Any, current: str) -> Any:
        """Copy ``node`` (from file ``current``), pointing every schema ``$ref`` into the bundle
        and queueing the schemas it needs."""
        if isinstance(node, list):
            return [self.rewrite(item, current) for item in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out[key] = self.schema_ref(value, current)
            else:
                out[key] = self.rewrite(value, current)
        return out

    def schema_ref(self, ref: str, current: str) -> str:
        target, _, pointer = ref.partition("#")
        path = current if not target else _normalise(str(Path(current).parent / target))
        prefix = "/components/schemas/"
        if not pointer.startswith(prefix):
            raise ValueError(f"unexpected $ref {ref!r} in {current}")
        name = pointer[len(prefix):]
        key = schema_key(Path(path).stem, name)
        if key not in self.schemas:
            self.schemas[key] = None  # placeholder against cycles
            self.schemas[key] = self.rewrite(self.load(path)["components"]["schemas"][name], path)
        return f"#/components/schemas/{key}"

    def component(self, ref: str, current: str, kind: str) -> tuple[Any, str]:
        """A ``#/components/<kind>/<name>`` of a namespace file (or a global parameter file)."""
        target, _, pointer = ref.partition("#")
        path = current if not target else _normalise(str(Path(current).parent / target))
        name = pointer.split("/")[-1]
        return self.load(path)["components"][kind][name], path


def _normalise(path: str) -> str:
    parts: list[str] = []
    for part in Path(path).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def extract(read: Reader, commit: str, date: str) -> dict[str, Any]:
    bundler = Bundler(read)
    namespaces = sorted({"spec/namespaces/_core.yaml"} | {
        f"spec/namespaces/{group.split('.')[0]}.yaml" for group in OPERATION_GROUPS if "." in group
    })
    paths: dict[str, dict[str, Any]] = {}
    found: set[str] = set()
    for namespace in namespaces:
        document = bundler.load(namespace)
        for path, item in document["paths"].items():
            for method, operation in item.items():
                group = operation.get("x-operation-group")
                if group not in OPERATION_GROUPS:
                    continue
                found.add(group)
                parameters = []
                for reference in operation.get("parameters", []):
                    parameter, origin = bundler.component(reference["$ref"], namespace, "parameters")
                    parameters.append(bundler.rewrite(parameter, origin))
                entry: dict[str, Any] = {
                    "operationId": operation["operationId"],
                    "x-operation-group": group,
                    "parameters": parameters,
                }
                for extra in ("x-version-added", "x-version-deprecated", "deprecated"):
                    if extra in operation:
                        entry[extra] = operation[extra]
                body = operation.get("requestBody")
                if body is not None:
                    if "$ref" in body:
                        body, origin = bundler.component(body["$ref"], namespace, "requestBodies")
                    else:
                        origin = namespace
                    entry["requestBody"] = bundler.rewrite(body, origin)
                paths.setdefault(path, {})[method] = entry
    missing = set(OPERATION_GROUPS) - found
    if missing:
        raise SystemExit(f"operation groups not found in the specification: {sorted(missing)}")
    globals_file = "spec/_global_parameters.yaml"
    global_parameters = [
        bundler.rewrite(parameter, globals_file)
        for parameter in bundler.load(globals_file)["components"]["parameters"].values()
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenSearch API specification (subset used by solar-rag)",
            "x-source": REPOSITORY,
            "x-commit": commit,
            "x-commit-date": date,
            "x-operation-groups": list(OPERATION_GROUPS),
            "x-license": "Apache-2.0 (see LICENSE.txt and NOTICE.txt next to this file)",
        },
        "paths": dict(sorted(paths.items())),
        "x-global-parameters": global_parameters,
        "components": {"schemas": dict(sorted(bundler.schemas.items()))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--git-dir", type=Path, help="a (bare) clone of the specification repo")
    source.add_argument("--checkout", type=Path, help="a working tree of the specification repo")
    parser.add_argument("--commit", default="HEAD", help="with --git-dir: the commit to read")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    if args.git_dir is not None:
        git = ["git", f"--git-dir={args.git_dir}"]
        commit = subprocess.run([*git, "rev-parse", args.commit], check=True,
                                capture_output=True, text=True).stdout.strip()
        date = subprocess.run([*git, "show", "-s", "--format=%cI", commit], check=True,
                              capture_output=True, text=True).stdout.strip()
        read = git_reader(args.git_dir, commit)
    else:
        commit, date = "working tree (unpinned)", ""
        read = checkout_reader(args.checkout)
    bundle = extract(read, commit, date)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(bundle, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"{args.output}: {len(bundle['paths'])} paths, "
          f"{len(bundle['components']['schemas'])} schemas from {commit}")


if __name__ == "__main__":
    main()
