#!/usr/bin/env bash
# Run lk's whole test suite: unit, plugin, lifecycle and end-to-end tests (real VMs
# under QEMU), lint, type checks, per-distribution isolation, and the docs build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m nox -s tests lint typecheck isolation docs -- "$@"
