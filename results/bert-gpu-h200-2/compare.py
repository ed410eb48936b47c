"""The rerun beside the 2026-11-30 run and the seed (docs/gpu-rerun.md): p50/p99 with 95% intervals
recomputed from both run directories' records with this checkout's mmslib, and which moved.

    .venv/bin/python results/bert-gpu-h200-2/compare.py
"""
import math, sys
from pathlib import Path
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import pandas as pd
from mmslib import rundir, summary, seed
def summ(path):
    s = summary.summarize_run(rundir.Run.load(path))
    return s.set_index(["mode", "qps"])
old = summ(ROOT / "results/bert-gpu-h200/run")
new = summ(ROOT / "results/bert-gpu-h200-2/run")
sd = {"traditional": seed.bert_traditional().set_index("client_qps"), "mms": seed.bert_mms().set_index("client_qps")}
def f(x, d=2):
    if x is None or (isinstance(x, float) and math.isnan(x)): return "n/a"
    return f"{x:,.{d}f}" if x < 1000 else f"{x:,.0f}"
def ci(r, q):
    return f"{f(r[q])} [{f(r[q+'_lo'])}, {f(r[q+'_hi'])}]"
def outside(x, lo, hi):
    return (not math.isnan(lo) and x < lo) or (not math.isnan(hi) and x > hi)
def disjoint(a, b, q):
    alo, ahi, blo, bhi = a[q+"_lo"], a[q+"_hi"], b[q+"_lo"], b[q+"_hi"]
    return (not math.isnan(ahi) and ahi < blo) or (not math.isnan(bhi) and bhi < alo)
rows = []
for mode in ("traditional", "mms"):
    print(f"\n{mode}\n")
    print("| client QPS | 2026-12-04 p50 [95% CI] | p99 [95% CI] | 2026-11-30 p50 [95% CI] | p99 [95% CI] | seed GPU p50 / p99 | n new / old | valid new / old |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for qps in [5, 10, 20, 30, 40, 50, 100, 200]:
        a, b = new.loc[(mode, float(qps))], old.loc[(mode, float(qps))]
        s = sd[mode].loc[float(qps)] if float(qps) in sd[mode].index else None
        st = f"{f(s['p50'])} / {f(s['p99'])}" if s is not None else "—"
        print(f"| {qps} | {ci(a,'p50')} | {ci(a,'p99')} | {ci(b,'p50')} | {ci(b,'p99')} | {st} | {int(a['n'])} / {int(b['n'])} | {a['valid']} / {b['valid']} |")
        for q in ("p50", "p99"):
            rows.append(dict(mode=mode, qps=qps, q=q, new=a[q], old=b[q],
                             new_out_of_old=outside(a[q], b[q+"_lo"], b[q+"_hi"]),
                             old_out_of_new=outside(b[q], a[q+"_lo"], a[q+"_hi"]),
                             disjoint=disjoint(a, b, q)))
r = pd.DataFrame(rows)
print(); print(r.to_string())
print("\nmoved (either estimate outside the other's interval):")
print(r[r.new_out_of_old | r.old_out_of_new][["mode","qps","q","old","new","new_out_of_old","old_out_of_new","disjoint"]].to_string())
