"""Arrival schedules: when each request is sent, and to which model.

A :class:`Schedule` is computed ahead of a load level, from the parameters and
``seed`` only, and replayed by the generator (:func:`mmslib.loadgen.replay`).
The same inputs always give the same schedule (same offsets, same models,
same :meth:`Schedule.hash`); the hash goes into the run's metadata.

Arrival process (``arrival``), for a mean rate ``rate`` (requests/s):

* ``constant``: a request every ``1/rate`` s, the first at 0 (the seed's
  vegeta and k6's ``constant-arrival-rate``).
* ``poisson``: exponential gaps with mean ``1/rate`` (gap CV 1; MLPerf's
  Server scenario).
* ``gamma``: Gamma-distributed gaps with mean ``1/rate`` and coefficient of
  variation ``cv`` (shape ``1/cv**2``, scale ``cv**2/rate``; AlpaServe's
  burstiness knob): ``cv=1`` is Poisson, ``cv>1`` bursty, ``cv<1`` smoother.
* ``trace``: rows ``offset_s, model`` of a CSV file (:func:`read_trace`),
  offsets divided by ``time_scale`` (``time_scale=10`` replays ten times
  faster).

The renewal processes start **in equilibrium** (steady state): the first
request comes after a forward-recurrence time, not after an ordinary gap. For
Gamma gaps of shape ``k`` and scale ``s`` the gap that covers a random instant
is length-biased, Gamma(``k + 1``, ``s``), and the instant falls uniformly
within it, so the first offset is ``U * Gamma(k + 1, s)``. The process is then
stationary from time 0: the expected number of requests in any window is
``rate`` times its length (a process started with an arrival at 0 puts about
``(cv**2 - 1) / 2`` extra requests at the start: 7 at CV 4, 32 at CV 8).
Poisson arrivals are memoryless (the forward recurrence is an ordinary gap).
Requests scheduled in the first ``warmup_s`` seconds are warm-up (sent,
recorded, excluded from statistics): the warm-up fills the servers' queues.

Seeds: a level's streams are drawn from the SHA-256 of (``seed``, ``repeat``,
the level's parameters, the stream's name) with all 256 bits as entropy: any
integer seed (no 32-bit mask), and no two (seed, repeat) pairs share a stream.

Popularity (``popularity``), for the generated processes:

* ``uniform``: each request picks a model uniformly.
* ``zipf``: the model of rank ``k`` (0-based, in the given model order) gets a
  share proportional to ``1/(k+1)**zipf_alpha`` (``zipf_alpha=0`` is uniform).
* ``hot``: the ``uniform`` traffic at ``rate`` over all models, plus, on top,
  a second independent stream at ``hot_rate`` with its own ``hot_cv`` (Gamma
  gaps) to the first ``hot_models`` models only: the noisy neighbour.
  Requests of that stream are marked ``hot``.

Model choice is an independent draw per request (seeded), so a model's count
is Binomial(n, share).
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .errors import ParamError

ARRIVALS = ("constant", "poisson", "gamma", "trace")
POPULARITY = ("uniform", "zipf", "hot")
TRACE_COLUMNS = ("offset_s", "model")


def _finite(x) -> bool:
    if not isinstance(x, (int, float, np.number)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond any float (10**400)
        return False


def check_cv(cv, name: str = "cv") -> float:
    if not _finite(cv) or cv <= 0:
        raise ParamError(name, cv, "a number > 0 (coefficient of variation of the gaps; 1 = Poisson)")
    return float(cv)


def check_zipf_alpha(alpha, name: str = "zipf_alpha") -> float:
    if not _finite(alpha) or alpha < 0:
        raise ParamError(name, alpha, "a number >= 0 (Zipf exponent; 0 = uniform)")
    return float(alpha)


def rng_for(seed: int, *parts) -> np.random.Generator:
    """A generator determined by ``seed`` and ``parts`` (any reprs): each
    (level, stream) gets its own reproducible stream, independent of the run order.
    The whole seed is hashed with the parts (no 32-bit mask: seeds 3 and 3 + 2**32 differ)."""
    h = hashlib.sha256(repr((int(seed),) + tuple(parts)).encode()).digest()
    return np.random.default_rng(np.random.SeedSequence(int.from_bytes(h, "little")))


def gaps(rng: np.random.Generator, arrival: str, rate: float, n: int, cv: float = 1.0) -> np.ndarray:
    """``n`` inter-arrival gaps (seconds) with mean ``1/rate``."""
    if arrival == "constant":
        return np.full(int(n), 1.0 / rate)
    if arrival == "poisson":
        return rng.exponential(1.0 / rate, int(n))
    if arrival == "gamma":
        shape = 1.0 / (cv * cv)
        return rng.gamma(shape, 1.0 / (rate * shape), int(n))
    raise ParamError("arrival", arrival, " | ".join(a for a in ARRIVALS if a != "trace"))


def first_offset(rng: np.random.Generator, arrival: str, rate: float, cv: float = 1.0) -> float:
    """The first arrival of a renewal process observed from a random instant (its
    forward-recurrence time; see the module doc): the process is stationary from 0."""
    if arrival == "poisson":
        return float(rng.exponential(1.0 / rate))
    if arrival == "gamma":
        shape = 1.0 / (cv * cv)
        return float(rng.random() * rng.gamma(shape + 1.0, 1.0 / (rate * shape)))
    raise ParamError("arrival", arrival, "poisson | gamma")


def arrival_offsets(rng: np.random.Generator, arrival: str, rate: float, span_s: float,
                    cv: float = 1.0, steady: bool = True) -> np.ndarray:
    """Arrival times in ``[0, span_s)`` of a renewal process (see the module doc).
    ``steady=False``: the process starts with an (unsent) arrival at 0 instead of in
    equilibrium (kept to show the start-up effect; schedules are always steady)."""
    if arrival == "constant":
        n = math.ceil(rate * span_s - 1e-9)
        return np.arange(n, dtype=np.float64) / rate
    mean_n = rate * span_s
    sd = math.sqrt(mean_n) * max(1.0, cv)
    parts, t = [], 0.0
    if steady:
        t = first_offset(rng, arrival, rate, cv)
        parts.append(np.array([t]))
    while t < span_s:
        g = gaps(rng, arrival, rate, int(mean_n + 6 * sd + 16), cv)
        off = t + np.cumsum(g)
        parts.append(off)
        t = float(off[-1])
    off = np.concatenate(parts)
    return off[off < span_s]


def popularity_weights(n: int, popularity: str = "uniform", zipf_alpha: float = 1.0) -> np.ndarray:
    """Share of the (base) traffic per model, summing to 1 (``hot``: uniform base)."""
    if popularity not in POPULARITY:
        raise ParamError("popularity", popularity, " | ".join(POPULARITY))
    if popularity == "zipf":
        w = np.arange(1, int(n) + 1, dtype=np.float64) ** -check_zipf_alpha(zipf_alpha)
    else:
        w = np.ones(int(n))
    return w / w.sum()


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(weights)
    cum /= cum[-1]
    return np.minimum(np.searchsorted(cum, rng.random(int(n)), side="right"), len(cum) - 1).astype(np.int32)


@dataclass(frozen=True, eq=False)
class Schedule:
    """Requests of one level, sorted by offset: ``offset_s`` (float64, seconds
    from the level's start), ``model`` (int32 index into ``models``), ``hot``
    (bool: sent by the noisy-neighbour stream). ``span_s``: the level's length
    (warm-up included); requests before ``warmup_s`` are warm-up."""

    offset_s: np.ndarray
    model: np.ndarray
    hot: np.ndarray
    models: Tuple[str, ...]
    span_s: float
    warmup_s: float = 0.0
    trace_rows_cut: int = 0

    def __len__(self) -> int:
        return int(len(self.offset_s))

    @property
    def warmup(self) -> np.ndarray:
        return self.offset_s < self.warmup_s

    @property
    def measured_s(self) -> float:
        return max(1e-9, self.span_s - self.warmup_s)

    @property
    def rate(self) -> float:
        """Scheduled requests per second over the measured window."""
        return float((~self.warmup).sum()) / self.measured_s

    def hash(self) -> str:
        """sha256 (16 hex digits) of offsets (to the microsecond), models and
        streams: equal hashes, equal schedules."""
        h = hashlib.sha256()
        h.update("\n".join(self.models).encode())
        h.update(np.round(self.offset_s * 1e6).astype("<i8").tobytes())
        h.update(self.model.astype("<i4").tobytes())
        h.update(self.hot.astype(np.uint8).tobytes())
        h.update(repr((round(self.span_s, 9), round(self.warmup_s, 9))).encode())
        return h.hexdigest()[:16]

    def frame(self) -> pd.DataFrame:
        m = np.asarray(self.models, dtype=object)
        return pd.DataFrame({"offset_s": self.offset_s, "model": m[self.model] if len(self) else
                             np.array([], dtype=object), "hot": self.hot, "warmup": self.warmup})

    def model_counts(self) -> pd.Series:
        return pd.Series(np.bincount(self.model, minlength=len(self.models)), index=list(self.models))


def make_schedule(models: Sequence[str], rate: float, duration_s: float, warmup_s: float = 0.0,
                  arrival: str = "poisson", cv: float = 1.0, popularity: str = "uniform",
                  zipf_alpha: float = 1.0, hot_models: int = 1, hot_rate: float = 0.0,
                  hot_cv: float = 4.0, seed: int = 0, trace=None, time_scale: float = 1.0,
                  repeat: int = 0) -> Schedule:
    """The schedule of one level: ``warmup_s + duration_s`` seconds at mean
    ``rate`` (plus ``hot_rate`` with ``popularity='hot'``). With
    ``arrival='trace'``, ``trace`` is a path or a (offsets, model names) pair;
    rows past ``warmup_s + duration_s`` (after ``time_scale``) are cut and
    counted in ``trace_rows_cut``. ``repeat``: the repeat's own streams (with ``seed``)."""
    models = tuple(str(m) for m in models)
    if not models:
        raise ParamError("models", [], "at least one model")
    if arrival not in ARRIVALS:
        raise ParamError("arrival", arrival, " | ".join(ARRIVALS))
    if not _finite(warmup_s) or warmup_s < 0:
        raise ParamError("warmup_s", warmup_s, "a number >= 0 (seconds)")
    if not _finite(duration_s) or duration_s <= 0:
        raise ParamError("duration_s", duration_s, "a number > 0 (seconds)")
    span = float(warmup_s) + float(duration_s)
    if arrival == "trace":
        if not _finite(time_scale) or time_scale <= 0:
            raise ParamError("time_scale", time_scale, "a number > 0 (trace offsets are divided by it)")
        if trace is None:
            raise ParamError("trace", None, "a CSV file of offset_s,model rows (arrival: trace)")
        offs, names = read_trace(trace, models) if isinstance(trace, (str, Path)) else trace
        offs = np.asarray(offs, dtype=np.float64) / float(time_scale)
        index = {m: i for i, m in enumerate(models)}
        idx = np.array([index[m] for m in names], dtype=np.int32)
        keep = offs < span
        return Schedule(offs[keep], idx[keep], np.zeros(int(keep.sum()), dtype=bool), models, span,
                        float(warmup_s), int((~keep).sum()))
    if not _finite(rate) or rate <= 0:
        raise ParamError("rate", rate, "a number > 0 (requests per second)")
    if arrival == "gamma":
        check_cv(cv)
    if popularity not in POPULARITY:
        raise ParamError("popularity", popularity, " | ".join(POPULARITY))
    w = popularity_weights(len(models), popularity, zipf_alpha)
    key = (int(repeat), arrival, float(rate), float(cv) if arrival == "gamma" else None, span)
    off = arrival_offsets(rng_for(seed, "arrivals", *key), arrival, float(rate), span, float(cv))
    mod = _pick(rng_for(seed, "models", *key, popularity, float(zipf_alpha), len(models)), w, len(off))
    hot = np.zeros(len(off), dtype=bool)
    if popularity == "hot" and hot_rate:
        if not isinstance(hot_models, (int, np.integer)) or isinstance(hot_models, bool) \
                or not 1 <= hot_models <= len(models):
            raise ParamError("hot_models", hot_models, f"an integer in [1, {len(models)}] (the models that burst)")
        if not _finite(hot_rate) or hot_rate < 0:
            raise ParamError("hot_rate", hot_rate, "a number >= 0 (requests per second of the hot stream)")
        hcv = check_cv(hot_cv, "hot_cv")
        hkey = (int(repeat), "hot", float(hot_rate), hcv, int(hot_models), span)
        h_off = arrival_offsets(rng_for(seed, "arrivals", *hkey), "gamma", float(hot_rate), span, hcv)
        h_mod = _pick(rng_for(seed, "models", *hkey), np.ones(int(hot_models)), len(h_off))
        off = np.concatenate([off, h_off])
        mod = np.concatenate([mod, h_mod])
        hot = np.concatenate([hot, np.ones(len(h_off), dtype=bool)])
        order = np.argsort(off, kind="stable")
        off, mod, hot = off[order], mod[order], hot[order]
    return Schedule(off, mod, hot, models, span, float(warmup_s))


# --------------------------------------------------------------------------- traces

def _csv_rows(reader, p):
    try:
        yield from reader
    except csv.Error as e:  # e.g. a field over the csv module's size limit
        raise ParamError("trace", f"{p} line {reader.line_num}: {e}", "a CSV file with rows offset_s,model") from None


def read_trace(path, models: Optional[Sequence[str]] = None) -> Tuple[np.ndarray, List[str]]:
    """Offsets (seconds, float64) and model names of a trace CSV: a header
    ``offset_s,model`` then one row per request, offsets >= 0 and sorted
    (ties allowed). Every error is a :class:`ParamError` naming ``trace``, the
    file and the line (1-based, the header is line 1). ``models``: the models
    that exist; a row naming another one is an error."""
    p = Path(path)
    if not p.is_file():
        raise ParamError("trace", str(path), "an existing CSV file with rows offset_s,model")
    known = set(models) if models is not None else None
    offs: List[float] = []
    names: List[str] = []
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamError("trace", f"{p}: byte {e.start} is not UTF-8 text", "a UTF-8 CSV file with rows offset_s,model") from None
    except OSError as e:
        raise ParamError("trace", f"{p}: {e.strerror}", "a readable CSV file with rows offset_s,model") from None
    with io.StringIO(text, newline=None) as f:
        rows = _csv_rows(csv.reader(f), p)
        header = next(rows, None)
        if header is None or not any(c.strip() for c in header):
            raise ParamError("trace", f"{p}: empty file", "a header line 'offset_s,model' then rows")
        if [c.strip() for c in header] != list(TRACE_COLUMNS):
            raise ParamError("trace", f"{p} line 1: {','.join(header)!r}", "the header 'offset_s,model'")
        last = -math.inf
        for line, row in enumerate(rows, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise ParamError("trace", f"{p} line {line}: {','.join(row)!r}", "two columns: offset_s,model")
            s, m = row[0].strip(), row[1].strip()
            try:
                t = float(s)
            except ValueError:
                raise ParamError("trace", f"{p} line {line}: offset {s!r}",
                                 "a number of seconds in column offset_s") from None
            if not math.isfinite(t) or t < 0:
                raise ParamError("trace", f"{p} line {line}: offset {s!r}", "a finite number of seconds >= 0")
            if t < last:
                raise ParamError("trace", f"{p} line {line}: offset {t:g} after {last:g}",
                                 "rows sorted by offset_s (non-decreasing)")
            if not m:
                raise ParamError("trace", f"{p} line {line}: empty model", "a model name in column model")
            if known is not None and m not in known:
                shown = ", ".join(sorted(known)[:3]) + (", ..." if len(known) > 3 else "")
                raise ParamError("trace", f"{p} line {line}: model {m!r}",
                                 f"one of the {len(known)} deployed models ({shown})")
            last = t
            offs.append(t)
            names.append(m)
    if not offs:
        raise ParamError("trace", f"{p}: no rows", "at least one row offset_s,model after the header")
    return np.asarray(offs, dtype=np.float64), names


def write_trace(path, schedule: Schedule) -> Path:
    """The schedule as a trace CSV (offsets to the microsecond): read back by
    :func:`read_trace`, it gives the same schedule."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    m = np.asarray(schedule.models, dtype=object)
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(TRACE_COLUMNS)
        for t, k in zip(schedule.offset_s, schedule.model):
            w.writerow([f"{t:.6f}", m[k]])
    return p


def trace_models(path) -> List[str]:
    """Distinct model names of a trace, in order of first use (no model check)."""
    _, names = read_trace(path)
    return list(dict.fromkeys(names))


def summary(schedule: Schedule) -> Dict[str, float]:
    """Sample facts of a schedule (rate, gap CV, share of the busiest model)."""
    g = np.diff(schedule.offset_s)
    counts = np.bincount(schedule.model, minlength=len(schedule.models)) if len(schedule) else np.zeros(1)
    return {"requests": len(schedule), "rate": schedule.rate,
            "gap_cv": float(g.std() / g.mean()) if len(g) > 1 and g.mean() > 0 else float("nan"),
            "top_share": float(counts.max() / max(1, counts.sum())), "hot_requests": int(schedule.hot.sum()),
            "hash": schedule.hash()}
