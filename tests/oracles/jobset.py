"""JobSet's admission webhook rules on names, for tests of generated JobSets.

Source: kubernetes-sigs/jobset @ 08dfbdfd682714a9ab929633eca8dc95315187e7 (v0.13.0-devel-43):

* ``pkg/webhooks/jobset_webhook.go`` ValidateCreate: for each replicated job, the longest child Job name
  ``placement.GenJobName(<jobset>, <replicated job>, replicas - 1)`` must be a DNS-1035 label ("JobSet
  name is too long, job names generated for this JobSet will exceed 63 characters"); for an Indexed Job
  template with completions, the longest pod name ``GenPodName(<jobset>, <replicated job>, <last job
  index>, <last pod index>) + "-abcde"`` (the Job controller's 5 random characters) must be one too
  ("... pod names generated for this JobSet will exceed 63 characters"); a JobSet created with
  ``generateName`` is validated under the name the API server will make of it
  (``getJobSetNameForValidation``: ``names.SimpleNameGenerator.GenerateName``).
* ``pkg/util/placement/placement.go``: GenJobName ``%s-%s-%d``, GenPodName ``%s-%s-%s-%s``.
* The controller names the headless Service after ``spec.network.subdomain``, which defaults to the
  JobSet's name; a Service name is a DNS-1035 label (see ``kubernetes.py``).
"""

from __future__ import annotations

from typing import Any

from oracles.kubernetes import generate_name, is_dns1035_label

__all__ = ["jobset_name", "child_job_name", "pod_name", "webhook_errors"]


def jobset_name(jobset: dict[str, Any]) -> str:
    metadata = jobset["metadata"]
    return metadata["name"] if metadata.get("name") else generate_name(metadata["generateName"])


def child_job_name(jobset: str, replicated_job: str, job_index: int) -> str:
    return f"{jobset}-{replicated_job}-{job_index}"


def pod_name(jobset: str, replicated_job: str, job_index: int, pod_index: int) -> str:
    return f"{jobset}-{replicated_job}-{job_index}-{pod_index}"


def webhook_errors(jobset: dict[str, Any]) -> list[str]:
    """What JobSet's validating webhook (and the Service its controller creates) would reject."""
    name = jobset_name(jobset)
    out = []
    subdomain = jobset["spec"].get("network", {}).get("subdomain") or name
    if not is_dns1035_label(subdomain):
        out.append(f"headless Service {subdomain!r} is not a DNS-1035 label")
    for replicated in jobset["spec"]["replicatedJobs"]:
        replicas = int(replicated.get("replicas", 1))
        longest_job = child_job_name(name, replicated["name"], replicas - 1)
        if not is_dns1035_label(longest_job):
            out.append(f"child Job name {longest_job!r} is not a DNS-1035 label")
        spec = replicated["template"]["spec"]
        if spec.get("completionMode") == "Indexed" and "completions" in spec:
            longest_pod = pod_name(name, replicated["name"], replicas - 1, int(spec["completions"]) - 1) + "-abcde"
            if not is_dns1035_label(longest_pod):
                out.append(f"pod name {longest_pod!r} is not a DNS-1035 label")
    return out
