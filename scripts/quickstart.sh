#!/usr/bin/env bash
# The main job, from a fresh machine: set up, then run the seeds' flows in gVisor sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec node --import tsx examples/quickstart.ts
