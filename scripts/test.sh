#!/usr/bin/env bash
# Set up with the dev extras, check lint, format and types, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/lint.sh
exec .venv/bin/python -m pytest -q "$@"
