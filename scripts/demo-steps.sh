#!/usr/bin/env bash
# The demo itself, with lk already on PATH (used by scripts/demo.sh and nox -s demo).
set -euo pipefail
cd "$(dirname "$0")/.."
image_dir=$(bash tests/images/build.sh | tail -n 1)
export LK_HOME="${LK_HOME:-$(mktemp -d /tmp/lk-demo.XXXXXX)}"
trap 'lk rm -f demo >/dev/null 2>&1 || true' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step lk run -d --name demo "$image_dir/lk-test.iso"
step lk wait demo
step lk ps
step lk exec demo -- uname -sr
step lk logs -n 5 demo
step lk stop demo
step lk ps -a
step lk rm demo
