"""Clean-up by run id: ``python -m mmslib.k8s cleanup --run-id X [--namespace N] [--kubeconfig F]
[--context C]`` deletes what a crashed run left behind (TrainedModels first, then
InferenceServices) and waits for them to go; ``validate`` checks manifest files."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..errors import MmsError
from .client import KubeApiError, api_client, call, check_reachable
from .names import ISVC, TM, Res, check_namespace, check_run_id, run_selector
from .schema import cluster_crds, validate_manifest, validate_with

log = logging.getLogger(__name__)

# -- clean-up --------------------------------------------------------------


def _list(api, res: Res, namespace: str, label_selector: str, **kw) -> List[dict]:
    from kubernetes import client
    out = call(f"list {res.kind}s in {namespace}", client.CustomObjectsApi(api).list_namespaced_custom_object,
               res.group, res.version, namespace, res.plural, label_selector=label_selector, **kw)
    return list(out.get("items", []))


TM_FINALIZER = "trainedmodel.finalizer"     # kserve pkg/controller/v1alpha1/trainedmodel/controller.go Reconcile


def _delete_items(api, res: Res, namespace: str, items: List[dict], label_selector: str, retries: int,
                  whole_selection: bool) -> None:
    from kubernetes import client
    co = client.CustomObjectsApi(api)
    if whole_selection:
        try:
            call(f"delete {res.kind}s ({label_selector}) in {namespace}",
                 co.delete_collection_namespaced_custom_object, res.group, res.version, namespace, res.plural,
                 label_selector=label_selector, propagation_policy="Background", retries=retries)
            return
        except KubeApiError as e:
            if e.status not in (403, 405):
                raise
    for it in items:      # some kept, or no deletecollection permission: one by one
        try:
            call(f"delete {res.kind} {it['metadata']['name']}", co.delete_namespaced_custom_object,
                 res.group, res.version, namespace, res.plural, it["metadata"]["name"],
                 propagation_policy="Background", retries=retries)
        except KubeApiError as e2:
            if e2.status != 404:
                raise


def delete_labelled(api, namespace: str, label_selector: str, *, kinds: Sequence[Res] = (TM, ISVC),
                    timeout_s: float = 300.0, poll_s: float = 0.2, wait: bool = True,
                    retries: int = 4, progress_s: float = 10.0, force_finalizers: bool = False) -> Dict:
    """Delete every object of ``kinds`` matching the selector, kind by kind, each kind with its own
    deadline (``timeout_s``) and a progress line every ``progress_s``.

    KServe removes a TrainedModel's finalizer only after it removed the model from its host's
    model-config ConfigMap (one rewrite of up to 1 MiB per TrainedModel; kserve
    pkg/controller/v1alpha1/trainedmodel/controller.go Reconcile), and a TrainedModel whose host is gone
    is never finalized. So an InferenceService that any TrainedModel still names (this run's or not) is
    *not* deleted: it is kept, and counted in ``remaining``. With ``force_finalizers``, TrainedModels
    stuck because their host is already gone get their finalizer removed (the only way out).

    Returns {plural: objects found, "remaining": objects left, "left": {kind: [names]}, "kept_hosts":
    [names], "stuck": [TrainedModels whose host is gone], "advice": what to run}.
    """
    counts: Dict = {}
    left: Dict[str, List[str]] = {}
    kept: List[str] = []
    stuck: List[str] = []
    for res in kinds:
        try:
            items = _list(api, res, namespace, label_selector, retries=retries)
        except KubeApiError as e:
            if e.status == 404:       # this kind is not installed: nothing to delete
                counts[res.plural] = 0
                continue
            raise
        counts[res.plural] = len(items)
        if res is ISVC:
            named = _hosts_in_use(api, namespace, retries)
            keep = [o for o in items if o["metadata"]["name"] in named]
            kept = [o["metadata"]["name"] for o in keep]
            if kept:
                log.warning("keeping %d InferenceServices that TrainedModels still name (%s): deleting them now would "
                            "leave those TrainedModels Terminating for ever", len(kept), ", ".join(kept[:5]))
            items = [o for o in items if o["metadata"]["name"] not in named]
        if not items:
            continue
        _delete_items(api, res, namespace, items, label_selector, retries, whole_selection=not kept or res is not ISVC)
        if not wait:
            continue
        names = {o["metadata"]["name"] for o in items}
        t0 = time.monotonic()
        deadline, next_note = t0 + timeout_s, t0 + progress_s
        while True:
            now_left = [o for o in _list(api, res, namespace, label_selector, retries=retries)
                        if o["metadata"]["name"] in names]
            if not now_left:
                break
            now = time.monotonic()
            if now > deadline:
                left[res.kind] = sorted(o["metadata"]["name"] for o in now_left)
                if res is TM:
                    stuck = _stuck_trainedmodels(api, namespace, now_left, retries)
                break
            if now >= next_note:
                log.info("deleting %ss in %s: %d of %d left after %.0f s", res.kind, namespace, len(now_left),
                         len(items), now - t0)
                next_note = now + progress_s
            time.sleep(poll_s)
    if force_finalizers:
        tms = [o for o in _list(api, TM, namespace, label_selector, retries=retries)] if TM in kinds else []
        for name in _stuck_trainedmodels(api, namespace, tms, retries):
            _drop_finalizer(api, namespace, name, retries)
        stuck = []
    if kept:
        left[ISVC.kind] = sorted(set(left.get(ISVC.kind, [])) | set(kept))
    counts["remaining"] = sum(len(v) for v in left.values())
    counts["left"], counts["kept_hosts"], counts["stuck"] = left, kept, stuck
    counts["advice"] = _advice(left, kept, stuck, namespace) if counts["remaining"] else ""
    return counts


def _hosts_in_use(api, namespace: str, retries: int) -> set:
    """Names of the InferenceServices some TrainedModel in ``namespace`` names (spec.inferenceService)."""
    try:
        tms = _list(api, TM, namespace, "", retries=retries)
    except KubeApiError as e:
        if e.status == 404:
            return set()
        raise
    return {(o.get("spec") or {}).get("inferenceService") for o in tms}


def _stuck_trainedmodels(api, namespace: str, tms: List[dict], retries: int) -> List[str]:
    """TrainedModels being deleted whose host InferenceService is gone: KServe never finalizes them."""
    from kubernetes import client
    out = []
    for o in tms:
        if not o["metadata"].get("deletionTimestamp") or TM_FINALIZER not in (o["metadata"].get("finalizers") or []):
            continue
        host = (o.get("spec") or {}).get("inferenceService", "")
        try:
            call(f"get InferenceService {host}", client.CustomObjectsApi(api).get_namespaced_custom_object,
                 ISVC.group, ISVC.version, namespace, ISVC.plural, host, retries=retries)
        except KubeApiError as e:
            if e.status == 404:
                out.append(o["metadata"]["name"])
            else:
                raise
    return sorted(out)


def _drop_finalizer(api, namespace: str, name: str, retries: int) -> None:
    from kubernetes import client
    co = client.CustomObjectsApi(api)
    try:
        cur = call(f"get TrainedModel {name}", co.get_namespaced_custom_object, TM.group, TM.version, namespace,
                   TM.plural, name, retries=retries)
        fins = [f for f in cur["metadata"].get("finalizers") or [] if f != TM_FINALIZER]
        call(f"remove the finalizer of TrainedModel {name}", co.patch_namespaced_custom_object, TM.group, TM.version,
             namespace, TM.plural, name, {"metadata": {"finalizers": fins or None,
                                                       "resourceVersion": cur["metadata"]["resourceVersion"]}},
             retries=retries)
        log.warning("removed %s from TrainedModel %s/%s (its host is gone: KServe would never remove it)",
                    TM_FINALIZER, namespace, name)
    except KubeApiError as e:
        if e.status != 404:
            raise


def _advice(left: Dict[str, List[str]], kept: List[str], stuck: List[str], namespace: str) -> str:
    bits = []
    for kind, names in left.items():
        bits.append(f"{len(names)} {kind}s ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
    out = "still there: " + "; ".join(bits) + "."
    if kept:
        out += (f" Kept {len(kept)} host InferenceServices because TrainedModels still name them (KServe takes each "
                "TrainedModel out of its host's ConfigMap before it goes; deleting the host first would strand them).")
    out += " Run `python -m mmslib.k8s cleanup --run-id <run id> --namespace " + namespace + "` again to finish"
    if stuck:
        out += (f"; {len(stuck)} TrainedModels ({', '.join(stuck[:3])}) are stuck Terminating because their host is "
                "gone: add --force-finalizers (or kubectl patch trainedmodel NAME --type=merge -p "
                "'{\"metadata\":{\"finalizers\":null}}')")
    return out + "."


def cleanup(run_id: str, namespace: str = "default", kubeconfig: Optional[os.PathLike] = None,
            context: Optional[str] = None, timeout_s: float = 300.0, force_finalizers: bool = False) -> Dict:
    """Delete what a run left in the cluster (by its run-id label), TrainedModels first (hosts only once
    no TrainedModel names them); wait for each kind to go (``timeout_s`` each)."""
    check_run_id(run_id)
    check_namespace(namespace)
    api = api_client(kubeconfig, context)
    try:
        check_reachable(api)
        return delete_labelled(api, namespace, run_selector(run_id), timeout_s=timeout_s,
                               force_finalizers=force_finalizers)
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
    c.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each kind's objects to go")
    c.add_argument("--force-finalizers", action="store_true",
                   help="remove KServe's finalizer from TrainedModels stuck Terminating because their host is gone")
    v = sub.add_parser("validate", help="validate manifest YAML files against KServe's CRDs: those installed in "
                                        "the cluster (--kubeconfig/--context), else $MMSLIB_KSERVE_CRDS")
    v.add_argument("files", nargs="+")
    v.add_argument("--kubeconfig", default=None)
    v.add_argument("--context", default=None)
    r = sub.add_parser("artifacts", help="write one Triton model directory per model, named as the model "
                                         "(OUT/<model>/<model>), to upload and use as storage_uri .../{model}/{model}")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--source", help="a Triton model directory (with config.pbtxt), e.g. "
                                      "gsutil cp -r gs://kfserving-examples/models/triton/simple_string .")
    src.add_argument("--repository", help="your model_repository (workload repository): replica N copies its "
                                          "model N mod k, named as the replica")
    r.add_argument("--out", required=True)
    r.add_argument("--models", type=int, required=True, help="how many (named m00000, m00001, ... as a run names them)")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "artifacts":
            from ..backends.base import model_names
            from .artifacts import write_repository_artifacts, write_triton_artifacts
            write = write_repository_artifacts if a.repository else write_triton_artifacts
            dirs = write(Path(a.repository or a.source), Path(a.out), model_names(a.models))
            print(f"{len(dirs)} model directories in {a.out} (e.g. {dirs[0]}); upload with "
                  f"`gsutil -m cp -r {a.out}/* gs://BUCKET/PATH/` and run with storage_uri gs://BUCKET/PATH/{{model}}/{{model}}")
            return 0
        if a.cmd == "cleanup":
            logging.basicConfig(level=logging.INFO, format="%(message)s")
            counts = cleanup(a.run_id, a.namespace, a.kubeconfig, a.context, a.timeout, a.force_finalizers)
            found = {k: n for k, n in counts.items() if isinstance(n, int) and k != "remaining"}
            print(f"run {a.run_id} in namespace {a.namespace}: deleted "
                  + ", ".join(f"{n} {k}" for k, n in found.items()))
            if counts.get("remaining"):
                print(f"{counts['remaining']} objects left after {a.timeout:g} s per kind: "
                      + counts["advice"].replace("<run id>", a.run_id), file=sys.stderr)
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
