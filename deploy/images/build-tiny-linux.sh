#!/usr/bin/env bash
# build-tiny-linux.sh — builds Koala's demo/test image "tiny-linux" from Debian packages only:
# the Debian cloud kernel (the package `linux-image-cloud-amd64` depends on) and
# `busybox-static`, plus Debian's SSH server `dropbear-bin` with exactly the shared libraries `ldd`
# lists for it (and the loader), taken from their own packages (SSH_PACKAGES below). The .debs are
# fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a scratch directory:
# nothing is installed on the host for the image itself.
#
# Usage (as root):  deploy/images/build-tiny-linux.sh [OUT_DIR]
#   OUT_DIR defaults to ${KOALA_HOME:-/var/lib/koala}/images/tiny-linux
#
# Files produced in OUT_DIR:
#   vmlinuz        eki: the kernel (bzImage), copied verbatim from the Debian package
#   initramfs.img  eri: gzip'd newc cpio: busybox + /init, which mounts proc/sys/devtmpfs,
#                  insmods (dependency order, from modules.dep) virtio, virtio_ring,
#                  virtio_pci(+modern/legacy dev), virtio_blk, isofs(+cdrom), vfat(+fat, nls),
#                  ACPI button, evdev, ata_piix/sr_mod (IDE CD-ROM config drives), virtio_net
#                  (+failover) and af_packet (udhcpc's raw socket) unless built in; waits for
#                  root= (default /dev/vda), mounts it (ext4, rw) and switch_root's into
#                  /sbin/init of the root fs (or init= from the cmdline).
#   rootfs.img     emi: raw ext4 filesystem image (16 MiB, label "tiny-root", made with
#                  `mkfs.ext4 -d`), busybox with applet links, the same modules in
#                  /lib/modules/<release>/, dropbear + dropbearkey with their libraries in
#                  /lib/x86_64-linux-gnu (about 4 MiB) and /sbin/init (a busybox sh script).
#   manifest       shell-sourceable KEY=VALUE: inputs (script sha256, package versions),
#                  kernel release, suggested cmdline and the sha256 of each file above.
#   SHA256SUMS     `sha256sum -c` compatible sums of the three images.
# Cached: when the manifest's inputs match and the sums verify, nothing is rebuilt.
# Outputs are written under temporary names and renamed, under a lock (flock OUT_DIR/.lock).
#
# Boot: direct kernel boot, kernel=vmlinuz initrd=initramfs.img, root fs as the first virtio
# disk, cmdline  `root=/dev/vda console=ttyS0`  (root= also takes LABEL=/UUID=; `ro` mounts ro).
# The domain needs <features><acpi/></features> (power button, disk hot-plug). A virtio NIC is
# optional: eth0 is configured by DHCP (busybox udhcpc, which keeps renewing in the background;
# /etc/resolv.conf points to /run/resolv.conf).
# SSH: when eth0 exists, dropbear listens on port 22 (public-key logins only) once the network is
# configured. Its ed25519 host key is made by dropbearkey at first boot (kept in /etc/dropbear on
# the root disk); root's ~/.ssh/authorized_keys is written at every boot from the config drive's
# public keys (NoCloud `public-keys:`, OpenStack `keys[].data`), or when it has none from
# http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key.
#
# Console protocol of the root fs init (serial console, each on its own line, in this order):
#   TINY-LINUX-BOOTED                      the root fs init started
#   INSTANCE-ID: <id>                      from the config drive: NoCloud (label cidata/CIDATA,
#                                          `instance-id:` in meta-data) or OpenStack (label
#                                          config-2, "uuid" in openstack/latest/meta_data.json)
#   USER-DATA-BEGIN                        followed by the user-data verbatim (a newline is added
#   ...                                    if it does not end in one), then
#   USER-DATA-END
#   CONFIG-DRIVE: none                     instead of the three above when no config drive found
#   NET: eth0 <ip>/<prefix> <mac>          eth0's DHCP address (up to ~10 s of tries), or
#   NET: eth0 none <mac>                   when DHCP got no lease (udhcpc keeps trying), or
#   NET: none                              when the guest has no eth0
#   BLOCK: vda vdb ...                     block devices (/sys/block without loop*/ram*), sorted,
#                                          space separated; printed at start and whenever the set
#                                          changes (polled every second)
#   SSH: dropbear port 22 <fingerprint> <n> key(s)
#                                          after the first BLOCK line, when eth0 exists: the host
#                                          key's SHA256 fingerprint and how many authorized keys
#   USER-DATA-SCRIPT-BEGIN                 when the user-data starts with `#!`: it is run (after the
#   ...                                    first BLOCK line, in the background, as root, cwd /root,
#   USER-DATA-SCRIPT-END rc=<N>            stdin /dev/null) with its output on the console; lines
#                                          of a later BLOCK change may interleave with its output.
#                                          A script that starts a server must background it.
#   TINY-LINUX-SHUTDOWN: poweroff|reboot   on the ACPI power button (virsh shutdown; virsh reboot
#                                          uses it too) or a guest `poweroff`/`reboot`; then the
#                                          config drive is unmounted, / remounted ro, power off.
set -euo pipefail

