"""Renderers of the target kinds; importing this package registers them with ``compiler.render``.

One module per kind (``tf_serving``, ``tflite``, ``gpu_cluster``); ``kubernetes`` holds the values their
manifests share and ``common`` the naming and quoting helpers.
"""

from . import gpu_cluster, tf_serving, tflite

__all__ = ["gpu_cluster", "tf_serving", "tflite"]
