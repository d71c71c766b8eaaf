#!/usr/bin/env bash
# mypy --strict over the package. The folders install under `lowentropy.*` through a
# package-dir mapping that mypy cannot follow, so check them through a symlinked tree.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/lowentropy"
for pkg in server models retrieval prompts; do ln -s "$(pwd)/$pkg" "$tree/lowentropy/$pkg"; done
cd "$tree"
MYPYPATH="$tree" exec "$OLDPWD/.venv/bin/python" -m mypy --config-file "$OLDPWD/pyproject.toml" \
  -p lowentropy.server -p lowentropy.models -p lowentropy.retrieval -p lowentropy.prompts "$@"
