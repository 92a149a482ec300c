"""The images a spec's build defines: one per rendered Dockerfile (a tf_serving target's serving image, a
gpu_cluster target's training image, the workflow's step image), each with the reference its manifests name.

Pure data read from the compile result; :mod:`tfspec.io.images` builds and pushes them. The reference is
``<repository>:<tag>`` as the Dockerfile's OCI labels state it (``title`` and ``version``: the compiler
computed the content tag once, where it rendered the Dockerfile).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from tfspec.spec.targets import GpuClusterTarget, TfServingTarget

from .targets.common import DIGEST_MARK
from .workflow import WORKFLOW_DIR

if TYPE_CHECKING:
    from .pipeline import CompileResult

__all__ = ["ImageBuild", "image_builds", "WHEELS_DIR", "MODELS_DIR"]

WHEELS_DIR = "wheels"  # the context folder the training and step Dockerfiles copy tfspec's wheel from
MODELS_DIR = "models"  # the context folder the serving Dockerfile copies the SavedModel versions from

_LABEL = re.compile(r'org\.opencontainers\.image\.(title|version)="([^"]+)"')


@dataclasses.dataclass(frozen=True)
class ImageBuild:
    """One image of a spec.

    Attributes:
        name: the target's name, or ``workflow`` for the step image.
        folder: the rendered folder holding its Dockerfile (the build context), relative to the build folder.
        reference: ``repository:tag`` as the manifests name it (``repository@sha256:...`` when pinned).
        pinned: the spec pins the image by digest: it is built elsewhere, never by tfspec.
        wheel: the context needs tfspec's wheel under ``wheels/``.
        saved_model: the dist folder (relative to the dist) whose SavedModel version the context needs under
            ``models/<name>/<version>/``, or None.
        bundle_step: the plan step that made that folder (its fingerprint identifies the SavedModel).
    """

    name: str
    folder: str
    reference: str
    pinned: bool
    wheel: bool
    saved_model: str | None = None
    bundle_step: str | None = None


def _reference(dockerfile: str) -> str:
    labels = dict(_LABEL.findall(dockerfile))
    repository, tag = labels["title"], labels["version"]
    return repository if DIGEST_MARK in repository else f"{repository}:{tag}"


def image_builds(result: CompileResult) -> list[ImageBuild]:
    """Every image of a compiled spec, targets first (in spec order), the workflow's step image last."""
    assert result.resolved is not None and result.plan is not None
    out: list[ImageBuild] = []
    for target in result.resolved.spec.targets:
        dockerfile = result.files.get(f"{target.name}/Dockerfile")
        if dockerfile is None:  # tflite and kserve targets build no image
            continue
        if isinstance(target, TfServingTarget):
            explicit = target.kubernetes.image if target.kubernetes else None
            baked = target.model_store is None  # with a model store the image holds only the configs
            bundle = result.plan.step(f"{target.name}.bundle") if baked else None
            saved_model = bundle.params.model_dir if bundle is not None else None
            out.append(_build(target.name, dockerfile, explicit, wheel=False, saved_model=saved_model,
                              bundle_step=bundle.id if bundle is not None else None))
        elif isinstance(target, GpuClusterTarget):
            out.append(_build(target.name, dockerfile, target.image, wheel=True))
    dockerfile = result.files.get(f"{WORKFLOW_DIR}/Dockerfile")  # rendered when workflow.image is derived
    if dockerfile is not None:
        out.append(_build(WORKFLOW_DIR, dockerfile, None, wheel=True))
    return out


def _build(folder: str, dockerfile: str, explicit: str | None, *, wheel: bool, saved_model: str | None = None,
           bundle_step: str | None = None) -> ImageBuild:
    pinned = explicit is not None and DIGEST_MARK in explicit
    reference = explicit if pinned else _reference(dockerfile)
    return ImageBuild(name=folder, folder=folder, reference=reference, pinned=pinned, wheel=wheel,
                      saved_model=saved_model, bundle_step=bundle_step)
