#!/usr/bin/env bash
# Install the real editors the editor tests drive (tests/test_helix.py, tests/test_emacs.py).
#   bash scripts/install-editors.sh
# Idempotent: what is already there is kept. Needs the network the first time.
#  - Debian packages tmux, emacs-nox, elpa-eglot (apt-get install; needs root).
#  - Helix 25.01: packaged only from Debian trixie on, so trixie's hx, libc6 and libgcc-s1 are
#    downloaded with a private apt list and unpacked under .cache/editors/helix/root; the
#    wrapper .cache/editors/helix/hx runs it with trixie's own loader. Nothing of trixie is
#    installed system-wide. Needs no root.
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
exit "${status:-0}"
