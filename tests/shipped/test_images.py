"""The images built from the generated Dockerfiles, and run, with buildah (no Docker daemon here).

On the stand-in base (images_testing.py: the upstream bases cannot be pulled here), from the dist the
installed wheel trained (conftest.trained, the shipped example):

* the **training image**, built from the gpu_cluster target's folder exactly as its Dockerfile's header
  says (``pip wheel`` of the sdist into ``wheels/``, then the build with only FROM replaced); its ENTRYPOINT
  and CMD run in two containers on 127.0.0.1 as the rendered JobSet's two pods (their environment, UID
  10001, read-only root file system, the shared volume), which train together; the same command run by
  two local processes trains to the same metrics;
* the **serving image** and the workflow's **step image**, built by ``tfspec images --push`` (the
  Dockerfiles unchanged: the stand-in carries the upstream base names in the tests' image store; that the
  command builds a training image as its header says is checked with a recording builder in
  tests/cli/test_images_cli.py): the serving image's files, user and labels, and its SavedModel answering
  inside the image as the verify step measured; a step of the rendered WorkflowTemplate (``train``, after
  ``data``) run in the step image exactly as its pod runs it, against moto's S3 server;
* every image pushed to a local registry under its content tag and pulled back by digest.

Not proven here: a GPU (the images are built on a CPU stand-in of the -gpu bases), the TF Serving binary
(the real ``tensorflow/serving`` base is not available: the served SavedModel is loaded with TensorFlow
instead), and a cluster (containers stand in for pods; JobSet's DNS names are 127.0.0.1 ports).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from images_testing import UPSTREAM_BASES, Buildah, Registry, run_as_pod
from shipped_testing import Venv

from tfspec.compiler.targets.gpu_cluster import SPEC_DIR
from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS
from tfspec_testing import jobset_child_job, pod_environment

pytestmark = [pytest.mark.shipped, pytest.mark.slow]

BUCKET = "tfspec-images"
KEY_ENV, SECRET_ENV = "TFSPEC_TEST_STORE_KEY", "TFSPEC_TEST_STORE_SECRET"
WORKER_TIMEOUT = 600
# Metrics a clock or the machine's load decides (they differ between any two runs).
TIMED = re.compile(r"seconds|latency|_ms|duration|time")


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 (the containers share the host's network) with an empty bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


class Project:
    """The shipped example with a registry and a workflow section (neither changes a step's fingerprint, so
    the trained dist is this spec's too), built by the installed wheel into ``build``."""

    def __init__(self, examples: Path, spec: Path, build: Path) -> None:
        self.examples, self.spec, self.build = examples, spec, build

    def file(self, relative: str) -> str:
        return (self.build / relative).read_text("utf-8")


@pytest.fixture(scope="module")
def project(trained: Any, registry: Registry, s3: str, runtime_venv: Venv) -> Project:
    spec = trained.spec.with_name("images.yaml")
    shipped = re.sub(r"(?m)^registry: .*\n", "", trained.spec.read_text("utf-8"))  # ours replaces it
    spec.write_text(shipped + f"""\
registry: {registry.host}/ml
workflow:
  store: s3://{BUCKET}/digits
  endpoint_url: {s3}
  region: us-east-1
  credentials: {{access_key_id_env: {KEY_ENV}, secret_access_key_env: {SECRET_ENV}}}
""", "utf-8")
    build = trained.examples / "build"
    done = runtime_venv.run("build", "digits/images.yaml", "--out", str(build), cwd=trained.examples)
    assert done.returncode == 0, done.stderr
    return Project(trained.examples, spec, build)


@pytest.fixture(scope="module")
def upstream_bases(buildah: Buildah, stand_in: str) -> Iterator[None]:
    for name in UPSTREAM_BASES:
        buildah("tag", stand_in, name)
    try:
        yield
    finally:
        for name in UPSTREAM_BASES:
            buildah("rmi", name, check=False)  # one name of several: only untagged


@pytest.fixture(scope="module")
def shipped_images(project: Project, runtime_venv: Venv, buildah: Buildah, upstream_bases: None,
                   registry: Registry, training_image: str, tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, dict[str, Any]]:
    """``tfspec images images.yaml --push`` by the installed wheel builds and pushes the serving and step
    images (the training image, built by its header's commands, is pushed the same way, by buildah)."""
    done = runtime_venv.run("images", "digits/images.yaml", "--target", "serving", "--target", "workflow", "--push",
                            "--no-tls-verify", "--json", cwd=project.examples, env=buildah.variables, timeout=3000)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    images = {image["name"]: image for image in json.loads(done.stdout)["images"]}
    assert sorted(images) == ["serving", "workflow"]
    digest = tmp_path_factory.mktemp("push") / "digest"
    buildah("push", "--quiet", "--tls-verify=false", "--digestfile", str(digest), training_image,
            f"docker://{training_image}", timeout=3000)
    images["cluster"] = {"name": "cluster", "reference": training_image, "pushed": training_image,
                         "digest": digest.read_text("utf-8").strip()}
    return images


def _header_commands(dockerfile: str) -> list[str]:
    """The build commands the Dockerfile's header comment gives (``#   ...`` lines after ``Build context``)."""
    lines = dockerfile.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# Build context"))
    return [line[4:] for line in lines[start + 1:] if line.startswith("#   ")]


def _config(buildah: Buildah, image: str) -> dict[str, Any]:
    return buildah.config(image)


def _volume(path: Path, uid: int | None) -> Path:
    """A pod volume: owned by the pod's fsGroup (``uid``), or world-writable like an emptyDir (None)."""
    path.mkdir(parents=True)
    if uid is None:
        path.chmod(0o1777)
    else:
        os.chown(path, uid, uid)
    return path


# --- the training image ------------------------------------------------------------------------------

def _wait(processes: list[subprocess.Popen[bytes]], logs: list[Path]) -> list[str]:
    try:
        codes = [p.wait(WORKER_TIMEOUT) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(60)
    output = [log.read_text("utf-8", errors="replace") for log in logs]
    assert codes == [0] * len(processes), "\n".join(text[-3000:] for text in output)
    return output


def _comparable(metrics: Any, hosts: list[str]) -> Any:
    """``metrics`` without clock readings, each worker's address replaced by its index in ``hosts``."""
    if isinstance(metrics, dict):
        return {k: _comparable(v, hosts) for k, v in metrics.items() if not TIMED.search(k)}
    if isinstance(metrics, list):
        return [_comparable(v, hosts) for v in metrics]
    return f"worker {hosts.index(metrics)}" if metrics in hosts else metrics


@pytest.fixture(scope="module")
def training_image(project: Project, distributions: tuple[Path, Path], buildah: Buildah, stand_in: str,
                   runtime_venv: Venv) -> Iterator[str]:
    """The training image, built from the gpu_cluster target's folder exactly as its Dockerfile's header
    says: the wheel (from the sdist) into ``wheels/``, then the build, with only FROM replaced."""
    folder = project.build / "cluster"
    wheel_command, build_command = _header_commands(project.file("cluster/Dockerfile"))
    assert wheel_command == "python -m pip wheel --no-deps --wheel-dir wheels <tfspec source or sdist>"
    words = shlex.split(build_command)
    assert words[:3] == ["docker", "build", "-t"] and words[4:] == ["."]
    reference = words[3]
    wheel_words = shlex.split(wheel_command.replace("<tfspec source or sdist>", shlex.quote(str(distributions[0]))))
    wheel = subprocess.run([str(runtime_venv.python), *wheel_words[1:]], cwd=folder, capture_output=True, text=True,
                           timeout=600)
    assert wheel.returncode == 0, wheel.stderr[-3000:]
    buildah("bud", "--pull=never", "--from", stand_in, "--tag", reference, ".", timeout=1800, cwd=folder)
    try:
        yield reference
    finally:
        buildah.remove_images(reference)
        shutil.rmtree(folder / "wheels", ignore_errors=True)


def test_the_training_image_trains_on_two_workers_like_two_local_processes(
        project: Project, training_image: str, buildah: Buildah, runtime_venv: Venv, tmp_path: Path) -> None:
    folder, reference = project.build / "cluster", training_image
    config = _config(buildah, reference)
    command = config["Entrypoint"] + config["Cmd"]
    assert command[:2] == ["tfspec", "run"] and "--worker" in command
    assert config["User"] == "10001:10001"

    jobset = yaml.safe_load((folder / "kubernetes" / "jobset.yaml").read_text("utf-8"))
    job = jobset_child_job(jobset)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert "command" not in container and "args" not in container  # the image's ENTRYPOINT and CMD run
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    uid = pod["securityContext"]["runAsUser"]
    assert f"{uid}:{pod['securityContext']['runAsGroup']}" == config["User"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    cluster_hosts = pod_environment(job, 0)[ENV_WORKER_HOSTS].split(",")
    assert len(cluster_hosts) == 2

    # two containers, each with its pod's environment (the JobSet's DNS names become 127.0.0.1 ports),
    # and at the same time the same command in two local processes of the installed wheel
    ports = [f"127.0.0.1:{p}" for p in _free_ports(4)]
    in_image_hosts, local_hosts = ports[:2], ports[2:]
    volume, local = _volume(tmp_path / "volume", uid), tmp_path / "local"
    local_command = [word.replace(SPEC_DIR, str(folder / "spec")).replace(mounts["data"], str(local))
                     for word in command[1:]]
    processes, logs, containers = [], [], []
    try:
        for index in range(2):
            env = pod_environment(job, index)
            assert env[ENV_COMPLETION_INDEX] == str(index)
            in_image = dict(zip(cluster_hosts, in_image_hosts))
            containers.append(buildah("from", "--pull=never", reference).stdout.strip().splitlines()[-1])
            logs.append(tmp_path / f"container{index}.log")
            processes.append(run_as_pod(
                buildah, containers[-1], command, uid=uid, log=logs[-1],
                env={**env, ENV_WORKER_HOSTS: ",".join(in_image[h] for h in env[ENV_WORKER_HOSTS].split(","))},
                volumes={mounts["data"]: (volume, False),
                         mounts["tmp"]: (_volume(tmp_path / f"tmp{index}", None), False)}))
        for index in range(2):
            env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", ENV_COMPLETION_INDEX)}
            env.update(pod_environment(job, index))
            on_host = dict(zip(cluster_hosts, local_hosts))
            env.update({ENV_WORKER_HOSTS: ",".join(on_host[h] for h in env[ENV_WORKER_HOSTS].split(",")),
                        "PATH": f"{runtime_venv.path / 'bin'}:{env['PATH']}", "HOME": str(tmp_path / "home")})
            logs.append(tmp_path / f"local{index}.log")
            with open(logs[-1], "wb") as out:
                processes.append(subprocess.Popen([str(runtime_venv.tfspec), *local_command], env=env,
                                                  stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path))
        output = _wait(processes, logs)
    finally:
        for name in containers:
            buildah("rm", name, check=False)
    for index, text in enumerate(output[:2]):
        assert f"{'chief' if index == 0 else 'worker'} {index} of 2" in text, text[-2000:]
        assert "done: 2 replicas in sync" in text, text[-2000:]
    assert (volume / "dist" / "model.keras").is_file() and (volume / "dist" / "model.keras").stat().st_uid == uid
    for name in ("metrics.json", "history.json"):  # the chief's: the same training, epoch by epoch
        in_images = json.loads((volume / "dist" / name).read_text("utf-8"))
        on_host = json.loads((local / "dist" / name).read_text("utf-8"))
        assert _comparable(in_images, in_image_hosts) == _comparable(on_host, local_hosts), name
    metrics = json.loads((volume / "dist" / "metrics.json").read_text("utf-8"))
    assert metrics["replicas"] == 2 and metrics["epochs_run"] == metrics["epochs"] and metrics["accuracy"] > 0.85


# --- the serving image -------------------------------------------------------------------------------

def _models_config(text: str) -> list[Any]:
    """The models of a ModelServerConfig text proto, parsed by TF Serving's own proto."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return list(text_format.Parse(text, model_server_config_pb2.ModelServerConfig()).model_config_list.config)


def test_the_serving_image_holds_what_the_server_flags_name(
        project: Project, shipped_images: dict[str, dict[str, Any]], buildah: Buildah, trained: Any) -> None:
    image = shipped_images["serving"]
    dockerfile = project.file("serving/Dockerfile")
    assert f"docker build -t {image['reference']} ." in dockerfile
    config = _config(buildah, image["reference"])
    assert config["User"] == "65532:65532"
    repository, _, tag = image["reference"].rpartition(":")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == repository
    assert labels["org.opencontainers.image.version"] == tag
    assert labels["org.opencontainers.image.base.name"] == "docker.io/tensorflow/serving:2.21.0"
    flags = dict(flag.split("=", 1) for flag in config["Entrypoint"][1:])
    assert config["Entrypoint"][0] == "/usr/bin/tensorflow_model_server"  # in the real base; not in the stand-in

    with buildah.container(image["reference"]) as container, buildah.mounted(container) as root:
        # every config file at the path its flag names, as rendered
        for flag in ("--model_config_file", "--batching_parameters_file", "--monitoring_config_file"):
            path = flags[flag]
            assert (root / path.lstrip("/")).read_text("utf-8") == \
                project.file(f"serving/config/{Path(path).name}"), flag
        (model,) = _models_config((root / flags["--model_config_file"].lstrip("/")).read_text("utf-8"))
        base_path = root / model.base_path.lstrip("/")
        versions = sorted(int(p.name) for p in base_path.iterdir())
        assert versions == [3]  # this spec's version: the one the policy and every label name
        assert set(model.model_version_policy.specific.versions) | set(model.version_labels.values()) == {3}
        served = base_path / "3"
        shipped = trained.dist / "serving" / "models" / "digits" / "3"
        files = sorted(p.relative_to(served).as_posix() for p in served.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file())
        assert "assets.extra/tf_serving_warmup_requests" in files and "saved_model.pb" in files
        for name in files:
            assert (served / name).read_bytes() == (shipped / name).read_bytes(), name
        assert {(served / name).stat().st_uid for name in files} == {0}  # root's files, readable by the server
        assert all((served / name).stat().st_mode & 0o004 for name in files)


def test_the_served_model_answers_inside_the_image_as_verify_measured(
        project: Project, shipped_images: dict[str, dict[str, Any]], buildah: Buildah, trained: Any,
        tmp_path: Path) -> None:
    """The SavedModel inside the serving image, loaded by TensorFlow in the image (the stand-in's: the
    server binary is not here) as the server's user with a read-only root: its accuracy on the test split
    is the verify step's, and every warmup record is a PredictionLog the signature accepts."""
    import numpy as np

    from tfspec.plan import Plan
    from tfspec.runtime.datasets import load_dataset

    plan = Plan.from_json((trained.dist / "plan.json").read_text("utf-8"))
    data_entry = trained.spec.parent / ".tfspec" / "cache" / plan.step("data").fingerprint
    data = load_dataset(data_entry, trained.spec.parent)
    check = _volume(tmp_path / "check", None)
    np.savez(check / "test.npz", x=np.concatenate(list(data.features("test").as_numpy_iterator())),
             y=data.labels("test"))
    (check / "answer.py").write_text(ANSWER, "utf-8")
    measured = trained.output["report"]["targets"]["serving"]["metrics"]

    image = shipped_images["serving"]
    config = _config(buildah, image["reference"])
    flags = dict(flag.split("=", 1) for flag in config["Entrypoint"][1:])
    (model,) = _models_config(project.file("serving/config/models.config"))
    base_path = model.base_path
    with buildah.container(image["reference"]) as container:
        log = tmp_path / "answer.log"
        process = run_as_pod(buildah, container, ["python3", "/check/answer.py", f"{base_path}/3"], uid=65532,
                             env={"HOME": "/tmp", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"},
                             volumes={"/check": (check, True), "/tmp": (_volume(tmp_path / "tmp", None), False)},
                             log=log)
        assert process.wait(600) == 0, log.read_text("utf-8")[-3000:]
    answer = json.loads(log.read_text("utf-8").strip().splitlines()[-1])
    assert answer["uid"] == 65532 and answer["root_read_only"] is True
    assert answer["examples"] == len(data.labels("test"))
    assert answer["accuracy"] == measured["accuracy"]
    assert answer["warmup_records"] == 10 and answer["warmup_answered"] == 10
    assert flags["--enable_model_warmup"] == "true"


ANSWER = '''\
import json, os, sys
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

version = sys.argv[1]
data = np.load("/check/test.npz")
function = tf.saved_model.load(version).signatures["serving_default"]
(name,) = function.structured_input_signature[1]
(output,) = function.structured_outputs
predictions = function(**{name: tf.constant(data["x"])})[output].numpy()
accuracy = float(np.mean(np.argmax(predictions, axis=1) == data["y"]))
answered = records = 0
for record in tf.data.TFRecordDataset(os.path.join(version, "assets.extra", "tf_serving_warmup_requests")):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    request = log.predict_log.request
    records += 1
    feed = {key: tf.make_ndarray(tensor) for key, tensor in request.inputs.items()}
    if request.model_spec.signature_name == "serving_default" and function(**feed)[output].shape[0] > 0:
        answered += 1
try:
    open("/usr/probe", "w")
    read_only = False
except OSError:
    read_only = True
print(json.dumps({"uid": os.getuid(), "root_read_only": read_only, "examples": int(len(data["y"])),
                  "accuracy": accuracy, "warmup_records": records, "warmup_answered": answered}))
'''


# --- the step image ----------------------------------------------------------------------------------

def _tasks(project: Project) -> tuple[str, dict[str, Any], list[tuple[str, list[str], dict[str, Any]]]]:
    """plan.json of the ConfigMap, the pods' security context, each DAG task (name, command, container)."""
    plan_text = yaml.safe_load(project.file("workflow/configmap.yaml"))["data"]["plan.json"]
    template = yaml.safe_load(project.file("workflow/workflowtemplate.yaml"))
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    tasks = []
    for task in templates["plan"]["dag"]["tasks"]:
        container = templates[task["template"]]["container"]
        command = container["command"] + container["args"]
        for parameter in task.get("arguments", {}).get("parameters", []):
            command = [w.replace("{{inputs.parameters.%s}}" % parameter["name"], parameter["value"]) for w in command]
        tasks.append((task["name"], command, container))
    return plan_text, template["spec"]["securityContext"], tasks


def test_a_step_of_the_workflow_runs_in_the_step_image_as_its_pod(
        project: Project, shipped_images: dict[str, dict[str, Any]], buildah: Buildah, s3: str,
        tmp_path: Path) -> None:
    import boto3

    image = shipped_images["workflow"]
    dockerfile = project.file("workflow/Dockerfile")
    assert f"docker build -t {image['reference']} ." in dockerfile
    config = _config(buildah, image["reference"])
    plan_text, security, tasks = _tasks(project)
    assert {c["image"] for _, _, c in tasks} == {image["reference"]}
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}"
    (first, _, _), (second, _, _) = tasks[:2]
    assert (first, second) == ("data", "train")

    plan = _volume(tmp_path / "plan", None)
    (plan / "plan.json").write_text(plan_text, "utf-8")
    client = boto3.client("s3", endpoint_url=s3, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    outputs = []
    for name, command, container in tasks[:2]:  # data, then train (which reads data's entry from the store)
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        env.update({KEY_ENV: "testing", SECRET_ENV: "testing", "AWS_EC2_METADATA_DISABLED": "true"})
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        log = tmp_path / f"{name}-{len(outputs)}.log"
        with buildah.container(image["reference"]) as working:
            process = run_as_pod(buildah, working, command, uid=security["runAsUser"], env=env, log=log,
                                 volumes={mounts["plan"]: (plan, True),
                                          mounts["scratch"]: (_volume(tmp_path / f"scratch-{name}", None), False)})
            assert process.wait(900) == 0, log.read_text("utf-8")[-3000:]
        outputs.append(log.read_text("utf-8"))
    assert "stored  data" in outputs[0], outputs[0][-2000:]
    assert "run     train" in outputs[1] and "stored  train" in outputs[1], outputs[1][-2000:]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="digits/cache/").get("Contents", [])]
    steps = json.loads(plan_text)["steps"]
    for step in ("data", "train"):
        fingerprint = next(s["fingerprint"] for s in steps if s["id"] == step)
        assert any(fingerprint in key for key in keys), (step, keys[:10])


# --- the registry ------------------------------------------------------------------------------------

def test_every_image_is_pushed_under_its_tag_and_pulled_back_by_digest(
        shipped_images: dict[str, dict[str, Any]], buildah: Buildah, registry: Registry) -> None:
    for name, image in shipped_images.items():
        assert image["pushed"] == image["reference"] and image["reference"].startswith(registry.host + "/ml/")
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
        local = buildah.inspect(image["reference"])
        repository = image["reference"].rpartition(":")[0]
        by_digest = f"{repository}@{image['digest']}"
        buildah.remove_images(image["reference"])  # pulled for real, not found in the store
        assert not buildah.image_exists(image["reference"])
        buildah("pull", "--quiet", "--tls-verify=false", f"docker://{by_digest}", timeout=1800)
        pulled = buildah.inspect(by_digest)
        assert pulled["FromImageID"] == local["FromImageID"], name  # the same configuration, hence content
        assert pulled["OCIv1"]["config"]["Labels"] == local["OCIv1"]["config"]["Labels"]
        buildah.remove_images(by_digest)
