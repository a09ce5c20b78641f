#!/usr/bin/env bash
# Boot lk's demo VM end to end: install lk into .venv, build the tiny test image,
# then lk run -d, ps, logs, exec, stop and rm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m venv .venv
.venv/bin/pip install -q ./lk_core ./lk_qemu ./lk_hyperkit ./lk_templates
PATH="$PWD/.venv/bin:$PATH" bash scripts/demo-steps.sh
