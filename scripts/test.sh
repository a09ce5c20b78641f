#!/usr/bin/env bash
# Run lk's whole test suite: unit, plugin, lifecycle and end-to-end tests (real VMs
# under QEMU, and under a real libvirtd: local and a "remote" host over SSH), lint,
# type checks, per-distribution isolation, and the docs build.
#
# As root it starts the services the libvirt tests need (virtlogd + libvirtd, and an
# sshd on 127.0.0.1:2299 whose user's session daemon plays the remote host) and stops
# them afterwards; without root, or with LK_TEST_LIBVIRT=0, those tests skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

if [ "$(id -u)" = 0 ] && [ "${LK_TEST_LIBVIRT:-1}" != 0 ]; then
  trap 'bash scripts/remote-host.sh down || true; bash scripts/libvirt-down.sh || true' EXIT
  bash scripts/libvirt-up.sh
  bash scripts/remote-host.sh up
fi
python3 -m nox -s tests lint typecheck isolation docs -- "$@"
