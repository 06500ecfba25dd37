#!/usr/bin/env bash
# Creates (or updates) the Python "peers" virtual environment used to generate Keras
# reference fixtures (tools/gen_more_fixtures.py) and to compare memcell against peer
# frameworks. Idempotent: re-running it reuses the venv and only installs what is missing.
#
#   bench/setup_peers.sh            # venv at <repo>/../venv-peers
#   MEMCELL_PEERS_VENV=/some/dir bench/setup_peers.sh
#
# Versions pinned (the ones installed and tested when this script was written, Python 3.11):
#   tensorflow-cpu==2.21.0   (brings keras==3.15.1)
#   torch==2.15.0  (the CPU-only wheel from the PyTorch wheel index when that host is
#                   reachable; otherwise PyPI's default build, which also pulls the CUDA
#                   runtime wheels, ~3 GB, and runs on the CPU all the same)
#   safetensors==0.8.0
#   numpy==2.4.6
set -euo pipefail

ROOT="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
VENV="$(realpath -m "${MEMCELL_PEERS_VENV:-$ROOT/../venv-peers}")"
PYTHON="${PYTHON:-python3}"

TF_VERSION="2.21.0"
KERAS_VERSION="3.15.1"
TORCH_VERSION="2.15.0"
SAFETENSORS_VERSION="0.8.0"
NUMPY_VERSION="2.4.6"

if [ ! -x "$VENV/bin/python" ]; then
    echo "creating venv at $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip

"$PY" -m pip install --quiet \
    "tensorflow-cpu==$TF_VERSION" "keras==$KERAS_VERSION" \
    "safetensors==$SAFETENSORS_VERSION" "numpy==$NUMPY_VERSION"

# torch: prefer the CPU-only wheel (much smaller than the default CUDA build).
if ! "$PY" -c "import torch" 2>/dev/null || \
   [ "$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')" != "$TORCH_VERSION" ]; then
    "$PY" -m pip install --quiet "torch==$TORCH_VERSION" \
        --index-url https://download.pytorch.org/whl/cpu --retries 1 --timeout 20 \
    || "$PY" -m pip install --quiet "torch==$TORCH_VERSION"
fi

"$PY" - <<'PY'
import sys
import numpy, safetensors, tensorflow as tf, keras, torch
print("python", sys.version.split()[0])
print("tensorflow", tf.__version__)
print("keras", keras.__version__)
print("torch", torch.__version__)
print("safetensors", safetensors.__version__)
print("numpy", numpy.__version__)
PY
echo "peers venv ready: $VENV"
