#!/usr/bin/env bash
# Create the separate Python environments of the 'triton' and 'mlserver' runtimes.
#
#   bash scripts/setup-runtime-env.sh triton     # -> .venv-triton
#   bash scripts/setup-runtime-env.sh mlserver   # -> .venv-mlserver
#   bash scripts/setup-runtime-env.sh all        # both (the default)
#
# Each runtime pins dependencies that conflict with the main venv (Triton's
# python backend needs numpy<2; MLServer pins an older fastapi than kserve), so
# each gets its own venv at the repo root (or at $MMSLIB_TRITON_VENV /
# $MMSLIB_MLSERVER_VENV), with requirements/<runtime>.txt installed and mmslib
# itself installed editable with --no-deps so the servers can import it.
#
# Idempotent: a venv whose stamp matches its requirements file and this script
# is left alone (seconds); otherwise it is created or brought up to date.
# For Triton it also copies the python-backend stub built for the venv's Python
# into the bundled server's backends/python/ (the wheel ships stubs for several
# Python versions beside it, and the backend only looks next to itself).
#
# Python: $MMSLIB_PYTHON, else the interpreter the main .venv was made from,
# else python3.11 on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_VERSION=1

pick_python() {
  if [[ -n "${MMSLIB_PYTHON:-}" ]]; then echo "$MMSLIB_PYTHON"; return; fi
  if [[ -f "$ROOT/.venv/pyvenv.cfg" ]]; then
    local exe
    exe="$(sed -n 's/^executable *= *//p' "$ROOT/.venv/pyvenv.cfg" | head -1)"
    if [[ -n "$exe" && -x "$exe" ]]; then echo "$exe"; return; fi
  fi
  command -v python3.11 || { echo "setup-runtime-env: no python3.11 found; set MMSLIB_PYTHON" >&2; exit 1; }
}

venv_dir() {  # runtime -> venv path
  case "$1" in
    triton) echo "${MMSLIB_TRITON_VENV:-$ROOT/.venv-triton}" ;;
    mlserver) echo "${MMSLIB_MLSERVER_VENV:-$ROOT/.venv-mlserver}" ;;
  esac
}

stamp_of() {  # runtime -> what the stamp must say
  { echo "script=$SCRIPT_VERSION"; sha256sum "$ROOT/requirements/$1.txt" | cut -d' ' -f1; } | tr '\n' ' '
}

install_triton_stub() {
  local venv="$1" py="$1/bin/python"
  local tsdir pyver
  tsdir="$("$py" -c 'import importlib.util, os; s = importlib.util.find_spec("pytriton"); print(os.path.join(os.path.dirname(s.origin), "tritonserver"))')"
  pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
  local stub="$tsdir/python_backend_stubs/$pyver/triton_python_backend_stub"
  local dest="$tsdir/backends/python/triton_python_backend_stub"
  if [[ ! -x "$tsdir/bin/tritonserver" ]]; then
    echo "setup-runtime-env: no tritonserver binary in $tsdir" >&2; exit 1
  fi
  if [[ ! -f "$stub" ]]; then
    echo "setup-runtime-env: nvidia-pytriton ships no python backend stub for Python $pyver ($stub)" >&2; exit 1
  fi
  if ! cmp -s "$stub" "$dest"; then
    cp "$stub" "$dest.tmp.$$" && chmod 755 "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
    echo "setup-runtime-env: installed the Python $pyver stub into $tsdir/backends/python"
  fi
}

setup_one() {
  local rt="$1" venv req stamp want py
  venv="$(venv_dir "$rt")"
  req="$ROOT/requirements/$rt.txt"
  [[ -f "$req" ]] || { echo "setup-runtime-env: missing $req" >&2; exit 1; }
  stamp="$venv/.mmslib-setup"
  want="$(stamp_of "$rt")"
  mkdir -p "$venv"
  # One set-up at a time per venv (a test session and a person may both start one).
  exec 9>"$venv/.mmslib-setup.lock"
  flock 9
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
      && "$venv/bin/python" -c 'import mmslib' 2>/dev/null; then
    if [[ "$rt" == triton ]]; then install_triton_stub "$venv"; fi
    echo "setup-runtime-env: $rt env up to date: $venv"
    flock -u 9
    return
  fi
  local t0=$SECONDS
  if [[ ! -x "$venv/bin/python" ]]; then
    py="$(pick_python)"
    echo "setup-runtime-env: creating $venv with $py"
    "$py" -m venv "$venv"
  fi
  rm -f "$stamp"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  "$venv/bin/python" -m pip install -q -r "$req"
  "$venv/bin/python" -m pip install -q --no-deps -e "$ROOT"
  if [[ "$rt" == triton ]]; then install_triton_stub "$venv"; fi
  "$venv/bin/python" -c 'import mmslib'
  echo "$want" > "$stamp"
  echo "setup-runtime-env: $rt env ready in $((SECONDS - t0)) s: $venv ($(du -sh "$venv" | cut -f1))"
  flock -u 9
}

targets=("${@:-all}")
for t in "${targets[@]}"; do
  case "$t" in
    all) setup_one triton; setup_one mlserver ;;
    triton|mlserver) setup_one "$t" ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: bash scripts/setup-runtime-env.sh [triton|mlserver|all]" >&2; exit 2 ;;
  esac
done
