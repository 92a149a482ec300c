"""The ``workflow`` section → ``workflow/``: an Argo Workflows WorkflowTemplate whose DAG is the plan.

Rendered from the finished plan (the DAG is its steps and their inputs), so these files are not among
the plan's ``render`` steps: a change here never changes a fingerprint. Every value is computed here as
plain data; the templates in ``templates/workflow/`` only lay it out.

* One DAG task per step that runs (``render`` steps do not), named after the step id (``.`` → ``-``),
  ``dependencies`` from the step's inputs; a ``publish`` task after every step.
* Each task's pod runs :func:`step_command`: ``tfspec run --plan /plan/plan.json --step ID --store ...``
  with ``plan.json`` from a ConfigMap (named by its content) mounted read-only and an ``emptyDir`` for
  HOME and TMPDIR (the root filesystem is read-only). The step's own check against the store is the
  memoization: a pod whose entry is stored exits at once (docs/workflows.md says why not Argo's).
* Model steps (``train``, compression stages) request ``workflow.gpus`` GPUs and tolerate the GPU taint;
  the others run on CPU pods. With ``training_target``, ``train`` is a resource template that creates that
  gpu_cluster target's training object (:func:`tfspec.compiler.targets.gpu_cluster.training_resource`),
  skipped when the store holds the entry already, and a pod then uploads the entry from the job's volume.
* RBAC: the step containers get no API token; Argo's executor runs as a generated ServiceAccount whose
  Role may only report task results (and create, watch and own the training object, when there is one:
  with ``delete`` on it and ``update`` on ``workflows/finalizers``, as OwnerReferencesPermissionEnforcement
  asks of whoever sets a blocking owner reference). Its token Secret is named by the account's
  annotation, which Argo reads first.
* Lifetime: ``activeDeadlineSeconds`` bounds a run (Argo waits on a resource without a limit of its own)
  and ``ttlStrategy`` deletes a finished one, with the training object it owns.
* Names: ``<name>`` or ``<name>-<environment>`` and what derives from it (:func:`workflow_names`, checked
  with every other generated name); the training object lands in the workflow's namespace, which a
  ``training_target``'s own namespace must equal (:func:`workflow_training_namespace`).
* The step image: without ``workflow.image``, ``workflow/Dockerfile`` (the pinned TensorFlow image,
  ``-gpu`` when model steps get GPUs, with this tfspec's wheel and its ``runtime`` extra, ``storage`` too
  when the data is in object storage; UID 10001) and the image ``[<registry>/]<name>-workflow`` tagged
  ``<version>-<hash of what it holds>``, as the targets' images are.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import yaml

from tfspec.plan import MODEL_STEP_KINDS, Plan, Step, step_kind
from tfspec.spec.data import DataStorage
from tfspec.base.errors import Diagnostic
from tfspec.spec.released import StoreRelease
from tfspec.spec.workflow import Workflow

from .inputs import input_sources
from .kube_names import LABEL_VALUE, OBJECT_NAME, GeneratedName, generated
from tfspec.base.locations import is_object_store
from .naming import dist_name, object_name
from .render import header_lines, render_template
from .resolve import ResolvedSpec
from .targets import TrainingResource, target_image, target_kind, target_kinds
from .targets import kubernetes as k8s
from .targets.common import PULL_POLICY, content_tag, dockerfile_quote, image_reference, qualified_image
from .targets.gpu_cluster import WHEEL
from tfspec.base.versions import TFSPEC_VERSION, training_image

__all__ = ["WORKFLOW_DIR", "PLAN_MOUNT", "PLAN_PATH", "SCRATCH_MOUNT", "PUBLISH_TASK", "STEP_UID", "STEP_IMAGE_NAME",
           "render_workflow", "step_command", "step_image_extras", "task_name", "RULES", "workflow_names",
           "executor_name", "TOKEN_NAME_ANNOTATION", "name_references", "workflow_training_namespace"]

WORKFLOW_DIR = "workflow"
PLAN_MOUNT = "/plan"
PLAN_PATH = f"{PLAN_MOUNT}/plan.json"
SCRATCH_MOUNT = "/scratch"
PUBLISH_TASK = "publish"
STEP_UID = 10001  # the training image's user (gpu_cluster.TRAINING_UID)
STEP_PARAMETER = "step"
STEP_IMAGE_NAME = "workflow"  # the derived step image: [<registry>/]<spec name>-workflow
PLAN_HASH_LENGTH = 8
KUSTOMIZE_CONFIG = "kustomizeconfig.yaml"
_PLAN_KEY = "plan.json"
# Argo looks the executor's token Secret up by this ServiceAccount annotation before it falls back to
# <account>.service-account-token (util/secrets/secret_name.go): with it, a kustomize nameSuffix that
# renames the account and the Secret keeps them together (kustomizeconfig.yaml names the annotation).
TOKEN_NAME_ANNOTATION = "workflows.argoproj.io/service-account-token.name"
TOKEN_ACCOUNT_ANNOTATION = "kubernetes.io/service-account.name"


def task_name(step_id: str) -> str:
    """A DAG task name (letters, digits, ``-``): ``compress.0.prune`` → ``compress-0-prune``."""
    return step_id.replace(".", "-").replace("_", "-")


def step_command(workflow: Workflow, step: str | None, *, plan_path: str = PLAN_PATH,
                 cache_dir: str | None = None, upload_only: bool = False, probe: bool = False) -> list[str]:
    """The command of a step's pod (``step`` None: the publish task): nothing but the plan and the store."""
    command = ["tfspec", "run", "--plan", plan_path]
    command += ["--publish"] if step is None else ["--step", step]
    command += ["--store", workflow.store]
    if workflow.endpoint_url:
        command += ["--store-endpoint", workflow.endpoint_url]
    if workflow.region:
        command += ["--store-region", workflow.region]
    command += ["--store-key-env", workflow.credentials.access_key_id_env,
                "--store-secret-env", workflow.credentials.secret_access_key_env]
    if cache_dir is not None:
        command += ["--cache-dir", cache_dir]
    if upload_only:
        command.append("--upload-only")
    if probe:
        command.append("--probe")
    else:
        command.append("--quiet")
    return command


