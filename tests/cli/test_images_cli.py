"""``tfspec images``: what it hands the builder, and the one-line errors when something it needs is missing.

The builds themselves run for real in tests/shipped/test_images.py (buildah); here a stand-in ``buildah`` on
PATH records each call and the build context it was given, so every case runs in a second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec
from tfspec.compiler.targets.gpu_cluster import WHEEL
from tfspec_testing import EXAMPLE, tfspec_command

FAKE_BUILDAH = f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_BUILDAH_LOG"], "a") as log:
    entry = {{"args": args}}
    if args[0] == "bud":
        context = Path(args[-1])
        entry["context"] = sorted(p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file())
        entry["dockerfile"] = (context / "Dockerfile").read_text()
    log.write(json.dumps(entry) + "\\n")
if args[0] == "inspect":
    print("id-of-" + args[-1])
if args[0] == "push":
    Path(args[args.index("--digestfile") + 1]).write_text("sha256:" + "ab" * 32)
sys.exit(int(os.environ.get("FAKE_BUILDAH_EXIT", "0")) if args[0] == "bud" else 0)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The digits example (its serving, training and derived step images) with a dist holding the SavedModel
    folder its plan's serving.bundle step made, and a fake wheel."""
    spec = tmp_path / "deploy.yaml"
    # the example names its registry, registry.example.com/ml
    spec.write_text(EXAMPLE.read_text("utf-8") + "workflow: {store: 's3://ml-steps/digits'}\n", "utf-8")
    result = compile_spec(spec)
    assert result.ok and result.plan is not None
    dist = tmp_path / "dist" / "digits"
    model = dist / "serving" / "models" / "digits" / "3"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"model")
    (model / "variables" / "variables.index").write_bytes(b"index")
    (dist / "plan.json").write_text(result.plan.to_text(), "utf-8")
    (tmp_path / WHEEL).write_bytes(b"wheel")
    return tmp_path


