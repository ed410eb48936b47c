"""Prints how each replay generator keeps time: lateness (never negative now), timer wake-ups,
and, for k6, what its REST latency leaves out or adds.

    .venv/bin/python benchmarks/generator_timing_bench.py [--rates 150,500] [--seconds 5] \
        [--k6-script OLD.js] [--go-source OLD.go]

One local KServe ModelServer (simple_string, 2 models, REST, answers checked), a Poisson
schedule per rate, replayed by ``loadgen.replay`` with each variant in turn, back to back:

* ``k6`` and ``go``: mmslib's generators as they are;
* ``k6 (OLD.js)`` / ``go (OLD.go)``: with an older script or Go source, e.g. the ones before
  issue 21 (``git show a96a4e5^:mmslib/k6/replay.js > /tmp/old.js``,
  ``git show a96a4e5^:mmslib/gogen/replay.go > /tmp/old.go``).

Per variant and rate: the share of requests sent before their scheduled time ("early") and by
how much at most, lateness percentiles, the generator's timer wake-ups and those that found
nothing due yet (re-armed; -1: the variant does not report them).

Then, for mmslib's k6 script only (an instrumented copy that also logs every REST response's
``res.timings``): "seen - timings", the time the script saw from its send stamp to the
response callback minus k6's ``blocked + sending + waiting + receiving`` (what the recorded
latency leaves to the generator: handing the request to k6 before it asks for a connection,
and the callback's wait in the event loop), and ``blocked`` (what k6's ``timings.duration``,
the latency recorded before issue 21, left out). Figures, not assertions; the server shares
the machine's cores.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from mmslib import arrivals, gogen, loadgen
from mmslib import replay as replay_mod
from mmslib.backends.local import serve
from mmslib.v2 import request_body

MODELS = ["m0", "m1"]
# the instrumented copy: one more log line per REST response, its timings (see the docstring)
_NEEDLE = "finish(k, sent, r.status && x < seen ? x : seen,"
_PROBE = ("lines.push(`G,${k},${seen},${t.blocked},${t.sending},${t.waiting},${t.receiving},"
          "${t.connecting}`); ")


def _pct(v, qs=(50, 90, 99)):
    return [float(np.percentile(v, q)) for q in qs] if len(v) else [float("nan")] * len(qs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="150,500")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--k6-script", default=None, help="also replay with this k6 script (an older replay.js)")
    ap.add_argument("--go-source", default=None, help="also replay with this Go source (an older replay.go)")
    a = ap.parse_args()
    rates = [float(x) for x in a.rates.split(",")]
    own_js, own_go = replay_mod._REPLAY_JS, gogen.SOURCE
    variants = {"k6": ("k6", own_js, own_go)}
    if a.k6_script:
        variants[f"k6 ({Path(a.k6_script).name})"] = ("k6", Path(a.k6_script).read_text(), own_go)
    go_ok = gogen.go_tool() is not None
    if go_ok:
        variants["go"] = ("go", own_js, own_go)
        if a.go_source:
            variants[f"go ({Path(a.go_source).name})"] = ("go", own_js, Path(a.go_source).resolve())
    probe_js = own_js.replace(_NEEDLE, _PROBE + _NEEDLE) if _NEEDLE in own_js else None
    rows, gaps = [], []
    with tempfile.TemporaryDirectory(prefix="mmslib-gentime-") as tmp:
        with serve("simple_string", MODELS, Path(tmp) / "server") as backend:
            srv = backend.server()
            sample = backend.workload.make_sample(np.random.default_rng(0))
            body = request_body(sample.inputs)
            targets = [loadgen.Target(f"{srv.rest_url}/v2/models/{m}/infer", m, body, expect=sample.expected)
                       for m in MODELS]
            try:
                for rate in rates:
                    s = arrivals.make_schedule(MODELS, rate, a.seconds, arrival="poisson", seed=int(rate))
                    for name, (gen, js, src) in variants.items():
                        replay_mod._REPLAY_JS, gogen.SOURCE = js, src
                        r = loadgen.replay(targets, s, generator=gen)
                        late = r.records["lateness_ms"].dropna().to_numpy()
                        early = late[late < 0]
                        rows.append((name, rate, len(late), 100.0 * len(early) / max(1, len(late)),
                                     float(-early.min()) if len(early) else 0.0, *_pct(late),
                                     float(late.max()) if len(late) else float("nan"),
                                     r.timer_wakeups, r.early_wakeups, r.most_early_ms))
                    if probe_js is not None:
                        replay_mod._REPLAY_JS, gogen.SOURCE = probe_js, own_go
                        wd = Path(tmp) / f"probe-{rate:g}"
                        loadgen.replay(targets, s, workdir=wd)
                        g = np.array([[float(x) for x in ln.split(",")[2:]]
                                      for ln in open(wd / loadgen.LOG_FILE) if ln.startswith("G,")])
                        if len(g):
                            seen, bl, se, wa, rc, co = g.T
                            gaps.append((rate, len(g), seen - (bl + se + wa + rc), bl, int((co > 0).sum())))
            finally:
                replay_mod._REPLAY_JS, gogen.SOURCE = own_js, own_go
    print(f"load average now {os.getloadavg()[0]:.2f}; {a.seconds:g} s Poisson levels; REST, answers checked"
          + ("" if go_ok else "; no Go toolchain: k6 only"))
    print(f"{'generator':22} {'rate':>5} {'requests':>8} {'early':>7} {'most ms':>8} {'late p50':>8} "
          f"{'p90':>6} {'p99':>7} {'max':>7} {'wake-ups':>8} {'early wk':>8} {'ms early':>8}")
    for name, rate, n, e_pct, e_max, p50, p90, p99, mx, wk, ewk, mse in rows:
        print(f"{name:22} {rate:5.0f} {n:8d} {e_pct:6.1f}% {e_max:8.3f} {p50:8.3f} {p90:6.2f} {p99:7.2f} "
              f"{mx:7.2f} {wk:8d} {ewk:8d} {mse:8.3f}")
    print("early: requests sent before their scheduled time (lateness < 0), most ms: by how much at most; "
          "early wk: timer wake-ups that found nothing due yet (re-armed), ms early: the earliest of them")
    for rate, n, gap, bl, new_conns in gaps:
        g50, g90, g99 = _pct(gap)
        b50, b90, b99 = _pct(bl)
        print(f"k6 {rate:g}/s, {n} REST responses ({new_conns} on new connections): seen - timings "
              f"p50 {g50:.3f} p90 {g90:.3f} p99 {g99:.3f} max {gap.max():.3f} min {gap.min():.3f} ms "
              f"({int((gap < 0).sum())} < 0, capped at seen); blocked p50 {b50:.4f} p99 {b99:.3f} "
              f"max {bl.max():.3f} ms")


if __name__ == "__main__":
    main()
