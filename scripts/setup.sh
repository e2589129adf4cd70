#!/usr/bin/env bash
# Installs what Agent Sandbox needs on this machine, idempotently: gVisor (runsc) and bubblewrap
# from Debian's packages when running as root, npm dependencies, the bundles (dist/) with the
# static Go agent, and the pinned current gVisor (dist/runsc, built from the Go module proxy).
# Without Go, sandboxes run the node agent on Debian's runsc (README, "Sandboxes").
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*" >&2; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

missing=()
command -v runsc >/dev/null 2>&1 || missing+=(runsc)
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
# Sandbox networking (templates that allow egress): namespaces and veths, and the firewall.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
# The egress proxy's certificates, for templates with credentials.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} from Debian's packages"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Missing: ${missing[*]}. Install them with:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "building dist/ (runtime agents and CLI bundles)"
npm run --silent build
if command -v go >/dev/null 2>&1; then
  scripts/build-runsc.sh >/dev/null
else
  say "no Go toolchain: sandboxes run the node agent on Debian's runsc (install Go 1.26 for the static agent and the current gVisor)"
fi
