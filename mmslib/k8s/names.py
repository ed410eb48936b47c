"""Kubernetes names and labels: KServe's resources, the run labels every object carries
(``mmslib.io/run-id``, ``mmslib.io/mode``, ``mmslib.io/role``), DNS-1123/1035 checks, selectors."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Optional

from ..errors import ParamError

# -- resources -------------------------------------------------------------


@dataclass(frozen=True)
class Res:
    """A custom resource type."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


ISVC = Res("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
TM = Res("serving.kserve.io", "v1alpha1", "trainedmodels", "TrainedModel")
SR = Res("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime")
CSR = Res("serving.kserve.io", "v1alpha1", "clusterservingruntimes", "ClusterServingRuntime", namespaced=False)
POD_METRICS = Res("metrics.k8s.io", "v1beta1", "pods", "PodMetrics")

# -- labels and annotations ------------------------------------------------

LABEL_RUN = "mmslib.io/run-id"
LABEL_MODE = "mmslib.io/mode"          # traditional | mms
LABEL_ROLE = "mmslib.io/role"          # model | host
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mmslib"
LABEL_ISVC = "serving.kserve.io/inferenceservice"        # set by KServe on pods (and TrainedModels)
LABEL_TM_ALLOCATED = "serving.kserve.io/trainedmodel-allocated"
ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
MODELMESH = "ModelMesh"
# Knative per-revision queue-proxy resources (KServe passes predictor annotations to the revision).
ANN_QP = {
    ("requests", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-request",
    ("requests", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-request",
    ("limits", "cpu"): "queue.sidecar.serving.knative.dev/cpu-resource-limit",
    ("limits", "memory"): "queue.sidecar.serving.knative.dev/memory-resource-limit",
}
PREDICTOR_CONTAINER = "kserve-container"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Knative names the revision "<isvc>-predictor-00001", which must be a DNS label (63).
ISVC_NAME_MAX = 63 - len("-predictor-00001")


def is_dns1123_label(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 63 and bool(_DNS1123_LABEL.match(s))


def is_dns1123_subdomain(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 253 and bool(_DNS1123_SUBDOMAIN.match(s))


def is_label_value(s: Any) -> bool:
    return isinstance(s, str) and len(s) <= 63 and bool(_LABEL_VALUE.match(s))


def is_label_key(s: Any) -> bool:
    if not isinstance(s, str) or not s:
        return False
    prefix, _, name = s.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.match(name))


def check_object_name(name: Any, what: str = "model name", param: str = "models",
                      max_len: int = ISVC_NAME_MAX) -> str:
    """A name KServe accepts for an InferenceService/TrainedModel, else ParamError.

    KServe's webhooks require ``[a-z]([-a-z0-9]*[a-z0-9])?`` (a DNS-1035 label);
    Knative needs ``<name>-predictor-00001`` to fit a DNS label.
    """
    if not isinstance(name, str) or not _DNS1035_LABEL.match(name) or len(name) > max_len:
        raise ParamError(param, name,
                         f"{what}s that are valid Kubernetes DNS-1035 names: lowercase letters, digits and '-', "
                         f"starting with a letter, ending with a letter or digit, at most {max_len} characters")
    return name


def check_namespace(ns: Any) -> str:
    if not is_dns1123_label(ns):
        raise ParamError("namespace", ns, "a DNS-1123 label (lowercase letters, digits, '-'; at most 63 characters)")
    return ns


def check_run_id(run_id: Any) -> str:
    if not run_id or not is_label_value(run_id):
        raise ParamError("run_id", run_id, "a non-empty Kubernetes label value (at most 63 characters: letters, "
                                           "digits, '-', '_', '.', starting and ending with a letter or digit)")
    return run_id


def run_labels(run_id: str, mode: Optional[str] = None, role: Optional[str] = None) -> Dict[str, str]:
    out = {LABEL_RUN: run_id, LABEL_MANAGED_BY: MANAGED_BY}
    if mode:
        out[LABEL_MODE] = mode
    if role:
        out[LABEL_ROLE] = role
    return out


def selector(labels: Dict[str, str]) -> str:
    """Equality label selector for a dict of labels."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def run_selector(run_id: str) -> str:
    return f"{LABEL_RUN}={run_id}"
