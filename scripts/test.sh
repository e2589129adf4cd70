#!/usr/bin/env bash
# The test command of the README and of CI: set up, type-check, then every suite (unit tests of
# each package, and end-to-end tests on real gVisor).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check
# Upstream's Python client runs in virtualenvs (test/k8s/python.ts): venv needs ensurepip.
# The Gateway test puts the router pods' addresses on loopback with ip(8) (iproute2).
test_pkgs=()
python3 -c 'import ensurepip' 2>/dev/null || test_pkgs+=(python3-venv)
command -v ip >/dev/null 2>&1 || test_pkgs+=(iproute2)
# The networking suite installs a package with pip inside a sandbox (the host's Python).
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || test_pkgs+=(python3-pip)
command -v openssl >/dev/null 2>&1 || test_pkgs+=(openssl)
# Image pulls are tested against a real registry (Debian's docker-registry: the CNCF
# distribution), with images pushed by skopeo, some of their layers compressed by zstd.
command -v docker-registry >/dev/null 2>&1 || test_pkgs+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || test_pkgs+=(skopeo)
command -v zstd >/dev/null 2>&1 || test_pkgs+=(zstd)
# The engine runs test images made from this machine's files: a static busybox is their shell.
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || test_pkgs+=(busybox-static)
# ... and a real Debian bookworm (debootstrap from Debian's packages) and a musl program.
command -v debootstrap >/dev/null 2>&1 || test_pkgs+=(debootstrap)
command -v musl-gcc >/dev/null 2>&1 || test_pkgs+=(musl-tools)
# The real Kubernetes node's runc (test/k8s/node.ts) is built with seccomp: libseccomp's headers.
[ -e /usr/include/seccomp.h ] || test_pkgs+=(libseccomp-dev)
# Its kube-proxy (nftables mode) and the CNI portmap plugin drive nftables through nft.
command -v nft >/dev/null 2>&1 || test_pkgs+=(nftables)
if [ ${#test_pkgs[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ]; then
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${test_pkgs[@]}" >/dev/null
fi
# etcd, kube-apiserver, controller-manager, scheduler, KWOK, upstream's controller and Traefik for
# test/k8s, and the real node's kubelet, containerd, runc, gVisor shim, CNI plugins, kube-proxy
# and CoreDNS, from the Go module proxy (~25 min on 2 cores the first time; cached in
# ~/.cache/asb-k8s afterwards),
# and upstream's Python client from PyPI.
node --import tsx test/k8s/build.ts
shopt -s globstar nullglob
# The suites name the seeds' runtime images (and python:*, golang:*), which no registry here
# serves: the host table stands in for them, as ASB_HOST_IMAGES asks (README, "Images"). The tests
# of the default (images.test.ts) and of the images built from images/ (runtime-images.test.ts)
# set it off for their engines.
export ASB_HOST_IMAGES=1
# Node 20's test runner takes no globs: the shell expands them. test/docs checks the tree as a
# whole (every file a README names exists), so it belongs to no one package.
node --import tsx --test --test-concurrency=1 packages/*/test/**/*.test.ts test/docs/**/*.test.ts test/e2e/**/*.test.ts \
  test/k8s/**/*.test.ts
# The engine's suites again on the other gVisor: the default is the pinned current runsc
# (dist/runsc) when setup could build it, and Debian's 20221219 is supported as well.
if [ -e dist/runsc ] && command -v runsc >/dev/null 2>&1; then
  echo "==> the engine's gVisor suites again on Debian's runsc ($(runsc --version | sed -n 1p))" >&2
  ASB_RUNSC=runsc node --import tsx --test --test-concurrency=1 test/e2e/{runtime,exec-lane,lifecycle,snapshots,crash,reattach,isolation,mcp,agent-connection,images,images-distros}.test.ts
fi
