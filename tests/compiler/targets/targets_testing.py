"""Fixtures of the target tests: the example spec and variants compiled, and the external tools.

Variants change the example spec the way users do (GPU serving, an Indexed Job, other delivery modes) so
every template branch is rendered and checked by the ecosystem tools, not only the example's.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec_testing import expand_kubernetes_references, pod_environment  # noqa: F401  (used by the tests here)

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "digits" / "deploy.yaml"


def tool(name: str) -> str:
    """Path of an external tool: next to the running Python first (the project venv), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name!r} is not installed: it is neither next to {sys.executable} nor on PATH "
                    f"(install the test extra: pip install -e '.[test]')", pytrace=False)
    return found


def run_tool(args: list[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def example_tree() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE.read_text("utf-8"))


def target_of(tree: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in tree["targets"] if t["name"] == name)


def compile_tree(tree: dict[str, Any], directory: Path, env: str | None = None) -> CompileResult:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return compile_spec(path, env=env, environ={})


def _gpu_serving(tree: dict[str, Any]) -> None:
    serving = target_of(tree, "serving")
    serving["gpus"] = 1
    serving["kubernetes"] = {"namespace": "ml-serving", "replicas": 3, "image": "registry.example.com/ml/digits-serving",
                             "service_type": "LoadBalancer",
                             "node_selector": {"cloud.example.com/accelerator": "l4"},
                             "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}]}
    serving["kubernetes"]["gpu_feature_discovery"] = True
    # Canary by labels: version 2 stays stable, 3 (this spec) is the canary; both live in the model store.
    serving["version_labels"] = {"stable": 2, "canary": 3}
    serving["allow_unavailable_version_labels"] = True
    serving["model_store"] = {"base_path": "s3://models/digits", "endpoint_url": "http://minio.storage:9000",
                              "region": "eu-west-1", "credentials": {"kubernetes_secret": "digits-store"}}
    serving["batching"]["pad_variable_length_inputs"] = True
    # GPU replicas are not autoscaled on CPU: prod raises the fixed count instead.
    tree["environments"]["prod"] = {"targets": [{"name": "serving", "kubernetes": {"replicas": 4}}]}
    tree["targets"].append({"kind": "kserve", "name": "kserve", "namespace": "ml-serving", "gpus": 1,
                            "model_store": {"base_path": "gs://models/digits"}, "canary_traffic_percent": 10,
                            "service_account": "digits-store", "autoscale": {"min": 2, "max": 8},
                            "node_selector": {"cloud.example.com/accelerator": "l4"}})


def _kserve_standard(tree: dict[str, Any]) -> None:
    """KServe's Standard mode on CPU utilisation, an S3-compatible store whose Secret a generated
    ServiceAccount lists, a registry mirror's pull secret."""
    tree["targets"].append({"kind": "kserve", "name": "kserve", "deployment_mode": "Standard",
                            "model_store": {"base_path": "s3://models/digits", "endpoint_url": "http://minio.storage:9000",
                                            "region": "eu-west-1", "credentials": {"kubernetes_secret": "digits-store"}},
                            "autoscale": {"min": 1, "max": 4, "metric": "cpu", "target": 70},
                            "image_pull_secrets": ["mirror-pull"]})


def _indexed_job(tree: dict[str, Any]) -> None:
    cluster = target_of(tree, "cluster")
    cluster.update({"operator": "indexed_job", "workers": 3, "gpus_per_worker": 1, "port": 23456,
                    "namespace": "ml-training", "storage": {"size": "50Gi", "storage_class": "fast-rwx", "mount_path": "/mnt/tfspec"}})


def _indexed_job_cpu(tree: dict[str, Any]) -> None:
    cluster = target_of(tree, "cluster")
    cluster.update({"operator": "indexed_job", "workers": 2, "gpus_per_worker": 0,
                    "storage": {"claim_name": "shared-training-data"},
                    "image": "registry.example.com/ml/digits-train@sha256:" + "0123456789abcdef" * 4})
    tree["registry"] = "registry.example.com/ml"


def _tfjob(tree: dict[str, Any]) -> None:
    target_of(tree, "cluster")["operator"] = "tfjob"


def _jobset_kueue(tree: dict[str, Any]) -> None:
    cluster = target_of(tree, "cluster")
    cluster.update({"operator": "jobset", "workers": 3, "gpus_per_worker": 1, "port": 23456, "backoff_limit": 5,
                    "namespace": "ml-training", "storage": {"claim_name": "shared-training-data"},
                    "queue": {"name": "team-a", "priority_class": "high-priority",
                              "workload_priority_class": "production"},
                    "service_account": "trainer", "image_pull_secrets": ["regcred"]})


def _plain_serving(tree: dict[str, Any]) -> None:
    serving = target_of(tree, "serving")
    for key in ("batching", "warmup", "version_labels"):
        serving.pop(key, None)
    serving["monitoring"] = False
    serving["version_policy"] = {"kind": "all"}
    serving["kubernetes"] = {"replicas": 1}


def _on_demand_float(tree: dict[str, Any]) -> None:
    tree["compression"] = []
    tree["data"]["preprocessing"] = {"rescale": 0.0625, "normalize": True}
    android = target_of(tree, "android")
    android["quantization"] = {"kind": "float16"}
    android["android"] = {"package": "com.example.in.digits", "asset_pack": {"name": "digitsModel", "delivery": "on_demand"}}
    android.pop("gates", None)


def _uint8_fast_follow(tree: dict[str, Any]) -> None:
    android = target_of(tree, "android")
    android["quantization"] = {"kind": "int8", "input_type": "uint8", "output_type": "uint8"}
    android["android"]["asset_pack"]["delivery"] = "fast_follow"


def _npu_first(tree: dict[str, Any]) -> None:
    android = target_of(tree, "android")
    android["accelerators"] = ["npu", "gpu", "cpu"]
    android["cpu_threads"] = 4
    android["sparse_weights"] = True  # the example prunes: int8 sparse weights, no XNNPACK
    android["android"]["asset_pack"]["delivery"] = "on_demand"


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "gpu-serving": _gpu_serving,
    "kserve-standard": _kserve_standard,
    "indexed-job": _indexed_job,
    "indexed-job-cpu": _indexed_job_cpu,
    "tfjob": _tfjob,
    "jobset-kueue": _jobset_kueue,
    "plain-serving": _plain_serving,
    "on-demand-float": _on_demand_float,
    "uint8-fast-follow": _uint8_fast_follow,
    "npu-first": _npu_first,
}


@pytest.fixture(scope="session")
def example_result() -> CompileResult:
    result = compile_spec(EXAMPLE, environ={})
    assert result.ok, "\n".join(str(d) for d in result.diagnostics)
    return result


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory, example_result: CompileResult) -> dict[str, dict[str, str]]:
    """Files of every build: the example, its ``prod`` environment and each variant, keyed by build name."""
    out = {"example": example_result.files}
    prod = compile_spec(EXAMPLE, env="prod", environ={})
    assert prod.ok, "\n".join(str(d) for d in prod.diagnostics)
    out["example-prod"] = prod.files
    for name, mutate in VARIANTS.items():
        tree = copy.deepcopy(example_tree())
        mutate(tree)
        result = compile_tree(tree, tmp_path_factory.mktemp(name))
        assert result.ok, f"variant {name}: " + "\n".join(str(d) for d in result.diagnostics)
        out[name] = result.files
    return out


@pytest.fixture(scope="session")
def build_root(tmp_path_factory: pytest.TempPathFactory, builds: dict[str, dict[str, str]]) -> Path:
    """Every build written to ``<root>/<build name>/`` (what the tools read)."""
    root = tmp_path_factory.mktemp("builds")
    for name, files in builds.items():
        for path, text in files.items():
            target = root / name / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return root


def files_named(builds: dict[str, dict[str, str]], predicate: Callable[[str], bool]) -> list[tuple[str, str, str]]:
    """(build, path, text) of every file whose path matches."""
    return [(build, path, text) for build, files in sorted(builds.items()) for path, text in sorted(files.items())
            if predicate(path)]

