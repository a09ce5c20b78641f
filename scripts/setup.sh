#!/usr/bin/env bash
# Install what lk's tests need on a Debian machine: QEMU, the tools that build the
# test image, Python's venv and pip, the libvirt headers the bindings build against,
# and nox. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-ensure.sh qemu-system-x86 qemu-utils python3-venv python3-pip openssh-client \
  libvirt-dev pkg-config gcc

if ! python3 -m nox --version >/dev/null 2>&1; then
  echo "setup: installing nox" >&2
  python3 -m pip install -q nox 2>/dev/null || python3 -m pip install -q --break-system-packages nox
fi
