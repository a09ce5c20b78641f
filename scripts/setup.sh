#!/usr/bin/env bash
# Install what lk's demo and tests need on a Debian machine: QEMU, the tools that
# build the test image, Python's venv and pip, and nox. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=(qemu-system-x86 qemu-utils python3-venv python3-pip openssh-client
  libvirt-dev pkg-config gcc)
if [ -f tests/images/host-packages.txt ]; then
  while read -r pkg; do
    case "$pkg" in ''|'#'*) ;; *) packages+=("$pkg") ;; esac
  done < tests/images/host-packages.txt
fi

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -m nox --version >/dev/null 2>&1; then
  echo "setup: installing nox" >&2
  python3 -m pip install -q nox 2>/dev/null || python3 -m pip install -q --break-system-packages nox
fi
