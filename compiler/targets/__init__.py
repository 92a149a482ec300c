"""Renderers of the target kinds; importing this package registers them with ``compiler.render``.

One module per kind (``tf_serving``, ``tflite``, ``gpu_cluster``, ``kserve``), each with its renderer and its
validation ``RULES``; ``kubernetes`` holds the values their
manifests share and ``common`` the naming and quoting helpers.
"""

from . import gpu_cluster, kserve, tf_serving, tflite

__all__ = ["gpu_cluster", "kserve", "tf_serving", "tflite"]
