#!/usr/bin/env bash
# Creates .venv in the repository root and installs mh2f_plugin (editable) with BasicSR 1.4.2.
# basicsr 1.4.2 is a source package whose setup.py imports torch, so torch goes in first and the
# rest is built without build isolation (an isolated build would fetch a second torch).
#   bash scripts/install.sh          the package and the development tools
#   bash scripts/install.sh --test   also every optional extra the tests need (TensorFlow, ONNX, OpenVINO,
#                                    Gradio, Playwright) and, as root on Debian, the chromium the browser test drives
set -euo pipefail
cd "$(dirname "$0")/.."
extras=dev
case "${1:-}" in
  '') ;;
  --test) extras=dev,tf,onnx,openvino,web,webtest ;;
  *) echo "install.sh: unknown option $1 (use --test, or nothing)" >&2; exit 2 ;;
esac
python3 -m venv .venv
.venv/bin/pip install -q -U pip setuptools wheel
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q --no-build-isolation -e ".[$extras]"
if [ "${1:-}" = --test ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "install.sh: no chromium, and no root apt-get to install it: the browser test of basicsr web will skip" >&2
  fi
fi
