"""The simulator's measured inputs, as a table in a coldstart run's directory.

A coldstart run calibrates the simulator on its lazy-loading cells (:func:`mmslib.coldstart.calibration`):
the service time (hits that found the host idle), the cold-start penalty clients saw (the load, the
eviction and the thread hand-off) and how long a request holds the server. Written as tidy rows
(``quantity``, ``value_s``) beside the run's records, they let the report ask the simulator new
questions without re-measuring and without importing an experiment: above all, *what if the models
were of another family and size*, with load times drawn from what the other runs measured for it
(:mod:`mmslib.report.family_sim`).

``server_load`` (the lazy host's own load timer, per load) is kept so that the hand-off the clients
see on top of a load can be told apart: :attr:`SimInputs.overhead_s`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .errors import MmsError
from .simulate import Constant, Empirical

TABLE = "simulator_inputs"
QUANTITIES = ("service", "load_penalty", "occupancy", "server_load")


@dataclass
class SimInputs:
    """``service`` / ``load`` (the cold-start penalty) / ``occupancy``: as :func:`mmslib.simulate.cluster`
    takes them; ``server_load``: the server's own load times (s), or None."""

    service: Empirical
    load: Empirical
    occupancy: Constant
    server_load: Optional[np.ndarray] = None

    @property
    def overhead_s(self) -> float:
        """What a cold start costs clients beyond the load itself (s, at least 0): the median
        penalty minus the median server-side load time; 0 when the server's times are not known."""
        if self.server_load is None or not len(self.server_load):
            return 0.0
        return max(0.0, float(np.median(self.load.values) - np.median(self.server_load)))


def to_frame(service: Empirical, load: Empirical, occupancy, server_load: Sequence[float] = ()) -> pd.DataFrame:
    """One row per value: ``quantity`` (service | load_penalty | occupancy | server_load), ``value_s``."""
    parts = [("service", np.asarray(service.values, dtype=float)), ("load_penalty", np.asarray(load.values, dtype=float)),
             ("occupancy", np.asarray([occupancy.mean], dtype=float)),
             ("server_load", np.asarray(list(server_load), dtype=float))]
    return pd.DataFrame({"quantity": np.concatenate([[q] * len(v) for q, v in parts]).astype(object),
                         "value_s": np.concatenate([v for _, v in parts])})


def from_frame(df: pd.DataFrame) -> SimInputs:
    """The inputs a :func:`to_frame` table holds (MmsError when it lacks service or penalty values)."""
    if df is None or not {"quantity", "value_s"} <= set(df.columns):
        raise MmsError(f"{TABLE}: a table of quantity, value_s")

    def values(q):
        return df.loc[df["quantity"] == q, "value_s"].to_numpy(dtype=float)
    service, penalty, occ, srv = (values(q) for q in QUANTITIES)
    if not len(service) or not len(penalty):
        raise MmsError(f"{TABLE}: no service or load_penalty values")
    return SimInputs(Empirical(service, "hit latency (host idle)"), Empirical(penalty, "cold-start penalty"),
                     Constant(float(occ[0]) if len(occ) else float(np.percentile(service, 5))),
                     srv if len(srv) else None)
