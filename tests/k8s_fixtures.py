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
TEST_BUCKET = "gs://mmslib-test/simple_string"       # the double's object store holds per-model artifacts here
TEST_STORAGE_URI = TEST_BUCKET + "/{model}/{model}"  # as `python -m mmslib.k8s artifacts` lays them out
FAST_KUBELET_S = 0.05     # the double's kubelet ConfigMap refresh in tests (a real kubelet: ~60 s)
# The layout of Triton's docs/examples/model_repository/simple_string (what gs://kfserving-examples/models/
# triton/simple_string holds): config.pbtxt naming the model, one version with a TensorFlow graphdef.
SIMPLE_STRING_CONFIG = """name: "simple_string"
platform: "tensorflow_graphdef"
max_batch_size: 8
input [
  {
    name: "INPUT0"
    data_type: TYPE_STRING
    dims: [ 16 ]
  },
  {
    name: "INPUT1"
    data_type: TYPE_STRING
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_STRING
    dims: [ 16 ]
  },
  {
    name: "OUTPUT1"
    data_type: TYPE_STRING
    dims: [ 16 ]
  }
]
"""


def simple_string_source(d: Path) -> Path:
    """A stand-in for ``gsutil cp -r gs://kfserving-examples/models/triton/simple_string d``."""
    d = Path(d)
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(SIMPLE_STRING_CONFIG)
    (d / "1" / "model.graphdef").write_bytes(b"\x00graphdef stand-in")
    return d


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
    tmp: Optional[Path] = None

    def upload_models(self, names, bucket: str = TEST_BUCKET) -> Dict[str, str]:
        """Write per-model artifacts with mmslib's generator (python -m mmslib.k8s artifacts) and
        "upload" them to the double's object store under ``bucket``; returns {uri: declared name}."""
        from mmslib.k8s.artifacts import write_triton_artifacts
        import tempfile
        base = Path(tempfile.mkdtemp(prefix="artifacts-", dir=self.tmp))
        src = simple_string_source(base / "source")
        write_triton_artifacts(src, base / "out", list(names))
        return self.double.upload(bucket, base / "out")

    def backend_kwargs(self, **over) -> Dict[str, Any]:
        """KServeBackend keyword arguments that point it at this double (per-model artifacts at
        TEST_STORAGE_URI: m00000..m00099 and n00000..n00019 are uploaded when the cluster starts)."""
        kw = dict(kubeconfig=self.kubeconfig, namespace=self.namespace, ingress_host=self.ingress_host,
                  ingress_port=self.ingress_port, storage_uri_prefix=TEST_STORAGE_URI)
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


def start_cluster(tmp_dir: Path, realistic_kubelet: bool = False, **options) -> Cluster:
    """A started double; unless ``realistic_kubelet`` (or a Config with its own kubelet_sync_period_s),
    the kubelet refreshes mounted ConfigMaps every FAST_KUBELET_S instead of ~60 s."""
    cfg = options.get("config") or Config()
    if not realistic_kubelet and cfg.kubelet_sync_period_s == Config.kubelet_sync_period_s:
        cfg.kubelet_sync_period_s = FAST_KUBELET_S
    options["config"] = cfg
    d = K8sDouble(**options).start()
    kc = d.write_kubeconfig(Path(tmp_dir) / f"kubeconfig-{d.port}")
    ing = d.ingress
    c = Cluster(d, str(kc), d.url, ing.host if ing else "", ing.port if ing else 0, tmp=Path(tmp_dir))
    from mmslib.backends.base import model_names
    c.upload_models(model_names(100) + model_names(20, "n"))
    return c


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


def answers(ep, workload=None) -> bool:
    """Whether endpoint ``ep`` answers a sample of ``workload`` (simple_string by default) correctly
    through the ingress, with the endpoint's headers (Host, path)."""
    import numpy as np
    import requests

    from mmslib import v2
    from mmslib.workloads import get_workload
    w = workload or get_workload("simple_string")
    smp = w.make_sample(np.random.default_rng(3))
    s = requests.Session()
    s.headers.update(ep.headers)
    return w.check(v2.V2Client(ep.rest_url, timeout=10, session=s).infer(ep.served_name or ep.model, smp.inputs),
                   smp.expected)
