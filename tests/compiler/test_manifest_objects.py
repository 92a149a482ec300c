"""The policies' ``objects`` built only as far as a rule reads: exactly the whole objects cut down to what the
rule reads (:func:`tfspec.compiler.cel_reads.project`), with most of each manifest never built into Python
objects."""

from __future__ import annotations

import yaml
import pytest

from tfspec.compiler import cel, manifest_objects
from tfspec.compiler.cel_reads import Reads, project
from tfspec.compiler.manifest_objects import kubernetes_objects, read_objects

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, labels: {app: d}}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: d}}
    spec:
      containers:
        - {name: c, image: "registry.example.com/a@sha256:1", args: [--port=8500, --rest_api_port=8501]}
        - {name: s, image: "other/b:1", resources: {limits: {cpu: "1", memory: 1Gi}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: p}
spec: {minAvailable: 1}
"""
ODD = """\
# a document that is not a mapping, an empty one, anchors, a merge key, a repeated key, tagged mappings
- not an object
---
---
base: &base {kind: Service, spec: {ports: [{port: 8500}]}}
<<: *base
metadata: {name: merged}
---
kind: First
kind: Second
spec: {template: {spec: {containers: {not: a list}}}}
---
!!omap [kind: Ordered]
---
!!set {kind: null}
---
kind: Job
spec: !!map {template: {spec: {containers: [{image: a}, {image: b, name: x}]}}}
"""
FILES = {"out/serving/kubernetes/deployment.yaml": DEPLOYMENT, "out/serving/kubernetes/odd.yaml": ODD,
         "out/serving/kubernetes/kustomization.yaml": "kind: Kustomization\n",
         "out/serving/Dockerfile": "FROM scratch\n"}
EXPRESSIONS = [
    'objects.exists(o, o.kind == "PodDisruptionBudget")',
    'env != "prod" || objects.all(o, o.kind != "Deployment" || o.spec.template.spec.containers.all(c, '
    'c.image.startsWith("registry.example.com/") && c.image.contains("@sha256:")))',
    "objects.exists_one(o, o.spec.replicas == 2)",
    'objects.filter(o, o.kind == "Deployment")[0].metadata.name == "d"',
    "size(objects) > 0",
    "objects.all(o, o.metadata.name != '' && o.spec.template.spec.containers.all(c, has(c.image)))",
]


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_the_objects_read_are_the_whole_objects_cut_down(expression: str) -> None:
    reads = cel.compile_expression(expression).reads["objects"]
    assert read_objects(FILES, reads) == project(kubernetes_objects(FILES), reads)


def test_the_whole_objects_are_every_mapping_document_in_file_order() -> None:
    kinds = [o.get("kind") for o in kubernetes_objects(FILES)]
    assert kinds == ["Deployment", "PodDisruptionBudget", "Service", "Second", "Job"]


def test_only_what_a_rule_reads_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    construct = manifest_objects._LOADER.construct_object

    def counting(self, node, deep=False):  # type: ignore[no-untyped-def]
        built.append(node)
        return construct(self, node, deep)

    monkeypatch.setattr(manifest_objects._LOADER, "construct_object", counting)
    files = {"out/serving/kubernetes/deployment.yaml": DEPLOYMENT}
    kubernetes_objects(files)
    whole = len(built)
    built.clear()
    kinds = read_objects(files, cel.compile_expression('objects.exists(o, o.kind == "Service")').reads["objects"])
    assert kinds == [{"kind": "Deployment"}, {"kind": "PodDisruptionBudget"}]
    # each document's top-level keys and its kind's value, not the rest of it
    assert len(built) == 4 + 1 + 4 + 1 < whole / 3


def test_a_list_read_whole_is_built_whole() -> None:
    assert read_objects(FILES, Reads(whole=True)) == kubernetes_objects(FILES)


def test_a_broken_manifest_is_still_an_error() -> None:
    broken = {"out/a/kubernetes/x.yaml": "kind: A\nspec: [unclosed\n"}
    with pytest.raises(yaml.YAMLError):
        read_objects(broken, cel.compile_expression("objects.all(o, o.kind != '')").reads["objects"])
