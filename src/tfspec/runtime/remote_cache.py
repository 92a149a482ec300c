"""The step cache as a bucket prefix: what each pod of a workflow reads its inputs from and writes to.

A remote store ``s3://bucket/prefix`` holds

* ``<prefix>/cache/<fingerprint>/...``: one step's cache entry, the files of its local entry
  (:mod:`tfspec.runtime.cache`) with the completion marker ``.complete.json`` uploaded **last**: an entry
  without it is unfinished (a killed pod) and counts as absent;
* ``<prefix>/dist/<dist name>/...``: the published dist bundle, ``manifest.json`` last.

:func:`run_step_with_store` is ``tfspec run --plan P --step ID --store URL``: the step's own entry already
in the store → nothing runs (reported as cached); otherwise its input steps' entries are downloaded into a
local scratch cache, the step runs there (:func:`tfspec.runtime.executor.run_step`) and its entry is
uploaded. :func:`publish` is ``--publish``: every entry downloaded, the dist assembled from them without
running anything, uploaded. No process shares a local folder with another: the store is the only channel.

Credentials by reference only: the *names* of the variables holding the access key and secret (the
workflow's pods get them from a Secret), else boto3's own chain (an instance or web-identity role); the
S3 client is boto3's, as in :mod:`tfspec.runtime.model_store`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tfspec.plan import Plan, Step, step_kind
from tfspec.base.errors import EXIT_ERROR, TfspecError

from .cache import COMPLETE_MARKER, StepCache
from .errors import StepError
from .executor import RunInputs, RunReport, run_plan, run_step
from .model_store import S3Store, split_base_path

__all__ = ["RemoteStore", "RemoteCacheError", "open_remote", "remote_has", "download_entry", "upload_entry",
           "run_step_with_store", "probe", "publish", "StepOutcome", "CACHE_PREFIX", "DIST_PREFIX",
           "DEFAULT_KEY_ENV", "DEFAULT_SECRET_ENV"]

CACHE_PREFIX = "cache"
DIST_PREFIX = "dist"
DEFAULT_KEY_ENV = "AWS_ACCESS_KEY_ID"
DEFAULT_SECRET_ENV = "AWS_SECRET_ACCESS_KEY"
_DIST_LAST = "manifest.json"


class RemoteCacheError(TfspecError):
    """The store cannot be used (its URL, credentials, bucket) or lacks an entry: one line, exit 2."""

    exit_code = EXIT_ERROR


@dataclasses.dataclass(frozen=True)
class RemoteStore:
    """Where the remote cache is and how to reach it (variable *names*, never their values).

    Attributes:
        url: ``s3://bucket/prefix``.
        endpoint_url: an S3-compatible endpoint (MinIO, Ceph, a local server); None for AWS.
        region: the bucket's region; None for the client's default.
        key_env: the variable holding the access key id.
        secret_env: the variable holding the secret access key.
    """

    url: str
    endpoint_url: str | None = None
    region: str | None = None
    key_env: str = DEFAULT_KEY_ENV
    secret_env: str = DEFAULT_SECRET_ENV


@dataclasses.dataclass(frozen=True)
class StepOutcome:
    """What :func:`run_step_with_store` did: ``cached`` (already in the store), ``ran`` (and uploaded) or
    ``uploaded`` (ran elsewhere, ``upload_only``)."""

    step: str
    status: str
    url: str


def open_remote(location: RemoteStore) -> S3Store:
    """A boto3 client on ``location`` whose bucket answers; :class:`RemoteCacheError` with one line otherwise."""
    scheme, bucket, prefix = split_base_path(location.url)
    if scheme != "s3" or "://" not in location.url or not bucket:
        raise RemoteCacheError(f"--store {location.url!r}: give s3://BUCKET/PREFIX (an S3 or S3-compatible bucket)")
    try:
        import boto3
        import botocore.exceptions
    except ImportError:
        raise RemoteCacheError("--store needs boto3 (pip install 'tfspec[runtime]')") from None
    key, secret = os.environ.get(location.key_env), os.environ.get(location.secret_env)
    if bool(key) != bool(secret):
        missing = location.key_env if not key else location.secret_env
        raise RemoteCacheError(f"--store {location.url}: the variable {missing} is not set (the credentials are "
                               f"{location.key_env} and {location.secret_env})")
    session = boto3.session.Session(aws_access_key_id=key or None, aws_secret_access_key=secret or None,
                                    region_name=location.region)
    if session.get_credentials() is None:
        raise RemoteCacheError(f"--store {location.url}: no credentials: set {location.key_env} and "
                               f"{location.secret_env} (or name other variables with --store-key-env and "
                               "--store-secret-env)")
    client = session.client("s3", endpoint_url=location.endpoint_url)
    try:
        client.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError as error:
        code = error.response.get("Error", {}).get("Code", "?")
        raise RemoteCacheError(f"--store {location.url}: bucket {bucket!r} cannot be used ({code})") from None
    except botocore.exceptions.BotoCoreError as error:
        raise RemoteCacheError(f"--store {location.url}: {error}") from None
    return S3Store(bucket, prefix, client)


@contextlib.contextmanager
def _talking_to(store: S3Store) -> Iterator[None]:
    """The store's own errors (access denied, a lost connection) as one line, not a traceback; only around
    this module's calls (a step's own S3 reads report their errors themselves)."""
    import botocore.exceptions

    try:
        yield
    except botocore.exceptions.ClientError as error:
        problem = error.response.get("Error", {})
        raise RemoteCacheError(f"store s3://{store.bucket}/{store.prefix}: {error.operation_name} failed: "
                               f"{problem.get('Code', '?')} {problem.get('Message', '')}".rstrip()) from None
    except botocore.exceptions.BotoCoreError as error:
        raise RemoteCacheError(f"store s3://{store.bucket}/{store.prefix}: {error}") from None


def _entry(fingerprint: str) -> str:
    return f"{CACHE_PREFIX}/{fingerprint}"


def remote_has(store: S3Store, fingerprint: str) -> bool:
    """The entry is complete in the store (its marker, uploaded last, is there)."""
    return store.exists(f"{_entry(fingerprint)}/{COMPLETE_MARKER}")


def download_entry(store: S3Store, fingerprint: str, step_id: str, cache: StepCache) -> Path:
    """Copy a complete remote entry into ``cache`` (through its scratch folder: all or nothing)."""
    if not remote_has(store, fingerprint):
        raise RemoteCacheError(f"step {step_id}: its entry {fingerprint[:12]} is not in the store "
                               f"{store.bucket}/{store.key(_entry(fingerprint))}: run that step first")
    with cache.writing(fingerprint, step_id) as scratch:
        for relative in store.keys(_entry(fingerprint)):
            if relative == COMPLETE_MARKER:
                continue  # writing() adds the local one
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            store.client.download_file(store.bucket, store.key(f"{_entry(fingerprint)}/{relative}"), str(target))
    return cache.path(fingerprint)


def _upload_folder(store: S3Store, folder: Path, prefix: str, last: str) -> set[str]:
    """Every file of ``folder`` under ``prefix``, ``last`` after all the others (what readers check);
    returns the relative names uploaded."""
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if last not in files:
        raise RemoteCacheError(f"{folder} holds no {last}")
    for relative in [f for f in files if f != last] + [last]:
        store.put_file(f"{prefix}/{relative}", folder / relative)
    return set(files)


def upload_entry(store: S3Store, fingerprint: str, entry: Path) -> None:
    """Upload a finished local entry, its completion marker last."""
    _upload_folder(store, entry, _entry(fingerprint), COMPLETE_MARKER)


def _inputs_into(store: S3Store, plan: Plan, step_ids: list[str], cache: StepCache) -> None:
    for step_id in step_ids:
        step = plan.step(step_id)
        if step_kind(step.kind).runs and not cache.has(step.fingerprint):
            download_entry(store, step.fingerprint, step_id, cache)


def _plan_step(run: RunInputs, step_id: str) -> Step:
    try:
        return run.plan.step(step_id)
    except KeyError:
        raise StepError((), f"the plan has no step {step_id!r} (its steps: "
                        f"{', '.join(s.id for s in run.plan.steps)})") from None


def probe(run: RunInputs, step_id: str, store: S3Store) -> bool:
    """Whether the store holds the step's complete entry (a workflow skips creating a training job then)."""
    step = _plan_step(run, step_id)
    with _talking_to(store):
        return remote_has(store, step.fingerprint)


