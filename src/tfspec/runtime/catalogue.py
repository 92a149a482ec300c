"""The catalogue of tf_keras layers and their constructor arguments, read from tf_keras itself.

``base/keras_layers.json`` is this module's output, committed so that ``build`` validates any tf_keras
layer's arguments without importing TensorFlow (``tfspec.base.catalogue`` reads it). Regenerate it after a
tf_keras upgrade with::

    python -m tfspec.runtime.catalogue --out src/tfspec/base/keras_layers.json

A test fails when the committed file differs from what the installed tf_keras gives.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from .tf import import_tf

__all__ = ["COMMAND", "EXCLUDED", "catalogue", "catalogue_text", "layer_type_name", "main"]

COMMAND = "python -m tfspec.runtime.catalogue --out src/tfspec/base/keras_layers.json"

# Not describable as data: base classes, cells (they go inside an RNN), arbitrary code, feature columns.
EXCLUDED = frozenset({
    "AbstractRNNCell", "Layer", "Wrapper", "InputLayer", "Lambda", "DenseFeatures", "RNN", "StackedRNNCells",
    "GRUCell", "LSTMCell", "SimpleRNNCell",
})
_SPECIAL_NAMES = {"PReLU": "prelu", "ReLU": "relu", "ELU": "elu", "LeakyReLU": "leaky_relu",
                  "ThresholdedReLU": "thresholded_relu", "ConvLSTM1D": "conv_lstm1d", "ConvLSTM2D": "conv_lstm2d",
                  "ConvLSTM3D": "conv_lstm3d", "GRU": "gru", "LSTM": "lstm", "SimpleRNN": "simple_rnn"}


def layer_type_name(class_name: str) -> str:
    """``Conv2DTranspose`` → ``conv2d_transpose``; ``*Pooling*`` → ``*_pool*`` (the spec's short names)."""
    if class_name in _SPECIAL_NAMES:
        return _SPECIAL_NAMES[class_name]
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name)
    name = re.sub(r"(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    name = re.sub(r"(\d)_d(?=_|$)", r"\1d", name)  # conv1_d → conv1d
    return name.replace("pooling", "pool")


def _plain(value: Any) -> Any:
    """A default as JSON (tuples as lists); None for what JSON cannot hold (an object default)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return None


def _args(cls: type) -> dict[str, dict[str, Any]]:
    out = {}
    for name, parameter in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        required = parameter.default is inspect.Parameter.empty
        out[name] = {"required": required, "default": None if required else _plain(parameter.default)}
    return out


def catalogue() -> dict[str, Any]:
    """``{"layers": {type: {"class", "doc", "args": {name: {"required", "default"}}}}}`` of tf_keras.layers."""
    _, keras = import_tf()
    classes: dict[str, type] = {}
    for attribute in dir(keras.layers):
        cls = getattr(keras.layers, attribute)
        if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) and cls.__name__ not in EXCLUDED:
            classes.setdefault(cls.__name__, cls)  # aliases (MaxPool2D, Convolution2D) share one class
    layers = {}
    for class_name, cls in sorted(classes.items()):
        doc = (inspect.getdoc(cls) or "").strip().split("\n\n")[0]
        layers[layer_type_name(class_name)] = {"class": class_name, "doc": " ".join(doc.split()),
                                               "args": _args(cls)}
    return {"generated_by": COMMAND, "tf_keras": keras.__version__, "layers": dict(sorted(layers.items()))}


def catalogue_text() -> str:
    return json.dumps(catalogue(), indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfspec.runtime.catalogue", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    args.out.write_text(catalogue_text(), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