SCRIPT_VERSION=3
OUT=${1:-${KOALA_HOME:-/var/lib/koala}/images/tiny-linux}
ROOTFS_SIZE=16M
# The SSH server and the packages its libraries come from (ldd decides which files are copied).
SSH_PACKAGES=(dropbear-bin libc6 libcrypt1 libtomcrypt1 libtommath1 libgmp10 zlib1g)
CMDLINE='root=/dev/vda console=ttyS0'
# Modules wanted (names as in modules.dep, without .ko); builtins are skipped, dependencies added.
WANT_MODULES=(virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk
  ext4 jbd2 mbcache crc16 crc32c_generic isofs fat vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1
  button evdev ata_piix sr_mod virtio_net af_packet)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-tiny-linux: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# --- host tools (only if missing) -----------------------------------------------------------
apt_updated=0
apt_update_once() { if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi; }
need=()
command -v cpio >/dev/null || need+=(cpio)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || need+=(busybox-static)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt_update_once
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- inputs ---------------------------------------------------------------------------------
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if (!v) v = $2 } END { print v }'; }
kernel_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { if (!v) v = $2 } END { print v }'; }
KPKG=$(kernel_pkg || true)
if [ -z "$KPKG" ] || [ -z "$(candidate "$KPKG")" ] || [ -z "$(candidate busybox-static)" ] \
   || [ "$(candidate busybox-static)" = "(none)" ]; then
  apt_update_once
  KPKG=$(kernel_pkg || true)
fi
[ -n "$KPKG" ] || die "cannot resolve the package linux-image-cloud-amd64 depends on"
KVER=$(candidate "$KPKG"); BBVER=$(candidate busybox-static)
{ [ -n "$KVER" ] && [ "$KVER" != "(none)" ] && [ -n "$BBVER" ] && [ "$BBVER" != "(none)" ]; } \
  || die "no candidate version for $KPKG or busybox-static"
# PACKAGE=VERSION of each package, from one apt-cache call (each call takes seconds on a busy host).
candidates() {
  apt-cache policy "$@" 2>/dev/null | awk '/^[^ ].*:$/ { p = substr($0, 1, length($0) - 1) } /Candidate:/ && p != "" { if ($2 != "(none)") print p "=" $2; p = "" }'
}
mapfile -t SSH_PINS < <(candidates "${SSH_PACKAGES[@]}")
if [ "${#SSH_PINS[@]}" != "${#SSH_PACKAGES[@]}" ]; then apt_update_once; mapfile -t SSH_PINS < <(candidates "${SSH_PACKAGES[@]}"); fi
[ "${#SSH_PINS[@]}" = "${#SSH_PACKAGES[@]}" ] || die "no candidate version for some of ${SSH_PACKAGES[*]} (got ${SSH_PINS[*]})"
SCRIPT_SHA=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
INPUTS=$(printf 'v%s script=%s kernel=%s=%s busybox-static=%s modules=%s size=%s ssh=%s' \
  "$SCRIPT_VERSION" "$SCRIPT_SHA" "$KPKG" "$KVER" "$BBVER" "${WANT_MODULES[*]}" "$ROOTFS_SIZE" "${SSH_PINS[*]}" \
  | sha256sum | cut -d' ' -f1)

