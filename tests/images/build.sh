#!/bin/bash
# Builds the lk test VM image from Debian packages only.
#
#   bash tests/images/build.sh [OUTDIR]
#
# The guest is a tiny LinuxKit-like system that lives entirely in its
# initramfs: Debian's generic kernel, busybox, dropbear (+ sftp-server, scp),
# a metadata-CD reader and a handful of kernel modules; see rootfs/ and
# README.md. The packages are fetched with `apt-get download` and unpacked
# with `dpkg-deb -x` into a temporary directory: nothing is installed on the
# host. Output files (names are fixed, the rest of the project uses them):
#
#   lk-test-kernel  lk-test-initrd.img  lk-test-cmdline   LinuxKit kernel+initrd
#   lk-test.iso       BIOS-bootable ISO 9660 (isolinux, also isohybrid)
#   lk-test-bios.img  raw disk: MBR + FAT partition booted by syslinux
#   lk-test.qcow2  lk-test.vmdk                             the raw disk, converted
#   lk-test-build-info.txt                                  inputs, versions, sizes
#
# Without OUTDIR the image goes to ${LK_TEST_IMAGE_CACHE:-~/.cache/lk/test-image}/HASH,
# HASH being a hash of this script, rootfs/ and the exact .deb versions; when
# that directory exists nothing is rebuilt. The build happens in a temporary
# directory that is renamed into place at the end, so an interrupted build
# never leaves a half-built image behind.
#
# The last line of stdout is the absolute output directory; progress goes to
# stderr. Host tools needed: see host-packages.txt (run `apt-get update` first).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${LK_TEST_IMAGE_CACHE:-$HOME/.cache/lk/test-image}
t0=$(date +%s.%N)

log() { echo "[lk-test-image $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%5.1fs", b - a }')] $*" >&2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }

# Kernel modules the guest loads at boot (dependencies are added
# automatically, see module_closure). button+evdev: ACPI power button for
# acpid; virtio_rng: entropy; NICs; disks; ahci/ata_piix + sr_mod + isofs:
# the metadata CD on q35 (AHCI) or pc (PIIX IDE) machines; 9p: volumes.
MODULES="button evdev virtio_pci virtio_rng virtio_net e1000 virtio_blk virtio_scsi
         ahci ata_piix sr_mod isofs 9pnet_virtio 9p"

# Kernel command line, shared by the boot loaders and lk-test-cmdline.
#   console=ttyS0    the serial console is the guest's log
#   quiet            measured: ~0.3 s faster to ready under TCG (fewer
#                    kernel messages through the emulated UART)
#   no_timer_check   skip the IO-APIC timer check, which can misfire on a
#                    loaded host under TCG (usual for VM images)
#   tsc=reliable     no clocksource watchdog: under TCG on a busy host it may
#                    mark the TSC unstable and fall back to the slow HPET
# Measured without effect (so left out): 8250.nr_uarts=1, mitigations=off,
# noapic, -cpu qemu64 instead of max. No panic=: a panicking guest stays up
# so that its log shows the panic.
CMDLINE="console=ttyS0 quiet no_timer_check tsc=reliable"

# Debian packages the image is made of (the kernel package is resolved from
# the linux-image-amd64 metapackage: the generic kernel, not -cloud, which
# lacks 9p and e1000).
PACKAGES="busybox-static dropbear-bin libc6 libcrypt1 zlib1g libtomcrypt1 libtommath1
          libgmp10 openssh-sftp-server openssh-client isolinux syslinux-common syslinux"

# ---------------------------------------------------------------------------
# 1. Resolve the exact package versions (apt-get download --print-uris).
#    apt is slow to start (~0.5 s per call here), so the answer is memoized
#    for as long as apt's package lists and sources are unchanged.
# ---------------------------------------------------------------------------
resolve_packages() {
    local kpkg
    kpkg=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
           sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -1)
    [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 (run apt-get update first)"
    # one line per .deb: 'URI' FILENAME SIZE SHA256:HASH
    # shellcheck disable=SC2086
    apt-get download --print-uris "$kpkg" $PACKAGES | sort -k2 ||
        die "apt-get download --print-uris failed (run apt-get update first)"
}

