"""LightGBM boosted trees (regression) as a workload: the boosted-trees family.

Knobs (``make_workload(**knobs)``): ``n_trees`` (boosting rounds, default 46),
``depth`` (each tree has up to 2**depth leaves; default 8), ``n_features`` (20)
and ``n_samples`` (synthetic training rows, 10,000). The learning rate is small
(0.001), so every tree keeps ~all its leaves and the model file grows by
~89 B per leaf (text format): ``model_size`` (an experiment parameter) picks
``n_trees`` for that artifact size: 1 MiB ~ 46 trees, 10 MiB ~ 460,
100 MiB ~ 4,600 (depth 8; ~0.02 s of training per tree, built once and cached).

Artifact: ``model.txt`` (``Booster.save_model``, LightGBM's text format),
served by mmslib's predictor (kserve, triton's python backend) or by MLServer's
own ``mlserver_lightgbm.LightGBMModel`` (mlserver). See
:mod:`mmslib.workloads.families` for the interface and checks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

from . import families

NAME = "lightgbm_trees"
SIZED = True  # takes the model_size parameter (mmslib.workloads.sized_workloads)
DEFAULTS = {"n_trees": 46, "depth": 8, "n_features": 20, "n_samples": 10_000}
BYTES_PER_LEAF = 88.6        # text format, measured (depth 5: 99, depth 10: 85)
BYTES_FIXED = 2500           # header, feature names and infos, parameters
BYTES_PER_FEATURE = 30
LEARNING_RATE = 0.001
MIN_DATA_IN_LEAF = 5


def _leaves(k: Dict) -> int:
    return min(2 ** k["depth"], max(1, k["n_samples"] // MIN_DATA_IN_LEAF))


def estimate_bytes(k: Dict) -> int:
    return int(BYTES_FIXED + BYTES_PER_FEATURE * k["n_features"] + k["n_trees"] * _leaves(k) * BYTES_PER_LEAF)


def _build(k: Dict, path: Path) -> None:
    import lightgbm as lgb
    X, y = families.synthetic_data(k["n_samples"], k["n_features"])
    params = {"objective": "regression", "learning_rate": LEARNING_RATE, "num_leaves": 2 ** k["depth"],
              "max_depth": k["depth"], "min_data_in_leaf": MIN_DATA_IN_LEAF, "verbose": -1,
              "num_threads": 1, "seed": families.TRAIN_SEED, "deterministic": True, "force_row_wise": True}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=k["n_trees"])
    booster.save_model(str(path))


def _load(path: Path):
    import lightgbm as lgb
    booster = lgb.Booster(model_file=str(path))
    return booster.predict


FAMILY = families.Family(
    name=NAME, model_file="model.txt", output_datatype="FP64", build=_build, load=_load,
    packages=("lightgbm",), framework="lightgbm",
    mlserver_implementation="mlserver_lightgbm.LightGBMModel", rtol=1e-9,
    describe=lambda k: (f"LightGBM boosted trees: {k['n_trees']} trees of depth {k['depth']} "
                        f"(<= {2 ** k['depth']} leaves); input FP32 [1,{k['n_features']}] -> predict FP64 [1,1]"),
    estimate_bytes=estimate_bytes,
    memory_factor=0.5, memory_base=6 << 20,  # measured (kserve, mlserver): 6 MiB per model at 1 MiB, 15 at 10, 56 at 100 (docs/models.md)
)


def knobs_for(size_bytes: Optional[int] = None, **given) -> Dict:
    """Validated knobs; with ``size_bytes``, ``n_trees`` chosen for that artifact size."""
    k = families.check_knobs(NAME, given, DEFAULTS)
    k["depth"] = families.knob_int(k, "depth", 1, 16)
    k["n_features"] = families.knob_int(k, "n_features", 1, 10_000)
    k["n_samples"] = families.knob_int(k, "n_samples", 2 * MIN_DATA_IN_LEAF, 10_000_000)
    if size_bytes is not None and "n_trees" not in given:
        fixed = BYTES_FIXED + BYTES_PER_FEATURE * k["n_features"]
        k["n_trees"] = max(1, int(round((size_bytes - fixed) / (_leaves(k) * BYTES_PER_LEAF))))
    k["n_trees"] = families.knob_int(k, "n_trees", 1, 1_000_000)
    return k


make_workload, from_params, WORKLOAD = families.plugin(FAMILY, knobs_for)