FILES=(vmlinuz initramfs.img rootfs.img)
print_outputs() {
  local f
  for f in "${FILES[@]}"; do printf '%s  %s\n' "$(sha256sum "$OUT/$f" | cut -d' ' -f1)" "$OUT/$f"; done
}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
exec 9>"$OUT/.lock"
flock 9

cached() {
  [ -f "$OUT/manifest" ] && [ -f "$OUT/SHA256SUMS" ] || return 1
  grep -qx "INPUTS=$INPUTS" "$OUT/manifest" || return 1
  (cd "$OUT" && sha256sum --quiet -c SHA256SUMS >/dev/null 2>&1) || return 1
}
if cached; then
  log "tiny-linux is up to date in $OUT"
  print_outputs
  exit 0
fi

# --- fetch and unpack -----------------------------------------------------------------------
WORK=$(mktemp -d /tmp/tiny-linux-build.XXXXXX)
cleanup() { rm -rf "$WORK"; rm -f "$OUT"/.*.tmp; }
trap cleanup EXIT
chmod 755 "$WORK"   # apt-get download drops privileges to _apt
log "downloading $KPKG=$KVER busybox-static=$BBVER"
(cd "$WORK" && apt-get download -qq "$KPKG=$KVER" "busybox-static=$BBVER" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
kdeb=$(ls "$WORK"/linux-image-*.deb 2>/dev/null | head -1); bdeb=$(ls "$WORK"/busybox-static_*.deb 2>/dev/null | head -1)
[ -f "$kdeb" ] && [ -f "$bdeb" ] || die "apt-get download failed"
log "downloading ${SSH_PINS[*]}"
mkdir -p "$WORK/ssh-debs"; chmod 755 "$WORK/ssh-debs"
(cd "$WORK/ssh-debs" && apt-get download -qq "${SSH_PINS[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true)
[ "$(ls "$WORK"/ssh-debs/*.deb 2>/dev/null | wc -l)" = "${#SSH_PACKAGES[@]}" ] || die "apt-get download of ${SSH_PACKAGES[*]} failed"
for f in "$WORK"/ssh-debs/*.deb; do dpkg-deb -x "$f" "$WORK/ssh"; done
dpkg-deb -x "$kdeb" "$WORK/kernel"
dpkg-deb -x "$bdeb" "$WORK/busybox"
BB=$WORK/busybox/bin/busybox
[ -x "$BB" ] || die "no bin/busybox in $bdeb"
VMLINUZ=$(ls "$WORK"/kernel/boot/vmlinuz-* | head -1)
KREL=${VMLINUZ##*/vmlinuz-}
MODDIR=$WORK/kernel/lib/modules/$KREL
[ -d "$MODDIR" ] || die "no lib/modules/$KREL in $kdeb"
# The package ships no modules.dep (postinst runs depmod); generate it with the unpacked busybox.
[ -f "$MODDIR/modules.dep" ] || "$BB" depmod -b "$WORK/kernel" "$KREL"

# --- resolve modules in dependency order ------------------------------------------------------
declare -A MODPATH=() MODDEPS=() SEEN=()
while IFS= read -r line; do
  path=${line%%:*}; name=${path##*/}; name=${name%.ko*}
  MODPATH[$name]=$path; MODDEPS[$name]=${line#*:}
done <"$MODDIR/modules.dep"
ORDER=()
resolve() {
  local m=$1 d dn
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  if [ -z "${MODPATH[$m]:-}" ]; then
    grep -qE "/$m\.ko(\.[a-z]+)?\$" "$MODDIR/modules.builtin" && return 0
    log "module $m is neither modular nor built in; skipped"; return 0
  fi
  for d in ${MODDEPS[$m]}; do dn=${d##*/}; resolve "${dn%.ko*}"; done
  ORDER+=("$m")
}
for m in "${WANT_MODULES[@]}"; do resolve "$m"; done
log "modules ($KREL): ${ORDER[*]}"

stage_modules() { # DEST: flat copies NAME.ko plus load-order
  local dest=$1 m src
  mkdir -p "$dest"
  : >"$dest/load-order"
  for m in "${ORDER[@]}"; do
    src=$MODDIR/${MODPATH[$m]}
    case $src in
      *.ko) cp "$src" "$dest/$m.ko" ;;
      *.ko.xz) xz -dc "$src" >"$dest/$m.ko" ;;
      *.ko.zst) zstd -qdc "$src" >"$dest/$m.ko" ;;
      *.ko.gz) gzip -dc "$src" >"$dest/$m.ko" ;;
      *) die "unknown module format $src" ;;
    esac
    echo "$m" >>"$dest/load-order"
  done
}