def _images(project: Path, *args: str, builder: bool = True, exit_code: int = 0) -> subprocess.CompletedProcess[str]:
    tools = project / "tools"
    tools.mkdir(exist_ok=True)
    if builder:
        (tools / "buildah").write_text(FAKE_BUILDAH, "utf-8")
        (tools / "buildah").chmod(0o755)
    scratch = project / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {"PATH": str(tools), "FAKE_BUILDAH_LOG": str(project / "buildah.log"), "TMPDIR": str(scratch),
           "FAKE_BUILDAH_EXIT": str(exit_code), "HOME": str(project)}
    done = subprocess.run([*tfspec_command(), "images", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)
    assert not any(scratch.iterdir()), "a temporary folder was left behind"
    return done


def _calls(project: Path) -> list[dict]:
    log = project / "buildah.log"
    return [json.loads(line) for line in log.read_text("utf-8").splitlines()] if log.exists() else []


def test_every_image_is_built_from_its_folder_and_pushed(project: Path) -> None:
    done = _images(project, "deploy.yaml", "--wheel", WHEEL, "--push", "--registry", "127.0.0.1:5000/mirror",
                   "--no-tls-verify", "--json")
    assert done.returncode == 0, done.stderr
    images = {i["name"]: i for i in json.loads(done.stdout)["images"]}
    assert list(images) == ["serving", "cluster", "workflow"]
    result = compile_spec(project / "deploy.yaml")
    builds = [c for c in _calls(project) if c["args"][0] == "bud"]
    for call, name in zip(builds, images):
        reference = images[name]["reference"]
        assert call["args"][:4] == ["bud", "--pull=false", "--tag", reference]
        assert call["dockerfile"] == result.files[f"{name}/Dockerfile"]
        assert f"docker build -t {reference} ." in call["dockerfile"]  # the tag the manifests name
        rendered = {p[len(name) + 1:] for p in result.files if p.startswith(name + "/")}
        assert rendered <= set(call["context"])
        extra = set(call["context"]) - rendered
        if name == "serving":
            assert extra == {"models/digits/3/saved_model.pb", "models/digits/3/variables/variables.index"}
        else:
            assert extra == {f"wheels/{WHEEL}"}
        assert reference.startswith(f"registry.example.com/ml/digits-{name}:3-")
        pushed = f"127.0.0.1:5000/mirror/digits-{name}:{reference.rpartition(':')[2]}"
        assert images[name]["pushed"] == pushed and images[name]["digest"] == "sha256:" + "ab" * 32
        push = next(c for c in _calls(project) if c["args"][0] == "push" and c["args"][-1] == f"docker://{pushed}")
        assert "--tls-verify=false" in push["args"] and reference in push["args"]
    deployment = result.files["serving/kubernetes/deployment.yaml"]
    assert images["serving"]["reference"] in deployment


def test_no_builder_is_one_line_and_exit_2(project: Path) -> None:
    done = _images(project, "deploy.yaml", builder=False)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["error: tfspec images needs buildah or docker on PATH, and it is not there "
                                        "(apt-get install buildah, or install Docker)"]


def test_a_missing_saved_model_is_one_line_and_exit_2(project: Path) -> None:
    shutil.rmtree(project / "dist")
    done = _images(project, "deploy.yaml", "--wheel", WHEEL)
    assert done.returncode == 2 and _calls(project) == []
    assert done.stderr.splitlines() == ["error: image serving: no SavedModel at dist/digits/serving/models/digits/3 "
                                        "(`tfspec run deploy.yaml` makes it; --dist-dir names another dist)"]


def test_a_saved_model_of_another_spec_version_is_refused(project: Path) -> None:
    spec = project / "deploy.yaml"
    spec.write_text(spec.read_text("utf-8").replace("epochs: 40", "epochs: 39"), "utf-8")  # retrained: a new tag
    done = _images(project, "deploy.yaml", "--wheel", WHEEL)
    assert done.returncode == 2 and _calls(project) == []
    assert "error: image serving: dist/digits/serving/models/digits/3 was made from another version of the spec" \
        in done.stderr and len(done.stderr.splitlines()) == 1


def test_only_the_named_images_and_a_failed_build(project: Path) -> None:
    done = _images(project, "deploy.yaml", "--target", "nope")
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: --target nope: no image of that name (this spec's images: serving, "
                                        "cluster, workflow)"]
    shutil.rmtree(project / "dist")  # not needed for the training image
    failed = _images(project, "deploy.yaml", "--target", "cluster", "--wheel", WHEEL, exit_code=1)
    assert failed.returncode == 2
    assert failed.stderr.splitlines()[-1] == \
        "error: building image cluster failed: buildah exited 1 (its output is above)"
    assert [c["args"][0] for c in _calls(project)] == ["bud"]


def test_a_wheel_of_another_version_is_refused(project: Path) -> None:
    other = project / "tfspec-9.9.9-py3-none-any.whl"
    other.write_bytes(b"wheel")
    done = _images(project, "deploy.yaml", "--target", "cluster", "--wheel", other.name)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: --wheel {other.name}: the Dockerfiles install {WHEEL} "
                                        "(this tfspec's version)"]


def test_a_spec_without_images(tmp_path: Path) -> None:
    spec = tmp_path / "phone.yaml"
    spec.write_text("api_version: tfspec/v1\nname: phone\nversion: 1\ndata: {source: {kind: sklearn_digits}}\n"
                    "model: {kind: sequential, input_shape: [64],\n"
                    "        layers: [{type: dense, units: 10, activation: softmax}]}\n"
                    "targets: [{kind: tflite, name: phone}]\n", "utf-8")
    done = subprocess.run([*tfspec_command(), "images", str(spec)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": ""})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {spec} defines no image (tf_serving and gpu_cluster targets and a "
                                        "workflow without an image do)"]


def test_contexts_for_another_builder(project: Path) -> None:
    """``--context-dir``: the contexts kaniko (or any builder) builds, and no builder needed."""
    done = _images(project, "deploy.yaml", "--wheel", WHEEL, "--context-dir", "contexts", builder=False)
    assert done.returncode == 0, done.stderr
    result = compile_spec(project / "deploy.yaml")
    for name in ("serving", "cluster", "workflow"):
        context = project / "contexts" / name
        assert (context / "Dockerfile").read_text("utf-8") == result.files[f"{name}/Dockerfile"]
    assert (project / "contexts" / "serving" / "models" / "digits" / "3" / "saved_model.pb").read_bytes() == b"model"
    assert (project / "contexts" / "cluster" / "wheels" / WHEEL).read_bytes() == b"wheel"
    again = _images(project, "deploy.yaml", "--wheel", WHEEL, "--context-dir", "contexts", builder=False)
    assert again.returncode == 2  # nothing of the user's is overwritten
    assert again.stderr.splitlines() == ["error: --context-dir contexts: not an empty folder (the contexts are "
                                         "written into a new one)"]
