"""The seed's published results (KServe's MMS benchmark, BENCHMARK.md) as a reference dataset.

The four latency tables are kept as the seed's markdown rows, verbatim
(``RAW_TABLES``), and parsed into tidy DataFrames; every cleaning step is
recorded in :data:`notes`.  Latencies are milliseconds (float); rows carry
``source = "seed"``.

Public functions
----------------
seed_latency(workload=None, mode=None)       all four tables, tidy
simple_string_traditional(), simple_string_mms(), bert_traditional(), bert_mms()
seed_latency_tables()                        {(workload, mode): DataFrame}
seed_stress_summary()                        stress-test summary, tidy
seed_saturation()                            the rates each mode holds
seed_environment()                           versions, specs, load setup
seed_cluster_limits()                        the published cluster limitation list
seed_notes()                                 copy of :data:`notes`
check_against_markdown(path)                 verify RAW_TABLES against BENCHMARK.md
"""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where used: model servers import this module (MODEL_SIZE_BYTES)
    import pandas as pd  # in environments without pandas (the Triton runtime's)

__all__ = [
    "LATENCY_COLUMNS", "RAW_TABLES", "notes", "seed_notes",
    "seed_latency", "seed_latency_tables", "simple_string_traditional", "simple_string_mms",
    "bert_traditional", "bert_mms", "seed_stress_summary", "seed_saturation", "seed_environment",
    "seed_cluster_limits", "check_against_markdown", "STRESS_SPECS", "MODEL_SIZE_BYTES", "PUBLISHED_WORKLOADS",
]

LATENCY_COLUMNS = ["workload", "mode", "client_qps", "qps_per_isvc", "qps_per_model",
                   "mean", "p50", "p90", "p95", "p99", "max", "source"]
_STATS = ["mean", "p50", "p90", "p95", "p99", "max"]

