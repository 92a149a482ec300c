"""tflite target: the asset-pack module, the app-side snippets and the Kotlin loader.

No Android toolchain runs here, so these tests read the files back structurally (Gradle blocks and
the Kotlin branches chosen for the model's I/O types); the plan's conversion settings are checked too.
"""

from __future__ import annotations

import json
import re

import pytest

from pathlib import Path

from targets_testing import compile_tree, example_tree

from tfspec.compiler.pipeline import CompileResult
from tfspec.compiler.targets.tflite import kotlin_class_name, kotlin_package

PACK = "android/digits_model"
KOTLIN = "android/app-snippets/src/main/java/com/example/digits/DigitsClassifier.kt"


def _block(text: str, name: str) -> str:
    """Body of the first Gradle block ``name { ... }`` (braces balanced)."""
    start = re.search(rf"(^|\n)\s*{re.escape(name)}\s*\{{", text)
    assert start, f"no {name} block"
    depth, index = 1, start.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        index += 1
    return text[start.end():index - 1]


def _code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def test_asset_pack_module(builds: dict[str, dict[str, str]]) -> None:
    gradle = _code(builds["example"][f"{PACK}/build.gradle"])
    assert re.search(r"id 'com\.android\.asset-pack'", _block(gradle, "plugins"))
    asset_pack = _block(gradle, "assetPack")
    assert re.search(r'packName = "digits_model"', asset_pack)
    assert re.search(r'deliveryType = "install-time"', _block(asset_pack, "dynamicDelivery"))
    assert builds["example"][f"{PACK}/src/main/assets/labels.txt"] == "".join(f"{i}\n" for i in range(10))


@pytest.mark.parametrize(("build", "delivery"), [("uint8-fast-follow", "fast-follow"), ("on-demand-float", "on-demand")])
def test_delivery_modes(builds: dict[str, dict[str, str]], build: str, delivery: str) -> None:
    pack = "digitsModel" if build == "on-demand-float" else "digits_model"
    gradle = builds[build][f"android/{pack}/build.gradle"]
    assert f'deliveryType = "{delivery}"' in gradle
    assert f"packName = \"{pack}\"" in gradle
    app = builds[build]["android/app-snippets/build.gradle"]
    assert "com.google.android.play:asset-delivery-ktx:" in app


def test_app_snippets(builds: dict[str, dict[str, str]]) -> None:
    files = builds["example"]
    groovy = _code(files["android/app-snippets/build.gradle"])
    android = _block(groovy, "android")
    assert 'assetPacks += [":digits_model"]' in android  # appends: the app's other packs stay
    # The property form (the method form noCompress 'tflite' is deprecated); += keeps the app's entries.
    assert "noCompress += 'tflite'" in _block(android, "androidResources")
    assert re.search(r"implementation 'com\.google\.ai\.edge\.litert:litert:[0-9.]+'", _block(groovy, "dependencies"))
    assert "asset-delivery" not in groovy  # install-time packs need no Play library
    kts = _code(files["android/app-snippets/build.gradle.kts"])
    assert 'assetPacks += setOf(":digits_model")' in _block(kts, "android")
    assert 'noCompress += "tflite"' in _block(kts, "androidResources")
    assert _code(files["android/app-snippets/settings.gradle"]).strip() == "include ':digits_model'"
    assert _code(files["android/app-snippets/settings.gradle.kts"]).strip() == 'include(":digits_model")'


def test_kotlin_loader_for_int8_install_time(builds: dict[str, dict[str, str]]) -> None:
    kotlin = _code(builds["example"][KOTLIN])
    assert kotlin.splitlines()[0] == "package com.example.digits"
    assert "class DigitsClassifier private constructor(" in kotlin
    assert 'const val MODEL_FILE = "digits.tflite"' in kotlin
    assert "const val INPUT_SIZE = 64" in kotlin
    assert "const val RESCALE = 0.0625f" in kotlin  # data.preprocessing.rescale
    assert "context.assets.openFd(MODEL_FILE)" in kotlin  # install-time: merged into the app's assets
    assert "coerceIn(-128, 127).toByte()" in kotlin  # int8 input quantized with the tensor's own params
    assert "inputTensor.quantizationParams()" in kotlin and "outputTensor.quantizationParams()" in kotlin
    assert "AssetPackManager" not in kotlin and "JSONObject" not in kotlin
    assert kotlin.count("{") == kotlin.count("}") and kotlin.count("(") == kotlin.count(")")


