#!/usr/bin/env bash
# Start a system libvirtd (and its virtlogd) by hand, without systemd, for lk-libvirt's
# tests and for trying lk-libvirt locally. Idempotent: what already runs is left alone.
#
#   sudo bash scripts/libvirt-up.sh      # then: virsh -c qemu:///system list
#   sudo bash scripts/libvirt-down.sh    # stops exactly the daemons this script started
#
# Installs (apt, --no-install-recommends) the packages that suffice on Debian 12:
# libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config gcc
# qemu-system-x86 (libvirt-daemon-system is NOT needed: it pulls in systemd).
# Pidfiles live under $LK_LIBVIRT_RUN (default /run/lk-test-libvirt).
set -euo pipefail

RUN_DIR="${LK_LIBVIRT_RUN:-/run/lk-test-libvirt}"
QEMU_CONF=/etc/libvirt/qemu.conf
SOCKET=/run/libvirt/libvirt-sock
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config gcc
  qemu-system-x86)

say() { echo "libvirt-up: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts system daemons)"
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# libvirtd checks that the compiled-in user/group libvirt-qemu exist before reading qemu.conf.
if ! getent group libvirt-qemu >/dev/null; then
  groupadd --system libvirt-qemu
  say "created group libvirt-qemu"
fi
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
    --gid libvirt-qemu libvirt-qemu
  say "created user libvirt-qemu"
fi
mkdir -p /var/log/libvirt /var/log/libvirt/qemu "$RUN_DIR"

# Guests run as root here (the test image and metadata CDs live in root's folders).
# Only settings that are absent are added; an existing setting is never changed.
mkdir -p "$(dirname "$QEMU_CONF")"
touch "$QEMU_CONF"
for key in user group; do
  if ! grep -Eq "^[[:space:]]*${key}[[:space:]]*=" "$QEMU_CONF"; then
    [ -e "$QEMU_CONF.lk-orig" ] || cp -p "$QEMU_CONF" "$QEMU_CONF.lk-orig"
    printf '%s = "root"   # added by lk scripts/libvirt-up.sh\n' "$key" >>"$QEMU_CONF"
    say "set $key = \"root\" in $QEMU_CONF (backup: $QEMU_CONF.lk-orig)"
  fi
done

# alive PIDFILE NAME: true when the pidfile names a live process whose command is NAME.
alive() {
  local pid
  [ -s "$1" ] || return 1
  pid="$(tr -d '[:space:]' <"$1")"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

started=()
if alive "$RUN_DIR/virtlogd.pid" virtlogd; then
  say "virtlogd already running (pid $(cat "$RUN_DIR/virtlogd.pid"))"
elif pgrep -x virtlogd >/dev/null; then
  say "a virtlogd not started by this script runs already: using it"
else
  virtlogd -d -p "$RUN_DIR/virtlogd.pid"
  started+=("virtlogd")
fi

if alive "$RUN_DIR/libvirtd.pid" libvirtd; then
  say "libvirtd already running (pid $(cat "$RUN_DIR/libvirtd.pid"))"
elif pgrep -u 0 -x libvirtd >/dev/null && [ -S "$SOCKET" ]; then
  say "a libvirtd not started by this script runs already: using it"
else
  libvirtd -d -p "$RUN_DIR/libvirtd.pid"
  started+=("libvirtd")
fi

# The first connection probes QEMU's capabilities (~8 s); later ones take milliseconds.
deadline=$((SECONDS + 60))
until virsh -q -c qemu:///system version >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "libvirtd did not answer on qemu:///system within 60 s (see /var/log/libvirt)"
    exit 1
  fi
  sleep 0.5
done

for name in "${started[@]}"; do
  say "started $name (pid $(cat "$RUN_DIR/$name.pid"), pidfile $RUN_DIR/$name.pid)"
done
say "qemu:///system answers ($(virsh -c qemu:///system version 2>/dev/null | sed -n 's/^Running hypervisor: //p'))"