def run_step_with_store(run: RunInputs, step_id: str, store: S3Store, cache_dir: Path, *, quiet: bool = False,
                        force: bool = False, upload_only: bool = False,
                        log: Callable[[str], None] = print) -> StepOutcome:
    """Run one step against the remote cache (see the module docstring); ``cache_dir`` is local scratch.

    ``upload_only``: the step ran elsewhere into ``cache_dir`` (a multi-worker training job's volume):
    upload its entry, never run it here."""
    step = _plan_step(run, step_id)
    url = f"s3://{store.bucket}/{store.key(_entry(step.fingerprint))}/"
    with _talking_to(store):
        stored = remote_has(store, step.fingerprint)
    if stored and not force:
        log(f"cached  {step_id} (in the store)")
        return StepOutcome(step_id, "cached", url)
    cache = StepCache(cache_dir)
    if upload_only:
        if not cache.has(step.fingerprint):
            raise RemoteCacheError(f"step {step_id}: its entry {step.fingerprint[:12]} is not in {cache_dir}: the "
                                   "training job made another one (was its image built from this plan's spec?)")
        with _talking_to(store):
            upload_entry(store, step.fingerprint, cache.path(step.fingerprint))
        log(f"stored  {step_id} → {url}")
        return StepOutcome(step_id, "uploaded", url)
    with _talking_to(store):
        _inputs_into(store, run.plan, list(step.inputs), cache)
    entry = run_step(run, step_id, cache_dir=cache_dir, quiet=quiet, force=force, log=log)
    with _talking_to(store):
        upload_entry(store, step.fingerprint, entry)
    log(f"stored  {step_id} → {url}")
    return StepOutcome(step_id, "ran", url)