# Seed rows exactly as published (leading indentation removed).  Traditional
# tables: client QPS | QPS per InferenceService (model) | stats; MMS tables:
# client QPS | QPS per InferenceService | QPS per TrainedModel | stats.
RAW_TABLES: dict[tuple[str, str], str] = {
    ("simple_string", "traditional"): """\
| Client side QPS | QPS per InferenceService (model) | mean | p50 | p90 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- | --- |
| 25 | 5 | 3.763 | 3.669 | 4.089 | 4.222 | 4.511 | 43.877 |
| 50 | 10 | 3.78 | 3.546 | 3.936 | 4.097 | 6.956 | 220.716 |
| 100 | 20 | 3.594 | 3.496 | 3.875 | 4.008 | 4.438 | 84.529 |
| 150 | 30 | 3.59 | 3.294 | 3.642 | 3.744 | 6.191 | 260.923 |
| 200 | 40 | 3.508 | 3.169 | 3.535 | 3.631 | 5.659 | 205.389 |
| 250 | 50 | 3.882 | 3.288 | 3.559 | 3.642 | 9.411 | 302.492 |
| 500 | 100 | 4.282 | 3.086 | 3.471 | 3.604 | 52.807 | 324.815 |
| 1000 | 200 | 6.266 | 3.062 | 3.436 | 6.7 | 116.774 | 308.413 |
| 1500 | 300 | 10.365 | 2.828 | 5.901 | 55.38 | 183.41 | 1039 |
| 2000 | 400 | 9.338 | 2.783 | 4.288 | 32.912 | 178.837 | 1058 |
| 2500 | 500 | 11.796 | 2.719 | 8.509 | 64.447 | 217.911 | 1043 |
""",
    ("simple_string", "mms"): """\
| Client side QPS | QPS per InferenceService | QPS per TrainedModel | mean | p50 | p90 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 25 | 25 | 5 | 4.453 | 3.85 | 4.181 | 4.282 | 26.465 | 138.671 |
| 50 | 50 | 10 | 4.081 | 3.676 | 3.934 | 4.048 | 11.653 | 107.775 |
| 100 | 100 | 20 | 5.051 | 3.304 | 3.625 | 3.772 | 72.291 | 193.219 |
| 150 | 150 | 30 | 4.403 | 3.399 | 3.684 | 3.823 | 46.981 | 119.896 |
| 200 | 200 | 40 | 6.071 | 3.296 | 3.63 | 8.587 | 90.514 | 203.785 |
| 250 | 250 | 50 | 6.846 | 3.223 | 3.575 | 23.825 | 100.167 | 351.26 |
| 500 | 500 | 100 | 260.202 | 2.846 | 1298| 2025| 2241| 2475 |
""",
    ("bert", "traditional"): """\
| Client side QPS | QPS per InferenceService (model) | mean | p50 | p90 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- | --- |
| 5 | 1 | 33.845ms | 32.986ms | 36.644ms | 41.596ms | 100.959ms | 131.195ms |
| 10 | 2 | 34.212ms | 32.058ms | 42.791ms | 55.192ms | 89.832ms | 154.485ms |
| 20 | 4 | 30.133ms | 31.262ms | 33.721ms | 35.142ms | 40.981ms | 102.801ms |
| 30 | 6 | 30.726ms | 30.32ms | 33.607ms | 37.405ms | 64.624ms | 700.839ms |
| 40 | 8 | 29.646ms | 29.785ms | 32.164ms | 32.856ms | 39.188ms | 792.061ms |
| 50 | 10 | 29.458ms | 29.519ms | 32.725ms | 33.833ms | 44.221ms | 670.303ms |
| 100 | 20 | 26.844ms | 25.783ms | 31.322ms | 32.179ms | 39.265ms | 811.652ms |
| 200 | 40 | 51.627ms | 25.389ms | 107.946ms | 175.522ms | 321.154ms | 1.616s|
""",
    ("bert", "mms"): """\
| Client side QPS | QPS per InferenceService | QPS per TrainedModel | mean | p50 | p90 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 5 | 5 | 1 | 30.978ms | 30.195ms | 32.435ms | 52.474ms | 59.936ms | 139.195ms |
| 10 | 10 | 2 | 31.903ms | 32.795ms | 35.105ms | 37.138ms | 48.254ms | 266.965m |
| 20 | 20 | 4 | 29.782ms | 30.777ms | 34.452ms | 36.409ms | 46.074ms | 256.518ms |
| 30 | 30 | 6 | 24.929ms | 23.548ms | 30.218ms | 30.935ms | 49.506ms | 205.663ms |
| 40 | 40 | 8 | 34.087ms | 24.483ms | 50.588ms | 87.01ms | 155.853ms | 801.393ms |
""",
}

#: The workloads the seed published latency tables for (in its order).
PUBLISHED_WORKLOADS: tuple[str, ...] = tuple(dict.fromkeys(w for w, _ in RAW_TABLES))

#: Cleaning and interpretation notes, filled when the tables are parsed at import.
notes: list[str] = []

_VALUE_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")


def _latency_ms(cell: str, where: str, unit_notes: set[str]) -> float:
    m = _VALUE_RE.match(cell.strip())
    if not m:
        raise ValueError(f"seed table {where}: cannot parse latency {cell!r}")
    value, unit = float(m.group(1)), m.group(2)
    if unit is None:
        unit_notes.add("unitless")
        return value
    if unit == "ms":
        return value
    if unit == "s":
        notes.append(f"{where}: {cell.strip()!r} is in seconds; converted to {value * 1000:g} ms")
        return value * 1000.0
    notes.append(f"{where}: {cell.strip()!r} lacks the 's' of 'ms' (typo); read as {value:g} ms")
    return value


