#!/usr/bin/env bash
# Installs (when missing) and starts the host services Koala needs on this machine:
# PostgreSQL, NATS (JetStream), virtlogd + libvirtd, and tgtd bound to loopback.
# There is no systemd on the development machines, so daemons are started directly.
# Idempotent: a service already answering is left alone.
set -euo pipefail

log() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

PKGS=(postgresql nats-server libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
      qemu-block-extra tgt busybox-static cpio e2fsprogs genisoimage docker-compose awscli
      netcat-openbsd curl ca-certificates iproute2 procps
      socat ipset ebtables iptables dnsmasq-base dnsmasq-utils conntrack)  # guest networking and the node namespaces
      # (dnsmasq-utils: dhcp_release, the NC frees a terminated guest's lease; conntrack: the IMDSv2 hop limit)
# The clients the end-to-end tests drive besides aws-cli and the SDKs (boto 2, ansible's amazon.aws):
# only for a test run (KOALA_TEST_CLIENTS=1, set by `prepare.sh --for-tests`).
[ "${KOALA_TEST_CLIENTS:-0}" = 1 ] && PKGS+=(python3-boto ansible)

install_missing() {
  local missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then return; fi
  log "starting PostgreSQL"
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return; sleep 1; done
  echo "PostgreSQL did not answer on 127.0.0.1:5432" >&2; exit 1
}

start_nats() {
  if nc -z 127.0.0.1 4222 2>/dev/null; then return; fi
  log "starting NATS (JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  for _ in $(seq 1 30); do nc -z 127.0.0.1 4222 2>/dev/null && return; sleep 0.5; done
  echo "NATS did not answer on 127.0.0.1:4222" >&2; exit 1
}

# A /dev/kvm that the kvm group cannot open (0600 root:root, no udev rule) is not set up for
# QEMU: libvirt probes QEMU with KVM, then finds KVM "not available" for its QEMU user and
# re-probes on every call (tens of seconds per define/start), and a KVM guest hangs after
# SeaBIOS on such hosts. Move it aside so libvirt and QEMU see a TCG-only host.
# Real KVM hosts (udev: crw-rw---- root kvm) are left alone; KOALA_KVM=keep skips this.
disable_unusable_kvm() {
  [ -e /dev/kvm ] || return 0
  [ "${KOALA_KVM:-auto}" = keep ] && return 0
  local mode group
  mode=$(stat -c '%a' /dev/kvm); group=$(stat -c '%G' /dev/kvm)
  if [ "$group" != kvm ] || [ $(( 8#$mode & 8#060 )) -ne $(( 8#060 )) ]; then
    log "/dev/kvm ($mode $group) is not usable by QEMU here: moved to /dev/kvm.koala-disabled (TCG only)"
    mv /dev/kvm /dev/kvm.koala-disabled
    if pgrep -x libvirtd >/dev/null; then pkill -x libvirtd; for _ in $(seq 1 50); do pgrep -x libvirtd >/dev/null || break; sleep 0.1; done; fi
  fi
}

start_libvirt() {
  # Never start libvirt's NAT network in the machine's own namespace.
  rm -f /etc/libvirt/qemu/networks/autostart/default.xml
  pgrep -x virtlogd >/dev/null || { log "starting virtlogd"; virtlogd -d; }
  if ! pgrep -x libvirtd >/dev/null; then
    log "starting libvirtd"
    libvirtd -d
  fi
  for _ in $(seq 1 50); do [ -S /var/run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1 && return; sleep 0.2; done
  echo "libvirtd did not answer on /var/run/libvirt/libvirt-sock" >&2; exit 1
}

start_tgtd() {
  if pgrep -x tgtd >/dev/null && tgtadm --lld iscsi --mode target --op show >/dev/null 2>&1; then return; fi
  log "starting tgtd on 127.0.0.1:3260"
  tgtd --iscsi portal=127.0.0.1:3260
  for _ in $(seq 1 50); do tgtadm --lld iscsi --mode target --op show >/dev/null 2>&1 && return; sleep 0.2; done
  echo "tgtd did not answer" >&2; exit 1
}

install_missing
disable_unusable_kvm
start_postgres
start_nats
start_libvirt
start_tgtd
