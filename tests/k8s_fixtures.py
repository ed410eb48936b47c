"""Pytest fixtures: a Kubernetes API double with KServe's CRDs on loopback.

``k8s_cluster`` yields a :class:`Cluster`: the double started on a free
127.0.0.1 port with its ingress, a kubeconfig file written for it, torn down
after the test. ``make_k8s_cluster(**options)`` starts more (or differently
configured) ones in the same test: options are K8sDouble's (kserve, metrics,
capacity=Capacity(...), config=Config(...), forbidden_namespaces, ...).

Import them in a conftest (or a test module) to use them::

    from k8s_fixtures import k8s_cluster, make_k8s_cluster  # noqa: F401
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from k8s_double import Capacity, Config, K8sDouble  # noqa: E402,F401

REPO = Path(__file__).resolve().parent.parent


def shared_crds() -> Optional[Path]:
    """KServe's CRD YAML files, *only* as an extra check when present: ``$MMSLIB_KSERVE_CRDS``, else
    ``shared/kserve-crds`` beside the repository (some checkouts have it). None when absent, or when
    ``MMSLIB_TEST_ALONE=1`` (a clone standing alone, as tests/test_kserve_alone.py runs it). Nothing
    in the double or in mmslib needs them."""
    if os.environ.get("MMSLIB_TEST_ALONE") == "1":
        return None
    env = os.environ.get("MMSLIB_KSERVE_CRDS")
    for c in ([Path(env)] if env else []) + [REPO.parent / "shared" / "kserve-crds"]:
        if c.is_dir() and any(c.glob("*.yaml")):
            return c
    return None


@pytest.fixture
def kserve_crds(monkeypatch) -> Path:
    """The CRD folder (also as $MMSLIB_KSERVE_CRDS), or the test is skipped: an extra check only."""
    d = shared_crds()
    if d is None:
        pytest.skip("KServe's CRD files are not beside this checkout (an extra check only)")
    monkeypatch.setenv("MMSLIB_KSERVE_CRDS", str(d))
    return d


@dataclass
class Cluster:
    """A running double and how to reach it."""

    double: K8sDouble          # knobs: fail_next, drop_watches, set_capacity, config, metrics_enabled, requests, ...
    kubeconfig: str            # path of a kubeconfig for the unmodified kubernetes client
    api_url: str               # http://127.0.0.1:<port>
    ingress_host: str          # 127.0.0.1
    ingress_port: int          # V2 REST by Host header
    namespace: str = "default"
    opened: list = field(default_factory=list)   # backends to close before the double stops

    def backend_kwargs(self, **over) -> Dict[str, Any]:
        """KServeBackend keyword arguments that point it at this double."""
        kw = dict(kubeconfig=self.kubeconfig, namespace=self.namespace, ingress_host=self.ingress_host,
                  ingress_port=self.ingress_port)
        kw.update(over)
        return kw

    def backend(self, workload, run_id: str, **kw):
        """A KServeBackend pointed at this double (``kw`` over :meth:`backend_kwargs`); whatever the
        test asserts, it is closed (watch threads stopped) before the double stops."""
        from mmslib.backends.kserve import KServeBackend
        return self.closing(KServeBackend(workload, run_id=run_id, **self.backend_kwargs(**kw)))

    def closing(self, backend):
        """``backend``, closed when the test ends, before the double stops."""
        self.opened.append(backend)
        return backend

    def api_client(self):
        from kubernetes import config
        return config.new_client_from_config(config_file=self.kubeconfig)


def start_cluster(tmp_dir: Path, **options) -> Cluster:
    d = K8sDouble(**options).start()
    kc = d.write_kubeconfig(Path(tmp_dir) / f"kubeconfig-{d.port}")
    ing = d.ingress
    return Cluster(d, str(kc), d.url, ing.host if ing else "", ing.port if ing else 0)


@pytest.fixture
def make_k8s_cluster(tmp_path):
    """Factory: ``make_k8s_cluster(**K8sDouble options) -> Cluster``; all stopped after the test."""
    started = []

    def make(**options) -> Cluster:
        c = start_cluster(tmp_path, **options)
        started.append(c)
        return c
    yield make
    for c in started:
        while c.opened:
            c.opened.pop().close()
    for c in started:
        c.double.stop()


def server_spec(cpu, mem, scpu="1", smem="500Mi"):
    """A server spec: predictor ``cpu``/``mem`` plus a queue-proxy ``scpu``/``smem`` (the seed's by default)."""
    from mmslib.resources import ContainerSpec, ServerSpec
    return ServerSpec([ContainerSpec("predictor", cpu, mem), ContainerSpec("queue-proxy", scpu, smem)])


@pytest.fixture
def k8s_cluster(make_k8s_cluster) -> Cluster:
    """A default double: KServe installed, metrics served, 3 nodes × (16 CPU, 64Gi, 110 pods)."""
    return make_k8s_cluster()
