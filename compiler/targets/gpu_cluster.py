"""gpu_cluster target: the training image and the multi-worker training manifests.

The training container runs ``tfspec run <spec> --worker`` (MultiWorkerMirroredStrategy); the TF_CONFIG
contract is :mod:`tfspec.compiler.tf_config`:

* ``operator: tfjob``: a Kubeflow ``kubeflow.org/v1`` TFJob with ``tfReplicaSpecs.Worker`` (container
  ``tensorflow``, port 2222): the training operator creates the per-worker Services and injects
  TF_CONFIG; worker 0 is the chief.
* ``operator: indexed_job``: a plain ``batch/v1`` Job (``completionMode: Indexed``) and a headless Service
  named as the pods' ``subdomain``; the pods get ``TFSPEC_WORKER_HOSTS`` and Kubernetes sets
  ``JOB_COMPLETION_INDEX``, from which the worker derives TF_CONFIG. The host names are not literals:
  ``TFSPEC_WORKER_HOSTS`` is ``$(TFSPEC_JOB_NAME)-<i>.$(TFSPEC_WORKER_SUBDOMAIN):<port>``, which Kubernetes
  expands from two downward-API variables (the Job's own name from the pod's
  ``batch.kubernetes.io/job-name`` label, the subdomain from a pod annotation), and the base's
  ``kustomizeconfig.yaml`` tells kustomize that ``subdomain`` and that annotation name the Service. So a
  ``namePrefix``/``nameSuffix`` overlay renames Service, subdomain and host names together.

Jobs are named by content (``<name>-<hash of the pod template>``) and deleted
``ttl_seconds_after_finished`` after they end: a Job's pod template is immutable, so a changed spec makes a
new Job instead of failing ``kubectl apply``. The image tag is derived from what the image holds.

The image gets tfspec from a wheel in the build context (``wheels/``, built with ``pip wheel``) and the
spec from ``spec/<name>.yaml``, which this renderer writes: the spec as resolved for this build (the
environment overlay applied, ``${VAR}`` expanded), so the image trains exactly the variant it was built
for. Files (under ``<target>/``): ``Dockerfile``, ``spec/<name>.yaml``, ``kubernetes/`` (kustomize base).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from tfspec.spec.document import Spec
from tfspec.spec.errors import Diagnostic
from tfspec.spec.targets import GpuClusterTarget

from ..render import render_template
from ..resolve import ResolvedSpec
from ..tf_config import ENV_WORKER_HOSTS, TFJOB_PORT, indexed_job_hosts
from ..versions import TFSPEC_VERSION, training_image
from . import kubernetes as k8s
from .common import (PULL_POLICY, base_context, content_tag, dockerfile_quote, image_reference, image_repository,
                     object_name, qualified_image)
from .registry import TargetKind, register

__all__ = ["render_gpu_cluster", "TRAINING_UID", "CONTAINER_NAME", "SPEC_DIR", "WHEEL", "resolved_spec_text",
           "worker_command", "job_name", "ENV_JOB_NAME", "ENV_WORKER_SUBDOMAIN", "SUBDOMAIN_ANNOTATION",
           "JOB_NAME_LABEL", "RULES"]

# The TFJob operator finds the worker container by this name (and its port by the name tfjob-port).
CONTAINER_NAME = "tensorflow"
TFJOB_PORT_NAME = "tfjob-port"
INDEXED_PORT_NAME = "worker"
TRAINING_UID = 10001
SPEC_DIR = "/opt/tfspec/spec"
WHEEL = f"tfspec-{TFSPEC_VERSION}-py3-none-any.whl"

# Indexed Job: where a worker learns its Job's name and the workers' subdomain at run time.
ENV_JOB_NAME = "TFSPEC_JOB_NAME"
ENV_WORKER_SUBDOMAIN = "TFSPEC_WORKER_SUBDOMAIN"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # set on every pod by the Job controller (Kubernetes >= 1.27)
SUBDOMAIN_ANNOTATION = "tfspec.dev/worker-subdomain"
# Hex digits of the pod-template hash in a Job's name.
JOB_HASH_LENGTH = 8


# libyaml's emitter when PyYAML has it (the pure-Python one was a third of a spec's compile time).
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _indent_sequences(text: str) -> str:
    """Block sequences indented under their key (``key:\n  - item``), as yamllint's default
    ``indentation`` rule wants; PyYAML writes them at the key's column. Every line of a sequence item
    (the ``- `` line and its continuation lines) moves right by two columns per enclosing sequence."""
    out: list[str] = []
    # (column of the "- " that opened a sequence, shift applied to it)
    stack: list[tuple[int, int]] = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        column = len(line) - len(stripped)
        if not stripped:
            out.append(line)
            continue
        while stack and (column < stack[-1][0] or (column == stack[-1][0] and not stripped.startswith("- "))):
            stack.pop()
        if stripped.startswith("- ") or stripped == "-":
            if not stack or stack[-1][0] != column:
                stack.append((column, (stack[-1][1] if stack else 0) + 2))
        shift = stack[-1][1] if stack else 0
        out.append(" " * (column + shift) + stripped)
    return "\n".join(out) + "\n"


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
    lines.append(f"# The spec as resolved for this build{env};")
    lines.append("# ${VAR} references are already expanded.")
    lines.append("---")
    body = yaml.dump(tree, Dumper=_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return "\n".join(lines) + "\n" + _indent_sequences(body)


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
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]
    if target.operator == "indexed_job":
        # Kubernetes expands $(VAR) from the variables defined before it in the list.
        hosts = indexed_job_hosts(f"$({ENV_JOB_NAME})", f"$({ENV_WORKER_SUBDOMAIN})", target.workers, target.port)
        env += [
            {"name": ENV_JOB_NAME, "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}},
            {"name": ENV_WORKER_SUBDOMAIN,
             "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{SUBDOMAIN_ANNOTATION}']"}}},
            {"name": ENV_WORKER_HOSTS, "value": ",".join(hosts)},
        ]
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
        "imagePullPolicy": PULL_POLICY,
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
    selector = k8s.node_selector(target.node_selector, gpus, target.gpu_feature_discovery)
    if selector:
        pod["nodeSelector"] = selector
    tolerations = k8s.tolerations(target.tolerations, gpus)
    if tolerations:
        pod["tolerations"] = tolerations
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return pod


def job_name(name: str, template: dict[str, Any]) -> str:
    """``<name>-<hash>``: the Job (or TFJob) named by its pod template, so a changed template is a new Job
    rather than an immutable-field error on ``kubectl apply``."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{name}-{digest[:JOB_HASH_LENGTH]}"


