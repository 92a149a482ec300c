"""gpu_cluster target: the training image and the multi-worker training manifests.

The training container runs ``tfspec run <spec> --worker`` (MultiWorkerMirroredStrategy); the TF_CONFIG
contract is :mod:`tfspec.base.tf_config`:

* ``operator: jobset`` (the default): a ``jobset.x-k8s.io/v1alpha2`` JobSet with one replicated job
  (``worker``) whose one Indexed Job runs every worker (completions = parallelism = workers). The JobSet's
  ``network`` settings give each pod a stable DNS name, ``<jobset>-worker-0-<i>.<jobset>`` (the subdomain
  is left to its upstream default, the JobSet's name, so a kustomize ``namePrefix`` renames both); the
  pods get ``TFSPEC_WORKER_HOSTS`` built from the ``jobset.sigs.k8s.io/jobset-name`` label (downward API)
  and Kubernetes sets ``JOB_COMPLETION_INDEX``. A pod failure fails the Job (``backoffLimit: 0``, pods never
  restarted alone) and the failure policy recreates every worker together (``maxRestarts`` from
  ``backoff_limit``, ``BlockingRecreate``: the old pods are gone before new ones take their names), which
  resume from the last epoch's checkpoint; the Job succeeds when the chief, index 0, does (a Job
  ``successPolicy``), and the JobSet when that Job does.
* ``operator: tfjob``: a Kubeflow ``kubeflow.org/v1`` TFJob with ``tfReplicaSpecs.Worker`` (container
  ``tensorflow``, port 2222): the training operator creates the per-worker Services and injects
  TF_CONFIG; worker 0 is the chief. Needs the Kubeflow Training Operator 1.9, no longer maintained
  upstream: the build warns.
* ``operator: indexed_job``: a plain ``batch/v1`` Job (``completionMode: Indexed``) and a headless Service
  named as the pods' ``subdomain``; the pods get ``TFSPEC_WORKER_HOSTS`` and Kubernetes sets
  ``JOB_COMPLETION_INDEX``, from which the worker derives TF_CONFIG. The host names are not literals:
  ``TFSPEC_WORKER_HOSTS`` is ``$(TFSPEC_JOB_NAME)-<i>.$(TFSPEC_WORKER_SUBDOMAIN):<port>``, which Kubernetes
  expands from two downward-API variables (the Job's own name from the pod's
  ``batch.kubernetes.io/job-name`` label, the subdomain from a pod annotation), and the base's
  ``kustomizeconfig.yaml`` tells kustomize that ``subdomain`` and that annotation name the Service. So a
  ``namePrefix``/``nameSuffix`` overlay renames Service, subdomain and host names together.

Kueue (``queue``): the training object (JobSet, Job or TFJob) carries the ``kueue.x-k8s.io/queue-name``
label (and ``kueue.x-k8s.io/priority-class`` for a WorkloadPriorityClass), the pods ``priorityClassName``.
It is not written suspended: Kueue's webhook suspends it on creation (upstream documents that a job need
not be created suspended), and a manifest saying ``suspend: true`` would suspend an admitted, running job
again on the next ``kubectl apply`` or GitOps sync.

Every base has a ``kustomizeconfig.yaml`` (:func:`name_references`): kustomize renames references only in
the fields its configuration lists, and knows the pod templates of built-in kinds only, so a JobSet's or a
TFJob's claim, ConfigMap, Secret and ServiceAccount references are listed there (an Indexed Job's
subdomain and subdomain annotation too), and an overlay's ``namePrefix``/``nameSuffix`` keeps them right.
``service_account`` and ``image_pull_secrets`` go into every operator's pod spec; the API token stays
unmounted. Every generated name, and every name the controllers derive from one, is checked against the
API server's and the controllers' limits (:func:`cluster_names`, ``kube_names``).

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
from tfspec.base.errors import Diagnostic
from tfspec.spec.loader import KeyPath
from tfspec.spec.targets import GpuClusterTarget

from ..kube_names import (DNS1035_LABEL, HOST_NAME, JOB_NAME, LABEL_VALUE, OBJECT_NAME, SERVICE_NAME, GeneratedName,
                          RANDOM, generated, letter_first)
from ..render import render_template
from ..resolve import ResolvedSpec
from tfspec.base.tf_config import ENV_WORKER_HOSTS, TFJOB_PORT, indexed_job_hosts, jobset_hosts
from tfspec.base.versions import TFSPEC_VERSION, training_image
from . import kubernetes as k8s
from .common import (PULL_POLICY, base_context, content_tag, dockerfile_quote, image_reference, image_repository,
                     object_name, qualified_image)
from .registry import ImageSource, TargetKind, TrainingResource, Workload, register

__all__ = ["render_gpu_cluster", "training_resource", "TRAINING_UID", "CONTAINER_NAME", "SPEC_DIR", "WHEEL",
           "resolved_spec_text", "worker_command", "job_name", "ENV_JOB_NAME", "ENV_WORKER_SUBDOMAIN",
           "SUBDOMAIN_ANNOTATION", "JOB_NAME_LABEL", "ENV_JOBSET_NAME", "JOBSET_NAME_LABEL", "REPLICATED_JOB",
           "KUEUE_QUEUE_LABEL", "KUEUE_PRIORITY_LABEL", "TRAINING_FILES", "TFJOB_WARNING", "RULES", "POD_SPECS",
           "KUSTOMIZE_CONFIG", "name_references", "cluster_names", "TFJOB_CONDITION_TYPES"]

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

# JobSet: the replicated job holding every worker, and where a worker learns its JobSet's name.
REPLICATED_JOB = "worker"
ENV_JOBSET_NAME = "TFSPEC_JOBSET_NAME"
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"  # set on every child Job and pod by the JobSet controller

# Kueue: the LocalQueue and the WorkloadPriorityClass of a job (labels on the JobSet, Job or TFJob).
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"

# The training object of each operator, under <target>/kubernetes/.
TRAINING_FILES = {"jobset": "jobset.yaml", "indexed_job": "job.yaml", "tfjob": "tfjob.yaml"}
# Each operator's training object: kind, API group, and where its pod spec sits (a kustomize field path).
POD_SPECS = {"jobset": ("JobSet", "jobset.x-k8s.io", "spec/replicatedJobs/template/spec/template/spec"),
             "tfjob": ("TFJob", "kubeflow.org", "spec/tfReplicaSpecs/Worker/template/spec"),
             "indexed_job": ("Job", "batch", "spec/template/spec")}
KUSTOMIZE_CONFIG = "kustomizeconfig.yaml"
# The condition types the training operator 1.9 sets on a TFJob (Created, Running, Restarting, Succeeded,
# Failed, Suspended), each at most once in status.conditions: Failed is at one of these places.
TFJOB_CONDITION_TYPES = 6
TFJOB_WARNING = ("operator tfjob needs the Kubeflow Training Operator 1.9, which is no longer maintained upstream "
                 "(Kubeflow Trainer v2 dropped TFJob, Kueue is deprecating its v1 integration)")


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
    """The spec this build resolved (overlay merged, variables expanded), without its environments and its
    ``workflow`` section (a worker never reads it; the image it names must not change this image's tag).

    Sections come in the spec's field order and nested keys sorted, so the text does not depend on the
    key order of the source file.
    """
    source = resolved.document.tree
    tree = _escape_dollars({key: _sorted_keys(source[key]) for key in Spec.model_fields
                            if key in source and key not in ("environments", "workflow")})
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
    """Pod spec values shared by the JobSet, the TFJob and the Indexed Job."""
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
    elif target.operator == "jobset":
        # The subdomain is the JobSet's name (its default): both come from the label the controller sets.
        jobset = f"$({ENV_JOBSET_NAME})"
        hosts = jobset_hosts(jobset, REPLICATED_JOB, jobset, target.workers, target.port)
        env += [
            {"name": ENV_JOBSET_NAME,
             "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOBSET_NAME_LABEL}']"}}},
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
    if target.service_account is not None:  # a cloud identity (IRSA, Workload Identity); its token stays unmounted
        pod["serviceAccountName"] = target.service_account
    if target.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": secret} for secret in target.image_pull_secrets]
    if target.operator == "indexed_job":
        pod["subdomain"] = f"{name}-workers"
        pod["restartPolicy"] = "OnFailure"
    elif target.operator == "jobset":
        # A failed worker fails its Job; the JobSet's failure policy then restarts every worker together
        # (MultiWorkerMirroredStrategy cannot take one worker back into a running cluster).
        pod["restartPolicy"] = "Never"
    if target.queue is not None and target.queue.priority_class is not None:
        pod["priorityClassName"] = target.queue.priority_class
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


def kueue_labels(target: GpuClusterTarget) -> dict[str, str]:
    """The Kueue labels of the training object (none without a queue)."""
    if target.queue is None:
        return {}
    out = {KUEUE_QUEUE_LABEL: target.queue.name}
    if target.queue.workload_priority_class is not None:
        out[KUEUE_PRIORITY_LABEL] = target.queue.workload_priority_class
    return out


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

    claim = claim_name(resolved, target)
    service_name = f"{name}-workers"
    pod = _pod(resolved, target, image, claim)
    pod_labels = k8s.labels(resolved, name, "training")
    object_labels = {**pod_labels, **kueue_labels(target)}
    pod_annotations = {SUBDOMAIN_ANNOTATION: service_name} if target.operator == "indexed_job" else {}
    identity: dict[str, Any] = {"labels": pod_labels, "annotations": pod_annotations, "pod": pod,
                                "workers": target.workers, "backoff_limit": target.backoff_limit,
                                "operator": target.operator}
    if target.queue is not None:  # only then: the names of jobs without a queue stay what they were
        identity["kueue"] = kueue_labels(target)
    kube = {
        **context,
        "namespace": target.namespace,
        "job_name": job_name(name, identity),
        "labels": pod_labels,
        "object_labels": object_labels,
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
        "replicated_job": REPLICATED_JOB,
    }
    resources: list[str] = []
    if target.storage.claim_name is None:
        resources.append("persistentvolumeclaim.yaml")
    resources += ["service.yaml", "job.yaml"] if target.operator == "indexed_job" else [TRAINING_FILES[target.operator]]
    for filename in resources:
        files[f"{t}/kubernetes/{filename}"] = render_template(f"gpu_cluster/kubernetes/{filename}.j2", **kube)
    configurations = [KUSTOMIZE_CONFIG]
    files[f"{t}/kubernetes/{KUSTOMIZE_CONFIG}"] = render_template(
        f"gpu_cluster/kubernetes/{KUSTOMIZE_CONFIG}.j2", **kube, training_kind=POD_SPECS[target.operator][0],
        name_references=k8s.kustomize_name_references(name_references(target)))
    files[f"{t}/kubernetes/kustomization.yaml"] = render_template("gpu_cluster/kubernetes/kustomization.yaml.j2",
                                                                  **kube, resources_list=resources,
                                                                  configurations=configurations)
    return files


def name_references(target: GpuClusterTarget) -> list[k8s.NameReference]:
    """The fields of the base's objects that name another object, for kustomize's ``nameReference``: the
    JobSet's or TFJob's pod spec (kustomize knows only built-in kinds), and for an Indexed Job (whose pod
    template it knows) the subdomain and the annotation that name the headless Service."""
    kind, group, pod_spec = POD_SPECS[target.operator]
    if target.operator == "indexed_job":
        pod_template = pod_spec.removesuffix("/spec")
        return [("Service", kind, group, f"{pod_spec}/subdomain"),
                ("Service", kind, group, f"{pod_template}/{k8s.annotation_path(SUBDOMAIN_ANNOTATION)}")]
    return k8s.pod_name_references(kind, group, pod_spec)


def training_resource(resolved: ResolvedSpec, target: GpuClusterTarget) -> TrainingResource:
    """The training object of ``target`` (the JobSet, Job or TFJob written to ``<target>/kubernetes/``, with
    ``metadata.namespace`` set as the kustomize base sets it when the target has a ``namespace``), the
    success and failure conditions of an Argo Workflows resource template that creates it and waits, and
    the claim it mounts (``storage.claim_name``, or the base's ``persistentvolumeclaim.yaml``: it must exist).

    The conditions use Argo's syntax, a Kubernetes label selector whose keys are paths into the object:

    * JobSet: ``status.terminalState`` becomes ``Completed`` or ``Failed`` once it finished (after its
      restarts);
    * Job: every index succeeded, or a pod failed (with ``restartPolicy: OnFailure`` the Job controller
      marks pods failed only when it terminates them, after ``backoffLimit`` container restarts);
    * TFJob: its own ``Succeeded`` and ``Failed`` conditions. Worker counts do not tell: with
      ``restartPolicy: OnFailure`` a worker's failures are container restarts and a TFJob past its backoff
      limit fails with its pods deleted, never counted failed; and a worker other than the chief may
      succeed first. A condition is an item of ``status.conditions``, which a selector key (a label key:
      letters, digits, ``-``, ``_``, ``.``) cannot pick by its type, so ``Failed`` is matched at each
      place it can take (Argo fails the step when any one failure requirement matches) and success is
      ``status.completionTime``, which the operator sets in the status update that adds ``Succeeded`` or
      ``Failed`` (Argo evaluates the failure requirements first).

    None of them ran against a live controller in the tests; ``tests/oracles`` replays each controller's
    status updates as its source makes them.
    """
    files = render_gpu_cluster(resolved, target)
    document = yaml.safe_load(files[f"{target.name}/kubernetes/{TRAINING_FILES[target.operator]}"])
    if target.namespace is not None:
        document["metadata"]["namespace"] = target.namespace
    if target.operator == "jobset":
        success, failure = "status.terminalState == Completed", "status.terminalState == Failed"
    elif target.operator == "indexed_job":
        # restartPolicy OnFailure restarts containers in place: pods count as failed only once the Job gave up
        success, failure = f"status.succeeded == {target.workers}", "status.failed > 0"
    else:
        success = "status.completionTime"
        failure = ",".join(f"status.conditions.{place}.type == Failed" for place in range(TFJOB_CONDITION_TYPES))
    return TrainingResource(document, success, failure, target.namespace, claim_name(resolved, target),
                            target.storage.mount_path)


def claim_name(resolved: ResolvedSpec, target: GpuClusterTarget) -> str:
    """The workers' PersistentVolumeClaim: the spec's existing one, or the base's ``<name>-data``."""
    return target.storage.claim_name or f"{object_name(resolved, target)}-data"


# --- validation rules (the kind's ``rules``, run by compiler/validate.py for each gpu_cluster target) ------

def storage_access(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    """A claim every worker mounts must be ReadWriteMany with several workers, and a generated ReadWriteMany
    claim needs a class that offers it: the usual default classes are ReadWriteOnce (the claim stays Pending)."""
    storage = target.storage
    if storage.access_mode == "ReadWriteOnce" and target.workers > 1:
        return [r.diagnostic(("targets", index, "storage", "access_mode"),
                             f"ReadWriteOnce storage cannot be mounted by {target.workers} workers on different nodes",
                             "use ReadWriteMany with a storage class that offers it, or one worker")]
    if storage.access_mode == "ReadWriteMany" and storage.claim_name is None and storage.storage_class is None:
        return [r.diagnostic(("targets", index, "storage"),
                             "a generated ReadWriteMany claim needs a storage_class that offers ReadWriteMany",
                             "set storage.storage_class (an NFS, CephFS, EFS or Filestore class), "
                             "or claim_name of an existing claim")]
    return []


# Folders the training pod mounts already: the storage volume must keep clear of them.
_POD_FOLDERS = ("/tmp", "/dev/shm", SPEC_DIR.rsplit("/", 1)[0])


def storage_mount_path(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    mount = target.storage.mount_path
    at = ("targets", index, "storage", "mount_path")
    if mount == "/" or any(part in ("", ".", "..") for part in mount.split("/")[1:]):
        return [r.diagnostic(at, f"mount path {mount!r} must be a normalised absolute folder (no '..', '.', '//' "
                             "or trailing '/', not '/')", "e.g. /workspace")]
    if any(mount == p or mount.startswith(p + "/") or p.startswith(mount + "/") for p in _POD_FOLDERS):
        return [r.diagnostic(at, f"mount path {mount!r} overlaps a folder the training pod already uses ("
                             + ", ".join(_POD_FOLDERS) + ")", "e.g. /workspace")]
    return []


def workers_train_together(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    """Every worker pod runs ``tfspec run --worker``, which trains one model across the workers with
    MultiWorkerMirroredStrategy; under another strategy each worker would train alone, so the runtime
    refuses it and the job would fail at start. One worker may train with any strategy."""
    kind = r.spec.training.distribution.kind
    if target.workers == 1 or kind == "multi_worker_mirrored":
        return []
    return [r.diagnostic(("targets", index, "workers"), f"{target.workers} workers train one model together only "
                         f"with multi_worker_mirrored; this spec trains with {kind}",
                         "set training.distribution.kind: multi_worker_mirrored, or workers: 1")]


def tfjob_port(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    if target.operator != "tfjob" or target.port == TFJOB_PORT:
        return []
    return [r.diagnostic(("targets", index, "port"), f"the TFJob operator uses port {TFJOB_PORT}, not {target.port}",
                         f"remove port (or set {TFJOB_PORT}); other ports need operator: jobset or indexed_job")]


def _gpu_range(gpus: int) -> str:
    return "1 GPU (GPU:0)" if gpus == 1 else f"{gpus} GPUs (GPU:0 to GPU:{gpus - 1})"


def placement_fits_the_workers(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    """``model.placement`` puts layers on GPUs every worker must have: checked against the gpu_cluster
    target with the fewest GPUs per worker (the first of them; the model must fit the smallest)."""
    placement = getattr(r.spec.model, "placement", None)
    clusters = [t for t in r.spec.targets if isinstance(t, GpuClusterTarget)]
    if not placement or min(clusters, key=lambda t: t.gpus_per_worker) is not target:
        return []
    out = []
    for group_index, group in enumerate(placement):
        device_type, _, number = group.device.partition(":")
        if device_type == "GPU" and int(number) >= target.gpus_per_worker:
            out.append(r.diagnostic(("model", "placement", group_index, "device"),
                                    f"device {group.device} is not available to this spec",
                                    f"the gpu_cluster target {target.name!r} gives each worker "
                                    f"{_gpu_range(target.gpus_per_worker)}; raise its gpus_per_worker or place "
                                    "the layers on a GPU it has"
                                    if target.gpus_per_worker else
                                    f"the gpu_cluster target {target.name!r} gives its workers no GPU; "
                                    "raise its gpus_per_worker or place the layers on CPU:0"))
    return out


def _shorten(index: int) -> tuple[KeyPath, str]:
    return ("targets", index, "name"), "shorten the spec name or the target name"


def _training_names(r: ResolvedSpec, index: int, target: GpuClusterTarget, job: str, shown: str,
                    how: str) -> list[GeneratedName]:
    """The training object named ``job`` and the names its controller derives from it (``shown``: ``job``
    with placeholders; ``how``: how the object is created, for the message)."""
    last = target.workers - 1
    path, hint = _shorten(index)
    letter = letter_first(r, path, hint)  # where a DNS-1035 name is reported
    if target.operator == "jobset":
        # JobSet's webhook (pkg/webhooks/jobset_webhook.go): child Jobs <jobset>-<replicated job>-<index>
        # and pods <job>-<completion index>-<5 random> must be DNS-1035 labels; the Service is the JobSet's name.
        child = f"-{REPLICATED_JOB}-0"
        return [
            GeneratedName(job, SERVICE_NAME, f"JobSet name{how} (also its headless Service's)", *letter, shown),
            GeneratedName(job + child, DNS1035_LABEL, f"JobSet child Job name{how}", *letter, shown + child),
            GeneratedName(f"{job}{child}-{last}-{RANDOM}", DNS1035_LABEL, f"JobSet worker pod name{how}", *letter,
                          f"{shown}{child}-{last}-<random>"),
        ]
    if target.operator == "tfjob":
        # The training operator's webhook: a DNS-1035 name; its Services <tfjob>-worker-<index> (GenGeneralName).
        return [
            GeneratedName(job, DNS1035_LABEL, f"TFJob name{how}", *letter, shown),
            GeneratedName(f"{job}-worker-{last}", SERVICE_NAME, f"TFJob worker Service name{how}", *letter,
                          f"{shown}-worker-{last}"),
        ]
    # Indexed Job: the pods carry the Job's name as a label value; pod i's host name is <job>-<i>.
    return [
        GeneratedName(job, JOB_NAME, f"Job name{how}", path, hint, shown),
        GeneratedName(f"{job}-{last}", HOST_NAME, f"worker host name{how}", path, hint, f"{shown}-{last}"),
    ]


def cluster_names(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[GeneratedName]:
    """Every Kubernetes name of the target's base, and the names the controllers derive from them; with the
    target as the workflow's ``training_target``, also those of the object the workflow creates (with a
    ``generateName``: 5 more random characters)."""
    name = object_name(r, target)
    path, hint = _shorten(index)
    out = [GeneratedName(name, LABEL_VALUE, "app.kubernetes.io/instance label value", path, hint)]
    if target.storage.claim_name is None:
        out.append(GeneratedName(f"{name}-data", OBJECT_NAME, "PersistentVolumeClaim name", path, hint))
    if target.operator == "indexed_job":
        service = letter_first(r, path, hint)
        out.append(GeneratedName(f"{name}-workers", SERVICE_NAME, "headless Service name", *service))
    job, shown = f"{name}-{'0' * JOB_HASH_LENGTH}", f"{name}-<hash>"
    out += _training_names(r, index, target, job, shown, "")
    workflow = r.spec.workflow
    if workflow is not None and workflow.training_target == target.name:
        made, made_shown = generated(job + "-", shown + "-")
        out += _training_names(r, index, target, made, made_shown, " as the workflow creates it (generateName)")
    return out


def tfjob_is_unmaintained(r: ResolvedSpec, index: int, target: GpuClusterTarget) -> list[Diagnostic]:
    """A build warning: TFJob needs a Training Operator that is no longer maintained."""
    if target.operator != "tfjob":
        return []
    return [r.diagnostic(("targets", index, "operator"), f"warning: {TFJOB_WARNING}",
                         "use operator: jobset (the default) or indexed_job")]


RULES = (storage_access, storage_mount_path, workers_train_together, tfjob_port, placement_fits_the_workers)


def gpu_cluster_defaults(spec: Spec, target: GpuClusterTarget) -> GpuClusterTarget:
    """One worker gets ReadWriteOnce storage: it needs no shared access, and that is what default classes offer."""
    if target.workers == 1 and "access_mode" not in target.storage.model_fields_set:
        return target.model_copy(update={"storage": target.storage.model_copy(update={"access_mode": "ReadWriteOnce"})})
    return target


def cluster_workload(target: GpuClusterTarget) -> Workload:
    """Every worker, for the whole run."""
    return Workload((), target.resources, tuple(target.tolerations), target.gpus_per_worker, target.workers,
                    target.workers, unit="worker")


def training_image_source(target: GpuClusterTarget) -> ImageSource:
    """The training image: tfspec (from a wheel) and the resolved spec."""
    return ImageSource(("image",), target.image, wheel=True)


TARGET = register(TargetKind("gpu_cluster", render=render_gpu_cluster, rules=RULES, defaults=gpu_cluster_defaults,
                             warnings=(tfjob_is_unmaintained,), names=cluster_names, workload=cluster_workload,
                             image=training_image_source, training_resource=training_resource))
