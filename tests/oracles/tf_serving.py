"""TF Serving's rules for which versions a server loads and which version answers a request.

Source: tensorflow/serving at commit 9d981c5c2708d23c5407c7c1e30309e6f9798874 (2026-07-30; the rules are
unchanged since long before 2.21.0, the version tfspec pins):

* ``tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc``: the poller lists the
  children of ``base_path``; a child is a version when ``absl::SimpleAtoi`` parses its name
  (``ParseVersionNumber``); ``latest`` aspires the N highest, ``specific`` those listed that exist, ``all``
  every one.
* ``tensorflow_serving/model_servers/server_core.cc`` ``ServableRequestFromModelSpec``: a request with a
  version asks for it, one with a ``version_label`` for the label's version (labels of the model's
  config), one with neither for ``ServableRequest::Latest``.
* ``tensorflow_serving/core/basic_manager.cc`` ``ServingMap::Update``: ``Latest`` is the last (highest)
  version of the stream among the *available* (loaded) ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ModelConfig", "parse_models_config", "version_number", "aspired_versions", "version_for_request"]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: str
    num_versions: int
    versions: tuple[int, ...]
    labels: dict[str, int]


def parse_models_config(text: str) -> list[ModelConfig]:
    """The ``model_config_list`` of a ModelServerConfig text proto, parsed by TF Serving's own proto."""
    from google.protobuf import text_format
    from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

    config = text_format.Parse(text, ModelServerConfig())
    out = []
    for model in config.model_config_list.config:
        policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
        out.append(ModelConfig(model.name, model.base_path, policy,
                               max(model.model_version_policy.latest.num_versions, 1),
                               tuple(model.model_version_policy.specific.versions), dict(model.version_labels)))
    return out


def version_number(child: str) -> int | None:
    """``ParseVersionNumber``: ``absl::SimpleAtoi`` (optional surrounding ASCII space and sign, digits)."""
    match = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*", child)
    return int(match.group(1)) if match else None


def aspired_versions(model: ModelConfig, children: list[str]) -> list[int]:
    """Versions the file-system poller hands to the manager for ``model`` given ``base_path``'s children."""
    found = sorted({v for v in map(version_number, children) if v is not None})
    if model.policy == "all":
        return found
    if model.policy == "specific":
        return [v for v in found if v in model.versions]
    return found[-model.num_versions:]


def version_for_request(models: list[ModelConfig], loaded: dict[str, list[int]], name: str,
                        label: str | None = None, version: int | None = None) -> int:
    """The version that answers a Predict for model ``name``; raises LookupError where TF Serving errs."""
    model = next((m for m in models if m.name == name), None)
    available = sorted(loaded.get(name, []))
    if model is None or not available:
        raise LookupError(f"Servable not found for request: {name}")
    if version is not None:
        chosen = version
    elif label is not None:
        if label not in model.labels:
            raise LookupError(f"Unrecognized servable version label: {label}")
        chosen = model.labels[label]
    else:
        return available[-1]  # ServableRequest::Latest: the highest available version
    if chosen not in available:
        raise LookupError(f"Servable not found for request: Specific({name}, {chosen})")
    return chosen
