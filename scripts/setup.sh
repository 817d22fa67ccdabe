#!/usr/bin/env bash
# setup.sh — install what emosteer needs on Debian/Ubuntu and build it into ./build.
# Usage: scripts/setup.sh        (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")/.."

# libmicrohttpd-dev: `emosteer serve`; nginx-light: its two-replica test; chromium and Node.js
# (with the npm packages of tests/node: the official openai client, playwright-core): the
# client and browser tests of the server
PKGS=(build-essential cmake ninja-build pkg-config libpcre2-dev libjansson-dev libmicrohttpd-dev clang clang-format libclang-rt-dev chromium nginx-light)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
command -v npm >/dev/null 2>&1 || PKGS+=(npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# the npm packages the server tests use, pinned by tests/node/package-lock.json
if [ ! -d tests/node/node_modules ] || [ tests/node/package-lock.json -nt tests/node/node_modules ]; then
  echo "setup: npm packages of tests/node" >&2
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { echo "setup: npm ci failed" >&2; exit 1; }
  touch tests/node/node_modules
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build >/dev/null
echo "setup: built build/emosteer" >&2
