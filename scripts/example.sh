#!/usr/bin/env bash
# The main job on the bundled example: fetch the default ensemble's weights
# (htdemucs + umxhq) into models/, then separate the real MUSDB18 excerpt that
# ships inside the stempeg package into separated/<song>/<target>.wav.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m demix weights fetch "$@"
example=$(.venv/bin/python -c 'import stempeg; print(stempeg.example_stem_path())')
.venv/bin/python -m demix separate "$example" -o separated