def test_kotlin_loader_for_uint8_fast_follow(builds: dict[str, dict[str, str]]) -> None:
    kotlin = _code(builds["uint8-fast-follow"][KOTLIN])
    assert "coerceIn(0, 255).toByte()" in kotlin
    assert "and 0xFF" in kotlin
    assert "AssetPackManagerFactory.getInstance(context).getPackLocation(ASSET_PACK)" in kotlin
    assert "fun create(context: Context): DigitsClassifier?" in kotlin
    assert kotlin.count("{") == kotlin.count("}")


def test_kotlin_loader_for_float_io_with_normalisation(builds: dict[str, dict[str, str]]) -> None:
    path = "android/app-snippets/src/main/java/com/example/in/digits/DigitsClassifier.kt"
    kotlin = _code(builds["on-demand-float"][path])
    assert kotlin.splitlines()[0] == "package com.example.`in`.digits"  # a Kotlin keyword, back-quoted
    assert "input.putFloat(value)" in kotlin and "output.float" in kotlin
    assert "quantizationParams" not in kotlin
    assert "(scaled - mean[index]) / std[index]" in kotlin
    assert 'getJSONObject("normalization")' in kotlin
    assert kotlin.count("{") == kotlin.count("}")


def test_names() -> None:
    assert kotlin_class_name("digits", True) == "DigitsClassifier"
    assert kotlin_class_name("hand-written-digits", False) == "HandWrittenDigitsModel"
    assert kotlin_class_name("3d-scan", True) == "Model3dScanClassifier"
    assert kotlin_package("com.example.fun.app") == "com.example.`fun`.app"


def test_conversion_settings_are_in_the_plan(example_result: CompileResult) -> None:
    plan = json.loads(example_result.files["plan.json"])
    step = next(s for s in plan["steps"] if s["id"] == "android.tflite")
    params = step["params"]
    assert params["quantization"] == "int8"
    assert params["optimizations"] == ["DEFAULT"]
    assert params["representative_samples"] == 200
    assert params["supported_ops"] == ["tflite_builtins_int8"]
    assert (params["inference_input_type"], params["inference_output_type"]) == ("int8", "int8")
    bundle = next(s for s in plan["steps"] if s["id"] == "android.bundle")
    assert bundle["params"]["assets_dir"] == "android/digits_model/src/main/assets"


# --- accelerators: the loader's delegate choice and the Gradle artifacts it needs -------------------------

from tree_sitter import Language, Node, Parser  # noqa: E402
import tree_sitter_groovy  # noqa: E402
import tree_sitter_kotlin  # noqa: E402

_KOTLIN = Parser(Language(tree_sitter_kotlin.language()))
_GROOVY = Parser(Language(tree_sitter_groovy.language()))

# build → (accelerators it renders, Kotlin source path)
ACCELERATOR_BUILDS = {
    "example": (["cpu"], KOTLIN),
    "on-demand-float": (["gpu", "cpu"],
                        "android/app-snippets/src/main/java/com/example/in/digits/DigitsClassifier.kt"),
    "npu-first": (["npu", "gpu", "cpu"], KOTLIN),
}


