#!/usr/bin/env bash
# Set up, then run the demo on the embedded default (no network, no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/lowentropy demo
