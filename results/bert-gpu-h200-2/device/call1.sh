#!/bin/bash
# Call 1 of 2 on the device: stage the carried environment in $DEVROOT (it stays while the
# machine is warm), then check it: imports, k6, the GPU. Writes nothing but $DEVROOT.
set -u
PY=${PY:-python3}; DEVROOT=${DEVROOT:-/tmp/mmsdev}
C=.devcarry/p1
rm -rf "$DEVROOT"; mkdir -p "$DEVROOT/stage" "$DEVROOT/bin" "$DEVROOT/src" || exit 1
cp $C/w0.xz "$DEVROOT/stage/" || exit 1
"$PY" - "$C" "$DEVROOT" <<'PYEOF' || exit 1
import hashlib, lzma, os, sys, tarfile
c, root = sys.argv[1], sys.argv[2]
kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
with tarfile.open(f"{c}/site312.tar.xz") as t:
    t.extractall(root, **kw)
os.rename(f"{root}/site312", f"{root}/site")
with tarfile.open(f"{c}/src.tar.gz") as t:
    t.extractall(f"{root}/src", **kw)
k6 = lzma.decompress(open(f"{c}/k6.xz", "rb").read())
assert hashlib.sha256(k6).hexdigest() == open(f"{c}/k6.sha256").read().strip(), "k6 sha256"
open(f"{root}/bin/k6", "wb").write(k6); os.chmod(f"{root}/bin/k6", 0o755)
print("staged", flush=True)
PYEOF
export PYTHONPATH="$DEVROOT/src:$DEVROOT/site"
"$DEVROOT/bin/k6" version || exit 1
"$PY" - <<'PYEOF' || exit 1
import importlib.metadata as md, platform
import kserve, pandas, pydantic, fastapi, uvicorn, jsonschema, psutil, google.protobuf, onnx, onnxruntime
import torch, transformers, tokenizers, numpy, pyarrow, scipy
import mmslib.performance, mmslib.workloads.bert, mmslib.runtimes.kserve_server
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print({n: md.version(n) for n in ["kserve", "pandas", "numpy", "protobuf", "psutil", "pyarrow", "transformers",
                                  "tokenizers", "onnx", "onnxruntime", "uvicorn", "fastapi", "pydantic"]})
print("CHECK OK")
PYEOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv
# a second copy inside the (git-ignored) carry folder, in case /tmp does not survive between calls
rm -rf .devcarry/root && cp -a "$DEVROOT" .devcarry/root && echo "copied to .devcarry/root"
echo "CALL1 DONE"
