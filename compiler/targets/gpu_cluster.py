"""gpu_cluster target: the training image and the multi-worker training manifests.

The training container runs ``tfspec run <spec> --worker`` (MultiWorkerMirroredStrategy); the TF_CONFIG
contract is :mod:`tfspec.compiler.tf_config`:

* ``operator: tfjob``: a Kubeflow ``kubeflow.org/v1`` TFJob with ``tfReplicaSpecs.Worker`` (container
  ``tensorflow``, port 2222): the training operator creates the per-worker Services and injects
  TF_CONFIG; worker 0 is the chief.
* ``operator: indexed_job``: a plain ``batch/v1`` Job (``completionMode: Indexed``) and a headless Service
  named as the pods' ``subdomain``; the pods get ``TFSPEC_WORKER_HOSTS`` and Kubernetes sets
  ``JOB_COMPLETION_INDEX``, from which the worker derives TF_CONFIG.

The image gets tfspec from a wheel in the build context (``wheels/``, built with ``pip wheel``) and the
spec from ``spec/<name>.yaml``, which this renderer writes: the spec as resolved for this build (the
environment overlay applied, ``${VAR}`` expanded), so the image trains exactly the variant it was built
for. Files (under ``<target>/``): ``Dockerfile``, ``spec/<name>.yaml``, ``kubernetes/`` (kustomize base).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from tfspec.spec.document import Spec

from tfspec.spec.targets import GpuClusterTarget

from ..render import render_template
from ..resolve import ResolvedSpec
from ..tf_config import ENV_WORKER_HOSTS, TFJOB_PORT, indexed_job_hosts
from ..versions import TFSPEC_VERSION, training_image
from . import kubernetes as k8s
from .registry import TargetKind, register
from .common import base_context, dockerfile_quote, object_name

__all__ = ["render_gpu_cluster", "TRAINING_UID", "CONTAINER_NAME", "SPEC_DIR", "WHEEL", "resolved_spec_text",
           "worker_command"]

# The TFJob operator finds the worker container by this name (and its port by the name tfjob-port).
CONTAINER_NAME = "tensorflow"
TFJOB_PORT_NAME = "tfjob-port"
INDEXED_PORT_NAME = "worker"
TRAINING_UID = 10001
SPEC_DIR = "/opt/tfspec/spec"
WHEEL = f"tfspec-{TFSPEC_VERSION}-py3-none-any.whl"


# libyaml's emitter when PyYAML has it (the pure-Python one was a third of a spec's compile time).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _escape_dollars(value: Any) -> Any:
    """``$`` → ``$$`` in string values: the expanded values must not be expanded a second time."""
    if isinstance(value, dict):
        return {k: _escape_dollars(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape_dollars(v) for v in value]
    return value.replace("$", "$$") if isinstance(value, str) else value


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def resolved_spec_text(resolved: ResolvedSpec, header: list[str]) -> str:
    """The spec this build resolved (overlay merged, variables expanded), without its environments.

    Sections come in the spec's field order and nested keys sorted, so the text does not depend on the
    key order of the source file.
    """
    source = resolved.document.tree
    tree = _escape_dollars({key: _sorted_keys(source[key]) for key in Spec.model_fields
                            if key in source and key != "environments"})
    lines = [f"# {line}" for line in header]
    env = f" with environment {resolved.environment!r} applied" if resolved.environment else ""
    lines.append(f"# The spec as resolved for this build{env}; ${{VAR}} references are already expanded.")
    body = yaml.dump(tree, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return "\n".join(lines) + "\n" + body


def worker_command(resolved: ResolvedSpec, target: GpuClusterTarget) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of the training image (the mount path comes from the spec's storage)."""
    mount = target.storage.mount_path.rstrip("/") or "/"
    entrypoint = ["tfspec", "run", f"{SPEC_DIR}/{resolved.spec.name}.yaml", "--worker"]
    cmd = ["--cache-dir", f"{mount}/cache", "--dist-dir", f"{mount}/dist"]
    return entrypoint, cmd


