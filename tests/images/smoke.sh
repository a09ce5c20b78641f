#!/bin/bash
# shellcheck disable=SC2054  # QEMU options contain commas, not array separators
# Boots the lk test image in every format under QEMU/TCG and checks it.
#
#   bash tests/images/smoke.sh OUTDIR      (OUTDIR: what build.sh printed)
#
# For each of iso, raw, qcow2, vmdk and kernel+initrd: boot, wait for
# "lk-test: ready" on the serial log (60 s), send system_powerdown over QMP,
# wait for "lk-test: shutting down" and for QEMU to exit with status 0.
# Then, once each:
#   - boot ISO on ide.0 + metadata CD (ssh key, 9p volume) on ide.1: ssh
#     works, `ssh -t` gets a /dev/pts tty, the 9p share is mounted and
#     readable, SFTP and scp work, `poweroff` over ssh shuts down cleanly;
#   - kernel+initrd with an e1000 NIC and the metadata CD: ssh works.
# Prints the boot-to-ready time of each run. VMs run one at a time (TCG on
# 2 cores: parallel VMs would distort the timings).
#
# Host tools: qemu-system-x86, openssh-client, xorriso, python3 (for QMP).
set -euo pipefail
export LC_ALL=C

dir=${1:?usage: smoke.sh OUTDIR}
dir=$(cd "$dir" && pwd)
work=$(mktemp -d /tmp/lk-smoke.XXXXXX)
port=${LK_SMOKE_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
qemu_pid=
cleanup() {
    if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

failures=0
passed=0
results=()
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# qemu_argv FORMAT NIC: sets the array argv to a QEMU command line booting
# FORMAT (iso raw qcow2 vmdk kernel) with a NIC of model NIC, user-mode net
# and ssh forwarded from 127.0.0.1:$port (the argv the project's host side uses).
qemu_argv() {
    argv=(-machine q35 -accel tcg -cpu max -m 512 -smp 1 -display none
          -serial "file:$work/serial.log" -qmp "unix:$work/qmp.sock,server=on,wait=off"
          -pidfile "$work/qemu.pid" -device virtio-rng-pci
          -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device "$2,netdev=n0")
    case "$1" in
        iso)    argv+=(-drive "file=$dir/lk-test.iso,media=cdrom,if=none,id=cd0,readonly=on"
                       -device ide-cd,drive=cd0,bus=ide.0,bootindex=0) ;;
        raw)    argv+=(-drive "file=$dir/lk-test-bios.img,format=raw,if=virtio,snapshot=on") ;;
        qcow2)  argv+=(-drive "file=$dir/lk-test.qcow2,format=qcow2,if=virtio,snapshot=on") ;;
        vmdk)   argv+=(-drive "file=$dir/lk-test.vmdk,format=vmdk,if=virtio,snapshot=on") ;;
        kernel) argv+=(-kernel "$dir/lk-test-kernel" -initrd "$dir/lk-test-initrd.img"
                       -append "$(cat "$dir/lk-test-cmdline")") ;;
    esac
}
# the metadata CD, on the second AHCI port of q35
meta_argv=(-drive "file=$work/meta.iso,media=cdrom,readonly=on,if=none,id=meta"
           -device ide-cd,drive=meta,bus=ide.1)

# start NAME ARGV... : starts QEMU in the background (its exit status goes
# to $work/qemu.rc), then waits for the ready line.
start() {
    local name=$1; shift
    rm -f "$work/serial.log" "$work/qmp.sock" "$work/qemu.rc" "$work/qemu.pid"
    t_start=$(now)
    ( set +e; qemu-system-x86_64 "$@" > "$work/qemu.out" 2>&1; echo $? > "$work/qemu.rc" ) &
    qemu_pid=$!
    local i
    for ((i = 0; i < 600; i++)); do
        grep -qxE $'lk-test: ready\r?' "$work/serial.log" 2>/dev/null && break
        [ -f "$work/qemu.rc" ] && break
        sleep 0.1
    done
    if grep -qxE $'lk-test: ready\r?' "$work/serial.log" 2>/dev/null; then
        local t cpu
        t=$(elapsed "$t_start")
        # QEMU's CPU time: a measure of the boot that the host's load distorts less
        cpu=$(awk '{ printf "%.1f", ($14 + $15) / 100 }' "/proc/$(cat "$work/qemu.pid")/stat" 2>/dev/null || echo '?')
        echo "$name: ready after ${t}s (QEMU CPU time ${cpu}s)" >&2
        passed=$((passed + 1))
        results+=("$name: boot to ready ${t}s, QEMU CPU time ${cpu}s")
        return 0
    fi
    fail "$name: no ready line within 60 s"
    echo "--- serial log:" >&2; cat "$work/serial.log" >&2 || true
    echo "--- qemu:" >&2; cat "$work/qemu.out" >&2 || true
    stop_hard
    return 1
}

qmp() {  # qmp COMMAND: one QMP command over the unix socket
    python3 - "$work/qmp.sock" "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())                      # greeting
for cmd in ("qmp_capabilities", sys.argv[2]):
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:                               # skip events until the reply
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            break
    if "error" in msg:
        sys.exit("QMP %s: %s" % (cmd, msg["error"]))
EOF
}

