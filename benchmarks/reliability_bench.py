"""Reliability figures: runs the reliability tests and prints what they tried.

    .venv/bin/python benchmarks/reliability_bench.py            # the `make test` sizes
    make check-long                                             # MMSLIB_LONG=1, 20 interruptions per runtime, 400 kills

Runs tests/test_reliability*.py, test_fuzz_params.py and test_loopback.py with
pytest (``-s``), passes the environment on (MMSLIB_LONG, MMSLIB_CHAOS_N,
MMSLIB_WRITE_KILLS, MMSLIB_CHAOS_SEED), and prints the figure lines the tests
print (``[interruptions] ...``, ``[kill mid-write] ...``, ``[fuzz] ...``, ...),
then pytest's summary. Exit status: pytest's.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_reliability.py", "tests/test_reliability_writes.py", "tests/test_reliability_ports.py",
         "tests/test_reliability_servers.py", "tests/test_fuzz_params.py", "tests/test_loopback.py"]
FIGURE = re.compile(r"^\s*\[(interruptions|kill mid-write|disk full[^\]]*|ports|server dies[^\]]*|fuzz|loopback|"
                    r"papermill[^\]]*)\]")


def main() -> int:
    env = dict(os.environ)
    print("environment:", {k: v for k, v in env.items() if k.startswith("MMSLIB_")}, flush=True)
    p = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-s", "-ra", "-p", "no:cacheprovider", *TESTS],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = Path(os.environ.get("MMSLIB_RELIABILITY_LOG", ROOT / "outputs" / "reliability-bench.log"))
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as full:
        for line in p.stdout:
            full.write(line)
            if FIGURE.match(line):
                print(line.strip()[:600], flush=True)
    p.wait()
    text = log.read_text().splitlines()
    print("\n".join(t for t in text if t.startswith(("FAILED", "ERROR", "SKIPPED")) or re.match(r"^=+ .* in ", t)))
    print(f"pytest's whole output: {log}")
    return p.returncode


if __name__ == "__main__":
    sys.exit(main())
