#!/usr/bin/env bash
# Build the VS Code extension: clients/vscode/lowentropy.vsix.
#   bash clients/vscode/build.sh
# npm ci (the pinned package-lock.json), a strict typecheck, an esbuild bundle, vsce package.
# Needs Node 20 with npm, and the network (or a warm npm cache) for npm ci.
set -euo pipefail
cd "$(dirname "$0")"
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
npm ci --loglevel=error
npx --no-install tsc --noEmit
npm run --silent bundle
npm run --silent package
echo "build: $(pwd)/lowentropy.vsix"
