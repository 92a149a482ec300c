"""Every kustomize base tfspec writes survives an overlay's namePrefix and nameSuffix: each reference to a
claim, ConfigMap, Secret, ServiceAccount or Service is renamed with the object it names.

kustomize renames a reference only where a ``nameReference`` entry lists its field, and its default
configuration knows the pod templates of built-in kinds only (tests/oracles/kustomize.py, from kustomize's
source): a JobSet's, a TFJob's or a WorkflowTemplate's fields need the base's own configuration. The real
``kubectl kustomize`` builds each overlay; the oracle finds the references it left dangling.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from oracles import argo as argo_oracle
from oracles import kustomize as kustomize_oracle
from targets_testing import compile_tree, example_tree, run_tool, target_of, tool

WORKFLOW = {"image": "registry.example.com/ml/digits-cluster:3", "store": "s3://ml-steps", "namespace": "ml-pipelines",
            "credentials": {"kubernetes_secret": "step-store"}, "service_account": "bucket-reader",
            "image_pull_secrets": ["regcred"]}


def _cluster(operator: str) -> Callable[[dict[str, Any]], None]:
    def mutate(tree: dict[str, Any]) -> None:
        target_of(tree, "cluster").update(operator=operator, service_account="trainer", image_pull_secrets=["regcred"])
    return mutate


def _workflow(training: bool) -> Callable[[dict[str, Any]], None]:
    def mutate(tree: dict[str, Any]) -> None:
        tree["workflow"] = {**WORKFLOW, **({"training_target": "cluster"} if training else {})}
    return mutate


# (base, the spec change, the folder of the kustomize base in the build)
BASES = {
    "jobset": (_cluster("jobset"), "cluster/kubernetes"),
    "tfjob": (_cluster("tfjob"), "cluster/kubernetes"),
    "indexed_job": (_cluster("indexed_job"), "cluster/kubernetes"),
    "workflow": (_workflow(False), "workflow"),
    "workflow-training": (_workflow(True), "workflow"),
}

# What the overlay adds beside the base: the objects the base names but leaves to the cluster (the
# ServiceAccounts and Secrets), so that they are renamed too and every reference to them must follow.
OVERLAY_OBJECTS = [
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}} for name in ("trainer", "bucket-reader")
]
OVERLAY = {
    "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
    "namePrefix": "team-a-", "nameSuffix": "-v2", "namespace": "ml-pipelines",  # references resolve per namespace
    "resources": ["../base", "accounts.yaml"],
    "secretGenerator": [{"name": "regcred", "literals": ["a=b"]}, {"name": "step-store", "literals": ["a=b"]}],
}


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="module")
def overlays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Per base: (the base's objects and its configuration, the overlay's output from kubectl kustomize)."""
    out = {}
    for name, (mutate, folder) in BASES.items():
        root = tmp_path_factory.mktemp(name)
        tree = copy.deepcopy(example_tree())
        mutate(tree)
        result = compile_tree(tree, root / "spec")
        assert result.ok, [d.format() for d in result.diagnostics]
        base = root / "base"
        base.mkdir()
        for path, text in result.files.items():
            if path.startswith(folder + "/") and path.count("/") == folder.count("/") + 1:
                (base / path.rsplit("/", 1)[1]).write_text(text, "utf-8")
        overlay = root / "overlay"
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(yaml.safe_dump(OVERLAY), "utf-8")
        (overlay / "accounts.yaml").write_text(yaml.safe_dump_all(OVERLAY_OBJECTS), "utf-8")
        built = run_tool([tool("kubectl"), "kustomize", str(overlay)])
        assert built.returncode == 0, f"{name}: {built.stderr}"
        documents = [d for p in sorted(base.glob("*.yaml")) if p.name not in ("kustomization.yaml",)
                     for d in _documents(p.read_text("utf-8"))]
        out[name] = (documents, _documents(built.stdout))
    return out


@pytest.mark.parametrize("name", sorted(BASES))
def test_no_reference_dangles_under_a_prefix_and_a_suffix(overlays, name: str) -> None:
    base, output = overlays[name]
    objects = [d for d in base if "nameReference" not in d] + OVERLAY_OBJECTS + [
        {"kind": "Secret", "metadata": {"name": secret["name"]}} for secret in OVERLAY["secretGenerator"]]
    found = kustomize_oracle.dangling(objects, output)
    assert not found, found
    # and the objects the references name are there under their new names
    names = {(d["kind"], d["metadata"]["name"]) for d in output}
    for document in output:
        for kind, path, value in kustomize_oracle.references(document):
            if kind in ("ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service") and \
                    value.startswith("team-a-"):
                assert (kind, value) in names, (document["kind"], path, value)


@pytest.mark.parametrize("name", sorted(BASES))
def test_every_reference_kustomize_does_not_know_is_configured(overlays, name: str) -> None:
    base, _ = overlays[name]
    (configuration,) = [d for d in base if "nameReference" in d]
    needed = [(d["kind"], named, path) for d in base if "nameReference" not in d
              for named, path in kustomize_oracle.needs_configuration(d)]
    if name != "indexed_job":  # a Job's pod template is kustomize's own; its subdomain is not
        assert needed, "the oracle finds the fields kustomize does not know"
    missing = [n for n in needed if not kustomize_oracle.configured(configuration, *n)]
    assert not missing, missing


def test_the_training_claim_is_renamed_in_every_operators_pods(overlays) -> None:
    for name in ("jobset", "tfjob", "indexed_job"):
        _, output = overlays[name]
        (claim,) = [d["metadata"]["name"] for d in output if d["kind"] == "PersistentVolumeClaim"]
        assert claim == "team-a-digits-cluster-data-v2"
        (training,) = [d for d in output if d["kind"] in ("JobSet", "TFJob", "Job")]
        claims = [value for kind, _, value in kustomize_oracle.references(training) if kind == "PersistentVolumeClaim"]
        accounts = [value for kind, _, value in kustomize_oracle.references(training) if kind == "ServiceAccount"]
        assert claims == [claim] and accounts == ["team-a-trainer-v2"], name


def test_argo_still_finds_the_executor_token_under_a_suffix(overlays) -> None:
    _, output = overlays["workflow"]
    (account,) = [d for d in output if d["kind"] == "ServiceAccount" and "executor" in d["metadata"]["name"]]
    (token,) = [d for d in output if d["kind"] == "Secret" and d["type"] == "kubernetes.io/service-account-token"]
    assert argo_oracle.token_secret_name(account) == token["metadata"]["name"]
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == account["metadata"]["name"]