busybox_links() { # ROOT [flat]: applet symlinks to /bin/busybox
  local root=$1 flat=${2:-} a
  while IFS= read -r a; do
    case $a in linuxrc|sbin/init|bin/busybox) continue ;; esac
    [ -n "$flat" ] && a=bin/${a##*/}
    mkdir -p "$root/${a%/*}"
    [ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
  done < <("$BB" --list-full)
}

# --- eri: initramfs -------------------------------------------------------------------------
IR=$WORK/initramfs
mkdir -p "$IR"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$BB" "$IR/bin/busybox"
busybox_links "$IR" flat
stage_modules "$IR/lib/modules"
cat >"$IR/init" <<'EOF'
#!/bin/sh
# tiny-linux initramfs init (built by deploy/images/build-tiny-linux.sh)
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
rescue() { echo "TINY-LINUX-INITRAMFS-ERROR: $*"; exec sh; }
while read -r m; do
  [ -d "/sys/module/$(echo "$m" | tr - _)" ] || insmod "/lib/modules/$m.ko" || echo "initramfs: insmod $m failed"
done </lib/modules/load-order
root=/dev/vda; rootfstype=ext4; rootflags=rw; init=/sbin/init
for arg in $(cat /proc/cmdline); do
  case $arg in
    root=*) root=${arg#root=} ;;
    rootfstype=*) rootfstype=${arg#rootfstype=} ;;
    init=*) init=${arg#init=} ;;
    ro) rootflags=ro ;;
    rw) rootflags=rw ;;
  esac
done
i=0; dev=
while [ $i -lt 300 ]; do
  case $root in
    LABEL=*|UUID=*) dev=$(findfs "$root" 2>/dev/null) ;;
    *) dev=$root ;;
  esac
  [ -n "$dev" ] && [ -b "$dev" ] && break
  dev=; i=$((i + 1)); sleep 0.1
