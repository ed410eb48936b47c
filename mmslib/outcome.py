"""What a stress run found, in the words every reader of it uses: why it stopped (``STOP_*``, the
stop reasons a run records and the report, the narrative and the validity notes read) and how
many more models multi-model serving fitted (:func:`more_models`, the one definition). One noun: the
stress run's outcome, kept below the experiment so that readers need not import the experiment.
"""
from __future__ import annotations

import math
from typing import Dict

STOP_TARGET = "target reached"
STOP_BUDGET = "memory budget"
STOP_FAILURE = "deploy failure"
STOP_ADMISSION = "admission refused"
STOP_TIMEOUT = "timeout"
STOP_TIME_LIMIT = "time limit"
STOP_INTERRUPTED = "interrupted"
STOP_CONFIG_FULL = "host model config full"     # kserve: the hosts' model-config ConfigMaps are full (~1 MiB each)


def more_models(traditional: float, mms: float) -> Dict[str, float]:
    """How many more models multi-model serving deployed: the one definition.

    ``mms_over_traditional`` = mms / traditional (the seed: ~10,000 / 352 = 28.4x);
    ``more_models_pct`` = (mms - traditional) / traditional x 100 (the seed wrote
    "2800% more"). Infinite when traditional deployed none."""
    t, m = float(traditional), float(mms)
    return {"mms_over_traditional": m / t if t else math.inf,
            "more_models_pct": (m - t) / t * 100 if t else math.inf}
