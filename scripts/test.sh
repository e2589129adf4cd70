#!/usr/bin/env bash
# The test command of the README and of CI: set up, type-check, then every suite (unit tests of
# each package, and end-to-end tests on real gVisor).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run --silent typecheck
# etcd, kube-apiserver, controller-manager, scheduler and KWOK for test/k8s, from the Go module
# proxy (~9 min on 2 cores the first time; cached in ~/.cache/asb-k8s afterwards).
node --import tsx test/k8s/build.ts
shopt -s globstar nullglob
# Node 20's test runner takes no globs: the shell expands them.
exec node --import tsx --test --test-concurrency=1 packages/*/test/**/*.test.ts test/e2e/**/*.test.ts test/k8s/**/*.test.ts
