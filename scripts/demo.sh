#!/usr/bin/env bash
# Boot lk's demo VM end to end: install QEMU and the image-building tools with apt,
# install lk into ./.venv (never into the system Python: Debian refuses that with
# "externally-managed-environment"), build the tiny test image, then lk run -d, ps,
# logs, exec, stop and rm with ./.venv/bin/lk.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# The system packages the demo needs (scripts/setup.sh also installs nox for the
# tests; the demo does not need it).
packages=(qemu-system-x86 qemu-utils python3-venv openssh-client)
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
  echo "demo: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/pip install -q ./lk_core ./lk_qemu ./lk_hyperkit ./lk_templates
PATH="$PWD/.venv/bin:$PATH" bash scripts/demo-steps.sh
echo
echo "lk is installed in $PWD/.venv: run it as ./.venv/bin/lk (or: source .venv/bin/activate)"
