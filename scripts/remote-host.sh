#!/usr/bin/env bash
# A "remote" libvirt host on this machine, for lk-libvirt's tests: an sshd on 127.0.0.1:PORT
# with its own config, letting an unprivileged user (lkremote) log in with a key; over it,
# qemu+ssh://lkremote@127.0.0.1:PORT/session reaches that user's libvirt *session* daemon,
# which libvirt spawns on demand (no root daemon involved).
#
#   sudo bash scripts/remote-host.sh up     # prints the URIs (also in $RUN/uris)
#   sudo bash scripts/remote-host.sh down   # stops sshd and lkremote's session daemons
#   bash scripts/remote-host.sh uri         # prints the qemu+ssh URI (after up)
#
# Settings (environment): LK_REMOTE_RUN (default /run/lk-test-remote), LK_REMOTE_PORT (2299),
# LK_REMOTE_USER (lkremote). Needs the libvirt packages of scripts/libvirt-up.sh (it does not
# need the system libvirtd running) and installs openssh-server if missing.
set -euo pipefail

RUN_DIR="${LK_REMOTE_RUN:-/run/lk-test-remote}"
PORT="${LK_REMOTE_PORT:-2299}"
USER_NAME="${LK_REMOTE_USER:-lkremote}"
KEY="$RUN_DIR/client_ed25519"
KNOWN_HOSTS="$RUN_DIR/known_hosts"

say() { echo "remote-host: $*" >&2; }

uris() {
  echo "qemu+ssh://$USER_NAME@127.0.0.1:$PORT/session?keyfile=$KEY&no_verify=1"
  echo "qemu+libssh://$USER_NAME@127.0.0.1:$PORT/session?keyfile=$KEY&known_hosts=$KNOWN_HOSTS&known_hosts_verify=auto&sshauth=privkey"
}

# is_sshd PID: the pid is alive and is an sshd.
is_sshd() { [ -r "/proc/$1/comm" ] && [ "$(cat "/proc/$1/comm")" = sshd ]; }

up() {
  if [ "$(id -u)" != 0 ]; then say "must run as root"; exit 1; fi
  local pkgs=(openssh-server libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86)
  local missing=() pkg
  for pkg in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi

  if ! getent passwd "$USER_NAME" >/dev/null; then
    useradd --create-home --shell /bin/bash "$USER_NAME"
    say "created user $USER_NAME (home $(getent passwd "$USER_NAME" | cut -d: -f6))"
  fi
  # useradd leaves the password field "!" (locked), and sshd without PAM refuses locked
  # accounts even for key logins: "*" means "no password" without locking the account.
  if [ "$(getent shadow "$USER_NAME" | cut -d: -f2)" = "!" ]; then usermod -p '*' "$USER_NAME"; fi
  local home uid
  home="$(getent passwd "$USER_NAME" | cut -d: -f6)"
  uid="$(id -u "$USER_NAME")"
  # The session daemon's sockets go to $XDG_RUNTIME_DIR/libvirt (sshd's SetEnv below).
  local xdg="$RUN_DIR/xdg-$uid"

  mkdir -p /run/sshd "$RUN_DIR"
  chmod 755 "$RUN_DIR"
  install -d -m 700 -o "$USER_NAME" -g "$(id -gn "$USER_NAME")" "$xdg"
  [ -e "$RUN_DIR/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$RUN_DIR/ssh_host_ed25519_key"
  [ -e "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C "lk-libvirt-test" -f "$KEY"
  install -m 644 "$KEY.pub" "$RUN_DIR/authorized_keys"
  cat >"$RUN_DIR/sshd_config" <<EOF
# Written by lk scripts/remote-host.sh: a test sshd for lk-libvirt's remote tests.
ListenAddress 127.0.0.1
Port $PORT
HostKey $RUN_DIR/ssh_host_ed25519_key
PidFile $RUN_DIR/sshd.pid
AuthorizedKeysFile $RUN_DIR/authorized_keys
AllowUsers $USER_NAME
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
X11Forwarding no
AllowTcpForwarding local
SetEnv XDG_RUNTIME_DIR=$xdg
Subsystem sftp internal-sftp
EOF
  if [ -s "$RUN_DIR/sshd.pid" ] && is_sshd "$(cat "$RUN_DIR/sshd.pid")"; then
    say "sshd already running (pid $(cat "$RUN_DIR/sshd.pid"))"
  else
    /usr/sbin/sshd -t -f "$RUN_DIR/sshd_config"
    /usr/sbin/sshd -f "$RUN_DIR/sshd_config" -E "$RUN_DIR/sshd.log"
    for _ in $(seq 50); do [ -s "$RUN_DIR/sshd.pid" ] && break; sleep 0.1; done
    say "started sshd on 127.0.0.1:$PORT (pid $(cat "$RUN_DIR/sshd.pid"), config $RUN_DIR/sshd_config)"
  fi
  ssh-keyscan -p "$PORT" -t ed25519 127.0.0.1 2>/dev/null | sed "s/^127.0.0.1/[127.0.0.1]:$PORT/" >"$KNOWN_HOSTS"

  uris >"$RUN_DIR/uris"
  local uri
  uri="$(uris | head -1)"
  # The first call spawns lkremote's session libvirtd (it exits by itself after 120 s idle).
  if timeout 60 virsh -q -c "$uri" version >/dev/null 2>"$RUN_DIR/virsh.err"; then
    say "$uri answers"
  else
    say "virsh over ssh failed: $(tail -1 "$RUN_DIR/virsh.err")"
    exit 1
  fi
  uris
}

down() {
  if [ "$(id -u)" != 0 ]; then say "must run as root"; exit 1; fi
  local pid
  if [ -s "$RUN_DIR/sshd.pid" ]; then
    pid="$(tr -d '[:space:]' <"$RUN_DIR/sshd.pid")"
    if is_sshd "$pid"; then
      kill -TERM "$pid"
      say "stopped sshd (pid $pid)"
    fi
    rm -f "$RUN_DIR/sshd.pid"
  fi
  rm -f "$RUN_DIR/uris"  # the tests skip the remote host without it
  if getent passwd "$USER_NAME" >/dev/null; then
    # Everything the test user runs was started through this sshd: the session libvirtd,
    # its virtlogd, QEMU guests, leftover ssh sessions. Listed by user, ended by pid.
    local pids
    pids="$(pgrep -u "$USER_NAME" || true)"
    for pid in $pids; do
      say "stopping $(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid, user $USER_NAME)"
      kill -TERM "$pid" 2>/dev/null || true
    done
    for _ in $(seq 50); do pgrep -u "$USER_NAME" >/dev/null || break; sleep 0.1; done
    for pid in $(pgrep -u "$USER_NAME" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  uri) uris | head -1 ;;
  uris) uris ;;
  *) echo "usage: $0 up|down|uri|uris" >&2; exit 2 ;;
esac
