"""A Kubernetes API server double with KServe's CRDs, a simulated control plane and an ingress.

    from k8s_double import K8sDouble, Capacity, Config
    with K8sDouble(capacity=Capacity(nodes=2, cpu="3500m")) as d:
        d.write_kubeconfig(tmp / "kubeconfig")
        ...  # the unmodified kubernetes client, or KServeBackend(kubeconfig=...)

See server.py (API and knobs), controller.py (what the cluster does),
ingress.py (V2 inference by Host header). ``python -m k8s_double`` (from
tests/) runs one in the foreground.
"""
from .server import ApiError, Capacity, Config, Fault, K8sDouble, WatchDrop  # noqa: F401
