"""The ``workflow`` section → ``workflow/``: an Argo WorkflowTemplate whose DAG is the plan.

Checked with Argo's own CRD schema (tests/data/argo, unknown fields rejected as the API server's strict
field validation does), kubernetes-validate (the ConfigMap and RBAC objects), kubectl kustomize and
yamllint, and against the plan it was rendered from.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.compiler.workflow import PLAN_PATH, step_command, task_name
from tfspec.plan import MODEL_STEP_KINDS, Plan
from oracles import argo as argo_oracle
from oracles import argocd as argocd_oracle
from oracles import kubernetes as kube_oracle
from tfspec_testing import EXAMPLE, ROOT, assert_golden, tfspec_command

CRD = ROOT / "tests" / "data" / "argo" / "argoproj.io_workflowtemplates.yaml"
FILES = ("configmap.yaml", "rbac.yaml", "workflowtemplate.yaml", "workflow.yaml", "kustomization.yaml",
         "kustomizeconfig.yaml")
KUBERNETES_VERSION = "1.37.0"
YAMLLINT = "{extends: default, rules: {line-length: {allow-non-breakable-inline-mappings: true}}}"

VARIANTS = {
    # one pod per step, model steps on a GPU, the store's keys from a Secret
    "gpu": """
workflow:
  image: registry.example.com/ml/digits-cluster:3
  store: s3://ml-steps/teams/vision
  endpoint_url: https://minio.example.com
  credentials: {kubernetes_secret: step-store}
  namespace: ml-pipelines
  gpus: 1
  node_selector: {cloud.google.com/gke-accelerator: nvidia-l4}
""",
    # train as the gpu_cluster target's multi-worker training object, a cloud identity for the bucket
    "multi-worker": """
workflow:
  image: registry.example.com/ml/digits-cluster:3
  store: s3://ml-steps
  region: eu-west-1
  namespace: ml-pipelines
  service_account: bucket-reader
  training_target: cluster