def _env(workflow: Workflow, data_storage: DataStorage | None) -> list[dict[str, Any]]:
    """The pods' variables: scratch folders, and the credentials of the store and of the data's bucket
    (``data.storage``), each from its Secret when the spec names one."""
    env: list[dict[str, Any]] = [{"name": "HOME", "value": SCRATCH_MOUNT}, {"name": "TMPDIR", "value": SCRATCH_MOUNT},
                                 {"name": "CI", "value": "true"}]  # no progress bars in pod logs
    named: set[str] = set()
    for credentials in (workflow.credentials, data_storage.credentials if data_storage is not None else None):
        if credentials is None or credentials.kubernetes_secret is None:
            continue
        for variable in (credentials.access_key_id_env, credentials.secret_access_key_env):
            if variable not in named:  # the same variable from two Secrets: the store's wins
                named.add(variable)
                env.append({"name": variable, "valueFrom": {"secretKeyRef": {"name": credentials.kubernetes_secret,
                                                                             "key": variable}}})
    return env


def _container(workflow: Workflow, env: list[dict[str, Any]], args: list[str], gpus: int,
               extra_mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "image": workflow.image,
        "imagePullPolicy": PULL_POLICY,
        "command": args[:1],
        "args": args[1:],
        "env": env,
        "resources": k8s.resources(workflow.resources, gpus),
        "securityContext": k8s.container_security_context(),
        "volumeMounts": [{"name": "plan", "mountPath": PLAN_MOUNT, "readOnly": True},
                         {"name": "scratch", "mountPath": SCRATCH_MOUNT}, *(extra_mounts or [])],
    }


def _placement(workflow: Workflow, gpus: int) -> dict[str, Any]:
    """``nodeSelector`` and ``tolerations`` of a template (GPU pods only)."""
    out: dict[str, Any] = {}
    if gpus > 0:
        selector = k8s.node_selector(workflow.node_selector, gpus)
        if selector:
            out["nodeSelector"] = selector
        out["tolerations"] = k8s.tolerations(workflow.tolerations, gpus)
    return out


def _retry() -> dict[str, Any]:
    # Infrastructure errors only (a node lost, a pod evicted or preempted): a failed step fails again.
    return {"limit": "2", "retryPolicy": "OnError"}


def _step_template(workflow: Workflow, env: list[dict[str, Any]], name: str, gpus: int) -> dict[str, Any]:
    args = step_command(workflow, "{{inputs.parameters.%s}}" % STEP_PARAMETER)
    return {"name": name, "inputs": {"parameters": [{"name": STEP_PARAMETER}]}, "retryStrategy": _retry(),
            **_placement(workflow, gpus), "container": _container(workflow, env, args, gpus)}