# wait_exit NAME: waits for the shutdown line and QEMU's exit status 0
wait_exit() {
    local name=$1 i t0; t0=$(now)
    for ((i = 0; i < 300; i++)); do
        [ -f "$work/qemu.rc" ] && break
        sleep 0.1
    done
    if ! grep -qxE $'lk-test: shutting down\r?' "$work/serial.log"; then
        fail "$name: no 'lk-test: shutting down' line"
        cat "$work/serial.log" >&2
    fi
    if [ ! -f "$work/qemu.rc" ]; then
        fail "$name: QEMU still running 30 s after the shutdown request"
        stop_hard
    elif [ "$(cat "$work/qemu.rc")" != 0 ]; then
        fail "$name: QEMU exited with status $(cat "$work/qemu.rc")"
        cat "$work/qemu.out" >&2
    else
        echo "$name: powered off after $(elapsed "$t0")s" >&2
        passed=$((passed + 1))
    fi
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
}
powerdown() {  # the ACPI power button
    qmp system_powerdown || fail "$1: QMP system_powerdown failed"
    wait_exit "$1"
}
stop_hard() {
    if [ -n "$qemu_pid" ]; then kill "$(cat "$work/qemu.pid" 2>/dev/null)" 2>/dev/null || true; fi
    wait "$qemu_pid" 2>/dev/null || true
    qemu_pid=
}

ssh_opts=(-i "$work/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
          -o LogLevel=ERROR -o ConnectTimeout=20 -o BatchMode=yes)
ssh_() { ssh -p "$port" "${ssh_opts[@]}" root@127.0.0.1 "$@"; }
sftp_put() {  # sftp_put LOCAL REMOTE
    echo "put $1 $2" | sftp -P "$port" "${ssh_opts[@]}" -b - root@127.0.0.1 >/dev/null
}
scp_get() {   # scp_get REMOTE LOCAL, with the legacy scp protocol (runs scp in the guest)
    scp -O -q -P "$port" "${ssh_opts[@]}" "root@127.0.0.1:$1" "$2"
}
check() {  # check NAME EXPECTED COMMAND...: COMMAND's output must contain EXPECTED
    local name=$1 expected=$2 out; shift 2
    out=$("$@" 2>&1) || true   # only the output counts (e.g. `tty` fails without a pty)
    if grep -qF -- "$expected" <<< "$out"; then
        echo "  ok: $name" >&2
        passed=$((passed + 1))
    else
        fail "$name: expected '$expected', got: $out"
    fi
}

# --- the metadata CD: a throwaway ssh key and a 9p volume ---------------------
ssh-keygen -q -t ed25519 -N '' -C lk-smoke -f "$work/key"
mkdir -p "$work/meta" "$work/share"
echo "hello from the host" > "$work/share/hello.txt"
python3 - "$work/key.pub" > "$work/meta/config" <<'EOF'
import json, sys
key = open(sys.argv[1]).read()
print(json.dumps({
    "ssh": {"entries": {"authorized_keys": {"perm": "0600", "content": key}}},
    "lk": {"entries": {"volumes": {"perm": "0644", "content": "lkvol0 /data ro\n"}}},
}))
EOF
xorriso -as mkisofs -quiet -V config-2 -o "$work/meta.iso" "$work/meta" 2>/dev/null

# --- every format: boot, ready, ACPI power-down -------------------------------
for fmt in iso raw qcow2 vmdk kernel; do
    qemu_argv "$fmt" virtio-net-pci
    start "$fmt" "${argv[@]}" && powerdown "$fmt"
done

# --- boot ISO on ide.0 + metadata CD on ide.1: ssh, pty, 9p, sftp, scp ---------
qemu_argv iso virtio-net-pci
if start "iso+metadata" "${argv[@]}" "${meta_argv[@]}" \
        -fsdev "local,id=fs0,path=$work/share,security_model=none,readonly=on" \
        -device virtio-9p-pci,fsdev=fs0,mount_tag=lkvol0; then
    check "mounted line" "lk-test: mounted lkvol0 at /data" cat "$work/serial.log"
    check "ssh" "ok" ssh_ 'echo ok; tty'
    check "ssh without pty" "not a tty" ssh_ tty
    check "ssh -t gets a pty" "/dev/pts/" ssh_ -tt tty
    check "9p volume" "hello from the host" ssh_ cat /data/hello.txt
    check "9p is read-only" "Read-only" ssh_ 'touch /data/x'
    echo "sftp upload" > "$work/up.txt"
    # shellcheck disable=SC2016  # eval'ed later, by check
    check "sftp" "sftp upload" eval 'sftp_put "$work/up.txt" /tmp/up.txt && ssh_ cat /tmp/up.txt'
    # shellcheck disable=SC2016
    check "scp" "sftp upload" eval 'scp_get /tmp/up.txt "$work/down.txt" && cat "$work/down.txt"'
    ssh_ poweroff || true
    wait_exit "poweroff over ssh"
fi

# --- kernel+initrd with an e1000 NIC -------------------------------------------
qemu_argv kernel e1000
if start "kernel+e1000" "${argv[@]}" "${meta_argv[@]}"; then
    check "ssh over e1000" "ok" ssh_ 'echo ok'
    powerdown "kernel+e1000"
fi

echo >&2
printf '%s\n' "${results[@]}" >&2
echo "smoke: $passed passed, $failures failed" >&2
[ $failures -eq 0 ]
