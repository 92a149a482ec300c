"""The kserve target: an InferenceService valid against KServe's own CRD schema (tests/data/kserve/)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from targets_testing import REPO, run_tool, tool

CRD = REPO / "tests" / "data" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
ISVC = "kserve/kubernetes/inferenceservice.yaml"


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


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the file is 2 MB
    crd = next(d for d in yaml.load_all(CRD.read_text("utf-8"), Loader=loader) if d)
    assert crd["spec"]["names"]["kind"] == "InferenceService"
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1beta1")
    return jsonschema.Draft7Validator(_strict(version["schema"]["openAPIV3Schema"]))


@pytest.fixture(scope="module")
def isvc(builds: dict[str, dict[str, str]]) -> dict[str, Any]:
    return yaml.safe_load(builds["gpu-serving"][ISVC])


@pytest.mark.parametrize("build", ["gpu-serving", "kserve-standard"])
def test_inference_service_matches_kserves_crd(builds: dict[str, dict[str, str]], build: str,
                                               validator: jsonschema.Draft7Validator) -> None:
    isvc = yaml.safe_load(builds[build][ISVC])
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(isvc)]
    assert not errors
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1" and isvc["kind"] == "InferenceService"


def test_the_crd_schema_rejects_unknown_and_mistyped_fields(isvc: dict[str, Any],
                                                             validator: jsonschema.Draft7Validator) -> None:
    unknown = copy.deepcopy(isvc)
    unknown["spec"]["predictor"]["model"]["storageURI"] = "s3://x/y"
    assert list(validator.iter_errors(unknown))
    mistyped = copy.deepcopy(isvc)
    mistyped["spec"]["predictor"]["canaryTrafficPercent"] = "ten"
    assert list(validator.iter_errors(mistyped))
    missing = copy.deepcopy(isvc)
    del missing["spec"]["predictor"]
    assert list(validator.iter_errors(missing))


def test_inference_service_says_what_the_spec_says(isvc: dict[str, Any]) -> None:
    predictor = isvc["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["storageUri"] == "gs://models/digits/3/"  # this version's folder (pinned per revision)
    assert model["runtimeVersion"] == "2.21.0-gpu"  # the GPU build of the runtime image
    assert model["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 8)
    assert predictor["scaleMetric"] == "concurrency" and "scaleTarget" not in predictor  # Knative's KPA
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert predictor["canaryTrafficPercent"] == 10
    assert predictor["serviceAccountName"] == "digits-store"
    assert isvc["metadata"]["name"] == "digits-kserve"


def test_kustomize_builds_the_kserve_base(build_root: Path) -> None:
    folder = build_root / "gpu-serving" / "kserve" / "kubernetes"
    result = run_tool([tool("kubectl"), "kustomize", str(folder)])
    assert result.returncode == 0, result.stderr
    (document,) = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert document["metadata"]["namespace"] == "ml-serving"
