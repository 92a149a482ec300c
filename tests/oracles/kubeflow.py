"""The Kubeflow Training Operator 1.9's TFJob rules: names, and how it writes a TFJob's status.

Source: kubeflow/training-operator, branch release-1.9 @ 078ec30ff26649a07d2e28893c332d4cef70e233:

* ``pkg/webhooks/tensorflow/tfjob_webhook.go`` validateTFJob: the name must be a DNS-1035 label.
* ``pkg/controller.v1/common/util.go`` GenGeneralName: pods and Services are named
  ``<tfjob>-<lower-case replica type>-<index>`` (Services: DNS-1035 labels, see ``kubernetes.py``).
* ``pkg/util/status.go`` UpdateJobConditions → setCondition: nothing changes once the TFJob has a true
  ``Failed`` condition; a condition with the same type, status and reason is left as it is; otherwise
  the condition of that type is removed and the new one appended (filterOutCondition: a ``Restarting``
  condition removes ``Running`` and vice versa; adding ``Succeeded`` or ``Failed`` sets ``Running`` to
  ``False`` in place).
* ``pkg/controller.v1/tensorflow/tfjob_controller.go`` UpdateJobStatus (no Chief replica): ``Running``
  while workers run; ``Succeeded`` (and ``completionTime``, in the same status update) once worker 0
  completed; ``Failed`` (and ``completionTime``) when a Worker replica counts as failed — pods in phase
  Failed, which ``restartPolicy: OnFailure`` does not produce while the kubelet restarts the container.
* ``pkg/controller.v1/common/pod.go``: a pod in phase Failed under OnFailure is deleted and the TFJob gets
  ``Restarting``; ``pkg/controller.v1/common/job.go`` ReconcileJobs: past ``runPolicy.backoffLimit`` (the
  containers' restarts) or ``activeDeadlineSeconds``, ``completionTime`` is set, every pod deleted and the
  TFJob gets ``Failed`` — with no pod left to count as failed; a suspended TFJob gets ``Suspended``, a
  resumed one ``Suspended: False``; a finished TFJob's still-active replicas are counted as succeeded.
* ``onOwnerCreateFunc`` (tfjob_controller.go): a new TFJob gets ``Created`` first.
"""

from __future__ import annotations

import copy
from typing import Any

from oracles.kubernetes import is_dns1035_label

__all__ = ["service_names", "name_errors", "TFJobStatus", "status_histories"]


def service_names(tfjob: str, replica_type: str, replicas: int) -> list[str]:
    return [f"{tfjob}-{replica_type.lower()}-{index}" for index in range(replicas)]


def name_errors(tfjob: dict[str, Any], generated_name: str | None = None) -> list[str]:
    """What the TFJob webhook and the Services the operator creates would reject (``generated_name``: the
    name the API server made of a ``generateName``)."""
    name = generated_name or tfjob["metadata"]["name"]
    out = [] if is_dns1035_label(name) else [f"TFJob name {name!r} is not a DNS-1035 label"]
    for replica_type, spec in tfjob["spec"]["tfReplicaSpecs"].items():
        for service in service_names(name, replica_type, int(spec.get("replicas", 1))):
            if not is_dns1035_label(service):
                out.append(f"Service name {service!r} is not a DNS-1035 label")
    return out


