"""Clean-up by run id: ``python -m mmslib.k8s cleanup --run-id X [--namespace N] [--kubeconfig F]
[--context C]`` deletes what a crashed run left behind (TrainedModels first, then
InferenceServices) and waits for them to go; ``validate`` checks manifest files."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import MmsError
from .client import KubeApiError, api_client, call, check_reachable
from .names import ISVC, TM, Res, check_namespace, check_run_id, run_selector
from .schema import cluster_crds, validate_manifest, validate_with

# -- clean-up --------------------------------------------------------------


def _list(api, res: Res, namespace: str, label_selector: str, **kw) -> List[dict]:
    from kubernetes import client
    out = call(f"list {res.kind}s in {namespace}", client.CustomObjectsApi(api).list_namespaced_custom_object,
               res.group, res.version, namespace, res.plural, label_selector=label_selector, **kw)
    return list(out.get("items", []))


def delete_labelled(api, namespace: str, label_selector: str, *, kinds: Sequence[Res] = (TM, ISVC),
                    timeout_s: float = 300.0, poll_s: float = 0.2, wait: bool = True,
                    retries: int = 4) -> Dict[str, int]:
    """Delete every object of ``kinds`` matching the selector, in that order, waiting for each kind to go.

    Returns {plural: objects found}; the key ``remaining`` counts what was still there at the timeout.
    """
    from kubernetes import client
    co = client.CustomObjectsApi(api)
    counts: Dict[str, int] = {}
    remaining = 0
    deadline = time.monotonic() + timeout_s
    for res in kinds:
        try:
            items = _list(api, res, namespace, label_selector, retries=retries)
        except KubeApiError as e:
            if e.status == 404:       # this kind is not installed: nothing to delete
                counts[res.plural] = 0
                continue
            raise
        counts[res.plural] = len(items)
        if not items:
            continue
        try:
            call(f"delete {res.kind}s ({label_selector}) in {namespace}",
                 co.delete_collection_namespaced_custom_object, res.group, res.version, namespace, res.plural,
                 label_selector=label_selector, propagation_policy="Background", retries=retries)
        except KubeApiError as e:
            if e.status not in (403, 405):
                raise
            for it in items:      # no deletecollection permission: one by one
                try:
                    call(f"delete {res.kind} {it['metadata']['name']}", co.delete_namespaced_custom_object,
                         res.group, res.version, namespace, res.plural, it["metadata"]["name"],
                         propagation_policy="Background", retries=retries)
                except KubeApiError as e2:
                    if e2.status != 404:
                        raise
        if not wait:
            continue
        while True:
            left = _list(api, res, namespace, label_selector, retries=retries)
            if not left:
                break
            if time.monotonic() > deadline:
                remaining += len(left)
                break
            time.sleep(poll_s)
    counts["remaining"] = remaining
    return counts


def cleanup(run_id: str, namespace: str = "default", kubeconfig: Optional[os.PathLike] = None,
            context: Optional[str] = None, timeout_s: float = 300.0) -> Dict[str, int]:
    """Delete what a run left in the cluster (by its run-id label), TrainedModels first; wait for them to go."""
    check_run_id(run_id)
    check_namespace(namespace)
    api = api_client(kubeconfig, context)
    try:
        check_reachable(api)
        return delete_labelled(api, namespace, run_selector(run_id), timeout_s=timeout_s)
    finally:
        api.close()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmslib.k8s", description="Kubernetes helpers for mmslib's kserve backend")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cleanup", help="delete the KServe objects a run left behind (by run id)")
    c.add_argument("--run-id", required=True)
    c.add_argument("--namespace", default="default")
    c.add_argument("--kubeconfig", default=None)
    c.add_argument("--context", default=None)
    c.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the objects to go")
    v = sub.add_parser("validate", help="validate manifest YAML files against KServe's CRDs: those installed in "
                                        "the cluster (--kubeconfig/--context), else $MMSLIB_KSERVE_CRDS")
    v.add_argument("files", nargs="+")
    v.add_argument("--kubeconfig", default=None)
    v.add_argument("--context", default=None)
    a = ap.parse_args(argv)
    try:
        if a.cmd == "cleanup":
            counts = cleanup(a.run_id, a.namespace, a.kubeconfig, a.context, a.timeout)
            found = {k: n for k, n in counts.items() if k != "remaining"}
            print(f"run {a.run_id} in namespace {a.namespace}: deleted "
                  + ", ".join(f"{n} {k}" for k, n in found.items()))
            if counts.get("remaining"):
                print(f"{counts['remaining']} objects still there after {a.timeout:g} s", file=sys.stderr)
                return 1
            return 0
        import yaml
        crds = None
        if a.kubeconfig or a.context:
            api = api_client(a.kubeconfig, a.context)
            try:
                crds = cluster_crds(api)
            finally:
                api.close()
        bad = 0
        for f in a.files:
            for doc in yaml.safe_load_all(Path(f).read_text()):
                errs = validate_with(doc, crds) if crds is not None else validate_manifest(doc)
                for e in errs:
                    print(f"{f}: {e}")
                bad += bool(errs)
        return 1 if bad else 0
    except MmsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
