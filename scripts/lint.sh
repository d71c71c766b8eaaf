#!/usr/bin/env bash
# ruff (lint + format check) and mypy --strict: the checks the test command runs first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/typecheck.sh