done
[ -n "$dev" ] || rescue "root device $root not found"
mount -t "$rootfstype" -o "$rootflags" "$dev" /newroot || rescue "cannot mount $dev"
[ -x "/newroot$init" ] || rescue "no $init on $dev"
mount --move /dev /newroot/dev 2>/dev/null || umount /dev
umount /sys; umount /proc
exec switch_root /newroot "$init"
rescue "switch_root failed"
EOF
chmod 755 "$IR/init"
find "$IR" -exec touch -h -d @0 {} +
(cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
  | gzip -9 -n >"$OUT/.initramfs.img.tmp"

# --- emi: root filesystem -------------------------------------------------------------------
RF=$WORK/rootfs
mkdir -p "$RF"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,mnt/config,root,etc/acpi/PWRF,var/log}
chmod 1777 "$RF/tmp"
cp "$BB" "$RF/bin/busybox"
busybox_links "$RF"
# dropbear: the two binaries, exactly the libraries ldd resolves for them (from the unpacked
# packages, not the host's), and the loader; one library directory, searched by default.
SSH_LIBDIRS=$WORK/ssh/lib/x86_64-linux-gnu:$WORK/ssh/usr/lib/x86_64-linux-gnu
mkdir -p "$RF/lib/x86_64-linux-gnu" "$RF/lib64" "$RF/etc/dropbear" "$RF/root/.ssh"
chmod 700 "$RF/root/.ssh"
install -m 755 "$WORK/ssh/usr/sbin/dropbear" "$RF/usr/sbin/dropbear"
install -m 755 "$WORK/ssh/usr/bin/dropbearkey" "$RF/usr/bin/dropbearkey"
for b in "$WORK/ssh/usr/sbin/dropbear" "$WORK/ssh/usr/bin/dropbearkey"; do
  out=$(LD_LIBRARY_PATH=$SSH_LIBDIRS ldd "$b") || die "ldd $b failed"
  ! grep -q 'not found' <<<"$out" || die "ldd $b: $out"
  while read -r lib; do
    case $lib in "$WORK"/ssh/*) ;; *) die "ldd $b resolved $lib outside the unpacked packages" ;; esac
    cp -L "$lib" "$RF/lib/x86_64-linux-gnu/${lib##*/}"
  done < <(awk '$2 == "=>" { print $3 }' <<<"$out")
done
LOADER=$(ls "$WORK"/ssh/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2) || die "no loader in libc6"
cp -L "$LOADER" "$RF/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$RF/lib64/ld-linux-x86-64.so.2"
printf 'passwd: files\ngroup: files\nshadow: files\n' >"$RF/etc/nsswitch.conf"
printf '/bin/sh\n' >"$RF/etc/shells"
# Fails the build when the new root's loader cannot resolve a library (loads only, runs nothing, writes nothing).
for b in /usr/sbin/dropbear /usr/bin/dropbearkey; do
  out=$(chroot "$RF" /lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1) && ! grep -q 'not found' <<<"$out" || die "$b does not load in the root fs: $out"
done
log "dropbear: $(cd "$RF" && du -sh --apparent-size usr/sbin/dropbear usr/bin/dropbearkey lib/x86_64-linux-gnu | awk '{ print $2 " " $1 }' | tr '\n' ' ')"
stage_modules "$RF/lib/modules/$KREL"
echo "$KREL" >"$RF/etc/tiny-linux-kernel"
echo tiny-linux >"$RF/etc/hostname"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$RF/etc/passwd"
printf 'root:x:0:\n' >"$RF/etc/group"
printf 'proc /proc proc defaults 0 0\n' >"$RF/etc/fstab"
ln -s /run/resolv.conf "$RF/etc/resolv.conf"   # the root fs stays unchanged by DHCP
mkdir -p "$RF/etc/udhcpc"
cat >"$RF/etc/udhcpc/default.script" <<'EOF'
#!/bin/sh
# busybox udhcpc hook: $1 is deconfig|bound|renew|leasefail|nak; the lease is in the environment
# (ip, mask = prefix length, router, dns, domain).
case $1 in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    if ! ip -4 addr show dev "$interface" | grep -q " $ip/$mask "; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/$mask" dev "$interface"
    fi
    if [ -n "$router" ]; then
      ip route del default dev "$interface" 2>/dev/null
      set -- $router
      ip route add default via "$1" dev "$interface"
    fi
    : >/run/resolv.conf.tmp
    [ -n "$domain" ] && echo "search $domain" >>/run/resolv.conf.tmp
    for s in $dns; do echo "nameserver $s" >>/run/resolv.conf.tmp; done
    mv /run/resolv.conf.tmp /run/resolv.conf
    ;;
