"""Lambda layers and function code as locally bundled assets (no Docker anywhere).

CDK asks an :class:`aws_cdk.ILocalBundling` to produce an asset before it would fall back to
Docker. :class:`LocalBuild` always succeeds by hard-linking (or copying) a directory built by
``layers/build_layers.py`` into the asset output, so the Docker image named in the
``BundlingOptions`` is never pulled. The asset hash is the hash of the build inputs (uv.lock,
sources), computed without building: CDK skips bundling entirely when ``cdk.out`` already
holds an asset with that hash, and ``layers/build/`` caches the builds between synths.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from layers import build_layers

# Named only because BundlingOptions requires an image; LocalBuild never lets CDK use it.
UNUSED_DOCKER_IMAGE = "public.ecr.aws/docker/library/busybox:unused-local-bundling-only"
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
RUNTIME = lambda_.Runtime.PYTHON_3_12


def lambda_architecture(name: str) -> lambda_.Architecture:
    """The Lambda architecture for a context value (validated in config)."""
    return ARCHITECTURES[name]


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@jsii.implements(cdk.ILocalBundling)
class LocalBuild:
    """Bundles an asset by running a Python build function on this machine."""

    def __init__(self, build: Callable[[], build_layers.Artefact]) -> None:
        self._build = build

    def try_bundle(self, output_dir: str, *_options: object, **_kw: object) -> bool:
        # jsii passes (output_dir, options); the options only describe the Docker fallback.
        artefact = self._build()
        shutil.copytree(
            artefact.path,
            output_dir,
            dirs_exist_ok=True,
            copy_function=_link_or_copy,
            ignore=shutil.ignore_patterns(".complete"),
        )
        return True


def local_asset(
    source_dir: Path, content_hash: str, build: Callable[[], build_layers.Artefact]
) -> lambda_.Code:
    """A code asset produced by ``build`` and identified by ``content_hash``."""
    return lambda_.Code.from_asset(
        str(source_dir),
        asset_hash=content_hash,
        asset_hash_type=cdk.AssetHashType.CUSTOM,
        bundling=cdk.BundlingOptions(
            image=cdk.DockerImage.from_registry(UNUSED_DOCKER_IMAGE),
            local=LocalBuild(build),
        ),
    )


def function_code(name: str, repo_root: Path = build_layers.REPO_ROOT) -> lambda_.Code:
    """``functions/<name>/`` with compiled bytecode; the Lambda handler is ``handler.handler``."""
    source = repo_root / build_layers.FUNCTIONS_DIR / name
    return local_asset(
        source,
        build_layers.function_hash(name, repo_root),
        lambda: build_layers.build_function(name, repo_root),
    )


def handler_missing(name: str, repo_root: Path = build_layers.REPO_ROOT) -> bool:
    return not (repo_root / build_layers.FUNCTIONS_DIR / name / "handler.py").is_file()


class SharedLayers(Construct):
    """The third-party dependency layer (built for ``architecture``) and the ``solar_rag``
    layer (pure Python, the same for both architectures)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: cdk.RemovalPolicy,
        architecture: str,
        repo_root: Path = build_layers.REPO_ROOT,
    ) -> None:
        super().__init__(scope, construct_id)
        self.architecture = lambda_architecture(architecture)
        self.shared_hash = build_layers.shared_hash(repo_root)
        shared_source = repo_root / build_layers.SHARED_PACKAGE
        self.dependencies = lambda_.LayerVersion(
            self,
            "Dependencies",
            description="Third-party runtime dependencies from uv.lock (boto3 from the runtime)",
            code=local_asset(
                shared_source,
                build_layers.deps_hash(repo_root, architecture=architecture),
                lambda: build_layers.build_deps(repo_root, architecture=architecture),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[self.architecture],
            removal_policy=removal_policy,
        )
        self.shared = lambda_.LayerVersion(
            self,
            "SolarRag",
            description="The solar_rag package (services, ports, adapters, API)",
            code=local_asset(
                shared_source,
                self.shared_hash,
                lambda: build_layers.build_shared(repo_root),
            ),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[self.architecture],
            removal_policy=removal_policy,
        )

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.dependencies, self.shared]