mkdir -p "$cache/resolved"
apt_state=$( { echo "$PACKAGES"; dpkg --print-architecture
               ls -l --time-style=+%s /var/lib/apt/lists/ /etc/apt/sources.list \
                  /etc/apt/sources.list.d/ /etc/apt/preferences* /etc/apt/apt.conf.d/ 2>/dev/null || true
             } | sha256sum | cut -c1-16)
resolved=$cache/resolved/$apt_state
if [ ! -s "$resolved" ]; then
    resolve_packages > "$resolved.tmp.$$"
    mv -f "$resolved.tmp.$$" "$resolved"
fi
debs=$(cat "$resolved")
# shellcheck disable=SC2086
[ "$(echo "$debs" | wc -l)" = $(( $(echo $PACKAGES | wc -w) + 1 )) ] ||
    { rm -f "$resolved"; die "could not resolve all packages"; }

# ---------------------------------------------------------------------------
# 2. The input hash: this script, rootfs/ (contents and x bits) and the debs.
# ---------------------------------------------------------------------------
input_hash=$( {
    cat "$here/build.sh"
    (cd "$here" && find rootfs -type f -o -type l | sort | while read -r f; do
        if [ -L "$f" ]; then echo "L $f $(readlink "$f")"
        else echo "F $f $( [ -x "$f" ] && echo x) $(sha256sum < "$f")"; fi
    done)
    echo "$debs" | awk '{ print $2, $4 }'
} | sha256sum | cut -c1-16)

