"""Server-side time from each runtime's own Prometheus metrics.

Scraped before and after a load level; the difference of the cumulative
counters gives requests served and time spent inside the server per level,
shown beside client-side latency so queueing and protocol overhead show.
Which metrics: each runtime declares them (``Runtime.metrics``, a
:class:`mmslib.runtimes.MetricSpec`, e.g. KServe's ``request_predict_seconds``,
Triton's ``nv_inference_*``, MLServer's ``model_infer_request_duration``).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional, Union

import requests
from prometheus_client.parser import text_string_to_metric_families

from .runtimes import RUNTIMES, MetricSpec, get_runtime

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


def delta(spec: Union[MetricSpec, str, None], before: Dict[str, float],
          after: Dict[str, float]) -> Dict[str, Optional[float]]:
    """Requests counted by the server and mean server-side ms per request, over one level.

    ``spec``: the runtime's :class:`MetricSpec` (or the runtime's name); None: nothing to say."""
    if isinstance(spec, str):
        spec = get_runtime(spec).metrics if spec in RUNTIMES else None
    if spec is None:
        return {}
    n = after.get(spec.count, 0.0) - before.get(spec.count, 0.0)
    out: Dict[str, Optional[float]] = {"server_requests": n}
    for part, metrics in spec.parts.items():
        if not any(m in after for m, _ in metrics):
            out[part] = None
            continue
        total = sum((after.get(m, 0.0) - before.get(m, 0.0)) * scale for m, scale in metrics)
        out[part] = total / n if n > 0 else None
    return out
