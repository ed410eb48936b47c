"""A Kubernetes API server double with KServe's resources, KServe's controllers and an ingress.

Its behaviour is derived from KServe's code (kserve/kserve at commit aaac4e294dae; controller.py
cites each function it imitates); its schemas come from the installed kserve SDK (schema.py), and
it shares no code with mmslib's Kubernetes side. Nothing outside the repository is read.

    from k8s_double import K8sDouble, Capacity, Config
    with K8sDouble(capacity=Capacity(nodes=2, cpu="3500m")) as d:
        d.write_kubeconfig(tmp / "kubeconfig")
        ...  # the unmodified kubernetes client, or KServeBackend(kubeconfig=...)

See server.py (API, admission and knobs), schema.py (validation and pruning), controller.py
(what the cluster does), ingress.py (V2 inference by Host or path; ModelMesh's Service). ``python -m k8s_double`` (from
tests/) runs one in the foreground.
"""
from .server import ApiError, Capacity, Config, Fault, K8sDouble, WatchDrop  # noqa: F401