def _parse_table(workload: str, mode: str, raw: str) -> pd.DataFrame:
    lines = [ln.strip() for ln in raw.strip().splitlines()]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    n_qps = 2 if mode == "traditional" else 3
    if header[n_qps:] != _STATS:
        raise ValueError(f"seed table {workload}/{mode}: unexpected header {header}")
    rows = []
    unit_notes: set[str] = set()
    for ln in lines[2:]:
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if len(cells) != n_qps + len(_STATS):
            raise ValueError(f"seed table {workload}/{mode}: bad row {ln!r}")
        client = float(cells[0])
        if mode == "traditional":
            per_isvc = per_model = float(cells[1])
        else:
            per_isvc, per_model = float(cells[1]), float(cells[2])
        where = f"{workload}/{mode} @ {cells[0]} QPS"
        stats = {s: _latency_ms(c, where, unit_notes) for s, c in zip(_STATS, cells[n_qps:])}
        rows.append({"workload": workload, "mode": mode, "client_qps": client, "qps_per_isvc": per_isvc,
                     "qps_per_model": per_model, **stats, "source": "seed"})
    if "unitless" in unit_notes:
        notes.append(f"{workload}/{mode}: the seed gives no unit; values read as milliseconds "
                     "(vegeta's latency unit; magnitudes match the ms of the BERT tables)")
    import pandas as pd
    df = pd.DataFrame(rows, columns=LATENCY_COLUMNS)
    return df.astype({c: "float64" for c in LATENCY_COLUMNS[2:-1]})


def _build() -> dict[tuple[str, str], pd.DataFrame]:
    tables = {key: _parse_table(*key, raw) for key, raw in RAW_TABLES.items()}
    notes.extend([
        "simple_string/mms @ 500 QPS: the row is written '1298| 2025| 2241| 2475 |' (missing spaces); "
        "values read as 1298, 2025, 2241, 2475 ms - the autoscaling regime the seed stops at",
        "traditional tables: the seed's 'QPS per InferenceService (model)' column is both "
        "qps_per_isvc and qps_per_model (one model per ISVC, 5 ISVCs)",
        "mms tables: one InferenceService with 5 TrainedModels, so qps_per_isvc == client_qps "
        "and qps_per_model == client_qps / 5",
        "simple_string setup lists QPS 5..100/sec: these are per-model rates (client = 5x); "
        "the traditional table continues to 500 per model (2500 client QPS)",
        "bert setup lists QPS 5..40/sec, but the traditional table goes to 200 client QPS "
        "(40 per ISVC); the MMS table stops at 40 client QPS",
        "stress summary: '2800% more models' is loose - ~10,000 / 352 = 28.4x, i.e. ~2,741% more",
        "stress summary: memory units are loose - traditional '211 GB' / '176 GB' match 211,200 / "
        "176,000 MiB divided by 1000, while MMS '63 GB' / '3 GB' match 64,440 / 3,000 MiB in GiB (62.9 / 2.9)",
        "performance test predictor memory '16GB' is kept as written (GB or GiB not stated)",
    ])
    return tables


@functools.lru_cache(maxsize=None)
def _tables() -> dict[tuple[str, str], pd.DataFrame]:
    """The parsed tables, built on first use (model servers import this module for
    MODEL_SIZE_BYTES in environments without pandas: the Triton runtime's)."""
    return _build()


def seed_notes() -> list[str]:
    """A copy of the cleaning/interpretation notes."""
    _tables()  # parsing the tables adds its notes
    return list(notes)


def seed_latency_tables() -> dict[tuple[str, str], pd.DataFrame]:
    """``{(workload, mode): DataFrame}`` for the four tables (copies)."""
    return {k: v.copy() for k, v in _tables().items()}


def seed_latency(workload: str | None = None, mode: str | None = None) -> pd.DataFrame:
    """The seed's latency tables, tidy; optionally one workload and/or mode.

    Columns: workload (simple_string|bert), mode (traditional|mms), client_qps,
    qps_per_isvc, qps_per_model, mean, p50, p90, p95, p99, max (ms, float),
    source ("seed").
    """
    workloads = {w for w, _ in _tables()}
    modes = {m for _, m in _tables()}
    if workload is not None and workload not in workloads:
        raise ValueError(f"workload {workload!r}: allowed {sorted(workloads)}")
    if mode is not None and mode not in modes:
        raise ValueError(f"mode {mode!r}: allowed {sorted(modes)}")
    frames = [df for (w, m), df in _tables().items()
              if (workload is None or w == workload) and (mode is None or m == mode)]
    import pandas as pd
    return pd.concat(frames, ignore_index=True)