if [ $# -ge 1 ]; then
    mkdir -p "$(dirname "$1")"
    out=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
    # OUTDIR gets replaced as a whole: never throw away a directory we did not make
    if [ -d "$out" ] && [ ! -f "$out/lk-test-build-info.txt" ] && [ -n "$(ls -A "$out")" ]; then
        die "$out exists and is not a lk test image directory"
    fi
else
    out=$cache/$input_hash
fi

is_built() { [ -f "$1/lk-test-build-info.txt" ] && grep -qx "input_hash: $input_hash" "$1/lk-test-build-info.txt"; }
if is_built "$out"; then
    touch "$out"   # most recently used: spared by the cache cleanup below
    log "up to date: $out"
    echo "$out"
    exit 0
fi

# One build at a time (per cache); a concurrent build of the same inputs
# waits and then finds the result.
exec 9> "$cache/build.lock"
flock 9
if is_built "$out"; then echo "$out"; exit 0; fi

# Under the lock, build directories left in the cache by a killed build are stale.
rm -rf "$cache"/.build-*
work=$(mktemp -d "$(dirname "$out")/.build-$(basename "$out").XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
log "building $out (inputs $input_hash)"

# ---------------------------------------------------------------------------
# 3. Download (into a shared cache of .deb files) and unpack.
# ---------------------------------------------------------------------------
debcache=$cache/debs
mkdir -p "$debcache"
missing=()
while read -r _uri file _size sum; do
    if [ -f "$debcache/$file" ] &&
       [ "$(sha256sum < "$debcache/$file" | cut -d' ' -f1)" = "${sum#SHA256:}" ]; then
        continue
    fi
    # FILE is PACKAGE_VERSION_ARCH.deb with ':' as %3a
    pv=${file%_*.deb}
    ver=${pv#*_}
    missing+=("${pv%%_*}=${ver//%3a/:}")
done <<< "$debs"
if [ ${#missing[@]} -gt 0 ]; then
    log "downloading ${missing[*]}"
    mkdir -p "$work/dl"
    # _apt cannot write into $work: download as root, unsandboxed
    (cd "$work/dl" && apt-get -q -o APT::Sandbox::User=root download "${missing[@]}" >&2)
    mv -f "$work/dl"/*.deb "$debcache/"
fi

x=$work/x           # all packages unpacked here
mkdir -p "$x"
log "unpacking"
while read -r _uri file _rest; do
    dpkg-deb -x "$debcache/$file" "$x"
done <<< "$debs"
kver=$(ls "$x/lib/modules")
[ "$(echo "$kver" | wc -l)" = 1 ] || die "expected one kernel, got: $kver"
bb=$x/bin/busybox   # a static x86_64 binary: also runs on the host

# ---------------------------------------------------------------------------
# 4. The root file system (initramfs).
# ---------------------------------------------------------------------------
r=$work/rootfs
mkdir -p "$r"
log "assembling rootfs"
(cd "$r" && mkdir -p bin sbin usr/bin usr/sbin usr/lib/openssh usr/libexec lib/modules \
    lib/x86_64-linux-gnu lib64 etc/dropbear dev proc sys run tmp mnt var/log root)
ln -s /run "$r/var/run"
chmod 0700 "$r/root"
chmod 1777 "$r/tmp"

# busybox + one symlink per applet; /init is busybox init (see etc/inittab)
cp "$bb" "$r/bin/busybox"
"$bb" --list-full | while read -r applet; do
    case "$applet" in linuxrc|bin/busybox) continue ;; esac
    [ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
done
ln -s /bin/busybox "$r/init"
# The kernel opens /dev/console for init before devtmpfs is mounted. (Its
# built-in initramfs has one too, so this is not fatal when not root.)
mknod -m 0600 "$r/dev/console" c 5 1 || log "warning: cannot mknod /dev/console (not root?)"

# dropbear, sftp-server (where dropbear looks for it: /usr/lib/sftp-server),
# scp, and the shared libraries they need
install -m 0755 "$x/usr/sbin/dropbear" "$r/usr/sbin/dropbear"
install -m 0755 "$x/usr/lib/openssh/sftp-server" "$r/usr/lib/openssh/sftp-server"
install -m 0755 "$x/usr/bin/scp" "$r/usr/bin/scp"
ln -s openssh/sftp-server "$r/usr/lib/sftp-server"
ln -s ../lib/openssh/sftp-server "$r/usr/libexec/sftp-server"
grep -qa /usr/lib/sftp-server "$x/usr/sbin/dropbear" ||
    die "dropbear does not look for /usr/lib/sftp-server any more"

# The guest's own dynamic loader lists what each binary needs (an ldd that
# resolves against the unpacked packages, not the host).
ldso=$x/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
libpath=$x/lib/x86_64-linux-gnu:$x/usr/lib/x86_64-linux-gnu
cp "$ldso" "$r/lib/x86_64-linux-gnu/"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$r/lib64/ld-linux-x86-64.so.2"
for bin in usr/sbin/dropbear usr/lib/openssh/sftp-server usr/bin/scp; do
    "$ldso" --library-path "$libpath" --list "$r/$bin" | awk '$2 == "=>" && $1 !~ /^\// { print $1, $3 }' |
    while read -r soname path; do
        case "$path" in "$x"/*) ;; *) die "$bin: $soname not found in the packages ($path)" ;; esac
        dest=$r/$(dirname "${path#"$x"/}")
        mkdir -p "$dest"
        [ -e "$dest/$soname" ] || cp -L "$path" "$dest/$soname"
    done
done

# the files of the image itself (scripts, /etc)
cp -a "$here/rootfs/." "$r/"
chmod 0600 "$r/etc/shadow"
chmod 0755 "$r/etc/init.d/rcS" "$r/etc/init.d/rc.shutdown" "$r/etc/acpi/PWRF/00000080" \
           "$r/usr/share/udhcpc/default.script" "$r/usr/bin/lk-userdata"

# Kernel modules: MODULES plus their dependencies (from the depends= field
# that modpost puts into each .ko), flattened to /lib/modules/NAME.ko, and
# /lib/modules/load-order listing them dependencies first.
kmods=$x/lib/modules/$kver
declare -A modpath=()
while read -r f; do
    n=${f##*/}; n=${n%.ko}; modpath[${n//-/_}]=$f
done < <(find "$kmods/kernel" -name '*.ko')
declare -A seen=()
load_order=()
module_closure() {
    local m=$1 dep
    [ -n "${seen[$m]:-}" ] && return
    seen[$m]=1
    if [ -z "${modpath[$m]:-}" ]; then
        tr - _ < "$kmods/modules.builtin" | grep -q "/$m.ko\$" && return   # built in
        die "kernel module $m not found"
    fi
    for dep in $(tr '\0' '\n' < "${modpath[$m]}" | sed -n 's/^depends=//p' | tr , ' '); do
        module_closure "${dep//-/_}"
    done
    load_order+=("$m")
}
for m in $MODULES; do module_closure "$m"; done
for m in "${load_order[@]}"; do
    cp "${modpath[$m]}" "$r/lib/modules/$m.ko"
done
printf '%s\n' "${load_order[@]}" > "$r/lib/modules/load-order"
log "modules: ${load_order[*]}"

# ---------------------------------------------------------------------------
# 5. kernel, initramfs, cmdline (LinuxKit's kernel+initrd layout)
# ---------------------------------------------------------------------------
o=$work/out
mkdir -p "$o"
cp "$x/boot/vmlinuz-$kver" "$o/lk-test-kernel"
echo "$CMDLINE" > "$o/lk-test-cmdline"
log "packing initramfs"
# zstd -19: 3.1 MB where gzip -9 gives 4.1 MB, and as fast to unpack under TCG
# (xz: 2.9 MB but ~0.7 s slower to boot). busybox cpio: no host cpio needed.
(cd "$r" && find . | sort | "$bb" cpio -o -H newc -R 0:0 --renumber-inodes 2>/dev/null) |
    zstd -q -19 -T0 > "$o/lk-test-initrd.img"

# ---------------------------------------------------------------------------
# 6. ISO 9660 with isolinux (El Torito, plus an isohybrid MBR so that the
#    same file also boots as a disk)
# ---------------------------------------------------------------------------
log "making lk-test.iso"
iso=$work/iso
mkdir -p "$iso/isolinux" "$iso/boot"
cp "$x/usr/lib/ISOLINUX/isolinux.bin" "$x/usr/lib/syslinux/modules/bios/ldlinux.c32" "$iso/isolinux/"
syslinux_cfg() {
    cat <<EOF
SERIAL 0 115200
DEFAULT lk
PROMPT 0
TIMEOUT 0
LABEL lk
  KERNEL $1/kernel
  INITRD $1/initrd.img
  APPEND $CMDLINE
EOF
}
syslinux_cfg /boot > "$iso/isolinux/isolinux.cfg"
cp "$o/lk-test-kernel" "$iso/boot/kernel"
cp "$o/lk-test-initrd.img" "$iso/boot/initrd.img"
xorriso -as mkisofs -quiet -o "$o/lk-test.iso" -V LK_TEST -r -J \
    -b isolinux/isolinux.bin -c isolinux/boot.cat \
    -no-emul-boot -boot-load-size 4 -boot-info-table \
    -isohybrid-mbr "$x/usr/lib/ISOLINUX/isohdpfx.bin" \
    "$iso" 2> "$work/xorriso.log" || { cat "$work/xorriso.log" >&2; die "xorriso failed"; }

# ---------------------------------------------------------------------------
# 7. Raw disk: MBR (syslinux's mbr.bin) + one bootable FAT partition at 1 MiB
#    holding syslinux, kernel and initramfs. mtools and syslinux's mtools
#    installer work on the image file directly: no loop device, no mount.
# ---------------------------------------------------------------------------
log "making lk-test-bios.img"
img=$o/lk-test-bios.img
payload=$(du -k -c "$o/lk-test-kernel" "$o/lk-test-initrd.img" | tail -1 | cut -f1)
part_mib=$(( (payload * 12 / 10 + 1023) / 1024 + 2 ))   # 20% + 2 MiB slack
[ $part_mib -ge 16 ] || part_mib=16                      # room for FAT16
part_start=2048                                          # sectors (1 MiB)
part_sectors=$(( part_mib * 2048 ))
truncate -s $(( (part_start + part_sectors) * 512 )) "$img"

le32() {  # a 32 bit little-endian integer as printf escapes
    local v=$1 i
    for i in 0 8 16 24; do printf '\\%03o' $(( (v >> i) & 255 )); done
}
# partition entry 1: active, CHS fields "use LBA", type 0x0e (FAT16 LBA)
entry="\\200\\376\\377\\377\\016\\376\\377\\377$(le32 $part_start)$(le32 $part_sectors)"
{ dd if="$x/usr/lib/syslinux/mbr/mbr.bin" bs=440 count=1 status=none
  printf '\0\0\0\0\0\0'            # disk signature + reserved (bytes 440..445)
  printf '%b' "$entry"             # bytes 446..461
  head -c 48 /dev/zero             # partition entries 2..4
  printf '\125\252'                # boot signature 0x55AA
} | dd of="$img" conv=notrunc status=none
[ "$(stat -c %s "$img")" = $(( (part_start + part_sectors) * 512 )) ] || die "bad MBR"

export MTOOLS_SKIP_CHECK=1
fat="$img@@$(( part_start * 512 ))"
mformat -i "$fat" -T $part_sectors -h 64 -s 32 -H $part_start -v LK_TEST ::
syslinux_cfg "" > "$work/syslinux.cfg"
mcopy -i "$fat" "$work/syslinux.cfg" ::/syslinux.cfg
mcopy -i "$fat" "$o/lk-test-kernel" ::/kernel
mcopy -i "$fat" "$o/lk-test-initrd.img" ::/initrd.img
# syslinux's own installer from the package (it matches its ldlinux.c32)
"$x/usr/bin/syslinux" --install --offset $(( part_start * 512 )) "$img"
mdir -a -i "$fat" ::/ldlinux.sys >/dev/null || die "syslinux did not install"

log "converting to qcow2 and vmdk"
qemu-img convert -f raw -O qcow2 -c "$img" "$o/lk-test.qcow2"
qemu-img convert -f raw -O vmdk "$img" "$o/lk-test.vmdk"

# ---------------------------------------------------------------------------
# 8. Build info, then move into place atomically.
# ---------------------------------------------------------------------------
{
    echo "input_hash: $input_hash"
    echo "kernel: $kver"
    echo "cmdline: $CMDLINE"
    echo "modules: ${load_order[*]}"
    echo "debs:"
    echo "$debs" | awk '{ print "  " $2, $4 }'
    echo "files:"
    # shellcheck disable=SC2012  # our own file names
    (cd "$o" && ls -l --time-style=+ | awk 'NR > 1 { print "  " $NF, $5 }')
} > "$o/lk-test-build-info.txt"

chmod 0755 "$o"
if [ -e "$out" ]; then
    mv "$out" "$work/old"   # replaced: an older image in OUTDIR, or an empty OUTDIR
fi
mv -T "$o" "$out"
log "done: $(du -sh "$out" | cut -f1) in $out"

# Keep the cache small: the 3 newest images and only the debs in use.
if [ $# -eq 0 ]; then
    # shellcheck disable=SC2010  # names made by this script
    (cd "$cache" && ls -1td -- */ 2>/dev/null | grep -E '^[0-9a-f]{16}/$' | tail -n +4 |
        while read -r d; do rm -rf -- "${d%/}"; done) || true
    for f in "$debcache"/*.deb; do
        echo "$debs" | awk '{ print $2 }' | grep -qxF "${f##*/}" || rm -f "$f"
    done
    find "$cache/resolved" -type f -mtime +7 -delete 2>/dev/null || true
fi
echo "$out"