def render_gpu_cluster(resolved: ResolvedSpec, target: GpuClusterTarget, served: str | None = None) -> dict[str, str]:
    t = target.name
    name = object_name(resolved, target)
    context = base_context(resolved, target)
    files: dict[str, str] = {}

    base_image = target.base_image or training_image(target.gpus_per_worker)
    repository = image_repository(resolved, target, target.image)
    entrypoint, cmd = worker_command(resolved, target)
    spec_text = resolved_spec_text(resolved, context["header"])
    # What the image holds: the spec copy (without its header), tfspec, the base image and the command.
    tag = content_tag(resolved.spec.version, spec_text[spec_text.index("\n---\n"):], TFSPEC_VERSION,
                      base_image, entrypoint, cmd, TRAINING_UID)
    image = image_reference(repository, tag)
    labels = [
        ("org.opencontainers.image.title", repository.split("@")[0]),
        ("org.opencontainers.image.version", tag),
        ("org.opencontainers.image.base.name", qualified_image(base_image)),
        ("io.tfspec.spec.sha256", resolved.spec_sha256),
    ]
    if resolved.spec.description:
        labels.insert(1, ("org.opencontainers.image.description", resolved.spec.description))
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
    files[f"{t}/spec/{resolved.spec.name}.yaml"] = spec_text

    claim = target.storage.claim_name or f"{name}-data"
    service_name = f"{name}-workers"
    pod = _pod(resolved, target, image, claim)
    pod_labels = k8s.labels(resolved, name, "training")
    pod_annotations = {SUBDOMAIN_ANNOTATION: service_name} if target.operator == "indexed_job" else {}
    kube = {
        **context,
        "namespace": target.namespace,
        "job_name": job_name(name, {"labels": pod_labels, "annotations": pod_annotations, "pod": pod,
                                    "workers": target.workers, "backoff_limit": target.backoff_limit,
                                    "operator": target.operator}),
        "labels": pod_labels,
        "selector": k8s.selector_labels(resolved, name, "training"),
        "annotations": k8s.annotations(resolved),
        "pod_annotations": pod_annotations,
        "workers": target.workers,
        "backoff_limit": target.backoff_limit,
        "ttl_seconds_after_finished": target.ttl_seconds_after_finished,
        "pod": pod,
        "claim": claim,
        "storage": target.storage.model_dump(),
        "service_name": service_name,
        "port": target.port,
        "port_name": INDEXED_PORT_NAME,
        "subdomain_annotation": SUBDOMAIN_ANNOTATION,
    }
    resources: list[str] = []
    if target.storage.claim_name is None:
        resources.append("persistentvolumeclaim.yaml")
    resources += ["tfjob.yaml"] if target.operator == "tfjob" else ["service.yaml", "job.yaml"]
    for filename in resources:
        files[f"{t}/kubernetes/{filename}"] = render_template(f"gpu_cluster/kubernetes/{filename}.j2", **kube)
    configurations = ["kustomizeconfig.yaml"] if target.operator == "indexed_job" else []
    for filename in configurations:
        files[f"{t}/kubernetes/{filename}"] = render_template(f"gpu_cluster/kubernetes/{filename}.j2", **kube)
    files[f"{t}/kubernetes/kustomization.yaml"] = render_template("gpu_cluster/kubernetes/kustomization.yaml.j2",
                                                                  **kube, resources_list=resources,
                                                                  configurations=configurations)
    return files