""",
}


def _tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[test]')"
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[CompileResult, Path]]:
    """Each variant compiled, and its workflow/ folder written for the tools."""
    out: dict[str, tuple[CompileResult, Path]] = {}
    for name, section in VARIANTS.items():
        folder = tmp_path_factory.mktemp(name)
        spec = folder / "deploy.yaml"
        spec.write_text(EXAMPLE.read_text("utf-8") + section, "utf-8")
        result = compile_spec(spec)
        assert result.ok, [d.format() for d in result.diagnostics]
        for path, text in result.files.items():
            if path.startswith("workflow/"):
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_text(text, "utf-8")
        out[name] = (result, folder / "workflow")
    return out


def _load(built: dict[str, tuple[CompileResult, Path]], variant: str, name: str) -> Any:
    return yaml.safe_load(built[variant][0].files[f"workflow/{name}"])


def _templates(workflow_template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in workflow_template["spec"]["templates"]}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", FILES)
def test_golden(built: dict[str, tuple[CompileResult, Path]], variant: str, name: str,
                request: pytest.FixtureRequest) -> None:
    assert_golden(f"workflow/{variant}/{name}", built[variant][0].files[f"workflow/{name}"], request)


def test_no_workflow_section_renders_nothing() -> None:
    result = compile_spec(EXAMPLE)
    assert result.ok and not [p for p in result.files if p.startswith("workflow/")]


def test_the_dag_is_the_plan(built: dict[str, tuple[CompileResult, Path]]) -> None:
    result, _ = built["gpu"]
    assert result.plan is not None
    runnable = [s for s in result.plan.steps if s.kind != "render"]
    tasks = _templates(_load(built, "gpu", "workflowtemplate.yaml"))["plan"]["dag"]["tasks"]
    assert [t["name"] for t in tasks] == [task_name(s.id) for s in runnable] + ["publish"]
    for step, task in zip(runnable, tasks):
        assert task.get("dependencies", []) == [task_name(i) for i in step.inputs], step.id
        assert task["arguments"]["parameters"] == [{"name": "step", "value": step.id}]
        assert task["template"] == ("gpu-step" if step.kind in MODEL_STEP_KINDS else "step"), step.id
    assert tasks[-1]["dependencies"] == [task_name(s.id) for s in runnable]


def test_each_pod_runs_its_step_from_the_plan_and_the_store(built: dict[str, tuple[CompileResult, Path]]) -> None:
    result, _ = built["gpu"]
    workflow = result.resolved.spec.workflow
    templates = _templates(_load(built, "gpu", "workflowtemplate.yaml"))
    for name in ("step", "gpu-step"):
        container = templates[name]["container"]
        assert container["command"] + container["args"] == step_command(workflow, "{{inputs.parameters.step}}")
        assert container["args"][:5] == ["run", "--plan", PLAN_PATH, "--step", "{{inputs.parameters.step}}"]
        assert ["--store", "s3://ml-steps/teams/vision"] == container["args"][5:7]
        assert {"name": "plan", "mountPath": "/plan", "readOnly": True} in container["volumeMounts"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        assert secrets == {"AWS_ACCESS_KEY_ID": {"name": "step-store", "key": "AWS_ACCESS_KEY_ID"},
                           "AWS_SECRET_ACCESS_KEY": {"name": "step-store", "key": "AWS_SECRET_ACCESS_KEY"}}
    assert templates["gpu-step"]["container"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu" not in templates["step"]["container"]["resources"]["limits"]
    gpu_taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert gpu_taint in templates["gpu-step"]["tolerations"]
    assert templates["gpu-step"]["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert "tolerations" not in templates["step"] and "nodeSelector" not in templates["step"]
    publish = templates["publish"]["container"]
    assert publish["command"] + publish["args"] == step_command(workflow, None)


def test_the_config_map_carries_the_plan(built: dict[str, tuple[CompileResult, Path]]) -> None:
    result, _ = built["gpu"]
    config_map = _load(built, "gpu", "configmap.yaml")
    plan = Plan.from_json(config_map["data"]["plan.json"])
    assert plan.root == "." and plan.steps == result.plan.steps
    spec = _load(built, "gpu", "workflowtemplate.yaml")["spec"]
    assert {"name": "plan", "configMap": {"name": config_map["metadata"]["name"]}} in spec["volumes"]
    assert config_map["metadata"]["name"].startswith("digits-plan-")


def test_no_step_container_gets_an_api_token(built: dict[str, tuple[CompileResult, Path]]) -> None:
    for variant in VARIANTS:
        spec = _load(built, variant, "workflowtemplate.yaml")["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["executor"] == {"serviceAccountName": "digits-workflow-executor"}
        assert spec["securityContext"]["runAsNonRoot"] is True
        objects = {(o["kind"], o["metadata"]["name"]): o
                   for o in yaml.safe_load_all(built[variant][0].files["workflow/rbac.yaml"]) if o}
        account = objects[("ServiceAccount", "digits-workflow-executor")]
        assert account["automountServiceAccountToken"] is False
        token = objects[("Secret", "digits-workflow-executor.service-account-token")]
        assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": "digits-workflow-executor"}
        binding = objects[("RoleBinding", "digits-workflow-executor")]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "digits-workflow-executor",
                                        "namespace": "ml-pipelines"}]
    assert _load(built, "multi-worker", "workflowtemplate.yaml")["spec"]["serviceAccountName"] == "bucket-reader"


def _role(built: dict[str, tuple[CompileResult, Path]], variant: str) -> dict[str, Any]:
    objects = yaml.safe_load_all(built[variant][0].files["workflow/rbac.yaml"])
    return next(o for o in objects if o and o["kind"] == "Role")


def test_the_roles_are_least_privilege(built: dict[str, tuple[CompileResult, Path]]) -> None:
    report = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    assert _role(built, "gpu")["rules"] == [report]
    assert _role(built, "multi-worker")["rules"] == [
        report,
        {"apiGroups": ["jobset.x-k8s.io"], "resources": ["jobsets"], "verbs": ["create", "delete", "get", "list", "watch"]},
        {"apiGroups": ["argoproj.io"], "resources": ["workflows/finalizers"], "verbs": ["update"]}]


def test_the_executor_may_create_the_training_object_where_owner_references_are_enforced(
        built: dict[str, tuple[CompileResult, Path]]) -> None:
    """The executor creates the training object with the controller reference Argo adds (blockOwnerDeletion):
    under OwnerReferencesPermissionEnforcement that takes delete on the object and update on
    workflows/finalizers (tests/oracles/kubernetes.py), besides create and get (tests/oracles/argo.py)."""
    rules = _role(built, "multi-worker")["rules"]
    resource = _templates(_load(built, "multi-worker", "workflowtemplate.yaml"))["train-job"]["resource"]
    assert resource["setOwnerReference"] is True
    needed = argo_oracle.executor_needs(yaml.safe_load(resource["manifest"]), set_owner_reference=True)
    assert ("argoproj.io", "workflows/finalizers", "update") in needed
    missing = [need for need in needed if not kube_oracle.rbac_allows(rules, *need)]
    assert not missing, missing


def test_runs_are_bounded_in_time_and_deleted_after(built: dict[str, tuple[CompileResult, Path]],
                                                    tmp_path: Path) -> None:
    """A training object that a queue never admits is waited on until the workflow's deadline only
    (Argo polls a resource without a limit of its own), and a finished run is deleted with what it created."""
    for variant in VARIANTS:
        spec = _load(built, variant, "workflowtemplate.yaml")["spec"]
        assert argo_oracle.wait_bound(spec) == 172800  # two days
        assert argo_oracle.deleted_after(spec, "Succeeded") == argo_oracle.deleted_after(spec, "Failed") == 86400
    path = tmp_path / "deploy.yaml"
    path.write_text(EXAMPLE.read_text("utf-8") + VARIANTS["multi-worker"]
                    + "  active_deadline_seconds: 604800\n  ttl_seconds_after_finished: 3600\n", "utf-8")
    result = compile_spec(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    spec = yaml.safe_load(result.files["workflow/workflowtemplate.yaml"])["spec"]
    assert (argo_oracle.wait_bound(spec), argo_oracle.deleted_after(spec, "Failed")) == (604800, 3600)


def test_the_training_object_lands_in_the_workflows_namespace(built: dict[str, tuple[CompileResult, Path]]) -> None:
    """Its owner (the workflow) must be in its namespace: the manifest names none, so Argo creates it in the
    workflow's, and the claim the upload pod mounts is looked up there too."""
    workflow = _load(built, "multi-worker", "workflowtemplate.yaml")
    manifest = yaml.safe_load(_templates(workflow)["train-job"]["resource"]["manifest"])
    assert kube_oracle.owner_in_reach(workflow["metadata"]["namespace"], manifest["metadata"].get("namespace"),
                                      workflow["metadata"]["namespace"])


