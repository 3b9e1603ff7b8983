#!/usr/bin/env bash
# Installs everything the kit needs on a fresh Debian bookworm machine with Python 3.11:
# system packages (ffmpeg for stempeg/musdb and compressed inputs, libsndfile for
# soundfile, python3-venv) and a virtual environment in .venv with the pinned
# Python dependencies (requirements.txt; with --dev also the test tools).
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

missing=()
command -v "$PYTHON" >/dev/null 2>&1 || missing+=(python3)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
ldconfig -p 2>/dev/null | grep -q libsndfile.so || missing+=(libsndfile1)
if command -v "$PYTHON" >/dev/null 2>&1 && ! "$PYTHON" -c "import venv, ensurepip" 2>/dev/null; then
  missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing system packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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
.venv/bin/python -m pip install --quiet -r "$requirements"
.venv/bin/python -c "import torch, torchaudio, openunmix, demucs, stempeg, museval; print('setup: ok, torch', torch.__version__)"
