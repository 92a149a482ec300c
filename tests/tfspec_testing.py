"""Shared test helpers: golden files (datamodel-code-generator style), paths, the CLI command.

Golden files live under ``tests/golden/``, named after their test. On a mismatch the test fails with a
unified diff and the exact command that regenerates them; they are rewritten only when
``TFSPEC_UPDATE_GOLDEN=1`` is set.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
EXAMPLE = ROOT / "examples" / "digits" / "deploy.yaml"
UPDATE_ENV = "TFSPEC_UPDATE_GOLDEN"


def assert_golden(relative: str, actual: str, request: pytest.FixtureRequest | None = None) -> None:
    """Compare ``actual`` with ``tests/golden/<relative>``; rewrite it only under TFSPEC_UPDATE_GOLDEN=1."""
    path = GOLDEN / relative
    if os.environ.get(UPDATE_ENV) == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        return
    node = request.node.nodeid if request is not None else "tests/"
    regenerate = f"{UPDATE_ENV}=1 {Path(sys.executable).name} -m pytest {node!r}"
    if not path.exists():
        pytest.fail(f"golden file {path.relative_to(ROOT)} is missing; create it with:\n  {regenerate}")
    expected = path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), actual.splitlines(keepends=True),
            fromfile=f"golden/{relative}", tofile="actual"))
        pytest.fail(f"output differs from golden file {path.relative_to(ROOT)}:\n{diff}\n"
                    f"if the change is intended, regenerate with:\n  {regenerate}")


def tfspec_command() -> list[str]:
    """The CLI as the tests run it: the console script next to this interpreter."""
    script = Path(sys.executable).with_name("tfspec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tfspec"]


def expand_kubernetes_references(value: str, env: dict[str, str]) -> str:
    """``$(VAR)`` expanded the way the kubelet does for a container's env values (``$$`` escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def pod_environment(job: dict[str, Any], index: int) -> dict[str, str]:
    """The environment the kubelet gives pod ``index`` of an Indexed Job: the downward-API fields resolved
    against the pod's labels and annotations (the Job controller adds the job-name label and
    JOB_COMPLETION_INDEX), then ``$(VAR)`` references expanded in order."""
    template = job["spec"]["template"]
    labels = {**template["metadata"].get("labels", {}), "batch.kubernetes.io/job-name": job["metadata"]["name"]}
    annotations = template["metadata"].get("annotations", {})
    env: dict[str, str] = {"JOB_COMPLETION_INDEX": str(index)}
    (container,) = template["spec"]["containers"]
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand_kubernetes_references(item["value"], env)
            continue
        path = item["valueFrom"]["fieldRef"]["fieldPath"]
        found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        assert found, path
        source = labels if found.group(1) == "labels" else annotations
        env[item["name"]] = source[found.group(2)]
    return env


def jobset_child_job(jobset: dict[str, Any], replicated_job: int = 0) -> dict[str, Any]:
    """The Job the JobSet controller creates for job index 0 of a replicated job: named
    ``<jobset>-<replicated job>-0``, its pod template labelled with the JobSet's labels
    (``jobset.sigs.k8s.io/jobset-name``, ...), the subdomain the JobSet's name when ``enableDNSHostnames``
    and no explicit subdomain (kubernetes-sigs/jobset, pkg/controllers/jobset_controller.go, constructJob)."""
    import copy

    name = jobset["metadata"]["name"]
    spec = jobset["spec"]["replicatedJobs"][replicated_job]
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": f"{name}-{spec['name']}-0"}, "spec": copy.deepcopy(spec["template"]["spec"])}
    template = job["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("labels", {}).update({
        "jobset.sigs.k8s.io/jobset-name": name, "jobset.sigs.k8s.io/replicatedjob-name": spec["name"],
        "jobset.sigs.k8s.io/job-index": "0"})
    network = jobset["spec"].get("network", {})
    if network.get("enableDNSHostnames"):
        template["spec"]["subdomain"] = network.get("subdomain") or name
    return job


def rendered_objects(files: dict[str, str]) -> list[dict[str, Any]]:
    """Every Kubernetes object of a build (``*/kubernetes/*.yaml``, ``workflow/*.yaml``), and the training
    object its workflow creates (a resource template's manifest)."""
    import yaml

    out = []
    for path, text in sorted(files.items()):
        if not path.endswith(".yaml") or not ("/kubernetes/" in path or path.startswith("workflow/")):
            continue
        for document in yaml.safe_load_all(text):
            if not document or "kind" not in document or document["kind"] == "Kustomization":
                continue
            out.append(document)
            if document["kind"] == "WorkflowTemplate":
                out += [yaml.safe_load(t["resource"]["manifest"]) for t in document["spec"]["templates"]
                        if "resource" in t]
    return out


def cluster_problems(document: dict[str, Any]) -> list[str]:
    """What a cluster would reject in one object's names and labels, and in the names its controller derives
    from them (tests/oracles: Kubernetes, JobSet's webhook, the training operator)."""
    from oracles import jobset, kubeflow, kubernetes

    out = kubernetes.object_problems(document)
    metadata = document.get("metadata", {})
    if document.get("kind") == "JobSet":
        out += jobset.webhook_errors(document)
    elif document.get("kind") == "TFJob":
        generated = kubernetes.generate_name(metadata["generateName"]) if "generateName" in metadata else None
        out += kubeflow.name_errors(document, generated)
    return out


def run_cli_probing_import(module: str, *args: str, cwd: Path,
                           env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], list[str], bool]:
    """``tfspec ARGS`` in a fresh process that reports, after the command, whether it imported ``module``:
    the finished process, its stdout lines (without the report) and whether ``module`` was imported."""
    probe = ("import sys\n"
             "from tfspec.cli import cli\n"
             "code = 0\n"
             "try:\n"
             "    cli.main(sys.argv[1:], prog_name='tfspec', standalone_mode=True)\n"
             "except SystemExit as exit:\n"
             "    code = exit.code or 0\n"
             f"print('IMPORTED' if {module!r} in sys.modules else 'NOT-IMPORTED')\n"
             "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)
    *lines, report = proc.stdout.splitlines() or [""]
    return proc, lines, report == "IMPORTED"
