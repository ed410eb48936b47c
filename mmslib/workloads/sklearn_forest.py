"""A scikit-learn random forest (regression) as a workload: the sklearn family.

Knobs (``make_workload(**knobs)``): ``n_estimators`` (trees, default 50),
``max_depth`` (0: grown until pure, the default), ``n_features`` (20) and
``n_samples`` (rows of synthetic training data per tree: with unlimited depth a
tree has ~1.26 nodes per row, ~72 B per node in the pickle). ``model_size``
(an experiment parameter, e.g. ``10Mi``) picks ``n_samples`` so that the
artifact weighs about that: 1 MiB ~ 230 rows, 100 MiB ~ 23,000 rows (50 trees).

Artifact: ``model.joblib`` (``joblib.dump`` of the fitted
``RandomForestRegressor``, ``n_jobs=1``), served by mmslib's predictor (kserve,
triton's python backend) or by MLServer's own ``mlserver_sklearn.SKLearnModel``
(mlserver). See :mod:`mmslib.workloads.families` for the interface and checks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from . import families

NAME = "sklearn_forest"
SIZED = True  # takes the model_size parameter (mmslib.workloads.sized_workloads)
DEFAULTS = {"n_estimators": 50, "max_depth": 0, "n_features": 20, "n_samples": 230}
NODES_PER_ROW = 1.263      # nodes per training row of a fully grown tree (bootstrap: ~63% distinct rows)
BYTES_PER_NODE = 72.3      # node struct (64 B) + its float64 value, as pickled
BYTES_PER_TREE = 340       # the estimator object around each tree
BYTES_FIXED = 1500         # the forest object


def _nodes(k: Dict) -> float:
    full = NODES_PER_ROW * k["n_samples"]
    return min(full, 2 ** (k["max_depth"] + 1) - 1) if k["max_depth"] else full


def estimate_bytes(k: Dict) -> int:
    return int(BYTES_FIXED + k["n_estimators"] * (BYTES_PER_TREE + BYTES_PER_NODE * _nodes(k)))


def _build(k: Dict, path: Path) -> None:
    import joblib
    from sklearn.ensemble import RandomForestRegressor
    X, y = families.synthetic_data(k["n_samples"], k["n_features"])
    model = RandomForestRegressor(n_estimators=k["n_estimators"], max_depth=k["max_depth"] or None,
                                  random_state=families.TRAIN_SEED, n_jobs=1)
    model.fit(X, y)
    joblib.dump(model, path)


def _load(path: Path):
    import joblib
    model = joblib.load(path)
    model.set_params(n_jobs=1)
    return model.predict


FAMILY = families.Family(
    name=NAME, model_file="model.joblib", output_datatype="FP64", build=_build, load=_load,
    packages=("scikit-learn", "joblib"), framework="sklearn",
    mlserver_implementation="mlserver_sklearn.SKLearnModel", rtol=1e-9,
    describe=lambda k: (f"scikit-learn RandomForestRegressor: {k['n_estimators']} trees, "
                        f"max_depth {k['max_depth'] or 'unlimited'}, {k['n_samples']} training rows; "
                        f"input FP32 [1,{k['n_features']}] -> predict FP64 [1,1]"),
    estimate_bytes=estimate_bytes,
    memory_factor=1.0, memory_base=1 << 20,  # measured (kserve, mlserver): 0.5-1.1 MiB per model at 1 MiB, 10.3 at 10, 103-146 at 100 (docs/models.md)
)


def knobs_for(size_bytes: Optional[int] = None, **given) -> Dict:
    """Validated knobs; with ``size_bytes``, ``n_samples`` chosen for that artifact size."""
    k = families.check_knobs(NAME, given, DEFAULTS)
    k["n_estimators"] = families.knob_int(k, "n_estimators", 1, 10_000)
    k["max_depth"] = families.knob_int(k, "max_depth", 0, 64)
    k["n_features"] = families.knob_int(k, "n_features", 1, 10_000)
    if size_bytes is not None and "n_samples" not in given:
        per_tree = (size_bytes - BYTES_FIXED) / k["n_estimators"] - BYTES_PER_TREE
        k["n_samples"] = max(2, int(round(per_tree / BYTES_PER_NODE / NODES_PER_ROW)))
    k["n_samples"] = families.knob_int(k, "n_samples", 2, 10_000_000)
    return k


make_workload, from_params, WORKLOAD = families.plugin(FAMILY, knobs_for)
