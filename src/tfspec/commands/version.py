"""``tfspec --version``: tfspec's version and the runtime's, read from the installed packages' metadata.

The runtime's versions come from :mod:`importlib.metadata` (what pip installed), never from importing
TensorFlow: the compiler alone (``pip install tfspec``) answers as fast as with the runtime extra.
"""

from __future__ import annotations

import click

from tfspec.base.versions import RUNTIME_VERSIONS, TFSPEC_VERSION

__all__ = ["version_lines", "version_option"]


def version_lines(installed: dict[str, str | None]) -> list[str]:
    """``tfspec X`` and one ``runtime:`` line: each runtime package with its version, ``missing`` when the
    extra is only partly there, ``(tfspec needs V)`` where the version is not the pinned one."""
    if not any(installed.get(package) for package in RUNTIME_VERSIONS):
        return [f"tfspec {TFSPEC_VERSION}", "runtime: not installed (pip install 'tfspec[runtime]')"]
    words = []
    for package, version in installed.items():
        pinned = RUNTIME_VERSIONS.get(package)
        if version is None:
            words.append(f"{package} missing")
        elif pinned is not None and version != pinned:
            words.append(f"{package} {version} (tfspec needs {pinned})")
        else:
            words.append(f"{package} {version}")
    return [f"tfspec {TFSPEC_VERSION}", f"runtime: {', '.join(words)}"]


def _print_version(context: click.Context, _parameter: click.Parameter, value: bool) -> None:
    if not value or context.resilient_parsing:
        return
    from tfspec.runtime.tf import installed_versions  # package metadata only: TensorFlow is not imported

    for line in version_lines(installed_versions()):
        click.echo(line)
    context.exit()


version_option = click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
                              help="Show tfspec's version and the runtime's (TensorFlow, tf-keras, tfmot), then exit.")