def _gpu_steps(plan: Plan, workflow: Workflow) -> set[str]:
    return {s.id for s in plan.steps if s.kind in MODEL_STEP_KINDS} if workflow.gpus > 0 else set()


def _training(resolved: ResolvedSpec, workflow: Workflow) -> TrainingResource | None:
    """The ``training_target``'s training object, named by the API server at each creation."""
    if workflow.training_target is None:
        return None
    target = next(t for t in resolved.spec.targets if t.name == workflow.training_target)
    make = target_kind(target.kind).training_resource
    assert make is not None  # workflow_training_target
    training = make(resolved, target)
    manifest = dict(training.manifest)
    # created anew by every workflow run: a generated name never collides with an earlier run's object
    metadata = dict(manifest["metadata"])
    manifest["metadata"] = {"generateName": metadata.pop("name") + "-", **metadata}
    return dataclasses.replace(training, manifest=manifest)


def _plural(kind: str) -> str:
    return kind.lower() + "s"  # Job → jobs, TFJob → tfjobs, JobSet → jobsets


def _tasks(plan: Plan, gpu_steps: set[str], training: bool) -> list[dict[str, Any]]:
    runnable = [s for s in plan.steps if step_kind(s.kind).runs]
    ids = {s.id for s in runnable}
    tasks: list[dict[str, Any]] = []
    for step in runnable:
        dependencies = [task_name(i) for i in step.inputs if i in ids]
        if training and step.kind == "train":
            # probe the store, create the training object only when the entry is missing, upload its entry
            tasks.append({"name": "train-probe", "template": "train-probe", "dependencies": dependencies})
            tasks.append({"name": "train-job", "template": "train-job", "dependencies": ["train-probe"],
                          "when": "{{tasks.train-probe.outputs.result}} == missing"})
            tasks.append({"name": task_name(step.id), "template": "train-store", "dependencies": ["train-job"]})
            continue
        tasks.append({"name": task_name(step.id), "template": "gpu-step" if step.id in gpu_steps else "step",
                      "dependencies": dependencies,
                      "arguments": {"parameters": [{"name": STEP_PARAMETER, "value": step.id}]}})
    tasks.append({"name": PUBLISH_TASK, "template": PUBLISH_TASK, "dependencies": [task_name(s.id) for s in runnable]})
    for task in tasks:
        if not task["dependencies"]:
            del task["dependencies"]
    return tasks


def _check_names(plan: Plan) -> None:
    names = [task_name(s.id) for s in plan.steps if step_kind(s.kind).runs] + [PUBLISH_TASK]
    assert len(set(names)) == len(names), names  # step ids are <target>.<kind> or fixed words: no clashes


def step_image_extras(resolved: ResolvedSpec) -> tuple[str, ...]:
    """The tfspec extras a step pod needs: the runtime, and fsspec's file systems when data or a released model
    is read from object storage (the store itself is reached with boto3, part of the runtime)."""
    remote = any(source.how == "objects" for source in input_sources(resolved)) or any(
        isinstance(getattr(t, "released", None), StoreRelease) for t in resolved.spec.targets)
    return ("runtime", "storage") if remote else ("runtime",)


def _step_image(resolved: ResolvedSpec, workflow: Workflow) -> tuple[str, str]:
    """The derived step image's reference and its ``workflow/Dockerfile``."""
    spec = resolved.spec
    base_image = training_image(workflow.gpus)
    extras = step_image_extras(resolved)
    name = object_name(spec.name, STEP_IMAGE_NAME)
    repository = f"{spec.registry}/{name}" if spec.registry else name
    # What the image holds: tfspec (its version names the wheel) with these extras on this base, the user.
    tag = content_tag(spec.version, STEP_IMAGE_NAME, TFSPEC_VERSION, base_image, extras, STEP_UID)
    image = image_reference(repository, tag)
    labels = [
        ("org.opencontainers.image.title", repository),
        ("org.opencontainers.image.version", tag),
        ("org.opencontainers.image.base.name", qualified_image(base_image)),
    ]
    dockerfile = render_template(
        "workflow/Dockerfile.j2",
        header=header_lines(resolved),
        spec_name=spec.name,
        base_image=base_image,
        oci_labels=[(key, dockerfile_quote(value)) for key, value in labels],
        wheel=WHEEL,
        extras=",".join(extras),
        uid=STEP_UID,
        image_tag=image,
    )
    return image, dockerfile


