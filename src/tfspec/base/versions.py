"""Pinned versions and images, kept as data (not if-chains). Every fingerprint includes them.

The plan's schema version is the plan contract's own: ``tfspec.plan.PLAN_SCHEMA_VERSION``.
"""

from __future__ import annotations

__all__ = ["TFSPEC_VERSION", "RUNTIME_VERSIONS", "SERVING_IMAGE", "TRAINING_IMAGE", "STORE_SYNC_IMAGE",
           "GRPC_HEALTH_SERVING_VERSION", "ANDROID_LIBRARIES",
           "ACCELERATOR_LIBRARIES", "serving_image", "training_image"]

TFSPEC_VERSION = "0.1.0"

# The versions `tfspec run` is pinned to (the `runtime` extra); the runtime refuses others.
RUNTIME_VERSIONS: dict[str, str] = {
    "tensorflow": "2.21.0",
    "tf-keras": "2.21.0",
    "tensorflow-model-optimization": "0.8.1",
    "tensorflow-serving-api": "2.21.0",
}

# TF Serving matches the TensorFlow that wrote the SavedModel.
SERVING_IMAGE = {"repository": "tensorflow/serving", "version": "2.21.0", "gpu_suffix": "-gpu"}
TRAINING_IMAGE = {"repository": "tensorflow/tensorflow", "version": "2.21.0", "gpu_suffix": "-gpu"}

# The AWS CLI v2 image (aws/aws-cli, docker/Dockerfile: Amazon Linux 2023 with the CLI, /bin/sh and
# coreutils) that copies an s3:// model store into the folder TF Serving polls: the stock
# tensorflow/serving image has had no S3 file system since 2.7 (tensorflow/serving#1963). 2.36.7 is the
# newest release in the CLI's v2 CHANGELOG at commit 73fb33bb171a.
STORE_SYNC_IMAGE = "amazon/aws-cli:2.36.7"

# First TF Serving release with --enable_grpc_healthcheck_service (tensorflow/serving a9a8e7bf, 2.15.0).
GRPC_HEALTH_SERVING_VERSION = (2, 15)


def serving_image(version: str, gpus: int) -> str:
    """``tensorflow/serving:<version>``, or its ``-gpu`` variant when the replica gets GPUs."""
    suffix = SERVING_IMAGE["gpu_suffix"] if gpus > 0 else ""
    return f"{SERVING_IMAGE['repository']}:{version}{suffix}"


def training_image(gpus: int) -> str:
    """The TensorFlow base image of the training container (``-gpu`` when workers get GPUs)."""
    suffix = TRAINING_IMAGE["gpu_suffix"] if gpus > 0 else ""
    return f"{TRAINING_IMAGE['repository']}:{TRAINING_IMAGE['version']}{suffix}"

# Android libraries named in the app-side snippets of the tflite target (group:artifact:version). LiteRT
# keeps TensorFlow Lite's Java package (org.tensorflow.lite); asset-delivery-ktx is only needed for
# fast_follow / on_demand packs (install-time packs are read through the AssetManager). The GPU delegate
# (org.tensorflow.lite.gpu: GpuDelegate, CompatibilityList) is two more artifacts of the same release; the
# NNAPI delegate (org.tensorflow.lite.nnapi.NnApiDelegate) ships in `litert` itself.
ANDROID_LIBRARIES: dict[str, str] = {
    "litert": "com.google.ai.edge.litert:litert:1.0.1",
    "litert_gpu": "com.google.ai.edge.litert:litert-gpu:1.0.1",
    "litert_gpu_api": "com.google.ai.edge.litert:litert-gpu-api:1.0.1",
    "asset_delivery": "com.google.android.play:asset-delivery-ktx:2.2.2",
}

# The ANDROID_LIBRARIES keys each accelerator of a tflite target adds to the app's dependencies.
ACCELERATOR_LIBRARIES: dict[str, tuple[str, ...]] = {
    "gpu": ("litert_gpu", "litert_gpu_api"),
    "npu": (),
    "cpu": (),
}
