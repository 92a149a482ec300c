"""The images a spec's build defines: one per target whose kind builds one (``TargetKind.image``: a
tf_serving target's serving image, a gpu_cluster target's training image) and the workflow's step image,
each with the reference its manifests name.

Pure data read from the compile result; :mod:`tfspec.io.images` builds and pushes them. The reference is
``<repository>:<tag>`` as the Dockerfile's OCI labels state it (``title`` and ``version``: the compiler
computed the content tag once, where it rendered the Dockerfile).
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from .targets import target_image
from .targets.common import DIGEST_MARK
from .workflow import WORKFLOW_DIR

if TYPE_CHECKING:
    from .pipeline import CompileResult

__all__ = ["ImageBuild", "image_builds", "image_reference_of", "built_reference", "WHEELS_DIR", "MODELS_DIR"]

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


def image_reference_of(dockerfile: str) -> str:
    """The image a rendered Dockerfile builds, from the OCI labels the compiler wrote into it."""
    labels = dict(_LABEL.findall(dockerfile))
    repository, tag = labels["title"], labels["version"]
    return repository if DIGEST_MARK in repository else f"{repository}:{tag}"


def image_builds(result: CompileResult) -> list[ImageBuild]:
    """Every image of a compiled spec, targets first (in spec order), the workflow's step image last."""
    assert result.resolved is not None and result.plan is not None
    out: list[ImageBuild] = []
    for target in result.resolved.spec.targets:
        source = target_image(target)
        if source is None:  # a kind that builds no image (tflite, kserve)
            continue
        dockerfile = result.files[f"{target.name}/Dockerfile"]
        bundle = result.plan.step(f"{target.name}.bundle") if source.saved_model else None
        out.append(_build(target.name, dockerfile, source.explicit, wheel=source.wheel,
                          saved_model=bundle.params.model_dir if bundle is not None else None,
                          bundle_step=bundle.id if bundle is not None else None))
    dockerfile = result.files.get(f"{WORKFLOW_DIR}/Dockerfile")  # rendered when workflow.image is derived
    if dockerfile is not None:
        out.append(_build(WORKFLOW_DIR, dockerfile, None, wheel=True))
    return out


def built_reference(explicit: str | None, dockerfile: str) -> str:
    """The reference the manifests name: the spec's repository when it pins a digest, else the Dockerfile's."""
    return explicit if explicit is not None and DIGEST_MARK in explicit else image_reference_of(dockerfile)


def _build(folder: str, dockerfile: str, explicit: str | None, *, wheel: bool, saved_model: str | None = None,
           bundle_step: str | None = None) -> ImageBuild:
    pinned = explicit is not None and DIGEST_MARK in explicit
    return ImageBuild(name=folder, folder=folder, reference=built_reference(explicit, dockerfile), pinned=pinned,
                      wheel=wheel, saved_model=saved_model, bundle_step=bundle_step)