def publish(run: RunInputs, store: S3Store, cache_dir: Path, *, quiet: bool = False,
            log: Callable[[str], None] = print) -> tuple[RunReport, str]:
    """Assemble the dist from the store's entries (nothing runs) and upload it to ``dist/<dist name>/``.

    Returns the run report and the dist's URL. A step whose entry the store lacks is an error: publishing
    never trains."""
    cache = StepCache(cache_dir)
    with _talking_to(store):
        _inputs_into(store, run.plan, [s.id for s in run.plan.steps], cache)
    scratch = Path(tempfile.mkdtemp(prefix="tfspec-publish-"))
    try:
        dist = scratch / run.plan.spec.dist_name
        outcome = run_plan(run, cache_dir=cache_dir, dist_dir=dist, quiet=quiet, log=log)
        assert not outcome.ran, outcome.ran  # every entry was downloaded: nothing may run here
        prefix = f"{DIST_PREFIX}/{run.plan.spec.dist_name}"
        with _talking_to(store):
            files = _upload_folder(store, dist, prefix, _DIST_LAST)
            # what an earlier publish left that this dist no longer has (its manifest.json already says so)
            store.delete(f"{prefix}/{k}" for k in store.keys(prefix) if k not in files)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    url = f"s3://{store.bucket}/{store.key(prefix)}/"
    log(f"published {url}")
    return outcome, url

