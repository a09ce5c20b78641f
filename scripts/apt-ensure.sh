#!/usr/bin/env bash
# Install the Debian packages given as arguments, plus the test image's build tools
# (tests/images/host-packages.txt), when any is missing. Used by setup.sh and demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

packages=("$@")
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
  echo "apt-ensure: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
