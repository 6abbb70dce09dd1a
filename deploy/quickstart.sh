#!/usr/bin/env bash
# Quick start, command 1: set up this machine and run the all-in-one cloud (CLC, CC, NC, SC).
# Idempotent: on a running cloud it changes nothing and reports healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/scripts/prepare.sh
export KOALA_HOME=${KOALA_HOME:-/var/lib/koala}
if koala help 2>/dev/null | grep -q '^  bootstrap '; then koala bootstrap; fi
# The demo image (DESIGN §4): built from Debian packages (cached by the script), imported publicly
# as the paravirtual triple tiny-linux-kernel (eki), tiny-linux-ramdisk (eri), tiny-linux (emi).
# Idempotent: the same files report the existing ids; a rebuilt image replaces the old one.
if koala help 2>/dev/null | grep -q '^  image '; then
  TINY="$KOALA_HOME/images/tiny-linux"
  bash deploy/images/build-tiny-linux.sh "$TINY"
  koala image import --name tiny-linux --public --replace --description 'Koala demo image (busybox, Debian cloud kernel)' \
    --kernel "$TINY/vmlinuz" --ramdisk "$TINY/initramfs.img" --root "$TINY/rootfs.img"
fi
koala up
koala status || true
[ -f "$KOALA_HOME/admin.env" ] && echo "Credentials: source $KOALA_HOME/admin.env" || true
