"""Knative Serving's validation of the autoscaling metric annotation.

Source: knative/serving at commit 98e5ef90aa7033797aa0a61ef97f3ff7e49a3944 (knative-v1.23.0-5),
``pkg/apis/autoscaling/annotation_validation.go`` ``validateMetric`` and ``pkg/apis/autoscaling/register.go``:
the class is the ``autoscaling.knative.dev/class`` annotation or the cluster default (KPA); the KPA class
accepts only the ``concurrency`` and ``rps`` metrics, the HPA class any non-empty metric, other classes are
left alone. A Knative Service whose revision template fails this is rejected by the webhook, so KServe never
gets its Knative Service created.
"""

from __future__ import annotations

__all__ = ["CLASS", "METRIC", "KPA", "HPA", "validate_metric"]

CLASS = "autoscaling.knative.dev/class"
METRIC = "autoscaling.knative.dev/metric"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"


def validate_metric(annotations: dict[str, str], default_class: str = KPA) -> str | None:
    """None when Knative accepts the metric annotation, else its error."""
    if METRIC not in annotations:
        return None
    metric = annotations[METRIC]
    klass = annotations.get(CLASS, default_class)
    if klass == KPA and metric in ("concurrency", "rps"):
        return None
    if klass == HPA and metric != "":
        return None
    if klass not in (KPA, HPA):
        return None
    return f"invalid value: {metric}: {METRIC}"