# --- validation rules (run by compiler/validate.py) --------------------------------------------------

def storage_access(r: ResolvedSpec) -> list[Diagnostic]:
    """A claim every worker mounts must be ReadWriteMany with several workers, and a generated ReadWriteMany
    claim needs a class that offers it: the usual default classes are ReadWriteOnce (the claim stays Pending)."""
    out = []
    for index, target in enumerate(r.spec.targets):
        if not isinstance(target, GpuClusterTarget):
            continue
        storage = target.storage
        if storage.access_mode == "ReadWriteOnce" and target.workers > 1:
            out.append(r.diagnostic(("targets", index, "storage", "access_mode"),
                                    f"ReadWriteOnce storage cannot be mounted by {target.workers} workers on different nodes",
                                    "use ReadWriteMany with a storage class that offers it, or one worker"))
        elif storage.access_mode == "ReadWriteMany" and storage.claim_name is None and storage.storage_class is None:
            out.append(r.diagnostic(("targets", index, "storage"),
                                    "a generated ReadWriteMany claim needs a storage_class that offers ReadWriteMany",
                                    "set storage.storage_class (an NFS, CephFS, EFS or Filestore class), "
                                    "or claim_name of an existing claim"))
    return out


def job_name_length(r: ResolvedSpec) -> list[Diagnostic]:
    """Pod host names ``<job>-<index>`` must stay DNS labels (63 characters)."""
    out = []
    for index, target in enumerate(r.spec.targets):
        if isinstance(target, GpuClusterTarget):
            longest = len(object_name(r, target)) + 1 + JOB_HASH_LENGTH + 1 + len(str(target.workers - 1))
            # kubernetes_name_length already reports names that are too long without the hash.
            if longest > 63 and len(object_name(r, target)) + 8 <= 63:
                out.append(r.diagnostic(("targets", index, "name"), f"worker host names would be {longest} characters "
                                        "long, more than 63", "shorten the spec name or the target name"))
    return out


RULES = (storage_access, job_name_length)


def gpu_cluster_defaults(spec: Spec, target: GpuClusterTarget) -> GpuClusterTarget:
    """One worker gets ReadWriteOnce storage: it needs no shared access, and that is what default classes offer."""
    if target.workers == 1 and "access_mode" not in target.storage.model_fields_set:
        return target.model_copy(update={"storage": target.storage.model_copy(update={"access_mode": "ReadWriteOnce"})})
    return target


TARGET = register(TargetKind("gpu_cluster", render=render_gpu_cluster, defaults=gpu_cluster_defaults))
