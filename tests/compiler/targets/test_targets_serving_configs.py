"""TF Serving configs parse with TF Serving's protos and say what the spec says."""

from __future__ import annotations

import pytest
import yaml
from google.protobuf import text_format
from serving_protos import BatchingParameters, MonitoringConfig
from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

from targets_testing import files_named


def _parse(text: str, message_class):  # noqa: ANN001, ANN202
    return text_format.Parse(text, message_class())


def test_every_models_config_parses(builds: dict[str, dict[str, str]]) -> None:
    found = files_named(builds, lambda p: p.endswith("/config/models.config"))
    assert len(found) == len(builds)
    for build, path, text in found:
        config = _parse(text, ModelServerConfig)
        (model,) = config.model_config_list.config
        assert model.name == "digits", (build, path)
        # The version folder is not part of base_path; an s3:// store is copied into the same local folder
        # (the stock image has no S3 file system), a gs:// one would be read directly.
        expected = "/models/digits"
        assert model.base_path == expected, build
        assert model.model_platform == "tensorflow"


def test_models_config_of_the_example(builds: dict[str, dict[str, str]]) -> None:
    config = _parse(builds["example"]["serving/config/models.config"], ModelServerConfig)
    model = config.model_config_list.config[0]
    # Labels without an explicit policy: exactly the labelled versions and this one are loaded.
    assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
    assert list(model.model_version_policy.specific.versions) == [3]
    assert dict(model.version_labels) == {"stable": 3}


def test_specific_and_all_version_policies(builds: dict[str, dict[str, str]]) -> None:
    # Labels: the default Deployment loads the stable version only (unlabelled requests reach it), the
    # canary's Deployment the canary version.
    gpu = _parse(builds["gpu-serving"]["serving/config/models.config"], ModelServerConfig).model_config_list.config[0]
    assert list(gpu.model_version_policy.specific.versions) == [2]
    assert dict(gpu.version_labels) == {"stable": 2}
    canary_map = yaml.safe_load(builds["gpu-serving"]["serving/kubernetes/configmap-canary.yaml"])
    canary = _parse(canary_map["data"]["models.config"], ModelServerConfig).model_config_list.config[0]
    assert list(canary.model_version_policy.specific.versions) == [3]
    assert dict(canary.version_labels) == {"canary": 3}
    plain = _parse(builds["plain-serving"]["serving/config/models.config"], ModelServerConfig).model_config_list.config[0]
    assert plain.model_version_policy.WhichOneof("policy_choice") == "all"
    assert not plain.version_labels


def test_batching_parameters_parse_with_the_spec_values(builds: dict[str, dict[str, str]]) -> None:
    params = _parse(builds["example"]["serving/config/batching_parameters.txt"], BatchingParameters)
    assert params.max_batch_size.value == 32
    assert params.batch_timeout_micros.value == 2000
    # TF Serving's batching guide for online serving: one thread per core of the CPU limit (2), and a queue
    # of as many batches as threads (a bounded queue under overload).
    assert params.num_batch_threads.value == 2
    assert params.max_enqueued_batches.value == 2
    assert list(params.allowed_batch_sizes) == [8, 16, 32]
    assert params.allowed_batch_sizes[-1] == params.max_batch_size.value
    assert params.pad_variable_length_inputs is False
    gpu = _parse(builds["gpu-serving"]["serving/config/batching_parameters.txt"], BatchingParameters)
    assert gpu.pad_variable_length_inputs is True


def test_monitoring_config_parses(builds: dict[str, dict[str, str]]) -> None:
    config = _parse(builds["example"]["serving/config/monitoring.config"], MonitoringConfig)
    assert config.prometheus_config.enable is True
    assert config.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_the_parsers_reject_a_wrong_field() -> None:
    with pytest.raises(text_format.ParseError):
        _parse("max_batch_size: 32\n", BatchingParameters)  # a wrapped field written plain
    with pytest.raises(text_format.ParseError):
        _parse("prometheus_config { enabled: true }\n", MonitoringConfig)
    with pytest.raises(text_format.ParseError):
        _parse("model_config_list { config { name: \"a\" version_policy {} } }\n", ModelServerConfig)


def test_configmap_holds_exactly_the_config_files(builds: dict[str, dict[str, str]]) -> None:
    for build in ("example", "gpu-serving", "plain-serving"):
        files = builds[build]
        configmap = yaml.safe_load(files["serving/kubernetes/configmap.yaml"])
        on_disk = {path.rsplit("/", 1)[1]: text for path, text in files.items() if path.startswith("serving/config/")}
        # The config files, and with an s3:// store the script of the containers that copy it.
        assert {k: v for k, v in configmap["data"].items() if k != "sync-store.sh"} == on_disk, build
        assert ("sync-store.sh" in configmap["data"]) == (build == "gpu-serving")


def test_plain_serving_has_no_batching_or_monitoring_files(builds: dict[str, dict[str, str]]) -> None:
    files = builds["plain-serving"]
    assert "serving/config/batching_parameters.txt" not in files
    assert "serving/config/monitoring.config" not in files
    dockerfile = files["serving/Dockerfile"]
    for flag in ("--enable_batching", "--batching_parameters_file", "--monitoring_config_file", "--enable_model_warmup"):
        assert flag not in dockerfile