def render_workflow(resolved: ResolvedSpec, plan: Plan) -> dict[str, str]:
    """``workflow/`` files of a spec with a ``workflow`` section (empty without one)."""
    workflow = resolved.spec.workflow
    if workflow is None:
        return {}
    _check_names(plan)
    dockerfile = None
    if workflow.image is None:
        image, dockerfile = _step_image(resolved, workflow)
        workflow = workflow.model_copy(update={"image": image})
    name = plan.spec.dist_name
    labels = k8s.labels(resolved, name, "workflow")
    # the pods' plan: the build's, its root the plan's own folder (data they read is in object storage)
    plan_text = plan.model_copy(update={"root": "."}).to_text()
    config_map = f"{name}-plan-{hashlib.sha256(plan_text.encode('utf-8')).hexdigest()[:PLAN_HASH_LENGTH]}"
    executor = executor_name(name)
    gpu_steps = _gpu_steps(plan, workflow)
    training = _training(resolved, workflow)

    env = _env(workflow, resolved.spec.data.storage)
    templates: list[dict[str, Any]] = [_step_template(workflow, env, "step", 0)]
    if gpu_steps:
        templates.append(_step_template(workflow, env, "gpu-step", workflow.gpus))
    rules = [{"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}]
    if training is not None:
        manifest = training.manifest
        group = manifest["apiVersion"].rpartition("/")[0]
        # create it and wait for it; delete too, and update the workflow's finalizers: the owner reference
        # Argo sets blocks the owner's deletion, which the OwnerReferencesPermissionEnforcement admission
        # plugin allows only to whoever may delete the object and set finalizers on its owner.
        rules.append({"apiGroups": [group], "resources": [_plural(manifest["kind"])],
                      "verbs": ["create", "delete", "get", "list", "watch"]})
        rules.append({"apiGroups": ["argoproj.io"], "resources": ["workflows/finalizers"], "verbs": ["update"]})
        mount, claim = training.mount_path, training.claim
        templates.append({"name": "train-probe", "retryStrategy": _retry(),
                          "container": _container(workflow, env, step_command(workflow, "train", probe=True), 0)})
        templates.append({"name": "train-job", "resource": {
            "action": "create", "setOwnerReference": True, "successCondition": training.success,
            "failureCondition": training.failure,
            # folded (PyYAML breaks a line at the first space past the width) to stay within 80 columns, 10 deep
            "manifest": yaml.safe_dump(manifest, sort_keys=False, default_flow_style=False, width=56)}})
        store = _container(workflow, env, step_command(workflow, "train", cache_dir=f"{mount.rstrip('/')}/cache",
                                                       upload_only=True), 0,
                           [{"name": "training-volume", "mountPath": mount}])
        templates.append({"name": "train-store", "retryStrategy": _retry(), "container": store,
                          "volumes": [{"name": "training-volume", "persistentVolumeClaim": {"claimName": claim}}]})
    templates.append({"name": PUBLISH_TASK, "retryStrategy": _retry(),
                      "container": _container(workflow, env, step_command(workflow, None), 0)})

    spec: dict[str, Any] = {"entrypoint": "plan", "parallelism": workflow.parallelism,
                            "activeDeadlineSeconds": workflow.active_deadline_seconds,
                            "ttlStrategy": {"secondsAfterCompletion": workflow.ttl_seconds_after_finished}}
    if workflow.service_account is not None:
        spec["serviceAccountName"] = workflow.service_account
    spec["automountServiceAccountToken"] = False
    spec["executor"] = {"serviceAccountName": executor}
    if workflow.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": secret} for secret in workflow.image_pull_secrets]
    spec["securityContext"] = k8s.pod_security_context(STEP_UID, fs_group=training is not None)
    spec["podGC"] = {"strategy": "OnPodSuccess"}  # failed pods stay for their logs
    spec["volumes"] = [{"name": "plan", "configMap": {"name": config_map}}, {"name": "scratch", "emptyDir": {}}]
    context = {
        "header": header_lines(resolved),
        "name": name,
        "namespace": workflow.namespace,
        "labels": labels,
        "annotations": k8s.annotations(resolved),
        "config_map": config_map,
        "plan_key": _PLAN_KEY,
        "plan_text": plan_text,
        "executor": executor,
        "token_secret": token_secret(executor),
        "account_annotations": {TOKEN_NAME_ANNOTATION: token_secret(executor)},
        "token_annotations": {TOKEN_ACCOUNT_ANNOTATION: executor},
        "config_map_annotations": k8s.KEEP_ON_SYNC,
        "name_references": k8s.kustomize_name_references(name_references()),
        "rules": rules,
        "spec": spec,
        "tasks": _tasks(plan, gpu_steps, training is not None),
        "templates": templates,
        "store": workflow.store,
        "resources_list": ["configmap.yaml", "rbac.yaml", "workflowtemplate.yaml"],
        "configurations": [KUSTOMIZE_CONFIG],
    }
    files = {f"{WORKFLOW_DIR}/{f}": render_template(f"workflow/{f}.j2", **context)
             for f in ("configmap.yaml", "rbac.yaml", "workflowtemplate.yaml", "workflow.yaml", "kustomization.yaml",
                       KUSTOMIZE_CONFIG)}
    if dockerfile is not None:
        files[f"{WORKFLOW_DIR}/Dockerfile"] = dockerfile
    return files


def executor_name(name: str) -> str:
    """The executor's ServiceAccount, Role and RoleBinding: ``<name>-workflow-executor``."""
    return f"{name}-workflow-executor"


def token_secret(executor: str) -> str:
    """The executor's token Secret, named as Argo's fallback would look it up."""
    return f"{executor}.service-account-token"


def name_references() -> list[k8s.NameReference]:
    """The fields of the workflow's objects that name another object (kustomize knows none of the
    WorkflowTemplate's, nor the token annotations): the plan ConfigMap, the executor's and the steps'
    ServiceAccounts, the Secrets of the store's credentials and of image pulls, the training claim."""
    template = ("WorkflowTemplate", "argoproj.io")
    return [
        ("ConfigMap", *template, "spec/volumes/configMap/name"),
        ("ServiceAccount", *template, "spec/executor/serviceAccountName"),
        ("ServiceAccount", *template, "spec/serviceAccountName"),
        ("Secret", *template, "spec/imagePullSecrets/name"),
        ("Secret", *template, "spec/templates/container/env/valueFrom/secretKeyRef/name"),
        ("PersistentVolumeClaim", *template, "spec/templates/volumes/persistentVolumeClaim/claimName"),
        ("Secret", "ServiceAccount", "", k8s.annotation_path(TOKEN_NAME_ANNOTATION)),
        ("ServiceAccount", "Secret", "", k8s.annotation_path(TOKEN_ACCOUNT_ANNOTATION)),
    ]


def workflow_names(r: ResolvedSpec) -> list[GeneratedName]:
    """The names of the workflow's objects, ``<name>`` or ``<name>-<environment>`` and what derives from it.

    The environment's name becomes part of them: one that makes them invalid (a ``_``, or too long with
    the spec's name) is reported at the environment, the spec's name otherwise."""
    if r.spec.workflow is None:
        return []
    name = dist_name(r.spec.name, r.environment)
    if r.environment:
        path: tuple[str, ...] = ("environments", r.environment)
        hint = ("the environment's name is part of the workflow's object names: use lower-case letters, digits "
                "and '-', and keep '<spec name>-<environment>' within 63 characters")
    else:
        path, hint = ("name",), "shorten the spec name"
    executor = executor_name(name)
    workflow_name, workflow_shown = generated(name + "-")
    return [
        GeneratedName(name, OBJECT_NAME, "WorkflowTemplate name", path, hint),
        GeneratedName(name, LABEL_VALUE, "WorkflowTemplate name (the workflow-template label of its runs)", path, hint),
        GeneratedName(workflow_name, OBJECT_NAME, "Workflow name (generateName)", path, hint, workflow_shown),
        GeneratedName(f"{name}-plan-{'0' * PLAN_HASH_LENGTH}", OBJECT_NAME, "plan ConfigMap name", path, hint,
                      f"{name}-plan-<hash>"),
        GeneratedName(executor, OBJECT_NAME, "executor ServiceAccount, Role and RoleBinding name", path, hint),
        GeneratedName(token_secret(executor), OBJECT_NAME, "executor token Secret name", path, hint),
    ]


# --- validation rules (run by compiler/validate.py) --------------------------------------------------

def _training_kinds() -> str:
    """The registered kinds that train (a ``training_target`` names a target of one of them)."""
    return " or ".join(entry.kind for entry in target_kinds() if entry.training_resource is not None)


def workflow_training_target(r: ResolvedSpec) -> list[Diagnostic]:
    """``training_target`` names a target whose kind trains (a gpu_cluster target)."""
    workflow = r.spec.workflow
    if workflow is None or workflow.training_target is None:
        return []
    clusters = [t.name for t in r.spec.targets if target_kind(t.kind).training_resource is not None]
    if workflow.training_target in clusters:
        return []
    hint = f"name one of {', '.join(clusters)}" if clusters else f"add a {_training_kinds()} target, or remove the key"
    return [r.diagnostic(("workflow", "training_target"),
                         f"no {_training_kinds()} target is named {workflow.training_target!r}", hint)]


def workflow_training_namespace(r: ResolvedSpec) -> list[Diagnostic]:
    """The training object is created in the workflow's namespace; a ``training_target`` with another
    ``namespace`` would be out of reach: the executor's Role grants nothing there, an owner reference
    cannot name a workflow in another namespace (the garbage collector deletes such a dependent) and the
    upload pod cannot mount a claim of another namespace."""
    workflow = r.spec.workflow
    if workflow is None or workflow.training_target is None:
        return []
    for index, target in enumerate(r.spec.targets):
        if target.name != workflow.training_target or target_kind(target.kind).training_resource is None:
            continue
        namespace = getattr(target, "namespace", None)
        if namespace is not None and namespace != workflow.namespace:
            at_workflow = "namespace" in workflow.model_fields_set
            path = ("workflow", "namespace") if at_workflow else ("targets", index, "namespace")
            return [r.diagnostic(path, f"the workflow (namespace {workflow.namespace!r}) creates the training job "
                                 f"of {target.name!r} in its own namespace, but that target's namespace is "
                                 f"{namespace!r}", "give workflow.namespace and the target's namespace the "
                                 "same value: a Role, an owner reference and a volume claim reach only their own "
                                 "namespace")]
    return []


_POD_VIEW = "a workflow's pods see only plan.json and the store, not files beside the spec"


def workflow_inputs_reachable(r: ResolvedSpec) -> list[Diagnostic]:
    """The pods see the plan and the store only: data files must be in object storage (or built in), and
    the model cannot come from files beside the spec (a builder module, a SavedModel folder)."""
    if r.spec.workflow is None:
        return []
    out = []
    path = getattr(r.spec.data.source, "path", None)  # built-in sources (sklearn_digits) have none
    if path is not None and not is_object_store(path):
        out.append(r.diagnostic(("data", "source", "path"), _POD_VIEW,
                                "put the data in object storage (s3://...) and point path at it"))
    model = r.spec.model
    for key in ("builder", "path"):  # BuilderModel.builder, SavedModelModel.path
        if getattr(model, key, None) is not None:
            out.append(r.diagnostic(("model", key), _POD_VIEW, "describe the model with layers "
                                    "(sequential or functional), or run this spec with tfspec run"))
    for index, target in enumerate(r.spec.targets):  # a released model in a dist folder or a local path
        if getattr(getattr(target, "released", None), "path", None) is not None:
            out.append(r.diagnostic(("targets", index, "released", "path"), _POD_VIEW,
                                    "compare with the model store's version (released: {kind: model_store}), or run "
                                    "this spec with tfspec run"))
    return out


def workflow_image_repository(r: ResolvedSpec) -> list[Diagnostic]:
    """The derived step image ``<name>-workflow`` must not be the repository of a target's image (a target
    named ``workflow``): pushing one would overwrite the other's tags."""
    workflow = r.spec.workflow
    if workflow is None or workflow.image is not None:
        return []
    for index, target in enumerate(r.spec.targets):
        source = target_image(target)
        if target.name == STEP_IMAGE_NAME and source is not None:
            if source.explicit is None:
                return [r.diagnostic(("targets", index, "name"),
                                     f"the image of target {STEP_IMAGE_NAME!r} would be the workflow's step image "
                                     f"{object_name(r.spec.name, STEP_IMAGE_NAME)!r}",
                                     "rename the target, or set workflow.image")]
    return []


RULES = (workflow_training_target, workflow_training_namespace, workflow_inputs_reachable, workflow_image_repository)
