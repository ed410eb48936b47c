"""Server-side time from each runtime's own Prometheus metrics.

Scraped before and after a load level; the difference of the cumulative
counters gives requests served and time spent inside the server per level,
shown beside client-side latency so queueing and protocol overhead show.

- kserve: ``request_predict_seconds`` (+ pre/postprocess) histograms per model
  (the model's own time; the HTTP stack is not included).
- triton: ``nv_inference_request_duration_us`` (whole request in the server),
  ``nv_inference_queue_duration_us``, ``nv_inference_compute_infer_duration_us``,
  ``nv_inference_request_success``.
- mlserver: ``model_infer_request_duration`` histogram (seconds).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import requests
from prometheus_client.parser import text_string_to_metric_families

# runtime -> (count metric, {part: (sum metric, scale to ms)})
SPECS = {
    "kserve": ("request_predict_seconds_count", {
        "server_ms": [("request_predict_seconds_sum", 1e3), ("request_preprocess_seconds_sum", 1e3),
                      ("request_postprocess_seconds_sum", 1e3)],
        "compute_ms": [("request_predict_seconds_sum", 1e3)],
    }),
    "triton": ("nv_inference_request_success", {
        "server_ms": [("nv_inference_request_duration_us", 1e-3)],
        "queue_ms": [("nv_inference_queue_duration_us", 1e-3)],
        "compute_ms": [("nv_inference_compute_infer_duration_us", 1e-3)],
    }),
    "mlserver": ("model_infer_request_duration_count", {
        "server_ms": [("model_infer_request_duration_sum", 1e3)],
    }),
}


def parse(text: str) -> Dict[str, float]:
    """Prometheus text -> {sample name: value summed over label sets}."""
    out: Dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            names = [s.name]
            # The parser names counter samples "<name>_total" even where the
            # exposition (Triton's) has no such suffix: keep both spellings.
            if fam.type == "counter" and s.name.endswith("_total"):
                names.append(s.name[: -len("_total")])
            for n in names:
                out[n] = out.get(n, 0.0) + float(s.value)
    return out


def scrape(urls: Iterable[str], timeout: float = 5.0) -> Dict[str, float]:
    """Sum of every metric over the given servers' /metrics endpoints."""
    total: Dict[str, float] = {}
    for u in urls:
        try:
            r = requests.get(u, timeout=timeout)
            if r.status_code != 200:
                continue
        except requests.RequestException:
            continue
        for k, v in parse(r.text).items():
            total[k] = total.get(k, 0.0) + v
    return total


def delta(runtime: str, before: Dict[str, float], after: Dict[str, float]) -> Dict[str, Optional[float]]:
    """Requests counted by the server and mean server-side ms per request, over one level."""
    if runtime not in SPECS:
        return {}
    count_name, parts = SPECS[runtime]
    n = after.get(count_name, 0.0) - before.get(count_name, 0.0)
    out: Dict[str, Optional[float]] = {"server_requests": n}
    for part, metrics in parts.items():
        if not any(m in after for m, _ in metrics):
            out[part] = None
            continue
        total = sum((after.get(m, 0.0) - before.get(m, 0.0)) * scale for m, scale in metrics)
        out[part] = total / n if n > 0 else None
    return out
