#!/usr/bin/env bash
# Install the real editors the editor tests drive (tests/test_helix.py, tests/test_emacs.py,
# tests/test_vscode.py).
#   bash scripts/install-editors.sh
# Idempotent: what is already there is kept. Needs the network the first time.
#  - Debian packages tmux, emacs-nox, elpa-eglot (apt-get install; needs root).
#  - Helix 25.01: packaged only from Debian trixie on, so trixie's hx, libc6 and libgcc-s1 are
#    downloaded with a private apt list and unpacked under .cache/editors/helix/root; the
#    wrapper .cache/editors/helix/hx runs it with trixie's own loader. Nothing of trixie is
#    installed system-wide. Needs no root.
#  - VS Code: see its own section at the end (code-server 4.100.3, Chromium, puppeteer-core).
set -euo pipefail
cd "$(dirname "$0")/.."

cache=$PWD/.cache/editors
helix=$cache/helix

# ---- Debian packages ----------------------------------------------------------------------
missing=()
for pkg in tmux emacs-nox elpa-eglot; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-editors: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install-editors: please install ${missing[*]} as root:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    echo "then run this script again (the Helix part below needs no root)." >&2
    status=1
  fi
fi

# ---- Helix 25.01 from trixie ---------------------------------------------------------------
if [ -x "$helix/root/usr/bin/hx" ] && "$helix/hx" --version >/dev/null 2>&1; then
  echo "install-editors: $("$helix/hx" --version) already in $helix"
else
  apt=$helix/apt
  rm -rf "$helix/root" "$apt/debs"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts" "$apt/debs" "$helix/root"
  cat >"$apt/trixie.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
  opts=(
    -o "Dir::Etc::SourceList=$apt/trixie.list"
    -o "Dir::Etc::SourceParts=$apt/parts"
    -o "Dir::State::Lists=$apt/lists"
    -o "Dir::Cache=$apt/cache"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "APT::Sandbox::User=$(id -un)"
    -o "Debug::NoLocking=true"
  )
  echo "install-editors: fetching hx from Debian trixie into $helix"
  apt-get "${opts[@]}" -qq update
  (cd "$apt/debs" && apt-get "${opts[@]}" -qq download hx libc6 libgcc-s1)
  for deb in "$apt/debs"/*.deb; do
    dpkg-deb -x "$deb" "$helix/root"
  done
  rm -rf "$apt/lists" "$apt/cache" "$apt/debs"
  cat >"$helix/hx" <<'EOF'
#!/bin/sh
# trixie's hx with trixie's own glibc (written by scripts/install-editors.sh)
R=$(dirname "$(readlink -f "$0")")/root
export HELIX_RUNTIME="${HELIX_RUNTIME:-$R/usr/lib/hx/runtime}"
exec "$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "$R/usr/lib/x86_64-linux-gnu" \
  "$R/usr/bin/hx" "$@"
EOF
  chmod +x "$helix/hx"
  echo "install-editors: $("$helix/hx" --version) in $helix"
fi

# ---- VS Code: code-server 4.100.3 + Debian Chromium + puppeteer-core (tests/test_vscode.py) ---
# code-server from npm, offline-ish (DESIGN.md §7): its postinstall downloads, so it installs with
# --ignore-scripts, its native modules are rebuilt here, and Debian's rg stands in for the
# downloaded one. 4.100.3 (VS Code 1.100) is the last release that runs on Node 20. The browser is
# Debian's chromium, driven by puppeteer-core (no browser download) from .cache/editors/node_modules.
code_server=$cache/code-server
code_server_version() {  # its first line is a log line
  "$code_server/node_modules/.bin/code-server" --version 2>/dev/null | grep -m1 -oE '^[0-9][0-9.]+'
}
vscode_debs=(chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev pkg-config ripgrep)
missing=()
for pkg in "${vscode_debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-editors: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "install-editors: please install ${missing[*]} as root:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    status=1
  fi
fi
if ! command -v npm >/dev/null || ! command -v rg >/dev/null; then
  echo "install-editors: code-server needs Node 20 with npm, and rg (Debian ripgrep)" >&2
  status=1
elif [ -n "$(code_server_version)" ]; then
  echo "install-editors: code-server $(code_server_version) already in $code_server"
else
  echo "install-editors: installing code-server 4.100.3 into $code_server"
  rm -rf "$code_server"
  mkdir -p "$code_server"
  (
    set -e
    export npm_config_yes=true npm_config_fund=false npm_config_audit=false
    cd "$code_server"
    npm install --no-save --loglevel=error --ignore-scripts code-server@4.100.3
    npm rebuild --loglevel=error argon2
    cd node_modules/code-server/lib/vscode
    npm install --loglevel=error --omit=dev --ignore-scripts
    mkdir -p node_modules/@vscode/ripgrep/bin
    ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
    npm rebuild --loglevel=error
    ln -sfn node_modules node_modules.asar
    (cd bin/remote-cli && ln -sf code-linux.sh code-server)
    (cd bin/helpers && ln -sf browser-linux.sh browser.sh)
    cd extensions
    npm install --loglevel=error --omit=dev
  )
  echo "install-editors: code-server $(code_server_version) in $code_server"
fi
if [ -f "$cache/node_modules/puppeteer-core/package.json" ]; then
  echo "install-editors: puppeteer-core already in $cache/node_modules"
elif command -v npm >/dev/null; then
  # 24.x: 25 needs Node 22.
  npm install --prefix "$cache" --no-save --loglevel=error --no-fund --no-audit \
    puppeteer-core@24.43.1
  echo "install-editors: puppeteer-core in $cache/node_modules"
fi
# The extension the test installs: built when missing or older than its sources.
vsix=clients/vscode/lowentropy.vsix
if [ -f "$vsix" ] && [ -z "$(find clients/vscode/src clients/vscode/package.json \
    clients/vscode/package-lock.json clients/vscode/tsconfig.json -newer "$vsix" | head -1)" ]; then
  echo "install-editors: $vsix is up to date"
elif command -v npm >/dev/null; then
  echo "install-editors: building $vsix"
  bash clients/vscode/build.sh
fi
exit "${status:-0}"