def simple_string_traditional() -> pd.DataFrame:
    """Simple string, traditional serving, 5 InferenceServices (11 rows)."""
    return _tables()[("simple_string", "traditional")].copy()


def simple_string_mms() -> pd.DataFrame:
    """Simple string, multi-model serving, 1 InferenceService + 5 TrainedModels (7 rows)."""
    return _tables()[("simple_string", "mms")].copy()


def bert_traditional() -> pd.DataFrame:
    """BERT (GPU), traditional serving, 5 InferenceServices (8 rows)."""
    return _tables()[("bert", "traditional")].copy()


def bert_mms() -> pd.DataFrame:
    """BERT (GPU), multi-model serving, 1 InferenceService + 5 TrainedModels (5 rows)."""
    return _tables()[("bert", "mms")].copy()


_STRESS = [
    # mode, quantity, value, unit (as published), published text, approximate
    ("traditional", "isvcs", 352, "InferenceServices", "352 InferenceServices", False),
    ("traditional", "models", 352, "models", "352 InferenceServices", False),
    ("traditional", "cpu_total", 387, "CPU", "387 CPU", True),
    ("traditional", "memory_total", 211, "GB", "211 GB", True),
    ("traditional", "queue_proxy_cpu", 352, "CPU", "352 CPU", False),
    ("traditional", "queue_proxy_memory", 176, "GB", "176 GB", True),
    ("mms", "isvcs", 6, "InferenceServices", "~10K models using 6 InferenceService", False),
    ("mms", "models", 10_000, "models", "~10K models using 6 InferenceService", True),
    ("mms", "more_models_pct", 2800, "%", "2800% more models loaded", True),
    ("mms", "cpu_total", 66, "CPU", "66 CPU", False),
    ("mms", "memory_total", 63, "GB", "63 GB", True),
    ("mms", "queue_proxy_cpu", 6, "CPU", "6 CPU", False),
    ("mms", "queue_proxy_memory", 3, "GB", "3 GB", True),
]


def seed_stress_summary() -> pd.DataFrame:
    """The stress-test summary, tidy.

    Columns: mode, quantity, value (float, as published), unit (as published:
    the seed's 'GB' is loose, see :data:`notes`), published (the seed's
    words), approximate (bool: '~' or rounded), source.
    """
    import pandas as pd
    df = pd.DataFrame(
        [{"mode": m, "quantity": q, "value": float(v), "unit": u, "published": p, "approximate": a,
          "source": "seed"} for m, q, v, u, p, a in _STRESS],
        columns=["mode", "quantity", "value", "unit", "published", "approximate", "source"])
    return df


def seed_saturation() -> pd.DataFrame:
    """Rates each mode holds per the seed's test summaries.

    Columns: workload, mode, isvcs, trained_models, client_qps, behaviour
    ("no_scaling_up_to": handles up to this rate without scaling;
    "starts_scaling_at": scales up at this rate), published, source.
    """
    rows = [
        ("simple_string", "traditional", 5, 0, 2500.0, "no_scaling_up_to",
         "The traditional model serving using 5 inferenceService is able to handle up to "
         "`2500 queries per second` without scaling"),
        ("simple_string", "mms", 1, 5, 500.0, "starts_scaling_at",
         "Multi-model serving with 1 inferenceservice and 5 trainedModels starts to scale up at "
         "`500 queries per second`"),
        ("bert", "traditional", 5, 0, 200.0, "no_scaling_up_to",
         "The traditional model serving using 5 inferenceService is able to handle up to "
         "`200 queries per second` without scaling"),
        ("bert", "mms", 1, 5, 40.0, "no_scaling_up_to",
         "Multi-model serving with 1 inferenceservice and 5 trainedModels is able to handle up to "
         "`40 queries per second` without scaling"),
    ]
    import pandas as pd
    return pd.DataFrame(
        [dict(zip(["workload", "mode", "isvcs", "trained_models", "client_qps", "behaviour", "published"], r),
              source="seed") for r in rows],
        columns=["workload", "mode", "isvcs", "trained_models", "client_qps", "behaviour", "published", "source"])