@pytest.mark.parametrize("said_in_workflow", [True, False], ids=["workflow-namespace", "default-namespace"])
def test_a_training_target_in_another_namespace_is_refused_at_the_line(tmp_path: Path, said_in_workflow: bool) -> None:
    text = EXAMPLE.read_text("utf-8").replace("    operator: jobset",
                                              "    namespace: ml-training\n    operator: jobset")
    text += ("workflow:\n  image: registry.example.com/ml/digits-cluster:3\n  store: s3://ml-steps\n"
             "  training_target: cluster\n" + ("  namespace: ml-pipelines\n" if said_in_workflow else ""))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text, "utf-8")
    result = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = text.splitlines()
    if said_in_workflow:  # reported where the workflow's namespace is set
        where, namespace = f"{len(lines)}:3: workflow.namespace", "ml-pipelines"
    else:  # the workflow's default namespace: reported at the target's
        where, namespace = f"{lines.index('    namespace: ml-training') + 1}:5: targets[2].namespace", "default"
    assert (f"deploy.yaml:{where}: the workflow (namespace {namespace!r}) creates the training job of 'cluster' "
            "in its own namespace, but that target's namespace is 'ml-training'") in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
    # the rule behind it: a namespaced owner reaches only its own namespace
    assert not kube_oracle.owner_in_reach(namespace, "ml-training", namespace)


