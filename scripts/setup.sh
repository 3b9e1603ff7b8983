#!/usr/bin/env bash
# Installs everything the kit needs on a fresh Debian bookworm machine with Python 3.11:
#   - the system packages in apt.txt (ffmpeg, libsndfile1, g++ for compiled mode), plus, for
#     this machine's Python, python3-venv and python3-dev where missing, and git-lfs (weights
#     travel in the submission repository on git-lfs);
#   - a virtual environment in .venv with the pinned Python dependencies: requirements.txt;
#     --aicrowd adds requirements-aicrowd.txt (the `aicrowd` command); --train adds what training's
#     pitch/tempo augmentation runs (requirements-train.txt, apt-train.txt); --dev adds the test tools
#     (requirements-dev.txt), the system packages the tests run for real (apt-dev.txt) and --train's.
# apt.txt and requirements*.txt are the one source of the versions: the Dockerfile runs this
# script, and environment.yml is generated from them (scripts/write_environment_yml.py).
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=(-r requirements.txt)
apt_lists=(apt.txt)
for option in "$@"; do
  case "$option" in
    --dev) requirements+=(-r requirements-dev.txt); apt_lists+=(apt-dev.txt apt-train.txt) ;;
    --train) requirements+=(-r requirements-train.txt); apt_lists+=(apt-train.txt) ;;
    --aicrowd) requirements+=(-r requirements-aicrowd.txt) ;;
    *) echo "setup: unknown option $option (use --dev, --train or --aicrowd)" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

# A package counts as present when dpkg says so or, for a tool or library that came from
# elsewhere (a static ffmpeg, conda), when the command or the shared library can be found.
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
  command -v "$1" >/dev/null 2>&1 && return 0
  ldconfig -p 2>/dev/null | grep -q "${1%%[0-9]*}\.so"
}

[ -f apt.txt ] || { echo "setup: apt.txt is missing from $(pwd): the system packages are listed there" >&2; exit 1; }

missing=()
while read -r package; do
  [ -n "$package" ] && ! installed "$package" && missing+=("$package")
done < <(grep -hv '^\s*#' "${apt_lists[@]}")
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3 python3-venv python3-dev)
if command -v "$PYTHON" >/dev/null 2>&1; then
  "$PYTHON" -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
  # torch.compile builds C++ kernels against Python.h
  "$PYTHON" -c "import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" \
    || missing+=(python3-dev)
fi
command -v git-lfs >/dev/null 2>&1 || missing+=(git-lfs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
fi

version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "setup: $PYTHON is Python $version; this kit is pinned for Python 3.11 (set PYTHON=...)" >&2
  exit 1
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# torch and torchaudio wheels are large (about 2.6 GB with their CUDA libraries); pip caches them.
.venv/bin/python -m pip install --quiet "${requirements[@]}"
# aicrowd-cli ships its own files under aicrowd_api/ and overwrites aicrowd-api's (an empty
# __init__.py among them), which breaks the graders' `aicrowd_api.events.AIcrowdEvents`: the
# grader's library is put back last, at its pin in requirements.txt.
if [[ " ${requirements[*]} " == *requirements-aicrowd.txt* || " ${requirements[*]} " == *requirements-dev.txt* ]]; then
  .venv/bin/python -m pip install --quiet --force-reinstall --no-deps "$(grep -E '^aicrowd-api==' requirements.txt)"
fi
.venv/bin/python -c "import torch, torchaudio, openunmix, demucs, stempeg, museval, aicrowd_api
aicrowd_api.events.AIcrowdEvents  # what the MDX 2021 grader's evaluator/aicrowd_helpers.py uses
print('setup: ok, torch', torch.__version__)"
