"""``python -m mmslib.runtimes envs``: the environments the runtimes declare (one a line, for
``make envs`` and ``scripts/setup-runtime-env.sh all``); ``python -m mmslib.runtimes check NAME``: the
runtime's own check of its environment (run by the set-up script inside the new environment: Triton
copies its python-backend stub there); exit 1 with the reason when it is not usable."""
from __future__ import annotations

import sys

from ..errors import MmsError
from . import RUNTIMES, envs, get_runtime


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["envs"]:
        print("\n".join(get_runtime(n).env for n in envs()))
        return 0
    if len(argv) == 2 and argv[0] == "check":
        names = [n for n in RUNTIMES if get_runtime(n).env == argv[1]]
        if not names:
            print(f"no runtime declares the environment {argv[1]!r} (runtimes: {', '.join(RUNTIMES)})", file=sys.stderr)
            return 2
        try:
            for n in names:
                get_runtime(n).check_available()
        except MmsError as e:
            print(str(e), file=sys.stderr)
            return 1
        return 0
    print("usage: python -m mmslib.runtimes envs | check ENV", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
