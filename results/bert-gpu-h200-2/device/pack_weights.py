"""Split model.safetensors into its header and 4 byte planes of the fp32 data, each xz'd.
Lossless; assemble.py restores the file byte for byte (sha256 checked)."""
import hashlib, lzma, struct, sys
import numpy as np
src, out1, out2 = sys.argv[1], sys.argv[2], sys.argv[3]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
open(f"{out2}/whdr.bin", "wb").write(b[:8 + n])
d = np.frombuffer(b[8 + n:], dtype=np.uint8).reshape(-1, 4)
for i in range(4):
    dst = out1 if i == 0 else out2
    open(f"{dst}/w{i}.xz", "wb").write(lzma.compress(np.ascontiguousarray(d[:, i]).tobytes(), preset=6))
open(f"{out2}/weights.sha256", "w").write(hashlib.sha256(b).hexdigest() + "\n")
print("ok", len(b))