#: The seed's stress-test requests per InferenceService (the one place they are written).
STRESS_SPECS = {
    "queue_proxy": {"cpu": "1", "memory": "500Mi"},
    "traditional_predictor": {"cpu": "100m", "memory": "100Mi"},
    "mms_predictor": {"cpu": "10", "memory": "10Gi"},
}
#: The seed's simple_string model size, bytes.
MODEL_SIZE_BYTES = 700

_ENVIRONMENT = {
    "kfserving": "v0.5.1",
    "knative": "v0.17.0",
    "istio": "v1.7.x",
    "api_version": "serving.kserve.io/v1beta1",
    "model_server": "Triton",
    "concurrency": 1,
    "min_replicas": 1,
    "stress_test": {
        "model": {
            "name": "simple_string",
            "size_bytes": MODEL_SIZE_BYTES,
            "framework": "tensorflow",
            "url": "https://github.com/triton-inference-server/server/tree/"
                   "b5a5541d3252a9fb235eeea9c156eb0d2f8ab883/docs/examples/model_repository/simple_string",
        },
        **copy.deepcopy(STRESS_SPECS),
    },
    "performance_test": {
        "queue_proxy": copy.deepcopy(STRESS_SPECS["queue_proxy"]),
        "predictor": {  # same for both modes and both workloads
            "simple_string": {"traditional": {"cpu": "1", "memory": "16GB", "gpu": 1},
                              "mms": {"cpu": "1", "memory": "16GB", "gpu": 1}},
            "bert": {"traditional": {"cpu": "1", "memory": "16GB", "gpu": 1},
                     "mms": {"cpu": "1", "memory": "16GB", "gpu": 1}},
        },
        "layout": {"traditional": {"isvcs": 5, "trained_models": 0},
                   "mms": {"isvcs": 1, "trained_models": 5}},
        "load_generator": "vegeta",
        "simple_string": {"device": "cpu", "model_size_bytes": MODEL_SIZE_BYTES, "duration_s": 60,
                          "qps": [5, 10, 20, 30, 40, 50, 100]},
        "bert": {"device": "gpu", "duration_s": 60, "qps": [5, 10, 20, 30, 40]},
    },
}


def seed_environment() -> dict:
    """Versions, ISVC specs and load-test setup as published (a deep copy)."""
    return copy.deepcopy(_ENVIRONMENT)


def seed_cluster_limits() -> dict:
    """The published cluster limitation list (numbers as written; see params/seed-cluster.yaml)."""
    return {
        "max_ips": 2048,
        "memory_per_node": "0.55Ti",
        "max_services": 2000,  # "~2000", limited by istio ingress gateway
        "max_services_approximate": True,
        "max_pods": 660,
        "max_pods_per_node": 110,
        "nodes": 6,
        "etcd_bytes": "65Mi",
    }


def check_against_markdown(path: str | Path) -> list[str]:
    """Rows of :data:`RAW_TABLES` not found verbatim (modulo indentation) in the seed markdown.

    An empty list means the transcription matches.
    """
    text_lines = {ln.strip() for ln in Path(path).read_text().splitlines()}
    missing = []
    for key, raw in RAW_TABLES.items():
        for ln in raw.strip().splitlines():
            if ln.strip() not in text_lines:
                missing.append(f"{key}: {ln.strip()}")
    return missing