def test_image_pull_secrets_and_the_steps_account(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    text = EXAMPLE.read_text("utf-8") + VARIANTS["multi-worker"] + "  image_pull_secrets: [regcred]\n"
    path.write_text(text, "utf-8")
    result = compile_spec(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    spec = yaml.safe_load(result.files["workflow/workflowtemplate.yaml"])["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}] and spec["serviceAccountName"] == "bucket-reader"
    assert spec["automountServiceAccountToken"] is False


def test_the_plan_config_map_survives_a_gitops_sync(built: dict[str, tuple[CompileResult, Path]]) -> None:
    """A workflow still running mounts the previous plan ConfigMap: Argo CD must not prune it when the
    next plan replaces it in Git, nor report the application OutOfSync for keeping it (tests/oracles/argocd.py)."""
    config_map = _load(built, "gpu", "configmap.yaml")
    assert not argocd_oracle.pruned(config_map, app_prunes=True)
    assert not argocd_oracle.out_of_sync_when_extraneous(config_map)


def test_argo_finds_the_executor_token_it_ships(built: dict[str, tuple[CompileResult, Path]]) -> None:
    objects = {o["kind"]: o for o in yaml.safe_load_all(built["gpu"][0].files["workflow/rbac.yaml"]) if o}
    assert argo_oracle.token_secret_name(objects["ServiceAccount"]) == objects["Secret"]["metadata"]["name"]


def test_multi_worker_train_is_a_resource_the_workflow_waits_for(built: dict[str, tuple[CompileResult, Path]]) -> None:
    result, _ = built["multi-worker"]
    templates = _templates(_load(built, "multi-worker", "workflowtemplate.yaml"))
    tasks = {t["name"]: t for t in templates["plan"]["dag"]["tasks"]}
    assert tasks["train-probe"]["dependencies"] == ["data"]
    assert tasks["train-job"] == {"name": "train-job", "template": "train-job", "dependencies": ["train-probe"],
                                  "when": "{{tasks.train-probe.outputs.result}} == missing"}
    assert tasks["train"]["template"] == "train-store" and tasks["train"]["dependencies"] == ["train-job"]
    assert tasks["evaluate"]["dependencies"][0] == "train"  # the trained model: the reference of every drop
    resource = templates["train-job"]["resource"]
    assert resource["action"] == "create" and resource["setOwnerReference"] is True
    assert resource["successCondition"] == "status.terminalState == Completed"
    assert resource["failureCondition"] == "status.terminalState == Failed"
    manifest = yaml.safe_load(resource["manifest"])
    assert manifest["kind"] == "JobSet" and manifest["metadata"]["generateName"].startswith("digits-cluster-")
    assert "name" not in manifest["metadata"]
    probe = templates["train-probe"]["container"]
    assert probe["args"][-1] == "--probe" and "--quiet" not in probe["args"]
    store = templates["train-store"]
    mount = result.resolved.spec.targets[-1].storage.mount_path
    assert store["container"]["args"][-4:] == ["--cache-dir", f"{mount}/cache", "--upload-only", "--quiet"]
    assert {"name": "training-volume", "mountPath": mount} in store["container"]["volumeMounts"]
    claim = {"name": "training-volume", "persistentVolumeClaim": {"claimName": "digits-cluster-data"}}
    assert claim in store["volumes"]
    assert result.plan is not None


@pytest.fixture(scope="module")
def workflow_template_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text("utf-8"))
    assert crd["spec"]["names"]["kind"] == "WorkflowTemplate"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation: unknown fields rejected."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and \
                not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("name", ["workflowtemplate.yaml", "workflow.yaml"])
def test_argo_crd_schema_accepts_the_workflow(built: dict[str, tuple[CompileResult, Path]], variant: str, name: str,
                                              workflow_template_schema: dict[str, Any]) -> None:
    # A Workflow's spec is the same WorkflowSpec type as a WorkflowTemplate's (the CRDs share it).
    document = _load(built, variant, name)
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in jsonschema.Draft7Validator(workflow_template_schema).iter_errors(document)]
    assert not errors, errors[:10]


def test_argo_crd_schema_rejects_unknown_and_mistyped_fields(built: dict[str, tuple[CompileResult, Path]],
                                                             workflow_template_schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(workflow_template_schema)
    document = _load(built, "multi-worker", "workflowtemplate.yaml")
    assert not list(validator.iter_errors(document))
    unknown = copy.deepcopy(document)
    unknown["spec"]["templates"][1]["container"]["imagePullPolicyy"] = "Always"
    assert list(validator.iter_errors(unknown))
    mistyped = copy.deepcopy(document)
    mistyped["spec"]["parallelism"] = "four"
    assert list(validator.iter_errors(mistyped))
    misplaced = copy.deepcopy(document)
    misplaced["spec"]["templates"][0]["dag"]["tasks"][0]["depends_on"] = ["x"]
    assert list(validator.iter_errors(misplaced))


def test_kubernetes_validate_accepts_the_core_objects(built: dict[str, tuple[CompileResult, Path]]) -> None:
    for variant in VARIANTS:
        folder = built[variant][1]
        result = subprocess.run([_tool("kubernetes-validate"), "--strict", "--no-warn", "-k", KUBERNETES_VERSION,
                                 str(folder / "configmap.yaml"), str(folder / "rbac.yaml")],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr


def test_kubectl_kustomize_builds_the_folder(built: dict[str, tuple[CompileResult, Path]]) -> None:
    result = subprocess.run([_tool("kubectl"), "kustomize", str(built["gpu"][1])], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(result.stdout) if d)
    assert kinds == ["ConfigMap", "Role", "RoleBinding", "Secret", "ServiceAccount", "WorkflowTemplate"]


def test_yamllint_is_clean(built: dict[str, tuple[CompileResult, Path]]) -> None:
    paths = [str(built[v][1] / f) for v in VARIANTS for f in FILES]
    result = subprocess.run([_tool("yamllint"), "-f", "parsable", "-d", YAMLLINT, *paths], capture_output=True,
                            text=True, timeout=300)
    problems = [line for line in result.stdout.splitlines()
                if not ("(line-length)" in line and ("Generated by tfspec" in _line(line)))]
    assert not problems, problems[:20]


def _line(problem: str) -> str:
    path, row, _ = problem.split(":", 2)
    return Path(path).read_text("utf-8").splitlines()[int(row) - 1]


@pytest.mark.parametrize("section, expected", [
    ("workflow: {image: 'r.example.com/a:1', store: 's3://ml-steps', training_target: nope}\n",
     "workflow.training_target: no gpu_cluster target is named 'nope' (hint: name one of cluster)"),
    ("workflow: {image: 'r.example.com/a:1', store: 'gs://ml-steps'}\n", "workflow.store: "),
])
def test_bad_workflow_sections_are_one_line_each(tmp_path: Path, section: str, expected: str) -> None:
    spec = tmp_path / "deploy.yaml"
    text = EXAMPLE.read_text("utf-8") + section
    spec.write_text(text, "utf-8")
    result = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    line = len(text.splitlines())
    assert f"deploy.yaml:{line}:" in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_local_data_files_are_refused_with_a_workflow(tmp_path: Path) -> None:
    import numpy as np

    np.savez(tmp_path / "train.npz", x=np.zeros((20, 64), np.float32), y=np.arange(20) % 10)
    text = EXAMPLE.read_text("utf-8").replace("source: {kind: sklearn_digits}",
                                              "source: {kind: npz, path: train.npz, features: x, labels: y}")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text + "workflow: {image: 'r.example.com/a:1', store: 's3://ml-steps'}\n", "utf-8")
    result = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "data.source.path: a workflow's pods see only plan.json and the store" in result.stderr
    assert "deploy.yaml:9:" in result.stderr


def test_a_model_from_files_beside_the_spec_is_refused_with_a_workflow(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text("""\
api_version: tfspec/v1
name: digits
version: 1
data: {source: {kind: sklearn_digits}}
model: {kind: builder, builder: "nets:build", input_shape: [64]}
targets: [{kind: tflite, name: phone}]
workflow: {image: 'r.example.com/a:1', store: 's3://ml-steps'}
""", "utf-8")
    result = subprocess.run([*tfspec_command(), "validate", str(spec)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "deploy.yaml:5:24: model.builder: a workflow's pods see only plan.json and the store" in result.stderr


def test_the_pods_get_the_data_buckets_credentials_too() -> None:
    from tfspec.compiler.workflow import _env
    from tfspec.spec.data import DataStorage, StorageCredentials
    from tfspec.spec.workflow import Workflow

    workflow = Workflow(image="r.example.com/a:1", store="s3://ml-steps",
                        credentials=StorageCredentials(kubernetes_secret="step-store"))
    data = DataStorage(credentials=StorageCredentials(access_key_id_env="DATA_KEY", secret_access_key_env="DATA_SECRET",
                                                      kubernetes_secret="data-reader"))
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in _env(workflow, data) if "valueFrom" in e}
    assert secrets == {"AWS_ACCESS_KEY_ID": "step-store", "AWS_SECRET_ACCESS_KEY": "step-store",
                       "DATA_KEY": "data-reader", "DATA_SECRET": "data-reader"}
    same = DataStorage(credentials=StorageCredentials(kubernetes_secret="data-reader"))  # the same variable names
    secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in _env(workflow, same) if "valueFrom" in e}
    assert secrets == {"AWS_ACCESS_KEY_ID": "step-store", "AWS_SECRET_ACCESS_KEY": "step-store"}


# --- the step image: derived when workflow.image is omitted ------------------------------------------

def _derived(tmp_path: Path, section: str, spec_text: str | None = None) -> CompileResult:
    spec = tmp_path / "deploy.yaml"
    spec.write_text((spec_text or EXAMPLE.read_text("utf-8")) + section, "utf-8")
    result = compile_spec(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


def _dockerfile_tag(dockerfile: str) -> str:
    (tag,) = [line.split(" -t ")[1].split()[0] for line in dockerfile.splitlines()
              if line.startswith("#   docker build")]
    return tag


def test_the_step_image_is_derived_from_its_dockerfile(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # the example names its registry (registry.example.com/ml): the step image is pushed there too
    result = _derived(tmp_path, "workflow: {store: 's3://ml-steps/digits', gpus: 1}\n")
    dockerfile = result.files["workflow/Dockerfile"]
    assert_golden("workflow/derived-image/Dockerfile", dockerfile, request)
    image = _dockerfile_tag(dockerfile)
    assert re.fullmatch(r"registry\.example\.com/ml/digits-workflow:3-[0-9a-f]{12}", image), image
    repository, tag = image.rsplit(":", 1)
    assert f'org.opencontainers.image.title="{repository}"' in dockerfile
    assert f'org.opencontainers.image.version="{tag}"' in dockerfile
    assert "\nFROM tensorflow/tensorflow:2.21.0-gpu\n" in dockerfile  # model steps get a GPU
    assert '"/tmp/wheels/tfspec-0.1.0-py3-none-any.whl[runtime]"' in dockerfile
    assert "\nUSER 10001:10001\n" in dockerfile
    templates = yaml.safe_load(result.files["workflow/workflowtemplate.yaml"])["spec"]["templates"]
    images = {t["container"]["image"] for t in templates if "container" in t}
    assert images == {image}


def test_the_step_image_tag_follows_what_the_image_holds(tmp_path: Path) -> None:
    def tag(section: str, spec_text: str | None = None) -> str:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        folder.mkdir()
        return _dockerfile_tag(_derived(folder, section, spec_text).files["workflow/Dockerfile"])

    cpu = tag("workflow: {store: 's3://ml-steps/digits'}\n")
    assert cpu == tag("workflow: {store: 's3://other/x', parallelism: 2}\n")  # not in the image
    assert cpu == tag("workflow: {store: 's3://ml-steps/digits'}\n",
                      EXAMPLE.read_text("utf-8").replace("epochs: 40", "epochs: 41"))  # the plan is a ConfigMap
    assert cpu != tag("workflow: {store: 's3://ml-steps/digits', gpus: 1}\n")  # another base image


def test_the_step_image_gets_the_storage_extra_when_data_is_in_object_storage() -> None:
    from tfspec.compiler.pipeline import resolve_document
    from tfspec.compiler.workflow import step_image_extras
    from tfspec.spec.loader import load_yaml_text

    def extras(text: str) -> tuple[str, ...]:
        return step_image_extras(resolve_document(load_yaml_text(text, "deploy.yaml"), environ={}))

    section = "workflow: {store: 's3://ml-steps/digits'}\n"
    assert extras(EXAMPLE.read_text("utf-8") + section) == ("runtime",)
    remote = EXAMPLE.read_text("utf-8").replace(
        "source: {kind: sklearn_digits}",
        "source: {kind: npz, path: 's3://data/digits.npz', features: x, labels: y}\n  external_locations: true")
    assert "s3://data" in remote
    assert extras(remote + section) == ("runtime", "storage")  # fsspec's s3fs reads the data


def test_an_image_given_renders_no_dockerfile(built: dict[str, tuple[CompileResult, Path]]) -> None:
    for variant in VARIANTS:
        assert "workflow/Dockerfile" not in built[variant][0].files


def test_hadolint_passes_the_step_dockerfile(tmp_path: Path) -> None:
    result = _derived(tmp_path, "workflow: {store: 's3://ml-steps/digits'}\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(result.files["workflow/Dockerfile"], "utf-8")
    config = ROOT / ".hadolint.yaml"
    args = [_tool("hadolint"), "--no-color", "--failure-threshold", "style"]
    if config.exists():
        args += ["--config", str(config)]
    done = subprocess.run([*args, str(dockerfile)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_a_target_named_workflow_clashes_with_the_derived_step_image(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    text = EXAMPLE.read_text("utf-8").replace("    name: serving\n", "    name: workflow\n")
    spec.write_text(text + "workflow: {store: 's3://ml-steps/digits'}\n", "utf-8")
    result = subprocess.run([*tfspec_command(), "validate", str(spec)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "targets.1.name: the image of target 'workflow' would be the workflow's step image 'digits-workflow'" \
        in result.stderr.replace("targets[1]", "targets.1"), result.stderr
