#!/usr/bin/env bash
# Quick start, command 1: set up this machine and run the all-in-one cloud (CLC, CC, NC, SC).
# Idempotent: on a running cloud it changes nothing and reports healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/scripts/prepare.sh
export KOALA_HOME=${KOALA_HOME:-/var/lib/koala}

# Master key, admin account and $KOALA_HOME/admin.env (kept when they already work).
koala bootstrap

# The demo image: built from Debian packages (cached by the script), imported publicly
# as the paravirtual triple tiny-linux-kernel (eki), tiny-linux-ramdisk (eri), tiny-linux (emi).
# The same files report the existing ids; a rebuilt image replaces the old one.
TINY="$KOALA_HOME/images/tiny-linux"
bash deploy/images/build-tiny-linux.sh "$TINY"
koala image import --name tiny-linux --public --replace --description 'Koala demo image (busybox, Debian cloud kernel)' \
  --kernel "$TINY/vmlinuz" --ramdisk "$TINY/initramfs.img" --root "$TINY/rootfs.img"

# The node host (network namespaces koala-node1, koala-seg, koala-pub with the node's own libvirtd)
# and the four controllers; both left alone when they already run.
koala up
koala status || true
echo
echo "Credentials: source $KOALA_HOME/admin.env"
echo "Then e.g.:   aws ec2 create-key-pair --key-name me --query KeyMaterial --output text > me.pem && chmod 600 me.pem"
echo "             aws ec2 authorize-security-group-ingress --group-name default --protocol tcp --port 22 --cidr 0.0.0.0/0"
echo "             ID=\$(aws ec2 run-instances --image-id \$(aws ec2 describe-images --filters Name=name,Values=tiny-linux --query 'Images[0].ImageId' --output text) --instance-type m1.small --key-name me --query 'Instances[0].InstanceId' --output text)"
echo "             koala ssh \$ID -i me.pem      (once get-console-output shows the SSH: line)"