esac
exit 0
EOF
chmod 755 "$RF/etc/udhcpc/default.script"

cat >"$RF/sbin/tiny-shutdown" <<'EOF'
#!/bin/sh
# tiny-shutdown poweroff|reboot|halt — clean shutdown of tiny-linux (ACPI power button handler).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
action=${1:-poweroff}
[ -e /run/tiny-shutdown ] && exit 0
: >/run/tiny-shutdown
echo "TINY-LINUX-SHUTDOWN: $action" >/dev/console
kill "$(cat /run/acpid.pid 2>/dev/null)" 2>/dev/null
sync
umount /mnt/config 2>/dev/null
mount -o remount,ro / 2>/dev/null
sync
case $action in
  reboot) reboot -f ;;
  halt) halt -f ;;
  *) poweroff -f ;;
esac
EOF
chmod 755 "$RF/sbin/tiny-shutdown"
# busybox acpid maps the evdev KEY_POWER event to the action PWRF/00000080 under -c DIR.
printf '#!/bin/sh\nexec /sbin/tiny-shutdown poweroff\n' >"$RF/etc/acpi/PWRF/00000080"
chmod 755 "$RF/etc/acpi/PWRF/00000080"

cat >"$RF/sbin/init" <<'EOF'
#!/bin/sh
# tiny-linux /sbin/init (built by deploy/images/build-tiny-linux.sh). Console protocol: see there.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
[ -e /proc/mounts ] || mount -t proc proc /proc
grep -q ' /sys ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1
echo "TINY-LINUX-BOOTED"
trap '/sbin/tiny-shutdown poweroff' USR2
trap '/sbin/tiny-shutdown halt' USR1
trap '/sbin/tiny-shutdown reboot' TERM INT
hostname -F /etc/hostname 2>/dev/null
kmods=/lib/modules/$(uname -r)
[ -f "$kmods/load-order" ] || kmods=/lib/modules/$(cat /etc/tiny-linux-kernel 2>/dev/null)
if [ -f "$kmods/load-order" ]; then
  while read -r m; do
    [ -d "/sys/module/$(echo "$m" | tr - _)" ] || insmod "$kmods/$m.ko" 2>/dev/null
  done <"$kmods/load-order"
fi
[ -e /sys/module/button ] || echo "tiny-linux: ACPI button module not loaded"
acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid -a /etc/acpid.conf -M /etc/acpi.map

rootdev=$(awk '$2 == "/" && $1 != "rootfs" { d = $1 } END { print d }' /proc/mounts)
rootdev=${rootdev#/dev/}
# --- config drive ---
mounted=
try_mount() { # DEV
  mount -r -t iso9660 "$1" /mnt/config 2>/dev/null || mount -r -t vfat "$1" /mnt/config 2>/dev/null
}
find_config_drive() {
  local l d n
  for l in cidata CIDATA config-2 CONFIG-2; do
    d=$(findfs "LABEL=$l" 2>/dev/null) || continue
    try_mount "$d" && return 0
  done
  for d in /sys/block/*; do # fallback: any other device with a config drive layout
    n=${d##*/}
    case $n in loop*|ram*|"$rootdev") continue ;; esac
    [ -b "/dev/$n" ] || continue
    if try_mount "/dev/$n"; then
      [ -f /mnt/config/meta-data ] || [ -f /mnt/config/openstack/latest/meta_data.json ] && return 0
      umount /mnt/config
    fi
  done
  return 1
}
print_user_data() { # FILE
  echo "USER-DATA-BEGIN"
  if [ -f "$1" ]; then
    cat "$1"
    [ -z "$(tail -c 1 "$1")" ] || echo
    # kept to be run as a script once the network is up (the config drive is unmounted by then)
    [ "$(head -c 2 "$1")" = '#!' ] && cp "$1" /run/user-data-script && chmod 700 /run/user-data-script
  fi
  echo "USER-DATA-END"
}
i=0
while [ $i -lt 5 ]; do
  find_config_drive && { mounted=1; break; }
  i=$((i + 1)); sleep 1
