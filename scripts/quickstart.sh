#!/usr/bin/env bash
# The main job, from a fresh machine: set up, then run the seeds' flows in gVisor sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The seeds' runtime images are built here (scripts/runtime-images.ts): Debian's root by
# debootstrap, served by Debian's docker-registry on loopback.
pkgs=()
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || pkgs+=(debootstrap)
command -v docker-registry >/dev/null 2>&1 || pkgs+=(docker-registry)
if [ ${#pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing ${pkgs[*]} from Debian's packages" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  else
    echo "Missing: ${pkgs[*]}. Install them with:  sudo apt-get install -y ${pkgs[*]}" >&2
    exit 1
  fi
fi
exec node --import tsx examples/quickstart.ts
