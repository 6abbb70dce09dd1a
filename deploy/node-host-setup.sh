#!/usr/bin/env bash
# Prepares a KVM host to run a Koala node controller (systemd hosts).
# Usage: node-host-setup.sh --nats nats://CLC-HOST:4222 --zone koala-1a [--name NODE] [--src /opt/koala]
#                           [--nats-ca CA.pem]
# Across hosts use tls://USER:PASSWORD@CLC-HOST:4222 and --nats-ca with the CA that signed the
# NATS server's certificate (CHAP secrets and image URLs cross NATS).
# Installs libvirt + QEMU + qemu-utils, enables libvirtd, installs Koala under /opt/koala
# (a built tree: run `npm ci && npm run build` there first or copy one), writes
# /etc/koala/koala.env and starts koala-node-controller.service.
set -euo pipefail
NATS="" ZONE="" NAME=$(hostname -s) SRC=/opt/koala NATS_CA=""
while [ $# -gt 0 ]; do
  case "$1" in
    --nats) NATS=$2; shift 2 ;;
    --zone) ZONE=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --src) SRC=$2; shift 2 ;;
    --nats-ca) NATS_CA=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
[ -n "$NATS" ] && [ -n "$ZONE" ] || { echo "usage: $0 --nats URL --zone ZONE [--name NODE] [--src DIR] [--nats-ca FILE]" >&2; exit 64; }
[ -z "$NATS_CA" ] || [ -f "$NATS_CA" ] || { echo "--nats-ca $NATS_CA: no such file" >&2; exit 64; }
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends libvirt-daemon-system qemu-system-x86 qemu-utils qemu-block-extra genisoimage
# Guest networking (the NC's network agent): dnsmasq serves DHCP, dhcp_release (dnsmasq-utils)
# frees a terminated guest's lease, ipset/iptables/ebtables hold the security groups and NAT,
# conntrack marks IMDSv2 token connections (the hop limit).
apt-get install -y -qq --no-install-recommends iproute2 dnsmasq-base dnsmasq-utils ipset iptables ebtables conntrack
# Node.js 24 LTS: Debian 12's nodejs is 18, so the official binary comes from the npm registry
# (Debian's npm fetches it) unless the host already has Node >= 24.
. "$(dirname "$0")/scripts/node-runtime.sh"
if ! { command -v node >/dev/null && [ "$(node_major)" -ge 24 ]; } && ! command -v npm >/dev/null; then
  apt-get install -y -qq --no-install-recommends npm
fi
ensure_node24
[ -e /dev/kvm ] || echo "warning: /dev/kvm is missing; instances will run under QEMU TCG (slow)" >&2

# Guests get no network from libvirt's default NAT network: Koala manages networking itself.
virsh net-autostart default --disable >/dev/null 2>&1 || true
systemctl enable --now libvirtd

[ -f "$SRC/dist/apps/node-controller/src/main.js" ] || { echo "$SRC has no built Koala (dist/ missing)" >&2; exit 1; }
[ "$SRC" = /opt/koala ] || ln -sfn "$SRC" /opt/koala

mkdir -p /etc/koala /var/lib/koala
[ -z "$NATS_CA" ] || install -m 0644 "$NATS_CA" /etc/koala/nats-ca.pem
# The URL may hold the NATS password: the file is root's alone.
install -m 0600 /dev/null /etc/koala/koala.env
cat > /etc/koala/koala.env <<ENV
KOALA_NATS_URL=$NATS
${NATS_CA:+KOALA_NATS_CA_FILE=/etc/koala/nats-ca.pem}
KOALA_ZONE=$ZONE
KOALA_NODE_NAME=$NAME
KOALA_HOME=/var/lib/koala
KOALA_LIBVIRT_URI=qemu:///system
ENV
install -m 0644 "$(dirname "$0")/systemd/koala-node-controller.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now koala-node-controller
echo "node $NAME joins zone $ZONE via $(sed -E 's#//[^@/]*@#//***@#' <<<"$NATS"); check with: koala status (on the CLC host)"