done
if [ -n "$mounted" ]; then
  if [ -f /mnt/config/meta-data ]; then
    id=$(sed -n 's/^instance-id:[[:space:]]*//p' /mnt/config/meta-data | head -n 1 | tr -d "\r\"'" | sed 's/[[:space:]]*$//')
    hn=$(sed -n 's/^local-hostname:[[:space:]]*//p' /mnt/config/meta-data | head -n 1 | tr -d "\r\"'" | sed 's/[[:space:]]*$//')
    ud=/mnt/config/user-data
    sed -n '/^public-keys:/,/^[^ ]/s/^  - "\(.*\)"$/\1/p' /mnt/config/meta-data >/run/ssh-keys
  else
    j=/mnt/config/openstack/latest/meta_data.json
    id=$(tr -d '\n' <"$j" | grep -o '"instance-id"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
    [ -n "$id" ] || id=$(tr -d '\n' <"$j" | grep -o '"uuid"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
    hn=$(tr -d '\n' <"$j" | grep -o '"hostname"[[:space:]]*:[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/')
    ud=/mnt/config/openstack/latest/user_data
    tr -d '\n' <"$j" | grep -o '"data"[[:space:]]*:[[:space:]]*"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' >/run/ssh-keys
  fi
  [ -n "$hn" ] && hostname "$hn"
  echo "INSTANCE-ID: $id"
  print_user_data "$ud"
  umount /mnt/config
else
  echo "CONFIG-DRIVE: none"
fi

# --- network: eth0 by DHCP ---
ip link set lo up
if [ -e /sys/class/net/eth0 ]; then
  mac=$(cat /sys/class/net/eth0/address)
  ip link set eth0 up
  # 5 discovers 2 s apart; without a lease udhcpc goes on trying in the background (-b).
  udhcpc -i eth0 -s /etc/udhcpc/default.script -t 5 -T 2 -b -p /run/udhcpc.eth0.pid -x hostname:"$(hostname)" >/run/udhcpc.log 2>&1
  addr=$(ip -4 -o addr show dev eth0 | awk '{ print $4; exit }')
  echo "NET: eth0 ${addr:-none} $mac"
else
  echo "NET: none"
fi

# --- block devices ---
block_list() {
  local d n cur=
  for d in /sys/block/*; do
    n=${d##*/}
    case $n in loop*|ram*|'*') continue ;; esac
    cur="$cur$n
"
  done
  printf '%s' "$cur" | sort | tr '\n' ' ' | sed 's/ *$//'
}
prev=$(block_list)
echo "BLOCK: $prev"

# --- SSH server (dropbear), once the network is configured ---
start_ssh() {
  local hk=/etc/dropbear/dropbear_ed25519_host_key fp n
  mkdir -p /etc/dropbear /root/.ssh /dev/pts
  chmod 700 /root/.ssh
  [ -s "$hk" ] || dropbearkey -t ed25519 -f "$hk" >/dev/null 2>&1
  if [ ! -s /run/ssh-keys ]; then
    wget -q -T 3 -O /run/ssh-keys http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key 2>/dev/null || : >/run/ssh-keys
  fi
  { cat /run/ssh-keys; echo; } | sed '/^[[:space:]]*$/d' >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
  n=$(grep -c . /root/.ssh/authorized_keys)
  grep -q ' /dev/pts ' /proc/mounts || mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
  dropbear -r "$hk" -s -p 22 -P /run/dropbear.pid
  fp=$(dropbearkey -y -f "$hk" 2>/dev/null | sed -n 's/^Fingerprint: //p')
  echo "SSH: dropbear port 22 ${fp:-?} $n key(s)"
}
[ -e /sys/class/net/eth0 ] && [ -x /usr/sbin/dropbear ] && start_ssh