class TFJobStatus:
    """A TFJob's ``status`` as the operator writes it, one update at a time."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.conditions: list[dict[str, str]] = []
        self.replica = {"active": 0, "succeeded": 0, "failed": 0}
        self.completion_time: str | None = None
        self._set("Created", "True")

    def _failed(self) -> bool:
        return any(c["type"] == "Failed" and c["status"] == "True" for c in self.conditions)

    def _set(self, kind: str, status: str, reason: str | None = None) -> None:
        """setCondition + filterOutCondition."""
        if self._failed():
            return
        reason = reason or f"TFJob{kind}"
        current = next((c for c in self.conditions if c["type"] == kind), None)
        if current is not None and current["status"] == status and current["reason"] == reason:
            return
        kept = []
        for condition in self.conditions:
            if {kind, condition["type"]} == {"Restarting", "Running"} or condition["type"] == kind:
                continue
            condition = dict(condition)
            if kind in ("Failed", "Succeeded") and condition["type"] == "Running":
                condition["status"] = "False"
            kept.append(condition)
        self.conditions = kept + [{"type": kind, "status": status, "reason": reason}]

    # --- events -----------------------------------------------------------------------------------
    def workers_running(self) -> None:
        self.replica["active"] = self.workers
        self._set("Running", "True")

    def container_restarted(self) -> None:
        """OnFailure: the kubelet restarts the container in place; the pod stays Running, nothing counts."""

    def pod_failed(self) -> None:
        """A pod in phase Failed (evicted, node lost) under OnFailure: deleted, the TFJob Restarting; the
        replica statuses, recounted from the pods at every reconcile, count it failed in this update."""
        self.replica["failed"] = 1
        self._set("Restarting", "True")

    def replacement_running(self) -> None:
        """The next reconcile: the replacement pod runs; nothing counts as failed any more."""
        self.replica["failed"] = 0
        self._set("Running", "True")

    def worker_succeeded(self, index: int) -> None:
        self.replica["active"] -= 1
        self.replica["succeeded"] += 1
        if index == 0:  # worker 0 completed: the TFJob succeeded (default success policy)
            self.completion_time = "2026-01-01T00:00:00Z"
            self._set("Succeeded", "True")

    def finished_cleanup(self) -> None:
        """The next reconcile of a finished TFJob: active replicas counted as succeeded (cleanPodPolicy Running)."""
        if any(c["type"] == "Succeeded" and c["status"] == "True" for c in self.conditions):
            self.replica["succeeded"] += self.replica["active"]
            self.replica["active"] = 0

    def past_backoff_limit(self) -> None:
        """Past runPolicy.backoffLimit: completionTime set, pods deleted, Failed."""
        self.completion_time = self.completion_time or "2026-01-01T00:00:00Z"
        self.replica["active"] = 0
        self._set("Failed", "True")

    def suspended(self) -> None:
        if any(c["type"] == "Running" and c["status"] == "True" for c in self.conditions):
            self._set("Running", "False", "TFJobSuspended")
        self._set("Suspended", "True")

    def resumed(self) -> None:
        self._set("Suspended", "False", "TFJobResumed")

    def object(self) -> dict[str, Any]:
        """The TFJob as the API returns it (only what the conditions read)."""
        status: dict[str, Any] = {"conditions": copy.deepcopy(self.conditions),
                                  "replicaStatuses": {"Worker": {k: v for k, v in self.replica.items() if v}}}
        if self.completion_time:
            status["completionTime"] = self.completion_time
        return {"apiVersion": "kubeflow.org/v1", "kind": "TFJob", "status": status}


def status_histories(workers: int) -> dict[str, list[tuple[dict[str, Any], str]]]:
    """Named histories of a TFJob: every status the API would show, each with what the job is at that
    point (``running``, ``succeeded`` or ``failed``)."""
    histories: dict[str, list[tuple[dict[str, Any], str]]] = {}

    def record(name: str, steps: list[tuple[str, tuple[Any, ...], str]]) -> None:
        status = TFJobStatus(workers)
        out = [(status.object(), "running")]
        for event, args, state in steps:
            getattr(status, event)(*args)
            out.append((status.object(), state))
        histories[name] = out

    record("chief succeeds last", [("workers_running", (), "running"),
                                   *[("worker_succeeded", (i,), "running") for i in range(workers - 1, 0, -1)],
                                   ("worker_succeeded", (0,), "succeeded"), ("finished_cleanup", (), "succeeded")])
    record("another worker succeeds before the chief", [("workers_running", (), "running"),
                                                        ("worker_succeeded", (workers - 1,), "running"),
                                                        ("worker_succeeded", (0,), "succeeded"),
                                                        ("finished_cleanup", (), "succeeded")])
    record("containers restart, then past the backoff limit", [("workers_running", (), "running"),
                                                               ("container_restarted", (), "running"),
                                                               ("past_backoff_limit", (), "failed")])
    record("a pod fails and is replaced, then succeeds", [("workers_running", (), "running"),
                                                          ("pod_failed", (), "running"),
                                                          ("replacement_running", (), "running"),
                                                          ("worker_succeeded", (0,), "succeeded")])
    record("a pod fails and is replaced, then past the backoff limit", [("workers_running", (), "running"),
                                                                        ("pod_failed", (), "running"),
                                                                        ("past_backoff_limit", (), "failed")])
    record("suspended by the queue, resumed, succeeds", [("suspended", (), "running"), ("resumed", (), "running"),
                                                         ("workers_running", (), "running"),
                                                         ("worker_succeeded", (0,), "succeeded")])
    record("suspended, resumed, past the backoff limit", [("suspended", (), "running"), ("resumed", (), "running"),
                                                          ("workers_running", (), "running"),
                                                          ("pod_failed", (), "running"),
                                                          ("replacement_running", (), "running"),
                                                          ("past_backoff_limit", (), "failed")])
    return histories