def _syntax_errors(parser: Parser, text: str) -> list[str]:
    found: list[str] = []

    def walk(node: Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            found.append(f"line {node.start_point[0] + 1}: {node.text.decode()[:60]!r}")
        for child in node.children:
            walk(child)

    walk(parser.parse(text.encode()).root_node)
    return found


def test_the_parsers_see_syntax_errors() -> None:
    assert _syntax_errors(_KOTLIN, "class A {\n    fun f( {\n}\n")
    assert _syntax_errors(_GROOVY, "dependencies {\n    implementation 'a' )\n")


@pytest.mark.parametrize("build", sorted(ACCELERATOR_BUILDS))
def test_loader_and_gradle_parse_for_each_accelerator_choice(builds: dict[str, dict[str, str]], build: str) -> None:
    _, kotlin = ACCELERATOR_BUILDS[build]
    files = builds[build]
    assert _syntax_errors(_KOTLIN, files[kotlin]) == []
    assert _syntax_errors(_KOTLIN, files["android/app-snippets/build.gradle.kts"]) == []
    assert _syntax_errors(_GROOVY, files["android/app-snippets/build.gradle"]) == []


@pytest.mark.parametrize("build", sorted(ACCELERATOR_BUILDS))
def test_loader_and_gradle_goldens_for_each_accelerator_choice(builds: dict[str, dict[str, str]], build: str,
                                                               golden) -> None:
    _, kotlin = ACCELERATOR_BUILDS[build]
    for path in (kotlin, "android/app-snippets/build.gradle", "android/app-snippets/build.gradle.kts"):
        golden(f"targets/accelerators/{build}/{path.rsplit('/', 1)[-1]}", builds[build][path])


@pytest.mark.parametrize("build", sorted(ACCELERATOR_BUILDS))
def test_loader_tries_the_accelerators_in_order(builds: dict[str, dict[str, str]], build: str) -> None:
    accelerators, path = ACCELERATOR_BUILDS[build]
    kotlin = _code(builds[build][path])
    listed = ", ".join(f'"{a}"' for a in accelerators)
    assert f"val ACCELERATORS = listOf({listed})" in kotlin
    tried = [a for a in re.findall(r"open(Gpu|Npu)\(model\)\?\.let \{ return it \}", kotlin)]
    assert [a.lower() for a in tried] == [a for a in accelerators if a != "cpu"]
    assert ("CompatibilityList().use" in kotlin) == ("gpu" in accelerators)
    # NNAPI without its CPU reference implementation: ops no NPU driver takes stay on LiteRT's CPU kernels
    assert ("NnApiDelegate(NnApiDelegate.Options().setUseNnapiCpu(false))" in kotlin) == ("npu" in accelerators)
    assert 'Opened("cpu", Interpreter(model, cpuOptions())' in kotlin  # the CPU fallback is always there
    if accelerators != ["cpu"]:
        assert "delegate.close()" in kotlin and "opened.delegate?.close()" in _block(kotlin, "override fun close()")


@pytest.mark.parametrize("build", sorted(ACCELERATOR_BUILDS))
def test_gradle_adds_exactly_the_delegate_artifacts(builds: dict[str, dict[str, str]], build: str) -> None:
    accelerators, _ = ACCELERATOR_BUILDS[build]
    groovy = _block(_code(builds[build]["android/app-snippets/build.gradle"]), "dependencies")
    kts = _block(_code(builds[build]["android/app-snippets/build.gradle.kts"]), "dependencies")
    litert = sorted(re.findall(r"implementation '(com\.google\.ai\.edge\.litert:[a-z-]+):[0-9.]+'", groovy))
    assert litert == sorted(re.findall(r'implementation\("(com\.google\.ai\.edge\.litert:[a-z-]+):[0-9.]+"\)', kts))
    expected = ["com.google.ai.edge.litert:litert"]
    if "gpu" in accelerators:  # the NNAPI delegate ships in litert itself
        expected += ["com.google.ai.edge.litert:litert-gpu", "com.google.ai.edge.litert:litert-gpu-api"]
    assert litert == sorted(expected)


def test_cpu_threads_reach_the_loader(builds: dict[str, dict[str, str]]) -> None:
    assert "const val CPU_THREADS = 4" in builds["npu-first"][KOTLIN]
    assert "const val CPU_THREADS = 2" in builds["example"][KOTLIN]


def test_accelerators_in_the_plan(builds: dict[str, dict[str, str]]) -> None:
    for build, (accelerators, _) in ACCELERATOR_BUILDS.items():
        plan = json.loads(builds[build]["plan.json"])
        verify = next(s for s in plan["steps"] if s["id"] == "android.verify")
        assert verify["params"]["accelerators"] == accelerators
        # the compiler decides the NPU check: int8 targets (the example and npu-first) that list npu
        assert verify["params"]["npu_full_integer"] is (build == "npu-first"), build


def test_sparse_int8_weights_convert_sparse_and_run_without_xnnpack(builds: dict[str, dict[str, str]]) -> None:
    steps = {s["id"]: s["params"] for s in json.loads(builds["npu-first"]["plan.json"])["steps"]}
    assert steps["android.tflite"]["optimizations"] == ["DEFAULT", "EXPERIMENTAL_SPARSITY"]
    assert all(steps[f"android.{kind}"]["xnnpack"] is False for kind in ("tflite", "verify", "bundle"))
    assert ".setUseXNNPACK(false)" in _code(builds["npu-first"][KOTLIN])
    example = {s["id"]: s["params"] for s in json.loads(builds["example"]["plan.json"])["steps"]}
    assert example["android.tflite"]["optimizations"] == ["DEFAULT"] and example["android.tflite"]["xnnpack"] is True
    assert "setUseXNNPACK" not in builds["example"][KOTLIN]


# --- the loader follows what the model outputs ---------------------------------------------------------

def _output_kind_build(tmp_path: Path, loss: str, units: int, activation: str) -> dict[str, str]:
    """The example with its output layer and loss changed (a regression or a one-unit sigmoid model)."""
    tree = example_tree()
    layers = tree["model"]["layers"]
    layers[-1] = {**layers[-1], "units": units, "activation": activation}
    tree["training"]["loss"] = loss
    tree["training"]["metrics"] = ["mae"] if loss == "mean_squared_error" else ["accuracy"]
    tree["data"].pop("labels", None)
    tree["data"]["source"] = {"kind": "npz", "path": "data.npz", "features": "x", "labels": "y"}
    import numpy as np  # the compiler checks the archive's arrays against the spec

    labels = np.linspace(0.0, 1.0, 40) if loss == "mean_squared_error" else np.arange(40) % 2
    np.savez(tmp_path / "data.npz", x=np.zeros((40, 64), np.float32), y=labels)
    tree["compression"] = []
    tree.pop("environments", None)
    tree["targets"] = [t for t in tree["targets"] if t["kind"] == "tflite"]
    tree["training"].pop("distribution")  # no cluster target left: the default strategy
    for target in tree["targets"]:
        target["gates"] = {"max_error_increase": 0.1} if loss == "mean_squared_error" else {"max_accuracy_drop": 0.05}
        target["quantization"] = {"kind": "int8", "representative_samples": 100}
    result = compile_tree(tree, tmp_path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result.files


def test_a_regression_model_gets_a_model_class_without_labels(tmp_path: Path) -> None:
    files = _output_kind_build(tmp_path, "mean_squared_error", 1, "linear")
    assert "android/app-snippets/src/main/java/com/example/digits/DigitsClassifier.kt" not in files
    kotlin = files["android/app-snippets/src/main/java/com/example/digits/DigitsModel.kt"]
    assert _syntax_errors(_KOTLIN, kotlin) == []
    code = _code(kotlin)
    assert "class DigitsModel private constructor(" in code and "fun predict(features: FloatArray): FloatArray" in code
    assert "labels" not in code and "LABELS_FILE" not in code and "classify" not in code
    assert not any(path.endswith("labels.txt") for path in files)  # no "0" class for a regression model
    bundle = next(s for s in compile_tree_plan(files) if s["id"] == "android.bundle")
    assert bundle["params"]["output_kind"] == "regression" and bundle["params"]["labels"] == []


def test_a_one_unit_sigmoid_model_reads_one_value_for_two_labels(tmp_path: Path) -> None:
    files = _output_kind_build(tmp_path, "binary_crossentropy", 1, "sigmoid")
    kotlin = files[KOTLIN]
    assert _syntax_errors(_KOTLIN, kotlin) == []
    code = _code(kotlin)
    # one value read, never labels.size of them (BufferUnderflowException on a one-value output)
    assert "FloatArray(labels.size)" not in code and "FloatArray(count)" in code
    assert "val positive = outputs(features).single()" in code
    assert "listOf(labels[1] to positive, labels[0] to 1f - positive)" in code
    assert "check(labels.size == 2)" in code
    assert files["android/digits_model/src/main/assets/labels.txt"] == "0\n1\n"


def test_a_softmax_model_checks_its_scores_against_the_labels(builds: dict[str, dict[str, str]]) -> None:
    code = _code(builds["example"][KOTLIN])
    assert "FloatArray(labels.size)" not in code and "val count = outputTensor.numElements()" in code
    assert 'check(scores.size == labels.size)' in code and "runSignature" not in code


def compile_tree_plan(files: dict[str, str]) -> list[dict[str, object]]:
    return json.loads(files["plan.json"])["steps"]


@pytest.mark.parametrize("kind", ["none", "float16", "dynamic", "int16x8"])
def test_npu_for_a_model_without_int8_ops_is_a_warning_at_its_line(tmp_path: Path, kind: str) -> None:
    tree = example_tree()
    android = next(t for t in tree["targets"] if t["kind"] == "tflite")
    android["accelerators"] = ["gpu", "npu", "cpu"]
    android["quantization"] = {"kind": kind}
    tree["compression"] = []  # quantization-aware training would need int8
    result = compile_tree(tree, tmp_path)
    assert result.ok, [d.format() for d in result.diagnostics]
    [warning] = [w for w in result.warnings if "NNAPI would delegate nothing" in w.message]
    index = tree["targets"].index(android)
    assert warning.path == f"targets[{index}].accelerators[1]"
    assert warning.message.startswith(f"warning: a {kind} model")


def test_npu_for_an_int8_model_is_no_warning(tmp_path: Path) -> None:
    tree = example_tree()
    android = next(t for t in tree["targets"] if t["kind"] == "tflite")
    android["accelerators"] = ["npu", "cpu"]
    result = compile_tree(tree, tmp_path)
    assert result.ok and not [w for w in result.warnings if "NNAPI" in w.message]