# --- user-data script (after the network and the first BLOCK line, in the background) ---
if [ -x /run/user-data-script ]; then
  (
    cd /root
    echo "USER-DATA-SCRIPT-BEGIN"
    HOME=/root /run/user-data-script </dev/null 2>&1
    echo "USER-DATA-SCRIPT-END rc=$?"
  ) &
fi

while :; do
  sleep 1
  cur=$(block_list)
  if [ "$cur" != "$prev" ]; then
    echo "BLOCK: $cur"
    prev=$cur
  fi
done
EOF
chmod 755 "$RF/sbin/init"
find "$RF" -exec touch -h -d @0 {} +
rm -f "$OUT/.rootfs.img.tmp"
E2FSPROGS_FAKE_TIME=1 mkfs.ext4 -q -F -L tiny-root -m 0 -N 1024 \
  -U 6b6f616c-0000-4000-8000-74696e796c78 -E root_owner=0:0,hash_seed=6b6f616c-0000-4000-8000-74696e796c78 \
  -d "$RF" "$OUT/.rootfs.img.tmp" "$ROOTFS_SIZE" >/dev/null
# mkfs -d copies each file's ctime, which cannot be set on the source: reset it so that the
# image is reproducible (same inputs -> same sha256, as the content-addressed image store likes).
(cd "$RF" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.\(.*\)$|sif "\1" ctime @1|') >"$WORK/ctime.debugfs"
E2FSPROGS_FAKE_TIME=1 debugfs -w -f "$WORK/ctime.debugfs" "$OUT/.rootfs.img.tmp" >/dev/null 2>"$WORK/debugfs.err" \
  || { cat "$WORK/debugfs.err" >&2; die "debugfs failed"; }
e2fsck -fn "$OUT/.rootfs.img.tmp" >/dev/null 2>&1 || die "e2fsck found errors in the new root fs"

# --- eki, manifest, atomic install ----------------------------------------------------------
cp "$VMLINUZ" "$OUT/.vmlinuz.tmp"
# Read-only: these are backing files of instance overlays (libvirt may chown them to the qemu user).
for f in "${FILES[@]}"; do chmod 0444 "$OUT/.$f.tmp"; mv -f "$OUT/.$f.tmp" "$OUT/$f"; done
(cd "$OUT" && sha256sum "${FILES[@]}" >.SHA256SUMS.tmp)
sum() { sha256sum "$OUT/$1" | cut -d' ' -f1; }
cat >"$OUT/.manifest.tmp" <<EOF
# tiny-linux image built by deploy/images/build-tiny-linux.sh
SCRIPT_VERSION=$SCRIPT_VERSION
SCRIPT_SHA256=$SCRIPT_SHA
INPUTS=$INPUTS
KERNEL_PACKAGE=$KPKG
KERNEL_PACKAGE_VERSION=$KVER
KERNEL_RELEASE=$KREL
BUSYBOX_PACKAGE_VERSION=$BBVER
SSH_PACKAGES='${SSH_PINS[*]}'
MODULES='${ORDER[*]}'
CMDLINE='$CMDLINE'
VMLINUZ=vmlinuz
VMLINUZ_SHA256=$(sum vmlinuz)
INITRAMFS=initramfs.img
INITRAMFS_SHA256=$(sum initramfs.img)
ROOTFS=rootfs.img
ROOTFS_SHA256=$(sum rootfs.img)
EOF
mv -f "$OUT/.SHA256SUMS.tmp" "$OUT/SHA256SUMS"
mv -f "$OUT/.manifest.tmp" "$OUT/manifest"
log "built tiny-linux ($KREL) in $OUT"
print_outputs