def _pod(resolved: ResolvedSpec, target: GpuClusterTarget, image: str, claim: str) -> dict[str, Any]:
    """Pod spec values shared by the TFJob and the Indexed Job."""
    name = object_name(resolved, target)
    gpus = target.gpus_per_worker
    env: list[dict[str, str]] = [{"name": "HOME", "value": "/tmp"}]
    if target.operator == "indexed_job":
        hosts = indexed_job_hosts(name, f"{name}-workers", target.workers, target.port)
        env.append({"name": ENV_WORKER_HOSTS, "value": ",".join(hosts)})
        port = {"name": INDEXED_PORT_NAME, "containerPort": target.port, "protocol": "TCP"}
    else:
        port = {"name": TFJOB_PORT_NAME, "containerPort": TFJOB_PORT, "protocol": "TCP"}
    mounts = [{"name": "data", "mountPath": target.storage.mount_path}, {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": claim}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if gpus > 0:
        # NCCL exchanges tensors through shared memory; the container runtime's default /dev/shm is 64 MiB.
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": "Always",
        "env": env,
        "ports": [port],
        "resources": k8s.resources(target.resources, gpus),
        "securityContext": k8s.container_security_context(),
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {"automountServiceAccountToken": False}
    if target.operator == "indexed_job":
        pod["subdomain"] = f"{name}-workers"
        pod["restartPolicy"] = "OnFailure"
    pod["securityContext"] = k8s.pod_security_context(TRAINING_UID, fs_group=True)
    selector = k8s.node_selector(target.node_selector, gpus)
    if selector:
        pod["nodeSelector"] = selector
    tolerations = k8s.tolerations(target.tolerations, gpus)
    if tolerations:
        pod["tolerations"] = tolerations
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return pod


def render_gpu_cluster(resolved: ResolvedSpec, target: GpuClusterTarget) -> dict[str, str]:
    t = target.name
    name = object_name(resolved, target)
    context = base_context(resolved, target)
    files: dict[str, str] = {}

    base_image = training_image(target.gpus_per_worker)
    assert target.image is not None  # filled by resolve
    image_repository = target.image
    image = f"{image_repository}:{resolved.spec.version}"
    labels = [
        ("org.opencontainers.image.title", image_repository),
        ("org.opencontainers.image.version", str(resolved.spec.version)),
        ("org.opencontainers.image.base.name", f"docker.io/{base_image}"),
        ("io.tfspec.spec.sha256", resolved.spec_sha256),
    ]
    if resolved.spec.description:
        labels.insert(1, ("org.opencontainers.image.description", resolved.spec.description))
    entrypoint, cmd = worker_command(resolved, target)
    files[f"{t}/Dockerfile"] = render_template(
        "gpu_cluster/Dockerfile.j2", **context,
        base_image=base_image,
        oci_labels=[(key, dockerfile_quote(value)) for key, value in labels],
        wheel=WHEEL,
        uid=TRAINING_UID,
        spec_dir=SPEC_DIR,
        workdir=target.storage.mount_path,
        entrypoint=[json.dumps(word) for word in entrypoint],
        cmd=[json.dumps(word) for word in cmd],
        image_tag=image,
        port=TFJOB_PORT if target.operator == "tfjob" else target.port,
        gpus=target.gpus_per_worker,
    )
    files[f"{t}/spec/{resolved.spec.name}.yaml"] = resolved_spec_text(resolved, context["header"])

    claim = target.storage.claim_name or f"{name}-data"
    pod = _pod(resolved, target, image, claim)
    kube = {
        **context,
        "namespace": target.namespace,
        "labels": k8s.labels(resolved, name, "training"),
        "selector": k8s.selector_labels(resolved, name, "training"),
        "annotations": k8s.annotations(resolved),
        "workers": target.workers,
        "backoff_limit": target.backoff_limit,
        "pod": pod,
        "claim": claim,
        "storage": target.storage.model_dump(),
        "service_name": f"{name}-workers",
        "port": target.port,
        "port_name": INDEXED_PORT_NAME,
    }
    resources: list[str] = []
    if target.storage.claim_name is None:
        resources.append("persistentvolumeclaim.yaml")
    resources += ["tfjob.yaml"] if target.operator == "tfjob" else ["service.yaml", "job.yaml"]
    for filename in resources:
        files[f"{t}/kubernetes/{filename}"] = render_template(f"gpu_cluster/kubernetes/{filename}.j2", **kube)
    files[f"{t}/kubernetes/kustomization.yaml"] = render_template("gpu_cluster/kubernetes/kustomization.yaml.j2",
                                                                  **kube, resources_list=resources)
    return files


TARGET = register(TargetKind("gpu_cluster", render=render_gpu_cluster))
