#!/usr/bin/env bash
# Boot lk's demo VM end to end: install QEMU and the image-building tools with apt,
# install lk into ./.venv (never into the system Python: Debian refuses that with
# "externally-managed-environment"), build the tiny test image, then lk run -d, ps,
# logs, exec, stop and rm with ./.venv/bin/lk.
set -euo pipefail
cd "$(dirname "$0")/.."

# The system packages the demo needs (scripts/setup.sh also installs nox and the
# libvirt headers for the tests; the demo needs neither).
bash scripts/apt-ensure.sh qemu-system-x86 qemu-utils python3-venv openssh-client

python3 -m venv .venv
.venv/bin/pip install -q ./lk_core ./lk_qemu ./lk_hyperkit ./lk_templates
PATH="$PWD/.venv/bin:$PATH" bash scripts/demo-steps.sh
echo
echo "lk is installed in $PWD/.venv: run it as ./.venv/bin/lk (or: source .venv/bin/activate)"
