"""``tfspec images``: build the spec's images (serving, training, workflow step), tag them as the manifests
name them, push them to the registry. A thin layer over :mod:`tfspec.compiler.images` and :mod:`tfspec.io.images`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from .common import compiled, env_option, handle_errors, json_option, spec_argument

__all__ = ["images"]


@click.command()
@spec_argument
@env_option
@click.option("--target", "targets", multiple=True, metavar="NAME",
              help="Only this image: a target's name, or `workflow` for the step image (repeatable).")
@click.option("--dist-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The dist `tfspec run` wrote (default dist/<name>/): serving images copy their SavedModel from it.")
@click.option("--wheel", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="tfspec's wheel for the training and step images (default: the wheel this tfspec was installed "
                   "from, else one built from its source folder, else pip download).")
@click.option("--builder", type=click.Choice(["buildah", "docker"]), default=None,
              help="Default: buildah when it is on PATH, else docker.")
@click.option("--push", is_flag=True, help="Push every image after building it.")
@click.option("--registry", metavar="HOST[/PATH]", default=None,
              help="With --push: push to this registry (as <registry>/<image name>:<tag>) instead of the one the "
                   "manifests name (the spec's `registry`).")
@click.option("--context-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build nothing: write each image's build context (Dockerfile, wheel, SavedModel) to "
                   "DIR/<name>/ for another builder (kaniko in a cluster); DIR must be new or empty.")
@click.option("--tls-verify/--no-tls-verify", default=True, show_default=True,
              help="buildah: require HTTPS and a valid certificate from the registry (docker: the daemon's "
                   "insecure-registries setting decides).")
@json_option
@handle_errors
def images(spec: str, env: str | None, targets: tuple[str, ...], dist_dir: Path | None, wheel: Path | None,
           builder: str | None, push: bool, registry: str | None, context_dir: Path | None, tls_verify: bool,
           as_json: bool) -> None:
    """Build SPEC's images with buildah or docker, tagged as its manifests name them; --push pushes them.

    A serving image holds the SavedModel `tfspec run` made (run it first); training and step images hold
    tfspec's wheel. Exit 2 when the builder, the wheel or a SavedModel is missing, or a build fails.
    """
    from tfspec.compiler.images import image_builds
    from tfspec.io.images import (ImagesError, build_images, check_saved_models, find_builder, tfspec_wheel,
                                  write_contexts)

    if registry is not None and not push:
        raise click.UsageError("--registry goes with --push")
    if context_dir is not None and (push or builder is not None):
        raise click.UsageError("--context-dir builds nothing: no --push, no --builder")
    result = compiled(spec, env)
    assert result.plan is not None
    builds = image_builds(result)
    unknown = sorted(set(targets) - {b.name for b in builds})
    if unknown:
        names = ", ".join(b.name for b in builds) or "none"
        raise ImagesError(f"--target {unknown[0]}: no image of that name (this spec's images: {names})")
    builds = [b for b in builds if not targets or b.name in targets]
    if not builds:
        raise ImagesError(f"{spec} defines no image (tf_serving and gpu_cluster targets and a workflow "
                          "without an image do)")
    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    tool = find_builder(builder) if context_dir is None else None
    dist = dist_dir if dist_dir is not None else Path("dist") / result.plan.spec.dist_name
    check_saved_models(builds, {s.id: s.fingerprint for s in result.plan.steps}, dist, spec)
    with tempfile.TemporaryDirectory(prefix="tfspec-wheel-") as scratch:
        needs_wheel = any(b.wheel and not b.pinned for b in builds)
        found = tfspec_wheel(wheel, Path(scratch), log) if needs_wheel else None
        if tool is None:
            assert context_dir is not None
            done = write_contexts(builds, result.files, context_dir, wheel=found, dist=dist, log=log)
        else:
            done = build_images(builds, result.files, builder=tool, dist=dist, wheel=found, push=push,
                                registry=registry, tls_verify=tls_verify, log=log)
    if as_json:
        click.echo(json.dumps({"ok": True, "images": [d.to_json() for d in done]}, indent=2, sort_keys=True))
