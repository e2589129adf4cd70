#!/usr/bin/env bash
# Builds the current gVisor (runsc) pinned by tools/gvisor/go.mod, from the Go module proxy, and
# links it as dist/runsc, which the engine prefers to a runsc on PATH (ASB_RUNSC overrides both).
# Static (CGO_ENABLED=0): a dynamically linked runsc fails inside its own chroot ("error
# executing umounter"). Cached per pinned version in ~/.cache/asb/gvisor; about a minute on two
# cores the first time. The version string says which commit, so that `runsc --version` and the
# engine (which decides from its date whether the statx shim is needed) can tell.
set -euo pipefail
cd "$(dirname "$0")/.."

pseudo=$(awk '$1 == "require" && $2 == "gvisor.dev/gvisor" { print $3 }' tools/gvisor/go.mod)
[ -n "$pseudo" ] || { echo "tools/gvisor/go.mod names no gvisor.dev/gvisor version" >&2; exit 1; }
# v0.0.0-20260905035102-160fafc42237 → release-20260905.0-160fafc42237
stamp=$(sed -E 's/^v0\.0\.0-([0-9]{8})[0-9]{6}-([0-9a-f]{12})$/release-\1.0-\2/' <<<"$pseudo")
# The build lays seccomp programs precompiled here over the module's (precompile-seccomp: the Go
# branch ships none, so each sandbox would compile its filter as it starts); the cache key says so.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/asb/gvisor/$pseudo-seccomp"
if [ ! -x "$cache/runsc" ]; then
  command -v go >/dev/null 2>&1 || { echo "Go is needed to build runsc $pseudo" >&2; exit 1; }
  echo "==> building runsc $stamp from the Go module proxy (cached in $cache)" >&2
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  export CGO_ENABLED=0
  # A vendored copy of the pinned module, its filters then precompiled in place (the module cache
  # is read-only, and `go build -overlay` refuses files beneath it).
  cp tools/gvisor/go.mod tools/gvisor/go.sum tools/gvisor/tools.go "$work/"
  (cd "$work" && GOFLAGS=-mod=mod go mod vendor)
  (cd tools/gvisor && GOFLAGS=-mod=mod go run ./precompile-seccomp "$work/vendor/gvisor.dev/gvisor")
  (cd "$work" && go build -mod=vendor -trimpath \
    -ldflags "-s -w -X gvisor.dev/gvisor/runsc/version.version=$stamp" -o "$cache/runsc.tmp" gvisor.dev/gvisor/runsc)
  mv "$cache/runsc.tmp" "$cache/runsc"
fi
mkdir -p dist
ln -sfn "$cache/runsc" dist/runsc
"$cache/runsc" --version | sed -n 1p
