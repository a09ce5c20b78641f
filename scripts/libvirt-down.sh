#!/usr/bin/env bash
# Stop the libvirtd and virtlogd that scripts/libvirt-up.sh started (by pidfile, after checking
# that each pid really is that daemon). Domains are not touched: libvirtd leaves running guests
# running when it stops. Idempotent.
set -euo pipefail

RUN_DIR="${LK_LIBVIRT_RUN:-/run/lk-test-libvirt}"

say() { echo "libvirt-down: $*" >&2; }

# stop NAME: SIGTERM the pid in RUN_DIR/NAME.pid if its command is NAME, wait up to 10 s.
stop() {
  local name="$1" pidfile="$RUN_DIR/$1.pid" pid
  if [ ! -s "$pidfile" ]; then
    say "$name: no pidfile $pidfile (not started by libvirt-up.sh)"
    return 0
  fi
  pid="$(tr -d '[:space:]' <"$pidfile")"
  if [ -z "$pid" ] || [ ! -r "/proc/$pid/comm" ] || [ "$(cat "/proc/$pid/comm")" != "$name" ]; then
    say "$name: pid ${pid:-?} from $pidfile is not $name any more: nothing to stop"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 100); do
    [ -d "/proc/$pid" ] || break
    sleep 0.1
  done
  if [ -d "/proc/$pid" ]; then
    say "$name (pid $pid) did not stop within 10 s"
    return 1
  fi
  rm -f "$pidfile"
  say "stopped $name (pid $pid)"
}

stop libvirtd
stop virtlogd
