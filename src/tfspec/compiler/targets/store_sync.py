"""The s3:// model store of a tf_serving Deployment, copied into a local folder TF Serving polls.

The stock ``tensorflow/serving`` image has had no S3 file system since 2.7 (tensorflow/serving#1963): a
``base_path`` of ``s3://`` crash-loops it ("File system scheme 's3' not implemented"). So with an
``s3://`` store the pod gets an ``emptyDir`` at ``/models/<name>`` (the ``base_path`` of models.config)
and the AWS CLI image (``versions.STORE_SYNC_IMAGE``) runs ``sync-store.sh`` on it: once as an init
container, so the server starts with its versions, then every ``model_store.poll_seconds`` in a second
container, so new versions arrive and pruned ones leave. The script is in the ConfigMap (a change rolls
the Deployment) and downloads each complete version into a hidden folder, renamed when whole. The store
credentials reach the AWS CLI the way they reached TF Serving: the Secret's ``credentials`` file
(``AWS_SHARED_CREDENTIALS_FILE``), or the pod's service account (IRSA).

``gs://`` stores need none of this: TensorFlow's GCS file system is built into the stock image.
"""

from __future__ import annotations

from typing import Any

from tfspec.spec.targets import ModelStore

from ..render import render_template
from tfspec.base.versions import STORE_SYNC_IMAGE
from . import kubernetes as k8s

__all__ = ["SCRIPT", "SYNC_CONTAINER", "INIT_CONTAINER", "needs_sync", "sync_script", "sync_containers",
           "store_location"]

SCRIPT = "sync-store.sh"
SYNC_CONTAINER = "store-sync"
INIT_CONTAINER = "store-sync-initial"
# The AWS CLI only moves files: a small share of a core and enough memory for its transfer buffers.
SYNC_RESOURCES: dict[str, dict[str, Any]] = {"requests": {"cpu": "50m", "memory": "128Mi"},
                                             "limits": {"cpu": "1", "memory": "512Mi"}}


def needs_sync(store: ModelStore | None) -> bool:
    """An ``s3://`` store: TF Serving reads a local copy kept by the sync containers."""
    return store is not None and store.base_path.startswith("s3://")


def store_location(store: ModelStore) -> tuple[str, str]:
    """``s3://bucket/a/b`` → (``bucket``, ``a/b/``): the bucket and the key prefix of the version folders."""
    bucket, _, prefix = store.base_path.removeprefix("s3://").partition("/")
    return bucket, f"{prefix.strip('/')}/" if prefix.strip("/") else ""


def sync_script(context: dict[str, Any]) -> str:
    """The POSIX shell script both sync containers run (its header is the build's)."""
    return render_template(f"tf_serving/{SCRIPT}.j2", **context)


def _environment(store: ModelStore, destination: str, versions: list[int] | None, once: bool,
                 credentials_file: str | None) -> list[dict[str, str]]:
    bucket, prefix = store_location(store)
    env = [
        {"name": "STORE_BUCKET", "value": bucket},
        {"name": "STORE_PREFIX", "value": prefix},
        {"name": "SYNC_DEST", "value": destination},
        {"name": "SYNC_VERSIONS", "value": " ".join(str(v) for v in versions or [])},
        {"name": "SYNC_POLL_SECONDS", "value": str(store.poll_seconds)},
        {"name": "SYNC_ONCE", "value": "1" if once else "0"},
        # The CLI writes nothing but may cache credentials under its home: the writable /tmp.
        {"name": "HOME", "value": "/tmp"},
    ]
    if store.endpoint_url:
        env.append({"name": "STORE_ENDPOINT", "value": store.endpoint_url.rstrip("/")})
    if store.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": store.region})
    if credentials_file:
        env.append({"name": "AWS_SHARED_CREDENTIALS_FILE", "value": credentials_file})
    return env


def sync_containers(store: ModelStore, destination: str, versions: list[int] | None, config_dir: str,
                    volume_mounts: list[dict[str, Any]], credentials_file: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The init container (one copy before the server starts) and the container that keeps copying.

    ``versions``: the only versions to copy (a labelled Deployment serves one); every complete one when None.
    ``volume_mounts``: the models folder, the config (the script), /tmp and the credentials, as mounted.
    """
    # A round that has not finished for 3 polls plus 15 minutes (a large version downloading) is stuck.
    stale = 3 * store.poll_seconds + 900
    heartbeat = "/tmp/synced"  # the script's $HOME/synced: the time its last round finished

    def probe(check: str, period: int) -> dict[str, Any]:
        return {"exec": {"command": ["/bin/sh", "-c", check]}, "periodSeconds": period, "timeoutSeconds": 5,
                "failureThreshold": 3}

    def container(name: str, once: bool) -> dict[str, Any]:
        probes = {} if once else {
            # Ready once the first round finished; alive while rounds keep finishing.
            "readinessProbe": probe(f"test -s {heartbeat}", 10),
            "livenessProbe": probe(f"test $(($(date +%s)-$(cat {heartbeat}))) -lt {stale}", 60),
        }
        return {
            "name": name,
            "image": STORE_SYNC_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            # The image's entrypoint is `aws`: run the script with the image's shell instead.
            "command": ["/bin/sh", f"{config_dir}/{SCRIPT}"],
            "env": _environment(store, destination, versions, once, credentials_file),
            "resources": SYNC_RESOURCES,
            "securityContext": k8s.container_security_context(),
            **probes,
            "volumeMounts": volume_mounts,
        }

    return container(INIT_CONTAINER, once=True), container(SYNC_CONTAINER, once=False)
