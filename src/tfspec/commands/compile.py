"""Compiler commands: ``validate``, ``build``, ``plan``, ``schema``, ``init`` (no TensorFlow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from tfspec.io.batch import build_producer, referenced_specs
from tfspec.base.outputs import protected_paths
from tfspec.io.uptodate import cached_build, read_spec_bytes, record_build
from tfspec.compiler.project import find_project_file
from tfspec.io.tree_diff import diff_tree
from tfspec.base.atomic import write_tree
from tfspec.base.errors import EXIT_DIFF, TfspecError

from .common import compiled, default_out, env_option, handle_errors, json_option, spec_argument

__all__ = ["validate", "build", "plan", "schema", "init", "layers"]

@click.command()
@spec_argument
@env_option
@json_option
@handle_errors
def validate(spec: str, env: str | None, as_json: bool) -> None:
    """Check a spec; print every problem with file:line:col and key path (exit 2 on problems)."""
    result = compiled(spec, env, quiet_warnings=as_json)
    if as_json:
        click.echo(json.dumps({"ok": True, "diagnostics": [], "warnings": [w.to_json() for w in result.warnings]},
                              indent=2))
    else:
        # the files `tfspec build` writes: the compiled ones and manifest.json
        click.echo(f"{spec}: ok ({len(result.plan.steps)} steps, {len(result.files) + 1} files)")


@click.command()
@spec_argument
@env_option
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: build/<name>/). For a folder of specs: the output root "
                   "(default: build/), each spec going to <root>/<name>/.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when an output folder is stale.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Folder builds: worker processes (default: the number of CPUs).")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Folder builds: compile every spec, even those whose inputs are unchanged.")
@click.option("--prune", is_flag=True,
              help="Folder builds: delete output folders no spec produces any more (with --check: report them).")
@json_option
@handle_errors
def build(spec: str, env: str | None, out: Path | None, check: bool, jobs: int | None, no_cache: bool,
          prune: bool, as_json: bool) -> None:
    """Validate a spec (or every spec below a folder) and write plan.json, manifest.json and every target's files.

    A folder is searched recursively for *.yaml / *.yml files with a top-level `api_version: tfspec/v1`
    line; they are compiled in parallel and specs whose inputs did not change since the last build are
    skipped (cache: <out root>/.tfspec-build-cache.json).
    """
    if Path(spec).is_dir():
        from .folder import build_folder_command

        sys.exit(build_folder_command(spec, env, out, check=check, jobs=jobs, use_cache=not no_cache, prune=prune,
                                      as_json=as_json))
    if jobs is not None or no_cache or prune:
        raise TfspecError("--jobs, --no-cache and --prune apply to folder builds; SPEC is a file")
    data = read_spec_bytes(spec)
    if data is not None:
        current = cached_build(data, spec, env, out, contents=check)
        if current is not None and check:  # inputs unchanged, and the bytes on disk are the recorded ones
            click.echo(f"{current.out_dir}: up to date")
            return
        if current is not None:  # the output is what this build would write: nothing compiled or written
            _report_written(current.out_dir, current.files, as_json)
            return
    result = compiled(spec, env, data)
    out_dir = out or default_out(result)
    result = result.placed(out_dir)
    assert result.resolved is not None
    producer = build_producer(result.resolved.spec.name, env)
    if check:
        diff = diff_tree(out_dir, result.files, producer)
        if diff:
            click.echo(diff, nl=False)
            click.echo(f"{out_dir}: stale; run `tfspec build {spec}" + (f" -e {env}" if env else "") +
                       (f" --out {out}" if out else "") + "` and commit the result", err=True)
            sys.exit(EXIT_DIFF)
        click.echo(f"{out_dir}: up to date")
        return
    write_tree(out_dir, result.files, producer, option="--out" if out else "output folder",
               protected=tuple(protected_paths([spec], [find_project_file(spec)])))
    if data is not None:
        external = result.inputs is not None and bool(result.inputs.content or result.inputs.teachers)
        record_build(data, spec, env, out, out_dir, result.files, name=result.resolved.spec.name,
                     name_position=result.resolved.document.position(("name",)), cacheable=not external,
                     deps=referenced_specs(spec, result.resolved))
    _report_written(out_dir, sorted(result.files), as_json)


def _report_written(out_dir: Path, files: list[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": True, "out": str(out_dir), "files": sorted(files)}, indent=2))
    else:
        click.echo(f"wrote {len(files) + 1} files to {out_dir}")


@click.command()
@spec_argument
@env_option
@json_option
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Step cache to check (default: .tfspec/cache next to the spec).")
@handle_errors
def plan(spec: str, env: str | None, as_json: bool, cache_dir: Path | None) -> None:
    """Show the steps `tfspec run` would execute, their dependencies, fingerprints and cache state."""
    from tfspec.compiler.file_digests import prefetch_folders
    from tfspec.runtime.cache import StepCache, default_cache_dir

    if Path(spec).is_file():
        prefetch_folders(Path(spec))  # the data folders' stats are taken while the compiler starts
    result = compiled(spec, env)
    assert result.plan is not None
    cache = StepCache(cache_dir or default_cache_dir(Path(spec)))
    rows = [(s.id, s.kind, ", ".join(s.inputs) or "-", s.fingerprint[:12],
             "render" if s.kind == "render" else ("cached" if cache.has(s.fingerprint) else "to run"))
            for s in result.plan.steps]
    if as_json:
        data = result.plan.to_json()
        for step, row in zip(data["steps"], rows):
            step["cached"] = row[4] == "cached"
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.plan.name} v{result.plan.version}", show_lines=False)
    for column in ("step", "kind", "inputs", "fingerprint", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


@click.command()
@handle_errors
def schema() -> None:
    """Print the JSON Schema (2020-12) of the spec."""
    from tfspec.spec.schema import spec_json_schema_text

    click.echo(spec_json_schema_text(), nl=False)


@click.command()
@click.argument("layer_type", required=False)
@json_option
@handle_errors
def layers(layer_type: str | None, as_json: bool) -> None:
    """List the layer types a spec's `model.layers` may use, or LAYER_TYPE's arguments and defaults."""
    from tfspec.base.catalogue import catalogue
    from tfspec.spec.model import LAYER_TYPES

    entries = catalogue()
    if layer_type is None:
        names = sorted(set(LAYER_TYPES) | set(entries))
        click.echo(json.dumps(names, indent=2) if as_json else "\n".join(names))
        return
    entry = entries.get(layer_type)
    if entry is None:
        import difflib

        close = difflib.get_close_matches(layer_type, sorted(set(LAYER_TYPES) | set(entries)), n=1)
        known = layer_type in LAYER_TYPES
        raise TfspecError(f"{layer_type!r} is " + ("one of tfspec's own layer types: see docs/reference/spec.md"
                                                    if known else "not a layer type")
                          + (f" (did you mean {close[0]!r}?)" if close and not known else ""))
    if as_json:
        click.echo(json.dumps({"type": layer_type, **entry}, indent=2, sort_keys=True))
        return
    click.echo(f"{layer_type}: tf_keras.layers.{entry['class']}")
    for name, arg in sorted(entry["args"].items()):
        click.echo(f"  {name}: " + ("required" if arg["required"] else f"default {json.dumps(arg['default'])}"))


@click.command()
@click.argument("name")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("deploy.yaml"),
              help="File to write (default: deploy.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--from", "data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A CSV file with a header row: write a spec for this data (features, classes, a model sized "
                   "to it, targets) instead of the digits starter.")
@click.option("--label", "label", default=None, help="With --from: the column the model predicts.")
@click.option("--task", type=click.Choice(["classification", "regression"]), default=None,
              help="With --from: what the label is (default: text or few integer values are classes, other "
                   "numbers a regression target).")
@click.option("--delimiter", default=",", show_default=True, help="With --from: the CSV field delimiter.")
@handle_errors
def init(name: str, out: Path, force: bool, data: Path | None, label: str | None, task: str | None,
         delimiter: str) -> None:
    """Write a commented starter spec for model NAME that validates (with --from, one for your CSV data)."""
    from tfspec.compiler.scaffold import scaffold_spec

    if (label is not None or task is not None) and data is None:
        raise TfspecError("--label and --task describe the data of --from: give --from data.csv too")
    if out.exists() and not force:
        raise TfspecError(f"{out} exists; use --force to overwrite it")
    note = ""
    if data is None:
        text = scaffold_spec(name)
    else:
        from tfspec.compiler.scaffold import check_name
        from tfspec.compiler.scaffold_data import spec_from_csv

        if label is None:
            raise TfspecError("--from needs --label COLUMN: the column the model predicts")
        if len(delimiter) != 1:
            raise TfspecError("--delimiter is one character")
        check_name(name)
        text, profile, chosen = spec_from_csv(name, data, label, out, task=task, delimiter=delimiter)  # type: ignore[arg-type]
        _check_compiles(text, out)
        what = (f"{len(profile.label_values)} classes" if chosen == "classification" else "regression")
        left = f"; left out {', '.join(c for c, _ in profile.left_out)}" if profile.left_out else ""
        note = f" ({profile.rows} rows, {len(profile.features)} features, {what}{left})"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}{note}; next: tfspec build {out}")


def _check_compiles(text: str, out: Path) -> None:
    """The spec written from the data compiles there (its data path is relative to ``out``)."""
    from tfspec.compiler.pipeline import compile_spec

    result = compile_spec(out, text=text)
    if not result.ok:
        raise TfspecError("the spec written from the data does not compile (a tfspec bug): "
                          + "; ".join(d.format() for d in result.diagnostics[:3]))
