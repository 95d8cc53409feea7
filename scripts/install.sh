#!/usr/bin/env bash
# Creates .venv in the repository root and installs mh2f_plugin (editable) with BasicSR 1.4.2.
# basicsr 1.4.2 is a source package whose setup.py imports torch, so torch goes in first and the
# rest is built without build isolation (an isolated build would fetch a second torch).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -U pip setuptools wheel
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q --no-build-isolation -e '.[dev]'
