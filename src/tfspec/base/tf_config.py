"""The TF_CONFIG contract between the gpu_cluster manifests and the runtime's worker mode.

One definition, used from both sides: the renderer writes these environment variable names and host
names into the manifests; ``tfspec run --worker`` reads them back with :func:`tf_config_from_environment`.

* ``tfjob``: the Kubeflow training operator injects ``TF_CONFIG`` itself (replica type ``worker`` in
  lower case, port 2222); worker 0 is the chief because there is no Chief replica.
* ``jobset``: a JobSet's one replicated job is an Indexed Job of every worker; with ``network.enableDNSHostnames``
  pod ``i`` is ``<jobset>-<replicated job>-0-<i>.<subdomain>`` (the subdomain defaults to the JobSet's name,
  the headless Service the JobSet controller creates). Kubernetes sets ``JOB_COMPLETION_INDEX``, the
  manifests set ``TFSPEC_WORKER_HOSTS`` (:func:`jobset_hosts`): the same derivation as an Indexed Job's.
* ``indexed_job``: Kubernetes sets ``JOB_COMPLETION_INDEX``; with ``subdomain`` set to the headless
  Service, pod ``i`` is reachable as ``<job>-<i>.<service>``. The manifests set ``TFSPEC_WORKER_HOSTS``
  (comma-separated ``host:port`` of every worker, index order); TF_CONFIG is derived from both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import TfspecError

__all__ = [
    "ENV_TF_CONFIG",
    "ENV_COMPLETION_INDEX",
    "ENV_WORKER_HOSTS",
    "TFJOB_PORT",
    "indexed_job_hosts",
    "jobset_hosts",
    "tf_config_for",
    "tf_config_from_environment",
    "ClusterConfigError",
]

ENV_TF_CONFIG = "TF_CONFIG"
ENV_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"
ENV_WORKER_HOSTS = "TFSPEC_WORKER_HOSTS"
TFJOB_PORT = 2222


class ClusterConfigError(TfspecError):
    """The worker environment does not describe a usable cluster."""


def indexed_job_hosts(job_name: str, service_name: str, workers: int, port: int) -> list[str]:
    """``host:port`` of every worker of an Indexed Job behind a headless Service, in index order."""
    return [f"{job_name}-{index}.{service_name}:{port}" for index in range(workers)]


def jobset_hosts(jobset_name: str, replicated_job: str, subdomain: str, workers: int, port: int) -> list[str]:
    """``host:port`` of every worker of a JobSet whose replicated job ``replicated_job`` has one Job (index 0)
    of ``workers`` indexed pods: ``<jobset>-<replicated job>-<job index>-<pod index>.<subdomain>``."""
    return indexed_job_hosts(f"{jobset_name}-{replicated_job}-0", subdomain, workers, port)


def tf_config_for(hosts: list[str], index: int) -> dict[str, Any]:
    """The TF_CONFIG of worker ``index`` in a cluster of ``hosts`` (MultiWorkerMirroredStrategy form)."""
    if not 0 <= index < len(hosts):
        raise ClusterConfigError(f"worker index {index} is outside the cluster of {len(hosts)} workers")
    return {"cluster": {"worker": list(hosts)}, "task": {"type": "worker", "index": index}}


def tf_config_from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """TF_CONFIG as a worker sees it: given directly (TFJob), or derived (Indexed Job)."""
    if ENV_TF_CONFIG in environ:
        try:
            config = json.loads(environ[ENV_TF_CONFIG])
            workers = config["cluster"]["worker"]
            task = config["task"]
            if task["type"] not in ("worker", "chief") or not isinstance(task["index"], int) or not workers:
                raise ValueError("task type must be worker or chief, with an integer index")
        except (ValueError, KeyError, TypeError) as error:
            raise ClusterConfigError(f"TF_CONFIG is not a valid cluster description: {error}") from None
        return config
    if ENV_COMPLETION_INDEX in environ and ENV_WORKER_HOSTS in environ:
        hosts = [h for h in environ[ENV_WORKER_HOSTS].split(",") if h]
        try:
            index = int(environ[ENV_COMPLETION_INDEX])
        except ValueError:
            raise ClusterConfigError(f"{ENV_COMPLETION_INDEX} is not a number: {environ[ENV_COMPLETION_INDEX]!r}") from None
        return tf_config_for(hosts, index)
    raise ClusterConfigError(
        f"worker mode needs {ENV_TF_CONFIG}, or {ENV_COMPLETION_INDEX} with {ENV_WORKER_HOSTS} (set by the gpu_cluster manifests)"
    )
