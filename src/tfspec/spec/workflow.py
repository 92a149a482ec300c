"""The ``workflow`` section: run the whole plan on a Kubernetes cluster as an Argo Workflows WorkflowTemplate."""

from typing import Annotated

from pydantic import Field, StringConstraints

from .base import DnsLabel, EndpointUrl, StrictInt, StrictModel
from .credentials import Credentials
from .targets import BaseImage, DnsSubdomain, LabelKey, LabelValue, ResourceAmounts, Resources, Toleration

__all__ = ["Workflow", "StepStore"]

# ``s3://bucket`` or ``s3://bucket/prefix``: the step cache is a bucket prefix.
StepStore = Annotated[str, StringConstraints(
    pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/(?!\.+(/|$))[A-Za-z0-9_.=-]+)*$")]


class Workflow(StrictModel):
    """Render ``workflow/``: an Argo Workflows ``WorkflowTemplate`` whose DAG is the plan, one pod per step.

    Each pod runs ``tfspec run --plan /plan/plan.json --step ID --store STORE`` with ``plan.json`` mounted
    from a ConfigMap; the step cache is the bucket prefix ``STORE/cache/``, a step already there is not run
    again, and a last task publishes the dist to ``STORE/dist/<name>/``. See docs/workflows.md."""

    store: StepStore
    """The step cache and the published dist: ``s3://bucket/prefix`` (any S3-compatible store)."""
    image: BaseImage | None = None
    """Image the step pods run. Omitted: ``[<registry>/]<name>-workflow:<version>-<content hash>``, built
    from the rendered ``workflow/Dockerfile`` (``tfspec images`` builds and pushes it). Given: any image with
    ``tfspec[runtime]`` of the version that built the plan and a user with UID 10001 (the gpu_cluster
    target's training image is one), pinned by tag or digest, and no ``workflow/Dockerfile`` is rendered."""
    endpoint_url: EndpointUrl | None = None
    """S3-compatible endpoint (MinIO, Ceph); AWS when omitted."""
    region: Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]{1,32}$")] | None = None
    """The bucket's region; the client's default when omitted."""
    credentials: Credentials = Credentials()
    """The variables that hold the store's access key and secret in the pods (names only) and the Kubernetes
    Secret (``kubernetes_secret``) whose keys are those names; without a Secret the pods use their
    ServiceAccount's cloud identity (IRSA, Workload Identity)."""
    namespace: DnsLabel = "default"
    """Namespace of the WorkflowTemplate, its ConfigMap, its RBAC objects and the workflows it runs, and of
    the training object a ``training_target`` creates: that target's ``namespace``, when it sets one, must
    be this one (a Role, an owner reference and a volume claim reach only their own namespace)."""
    service_account: DnsLabel | None = None
    """ServiceAccount the step pods run as, for a cloud identity that reaches the bucket (IRSA's
    ``eks.amazonaws.com/role-arn`` annotation, GKE Workload Identity's ``iam.gke.io/gcp-service-account``);
    its API token is never mounted into the step containers. Argo's own executor uses a generated,
    least-privilege account."""
    gpus: Annotated[StrictInt, Field(ge=0, le=16)] = 0
    """GPUs for each model step (``train`` and the compression stages; at most 16, as every GPU field):
    ``nvidia.com/gpu`` limits and the
    GPU taint tolerated; every other step runs on a CPU pod."""
    training_target: DnsLabel | None = None
    """A ``gpu_cluster`` target whose multi-worker training object runs the ``train`` step: the workflow
    creates it (resource template), waits for it, then uploads the trained entry from its volume."""
    resources: Resources = Resources(requests=ResourceAmounts(cpu="1", memory="2Gi"),
                                     limits=ResourceAmounts(cpu="2", memory="4Gi"))
    """Requests and limits of each step pod."""
    node_selector: dict[LabelKey, LabelValue] = {}
    """Node labels the GPU step pods require (``cloud.google.com/gke-accelerator: nvidia-l4``)."""
    tolerations: list[Toleration] = []
    """Extra tolerations of the GPU step pods (the ``nvidia.com/gpu`` taint is tolerated already)."""
    parallelism: Annotated[int, Field(ge=1, le=100, strict=True)] = 4
    """Most step pods running at once."""
    active_deadline_seconds: Annotated[int, Field(ge=60, le=2_592_000, strict=True)] = 172_800
    """Seconds a run may take before Argo fails it (``activeDeadlineSeconds``), two days by default: a
    training job that a queue never admits, or a step that hangs, fails the run instead of holding it
    forever. Raise it for longer trainings."""
    ttl_seconds_after_finished: Annotated[int, Field(ge=0, le=31_536_000, strict=True)] = 86_400
    """Seconds a finished run (and, through its owner reference, the training object it created) is kept
    before Argo deletes it (``ttlStrategy.secondsAfterCompletion``), a day by default."""
    image_pull_secrets: Annotated[list[DnsSubdomain], Field(max_length=8)] = []
    """Secrets (``kubernetes.io/dockerconfigjson``) in ``namespace`` that the kubelet pulls the step image
    with, for a private registry without node-level credentials."""
