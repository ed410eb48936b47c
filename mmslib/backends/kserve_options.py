"""The kserve backend's own parameters (issue #24: a backend owns its options).

:class:`KServeOptions` is every parameter only this backend reads, with its default, its one-line
description (``metadata["doc"]``: the notebooks' parameters cells are written from it) and its
checks (:meth:`KServeOptions.validate`, a :class:`~mmslib.errors.ParamError` naming the parameter).
The experiments' parameters (:mod:`mmslib.params`) carry these fields under the same names, so a user
types ``-p namespace bench`` or ``-p tm_batch 64``; ``params`` asks :mod:`mmslib.backends` for every
backend's options class and calls its ``validate`` (kinds on every backend, the cluster's rules on the
backend in use). A light module: ``params`` imports it without the backend's client code.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from ..errors import ParamError
from ..values import boolean, choice, integer, num, optional

#: serving.kserve.io/deploymentMode values the backend writes (auto: Serverless where Knative is served)
DEPLOYMENT_MODES = ("Serverless", "RawDeployment", "Standard", "auto")
MODELMESH_COUNTS = ("loaded", "registered")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _opt(default, doc: str, **more):
    return field(default=default, metadata={"doc": doc, **more})


@dataclass
class KServeOptions:
    """Settings only the kserve backend has, validated here.

    - ``check_artifact_layout``: with a Triton runtime, refuse a ``storage_uri`` that cannot give each
      InferenceService exactly one model and each TrainedModel a model directory named as it is
      (:func:`mmslib.k8s.artifacts.per_model_layout_problem`);
    - ``check_permissions``: one SelfSubjectAccessReview per verb and resource the run needs, before
      anything is created (:data:`mmslib.backends.kserve.NEEDED_ACCESS`);
    - ``kubelet_sync_s``: the kubelet's ConfigMap refresh the model agent waits for (its syncFrequency,
      1 min by default): a TrainedModel is loaded only after the next refresh, so multi-model deploy
      speed is bound by it; used to say so (:meth:`KServeBackend.deploy_notes`);
    - ``tm_batch``: TrainedModels in flight at once (created without waiting for the ones before), so
      that many land in the same refresh; ``deploy_concurrency`` still bounds InferenceServices;
    - ``autoscale``: False pins every predictor to one replica (``maxReplicas = minReplicas``), so
      Knative does not scale out under the readiness probes (containerConcurrency 1);
    - ``unschedulable_wait_s``: how long a pod the scheduler refuses may stay Pending before its model
      fails (0: at once; a cluster with a node autoscaler needs minutes);
    - ``modelmesh_count``: ``loaded`` (a ModelMesh model counts once it answers an inference through
      ``modelmesh_rest_url``; required) or ``registered`` (counts the InferenceServices ModelMesh
      accepted, said so in every event and in :meth:`deploy_notes`).

    A field whose metadata says ``only_in_use`` must keep its default with any other backend
    (``dry_run``: it writes Kubernetes manifests).
    """

    namespace: str = _opt("default", "kserve: the namespace every object goes in")
    kubeconfig: Optional[str] = _opt(None, "kserve: kubeconfig file; None: $KUBECONFIG, ~/.kube/config or in-cluster")
    ingress_host: str = _opt("127.0.0.1", "kserve: the ingress gateway's host (e.g. after a port-forward)")
    ingress_port: int = _opt(80, "kserve: the ingress gateway's port")
    serving_runtime: str = _opt("kserve-tritonserver", "kserve: the cluster's ServingRuntime the predictors use")
    storage_uri: str = _opt("gs://kfserving-examples/models/triton/simple_string",
                            "kserve: where the models are ({model}: the model's name; {source_model}: the model of "
                            "your repository it copies, workload repository)")
    dry_run: Any = _opt(False, "kserve: false | true (manifests only, no cluster) | server (API server dry run)",
                        only_in_use=True)
    deployment_mode: str = _opt("Serverless", "kserve: serving.kserve.io/deploymentMode, set explicitly")
    ingress_path_template: str = _opt("", "kserve: the ingress config's pathTemplate ('' = routed by Host)")
    ingress_domain: str = _opt("example.com", "kserve: the ingress config's ingressDomain (Host with a path template)")
    modelmesh_rest_url: str = _opt("", "kserve ModelMesh: its REST proxy, e.g. after a port-forward")
    check_artifact_layout: bool = _opt(True, "kserve: refuse a Triton storage_uri without one model per directory")
    check_permissions: bool = _opt(True, "kserve: check RBAC for every verb the run needs before creating anything")
    kubelet_sync_s: float = _opt(60.0, "kserve: the kubelet's ConfigMap refresh (syncFrequency) TrainedModels wait for")
    tm_batch: int = _opt(256, "kserve: TrainedModels in flight at once (so many land in one refresh)")
    autoscale: bool = _opt(False, "kserve: false pins every predictor to one replica (maxReplicas = minReplicas)")
    unschedulable_wait_s: float = _opt(0.0, "kserve: how long an unschedulable pod may wait (a node autoscaler)")
    modelmesh_count: str = _opt("loaded", "kserve ModelMesh: loaded (answers an inference) | registered")

    def __post_init__(self):
        self.validate()

    def validate(self, in_use: bool = False) -> "KServeOptions":
        """Check (and normalise) every value; ``in_use``: this backend runs, so the cluster's rules too
        (a DNS-1123 namespace, a readable kubeconfig). Raises ParamError naming the parameter."""
        for n in ("namespace", "ingress_host", "serving_runtime", "storage_uri", "ingress_path_template",
                  "ingress_domain", "modelmesh_rest_url", "deployment_mode", "modelmesh_count"):
            if not isinstance(getattr(self, n), str):
                raise ParamError(n, getattr(self, n), "a string")
        self.kubeconfig = optional(self.kubeconfig)
        if self.kubeconfig is not None and not isinstance(self.kubeconfig, (str, os.PathLike)):
            raise ParamError("kubeconfig", self.kubeconfig, "a path to a kubeconfig file, or None")
        self.ingress_port = integer("ingress_port", self.ingress_port, 1, 65535)
        if isinstance(self.dry_run, str) and self.dry_run.strip().lower() == "server":
            self.dry_run = "server"
        else:
            try:
                self.dry_run = boolean("dry_run", self.dry_run)
            except ParamError:
                raise ParamError("dry_run", self.dry_run, "false | true (write the manifests, no cluster) | server "
                                                          "(a server-side dry run of every manifest)") from None
        choice("deployment_mode", self.deployment_mode, DEPLOYMENT_MODES)
        if self.ingress_path_template and not self.ingress_path_template.startswith("/"):
            raise ParamError("ingress_path_template", self.ingress_path_template,
                             "'' or a path template such as /serving/{namespace}/{name}")
        if self.modelmesh_rest_url and not self.modelmesh_rest_url.startswith(("http://", "https://")):
            raise ParamError("modelmesh_rest_url", self.modelmesh_rest_url, "'' or a URL such as http://127.0.0.1:8008")
        for n in ("check_artifact_layout", "check_permissions", "autoscale"):
            setattr(self, n, boolean(n, getattr(self, n)))
        for n in ("kubelet_sync_s", "unschedulable_wait_s"):
            setattr(self, n, num(n, getattr(self, n), 0))
        self.tm_batch = integer("tm_batch", self.tm_batch, 1, 10000)
        choice("modelmesh_count", self.modelmesh_count, MODELMESH_COUNTS)
        if in_use:
            if not _K8S_NAME.match(self.namespace) or len(self.namespace) > 63:
                raise ParamError("namespace", self.namespace, "a DNS-1123 label (lowercase letters, digits, '-'; "
                                                              "at most 63)")
            if self.kubeconfig is not None and self.dry_run is not True \
                    and not Path(os.path.expanduser(str(self.kubeconfig))).is_file():
                raise ParamError("kubeconfig", self.kubeconfig, "a readable kubeconfig file, or None for the "
                                                                "default/in-cluster config")
        return self

    @classmethod
    def from_mapping(cls, d: Optional[dict]) -> "KServeOptions":
        """From a dict (e.g. parsed YAML); an unknown key is a ParamError naming the known ones."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        for k in d:
            if k not in known:
                raise ParamError(f"kserve option {k}", d[k], "one of " + ", ".join(sorted(known)))
        return cls(**d)

    @classmethod
    def from_params(cls, p) -> "KServeOptions":
        """From an experiment's params ``p`` (the fields of the same names), then ``p.kserve_options``
        (a mapping, where a caller sets one) over them."""
        d = {f.name: getattr(p, f.name) for f in fields(cls) if hasattr(p, f.name)}
        extra = getattr(p, "kserve_options", None) or {}
        known = {f.name for f in fields(cls)}
        for k in extra:
            if k not in known:
                raise ParamError(f"kserve option {k}", extra[k], "one of " + ", ".join(sorted(known)))
        d.update(extra)
        return cls(**d)
