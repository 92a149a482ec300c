"""End to end: `tfspec run` on the digits spec (no compression, few epochs), artifacts checked with the
tools that consume them (tf.saved_model.load, prediction_log_pb2, the LiteRT interpreter)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime_testing import FAST_SPEC, invoke, read_json

pytestmark = pytest.mark.slow

ASSETS = Path("android/digits_model/src/main/assets")
MODEL_DIR = Path("serving/models/digits/3")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("e2e")
    spec = root / "deploy.yaml"
    shutil.copyfile(FAST_SPEC, spec)
    result = invoke("run", str(spec), "--dist-dir", str(root / "dist"), "--quiet", "--json")
    assert result.exit_code == 0, result.output
    import json

    payload = json.loads(result.stdout)
    return {"root": root, "spec": spec, "dist": root / "dist", "cache": root / ".tfspec" / "cache", "payload": payload}


def _dataset(first_run: dict[str, Any]) -> Any:
    report = first_run["payload"]["report"]
    data_fp = next(s["fingerprint"] for s in report["steps"] if s["id"] == "data")
    from tfspec.runtime.datasets import load_dataset

    data = load_dataset(first_run["cache"] / data_fp, first_run["spec"].parent)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = data.arrays(split)
    return arrays


def test_first_run_executes_every_step_and_trains_an_accurate_model(first_run: dict[str, Any]) -> None:
    payload = first_run["payload"]
    report = payload["report"]
    assert payload["cached"] == []
    assert payload["ran"] == [s["id"] for s in report["steps"] if s["kind"] != "render"]
    train = next(s for s in report["steps"] if s["id"] == "train")
    assert train["metrics"]["accuracy"] >= 0.90
    assert train["metrics"]["params"] == 64 * 128 + 128 + 128 * 10 + 10
    assert [layer["layer"] for layer in train["metrics"]["layers"]] == ["hidden", "logits"]
    assert report["passed"] is True and payload["ok"] is True


def test_report_has_the_documented_shape(first_run: dict[str, Any]) -> None:
    report = read_json(first_run["dist"] / "report.json")
    assert {"spec", "tool_versions", "steps", "baseline", "targets", "history", "passed"} <= set(report)
    assert {"metric", "stages", "class_counts", "model_summary", "machine", "warnings"} <= set(report)
    assert report["metric"] == "accuracy" and [s["label"] for s in report["stages"]] == ["trained"]
    assert report["warnings"] == [] and set(report["machine"]) >= {"cpu", "cores", "os"}
    assert report["spec"]["name"] == "digits" and report["spec"]["version"] == 3
    assert report["tool_versions"]["tensorflow"] == "2.21.0"
    for step in report["steps"]:
        assert {"id", "kind", "target", "fingerprint", "cached", "duration_s", "inputs", "metrics"} <= set(step)
    assert set(report["baseline"]) >= {"metric", "value", "size_bytes", "latency_ms"}
    # the load average (and cores) the figures were measured under, and how they were measured
    assert set(report["baseline"]["latency_ms"]) == {"p50", "p95", "method", "load_1m", "cores"}
    assert set(report["machine"]["latency_load"]) == {"load_1m", "cores"}
    assert set(report["targets"]) == {"android", "float", "serving"}
    for target in report["targets"].values():
        assert set(target["metrics"]) >= {"accuracy", "accuracy_drop", "size_bytes", "latency_ms_p50", "latency_ms_p95"}
        assert all(set(g) == {"name", "limit", "value", "passed"} for g in target["gates"])
    history = report["history"]["train"]
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == next(s for s in report["steps"] if s["id"] == "train")["metrics"]["epochs"]


def test_saved_model_serves_under_the_spec_input_and_output_names(first_run: dict[str, Any]) -> None:
    import tensorflow as tf

    data = _dataset(first_run)
    loaded = tf.saved_model.load(str(first_run["dist"] / MODEL_DIR))
    function = loaded.signatures["serving_default"]
    outputs = function(inputs=tf.constant(data["x_test"]))
    assert list(outputs) == ["outputs"]
    probabilities = outputs["outputs"].numpy()
    assert probabilities.shape == (len(data["y_test"]), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(np.argmax(probabilities, axis=1) == data["y_test"]) >= 0.90


def test_warmup_records_are_prediction_logs_of_real_test_examples(first_run: dict[str, Any]) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    data = _dataset(first_run)
    path = first_run["dist"] / MODEL_DIR / "assets.extra" / "tf_serving_warmup_requests"
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert len(records) == 10
    for index, raw in enumerate(records):
        log = prediction_log_pb2.PredictionLog.FromString(raw)
        request = log.predict_log.request
        assert request.model_spec.name == "digits"
        assert request.model_spec.signature_name == "serving_default"
        assert list(request.inputs) == ["inputs"]
        sample = tf.make_ndarray(request.inputs["inputs"])
        assert sample.shape == (1, 64) and sample.dtype == np.float32
        np.testing.assert_array_equal(sample[0], data["x_test"][index])


def _litert_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, Any], dict[str, Any]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for i in range(len(x)):
        sample = x[i:i + 1]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            sample = np.clip(np.round(sample / scale + zero), -128, 127)
        interpreter.set_tensor(inp["index"], sample.astype(inp["dtype"]))
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(out["index"])[0]) == y[i])
    return correct / len(x), inp, out


def test_int8_tflite_is_small_and_as_accurate_as_keras_on_litert(first_run: dict[str, Any]) -> None:
    data = _dataset(first_run)
    int8 = first_run["dist"] / ASSETS / "digits.tflite"
    float32 = first_run["dist"] / "float" / "digits.tflite"
    assert int8.stat().st_size <= 0.30 * float32.stat().st_size
    keras_accuracy = first_run["payload"]["report"]["baseline"]["value"]
    accuracy, inp, out = _litert_accuracy(int8, data["x_test"], data["y_test"])
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert abs(accuracy - keras_accuracy) <= 0.02
    assert first_run["payload"]["report"]["targets"]["android"]["metrics"]["accuracy"] == pytest.approx(accuracy)
    float_accuracy, inp, _ = _litert_accuracy(float32, data["x_test"], data["y_test"])
    assert inp["dtype"] == np.float32 and abs(float_accuracy - keras_accuracy) <= 0.005


def test_model_info_matches_the_interpreter(first_run: dict[str, Any]) -> None:
    from ai_edge_litert.interpreter import Interpreter

    assets = first_run["dist"] / ASSETS
    info = read_json(assets / "model_info.json")
    interpreter = Interpreter(model_path=str(assets / info["model_file"]))
    interpreter.allocate_tensors()
    for key, details in (("input", interpreter.get_input_details()[0]), ("output", interpreter.get_output_details()[0])):
        scale, zero_point = details["quantization"]
        assert info[key]["quantization"] == {"scale": pytest.approx(scale, rel=0, abs=0), "zero_point": zero_point}
        assert info[key]["shape"] == [int(d) for d in details["shape"]]
        assert info[key]["dtype"] == np.dtype(details["dtype"]).name
        assert info[key]["tensor_name"] == details["name"]
    assert info["input"]["name"] == "inputs" and info["output"]["name"] == "outputs"
    assert info["normalization"]["rescale"] == 0.0625
    assert info["labels"] == [str(i) for i in range(10)]
    assert (assets / "labels.txt").read_text() == "".join(f"{i}\n" for i in range(10))


def test_dist_manifest_lists_every_file_with_its_hash(first_run: dict[str, Any]) -> None:
    dist = first_run["dist"]
    manifest = read_json(dist / "manifest.json")["files"]
    on_disk = {p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest) == on_disk
    for path, digest in manifest.items():
        assert hashlib.sha256((dist / path).read_bytes()).hexdigest() == digest
    assert "plan.json" in manifest and "report.json" in manifest


def test_second_run_executes_nothing_and_plan_shows_every_step_cached(first_run: dict[str, Any]) -> None:
    import json

    result = invoke("run", str(first_run["spec"]), "--dist-dir", str(first_run["dist"]), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ran"] == []
    assert all(s["cached"] for s in payload["report"]["steps"])
    assert "0 steps ran, 13 cached" in result.stderr  # 12 + evaluate
    plan = json.loads(invoke("plan", str(first_run["spec"]), "--json").stdout)
    assert all(step["cached"] for step in plan["steps"] if step["kind"] != "render")


def test_changing_one_targets_quantization_reruns_exactly_its_steps(first_run: dict[str, Any]) -> None:
    import json

    spec = first_run["root"] / "changed.yaml"
    spec.write_text(first_run["spec"].read_text().replace("representative_samples: 200", "representative_samples: 100"))
    result = invoke("run", str(spec), "--cache-dir", str(first_run["cache"]),
                    "--dist-dir", str(first_run["root"] / "dist-changed"), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ran"] == ["android.tflite", "android.verify", "android.bundle"]
    tflite = next(s for s in payload["report"]["steps"] if s["id"] == "android.tflite")
    assert tflite["metrics"]["calibration_samples"] == 100


def test_a_missed_gate_fails_the_run_with_exit_1_after_every_step(first_run: dict[str, Any]) -> None:
    spec = first_run["root"] / "gated.yaml"
    spec.write_text(first_run["spec"].read_text().replace("max_size_kb: 64", "max_size_kb: 1"))
    dist = first_run["root"] / "dist-gated"
    result = invoke("run", str(spec), "--cache-dir", str(first_run["cache"]), "--dist-dir", str(dist), "--quiet")
    assert result.exit_code == 1, result.output
    assert "missed gates" in result.stderr and "max_size_kb" in result.stderr
    report = read_json(dist / "report.json")
    assert report["passed"] is False
    gate = next(g for g in report["targets"]["android"]["gates"] if g["name"] == "max_size_kb")
    assert gate["passed"] is False and gate["limit"] == 1 and gate["value"] > 1
    assert report["targets"]["serving"]["passed"] is True
    assert (dist / MODEL_DIR / "saved_model.pb").is_file()  # the other steps still ran and were bundled


def test_force_reruns_every_step_with_the_same_seeded_results(first_run: dict[str, Any]) -> None:
    import json

    before = _dataset(first_run)
    result = invoke("run", str(first_run["spec"]), "--dist-dir", str(first_run["root"] / "dist-forced"),
                    "--force", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["cached"] == [] and len(payload["ran"]) == 13
    after = _dataset(first_run)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)
    assert payload["report"]["targets"]["android"]["metrics"]["accuracy"] >= 0.9


def test_run_writes_the_html_report_beside_report_json(first_run: dict[str, Any]) -> None:
    page = (first_run["dist"] / "report.html").read_text(encoding="utf-8")
    report = read_json(first_run["dist"] / "report.json")
    assert report["spec"]["sha256"] in page
    assert page.count("data:image/png;base64,") >= 3
    assert "report.html" in read_json(first_run["dist"] / "manifest.json")["files"]


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_from_the_built_plan_alone_gives_the_same_dist(first_run: dict[str, Any]) -> None:
    import json

    # A copy of the spec, built and then removed: `run --plan` reads the plan, the files built beside it and
    # the inputs under its root, never the spec.
    folder = first_run["root"] / "plan-only"
    folder.mkdir()
    spec = folder / "deploy.yaml"
    shutil.copyfile(first_run["spec"], spec)
    build = folder / "build" / "digits"
    assert invoke("build", str(spec), "--out", str(build)).exit_code == 0
    # `run SPEC` on the cache as it is now (an earlier test forced new entries)
    from_spec = first_run["root"] / "dist-from-spec"
    by_spec_run = invoke("run", str(spec), "--cache-dir", str(first_run["cache"]), "--dist-dir", str(from_spec), "--json")
    assert by_spec_run.exit_code == 0, by_spec_run.output
    spec.unlink()
    dist = first_run["root"] / "dist-from-plan"
    result = invoke("run", "--plan", str(build / "plan.json"), "--cache-dir", str(first_run["cache"]),
                    "--dist-dir", str(dist), "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ran"] == []  # the same fingerprints as `tfspec run SPEC`: every step is in its cache
    by_spec, by_plan = _tree(from_spec), _tree(dist)
    report_files = {"report.json", "report.html", "manifest.json"}
    assert set(by_spec) == set(by_plan)
    assert {p: d for p, d in by_spec.items() if p not in report_files} == \
        {p: d for p, d in by_plan.items() if p not in report_files}
    steps = [{k: v for k, v in s.items() if k not in ("cached", "duration_s")} for s in payload["report"]["steps"]]
    first = [{k: v for k, v in s.items() if k not in ("cached", "duration_s")}
             for s in json.loads(by_spec_run.stdout)["report"]["steps"]]
    assert steps == first


def test_one_step_runs_in_isolation_from_its_inputs_cache_entries(first_run: dict[str, Any]) -> None:
    import json

    build = first_run["root"] / "build-step"
    assert invoke("build", str(first_run["spec"]), "--out", str(build)).exit_code == 0
    plan = json.loads((build / "plan.json").read_text("utf-8"))
    fingerprints = {s["id"]: s["fingerprint"] for s in plan["steps"]}
    pod_cache = first_run["root"] / "pod-cache"
    missing = invoke("run", "--plan", str(build / "plan.json"), "--step", "export", "--cache-dir", str(pod_cache))
    assert missing.exit_code == 2
    assert "step export needs the outputs of train, data, not in the cache" in missing.stderr
    for step_id in ("data", "train"):  # what a cluster would hand the pod: its inputs' cache entries
        shutil.copytree(first_run["cache"] / fingerprints[step_id], pod_cache / fingerprints[step_id])
    result = invoke("run", "--plan", str(build / "plan.json"), "--step", "export", "--cache-dir", str(pod_cache),
                    "--json")
    assert result.exit_code == 0, result.output
    entry = pod_cache / fingerprints["export"]
    assert json.loads(result.stdout) == {"ok": True, "step": "export", "entry": str(entry)}
    assert (entry / "saved_model" / "saved_model.pb").is_file()
    # the three entries, and the cache-directory tag that marks the folder as a step cache
    assert sorted(p.name for p in pod_cache.iterdir()) == sorted(
        [*(fingerprints[i] for i in ("data", "train", "export")), "CACHEDIR.TAG"])
