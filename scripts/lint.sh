#!/usr/bin/env bash
# Lint as BasicSR does it (settings in setup.cfg): flake8, yapf (no changes needed), isort (sorted).
set -euo pipefail
cd "$(dirname "$0")/.."
PATHS=(mh2f_plugin tests benchmarks datasets scripts setup.py)
.venv/bin/flake8 "${PATHS[@]}"
diff=$(.venv/bin/yapf -r -d "${PATHS[@]}")
if [ -n "$diff" ]; then echo "$diff"; echo "yapf: run .venv/bin/yapf -r -i ${PATHS[*]}" >&2; exit 1; fi
.venv/bin/isort --check-only --diff "${PATHS[@]}"
