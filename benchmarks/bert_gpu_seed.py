"""The seed's BERT GPU test on a CUDA machine: both modes, the seed's eight rates, 20 s levels.

    python benchmarks/bert_gpu_seed.py OUTPUT_DIR

Writes a normal performance run directory (records per request) and prints the seed-layout
tables and the GPU memory per server and per model. MMSLIB_GPU_SMOKE=1 runs one 2 s level on
the CPU instead (to check the script anywhere).

Runs made with this script, each on one NVIDIA H200:
  results/bert-gpu-h200/    mmslib at commit af710a4, 2026-11-30
  results/bert-gpu-h200-2/  the rerun described in docs/gpu-rerun.md (source commit in console.txt)
"""
import os, sys, time
import pandas as pd
from mmslib import params, performance
test = os.environ.get("MMSLIB_GPU_SMOKE") == "1"
out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gpu-run"
p = params.performance(workload="bert", device="cpu" if test else "cuda", models=5,
                       qps=[5] if test else [5, 10, 20, 30, 40, 50, 100, 200],
                       duration_s=2 if test else 20, warmup_s=1 if test else 3,
                       slo_p99_ms=500, output_dir=out)
if not test:
    import torch
    print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__, flush=True)
t0 = time.time()
def on_level(cell, backend):
    print(f"[{time.time()-t0:6.0f}s] measuring {cell.mode} {cell.qps} qps", flush=True)
r = performance.run(p, progress=False, on_level=on_level)
pd.set_option("display.width", 250); pd.set_option("display.max_columns", 40)
print("DEPLOY\n", r.deploy.to_string(), flush=True)
if "gpu_memory_mib" in r.deploy.columns:
    for _, d in r.deploy.iterrows():
        print(f"GPU memory {d['mode']}: {d['gpu_memory_mib']:.0f} MiB in {d['servers']} server(s), "
              f"{d['gpu_memory_mib'] / d['servers']:.0f} MiB per server, "
              f"{d['gpu_memory_mib'] / d['models']:.0f} MiB per model", flush=True)
cols = [c for c in ["mode", "qps", "n", "errors", "achieved_qps", "valid", "mean", "p50", "p50_lo", "p50_hi",
                    "p90", "p95", "p99", "p99_lo", "p99_hi", "max", "server_ms", "compute_ms"]
        if c in r.summary.columns]
print("SUMMARY\n", r.summary[cols].to_string(), flush=True)
for m in ("traditional", "mms"):
    print(m, "\n", r.seed_table(m).to_string(), flush=True)
print("total", round(time.time() - t0), "s")
