#!/bin/bash
# Call 2 of 2 on the device: the rest of the weights, then the run. Everything under $OUT.
set -u
PY=${PY:-python3}; LIMIT=${LIMIT:-520}
C=$PWD/.devcarry/p2
DEVROOT=""
for R in "${DEVROOT_TRY:-/tmp/mmsdev}" "$PWD/.devcarry/root"; do
  if test -x "$R/bin/k6" && test -d "$R/site/kserve" && test -f "$R/stage/w0.xz" && test -f "$R/src/SOURCE_COMMIT"; then DEVROOT=$R; break; fi
done
[ -n "$DEVROOT" ] || { echo "STAGE MISSING: call 1's files are not on this machine"; exit 3; }
echo "stage: $DEVROOT"
"$PY" "$C/assemble.py" "$DEVROOT/stage/w0.xz" "$C" "$DEVROOT/site" 2>&1 | tee "$OUT/console.txt"
[ "${PIPESTATUS[0]}" = 0 ] || exit 4
export PYTHONPATH="$DEVROOT/src:$DEVROOT/site" MMSLIB_K6="$DEVROOT/bin/k6" PYTHONUNBUFFERED=1
S=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/nvidia-smi-samples.csv" 2>&1 &
  S="$S $!"
  (echo "timestamp, pid, process_name, used_gpu_memory [MiB]"
   while true; do nvidia-smi --query-compute-apps=timestamp,pid,process_name,used_memory --format=csv,noheader; sleep 5; done
  ) > "$OUT/nvidia-smi-apps.csv" 2>&1 &
  S="$S $!"
fi
echo "source commit $(cat "$DEVROOT/src/SOURCE_COMMIT")" | tee -a "$OUT/console.txt"
cd "$DEVROOT/src"
rm -rf "$DEVROOT/run"
timeout -k 20 -s INT "$LIMIT" "$PY" benchmarks/bert_gpu_seed.py "$DEVROOT/run" 2>&1 | tee -a "$OUT/console.txt"
rc=${PIPESTATUS[0]}
for p in $S; do kill "$p" 2>/dev/null; done
tar -C "$DEVROOT" -czf "$OUT/run.tar.gz" run
echo "rc=$rc" | tee -a "$OUT/console.txt"
exit $rc
