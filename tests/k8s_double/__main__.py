"""Run the double in the foreground: ``cd tests && python -m k8s_double --kubeconfig /tmp/kc``."""
from __future__ import annotations

import argparse
import time

from .server import Capacity, K8sDouble


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m k8s_double")
    ap.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig for it")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--node-cpu", default="16")
    ap.add_argument("--node-memory", default="64Gi")
    ap.add_argument("--pods-per-node", type=int, default=110)
    ap.add_argument("--no-metrics", action="store_true")
    ap.add_argument("--no-kserve", action="store_true")
    a = ap.parse_args()
    d = K8sDouble(kserve=not a.no_kserve, metrics=not a.no_metrics,
                  capacity=Capacity(a.nodes, a.node_cpu, a.node_memory, a.pods_per_node)).start()
    d.write_kubeconfig(a.kubeconfig)
    print(f"API {d.url}  ingress 127.0.0.1:{d.ingress.port}  modelmesh-serving REST 127.0.0.1:{d.ingress.modelmesh_port}  "
          f"kubeconfig {a.kubeconfig}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        d.stop()


if __name__ == "__main__":
    main()
