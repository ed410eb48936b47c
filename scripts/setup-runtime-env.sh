#!/usr/bin/env bash
# Create the separate Python environment a runtime declares (mmslib.runtimes: Runtime.env).
#
#   bash scripts/setup-runtime-env.sh NAME   # requirements/NAME.txt -> .venv-NAME (e.g. triton, mlserver)
#   bash scripts/setup-runtime-env.sh all    # every environment a runtime declares (the default)
#
# A runtime whose server pins packages that clash with the main venv (Triton's python backend needs
# numpy<2; MLServer pins an older fastapi than kserve) says so with `env = "NAME"` in its module; this
# script then knows it from requirements/NAME.txt alone: it makes a venv at the repo root (or at
# $MMSLIB_<NAME>_VENV), installs requirements/NAME.txt, installs mmslib itself editable with
# --no-deps so the servers can import it, and last runs the runtime's own check inside the new env
# (`python -m mmslib.runtimes check NAME`: Runtime.check_available, which is where a runtime's quirks
# live; Triton's copies the python-backend stub built for the venv's Python next to the bundled
# server's python backend). No runtime is named here.
#
# Idempotent: a venv whose stamp matches its requirements file and this script is left alone
# (seconds, the check included); otherwise it is created or brought up to date.
#
# Python: $MMSLIB_PYTHON, else the interpreter the main .venv was made from, else python3.11 on PATH.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPT_VERSION=2

pick_python() {
  if [[ -n "${MMSLIB_PYTHON:-}" ]]; then echo "$MMSLIB_PYTHON"; return; fi
  if [[ -f "$ROOT/.venv/pyvenv.cfg" ]]; then
    local exe
    exe="$(sed -n 's/^executable *= *//p' "$ROOT/.venv/pyvenv.cfg" | head -1)"
    if [[ -n "$exe" && -x "$exe" ]]; then echo "$exe"; return; fi
  fi
  command -v python3.11 || { echo "setup-runtime-env: no python3.11 found; set MMSLIB_PYTHON" >&2; exit 1; }
}

venv_dir() {  # NAME -> venv path ($MMSLIB_<NAME>_VENV or .venv-NAME), as mmslib.runtimes.env_dir
  local var="MMSLIB_${1^^}_VENV"
  echo "${!var:-$ROOT/.venv-$1}"
}

stamp_of() {  # NAME -> what the stamp must say
  { echo "script=$SCRIPT_VERSION"; sha256sum "$ROOT/requirements/$1.txt" | cut -d' ' -f1; } | tr '\n' ' '
}

all_envs() {  # the environments the runtimes declare
  local py="$ROOT/.venv/bin/python"
  [[ -x "$py" ]] || py="$(pick_python)"
  (cd "$ROOT" && "$py" -m mmslib.runtimes envs)
}

check_in_env() {  # NAME VENV: the runtime's own check, inside its env
  (cd "$ROOT" && "$2/bin/python" -m mmslib.runtimes check "$1") \
    || { echo "setup-runtime-env: $1 env at $2 fails its runtime's check (above)" >&2; exit 1; }
}

setup_one() {
  local rt="$1" venv req stamp want py
  [[ "$rt" =~ ^[a-z0-9_]+$ ]] || { echo "setup-runtime-env: not an environment name: $rt" >&2; exit 2; }
  venv="$(venv_dir "$rt")"
  req="$ROOT/requirements/$rt.txt"
  [[ -f "$req" ]] || { echo "setup-runtime-env: missing $req (a runtime with env = \"$rt\" lists its packages there)" >&2; exit 1; }
  stamp="$venv/.mmslib-setup"
  want="$(stamp_of "$rt")"
  mkdir -p "$venv"
  # One set-up at a time per venv (a test session and a person may both start one).
  exec 9>"$venv/.mmslib-setup.lock"
  flock 9
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
      && "$venv/bin/python" -c 'import mmslib' 2>/dev/null; then
    check_in_env "$rt" "$venv"
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
  check_in_env "$rt" "$venv"
  echo "$want" > "$stamp"
  echo "setup-runtime-env: $rt env ready in $((SECONDS - t0)) s: $venv ($(du -sh "$venv" | cut -f1))"
  flock -u 9
}

targets=("${@:-all}")
for t in "${targets[@]}"; do
  case "$t" in
    all) for e in $(all_envs); do setup_one "$e"; done ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "usage: bash scripts/setup-runtime-env.sh [NAME ...|all]" >&2; exit 2 ;;
    *) setup_one "$t" ;;
  esac
done
