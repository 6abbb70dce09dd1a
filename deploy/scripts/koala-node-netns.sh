#!/usr/bin/env bash
# koala-node-netns.sh — a Koala node host inside this machine: a network namespace with its own
# libvirtd + virtlogd (so their bridges, dnsmasq, iptables/ebtables rules and QEMU guests live in
# that namespace), for the all-in-one cloud and the multi-node test lab (test/support/lab.ts).
#
#   koala-node-netns.sh up NAME [--uplink-to SEGMENT_NS] [--segment-bridge BR] [--uplink-name IF]
#                               [--iscsi HOST:PORT | --no-iscsi]
#                               [--public-to PUBLIC_NS [--public-if IF] [--public-router CIDR]]
#   koala-node-netns.sh down NAME          stops everything of the node and removes it
#   koala-node-netns.sh segment-down SEGMENT_NS
#   koala-node-netns.sh status NAME        prints the facts below, exit 1 when the node is not up
#
# NAME (≤ 15 characters: [a-z0-9-], starting with a letter or digit) is the network namespace.
# The daemons run in `ip netns exec NAME` + a private mount namespace (slave of the host's, so
# unmounts such as `ip netns del` still propagate into it) where these are bind mounts:
#   /run/libvirt        <- $KOALA_NODES_RUN/NAME/libvirt   (sockets, pid files, qemu/network state)
#   /etc/libvirt        <- $KOALA_NODES_STATE/NAME/etc     (the host's *.conf, nwfilter/ and hooks/;
#                                                            no domains, networks, pools, secrets)
#   /var/lib/libvirt    <- $KOALA_NODES_STATE/NAME/lib     (qemu state, dnsmasq leases)
#   /var/cache/libvirt  <- $KOALA_NODES_STATE/NAME/cache   (seeded with the host's capability cache)
#   /var/log/libvirt    <- $KOALA_NODES_STATE/NAME/log     (libvirtd.log, virtlogd.log, qemu/)
# so the node's libvirtd socket is $KOALA_NODES_RUN/NAME/libvirt/libvirt-sock on the host; connect
# with `virsh -c 'qemu:///system?socket=…/libvirt-sock'` or Libvirt.connect({ socketPath }).
# /sys in the node is the namespace's own sysfs (`ip netns exec`), without cgroup mounts: libvirt
# runs its guests without cgroups there, so nothing is left in the host's cgroup tree.
# Defaults: KOALA_NODES_RUN=/run/koala/nodes, KOALA_NODES_STATE=/var/lib/koala/nodes.
#
# Inside the namespace: lo up, net.ipv4.ip_forward=1, net.bridge.bridge-nf-call-iptables=1 and
# an iSCSI relay (socat): TCP 127.0.0.1:3260 in the node -> UNIX $RUN/iscsi.sock -> the host's
# tgtd at 127.0.0.1:3260 (--iscsi), so QEMU inside the node reaches the host's targets unchanged.
# --uplink-to SEG: a veth pair, IF (default koala-up0) in the node and its peer enslaved to the
# bridge BR (default koala-seg) in the namespace SEG, both created when missing; the NC (or a
# test) enslaves IF to the node's guest bridge. `down` removes the peer, and the segment
# namespace when this script created it and no other node is attached.
# --public-to PUB: the node's public side, the same way: a veth IF (default koala-pub0: the NC's
# KOALA_NODE_PUBLIC_IF) in the node and its peer on the bridge koala-inet in the namespace PUB,
# which holds the "internet router" address CIDR (default 198.51.100.1/24) on that bridge; the
# node routes the router's subnet and its default route through IF. Public addresses the NC puts
# on IF are reachable from PUB (`ip netns exec PUB ssh …`); nothing leaves PUB.
#
# Idempotent: `up` completes what is missing, `down` of an absent node succeeds. `down` destroys
# the node's guests and networks through its libvirtd, stops the daemons and relays, kills
# whatever still runs in the namespace, deletes the namespace and both directories.
# Never touches the host's own network: every bridge and rule is inside the namespaces.
set -euo pipefail

RUN_BASE=${KOALA_NODES_RUN:-/run/koala/nodes}
STATE_BASE=${KOALA_NODES_STATE:-/var/lib/koala/nodes}
SEG_BASE=${KOALA_SEGMENTS_RUN:-/run/koala/segments}
LOCK=${KOALA_NODES_LOCK:-/run/lock/koala-node-netns.lock}
SELF=$(readlink -f "${BASH_SOURCE[0]}")

log() { printf 'koala-node-netns: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }

check_name() { # NAME WHAT
  [[ $1 =~ ^[a-z0-9][a-z0-9-]{0,14}$ ]] || die "$2 must be 1-15 characters [a-z0-9-], got '$1'"
}
check_ifname() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$ ]] || die "$2 must be an interface name (≤ 15 characters), got '$1'"
}
ns_exists() { [ -e "/run/netns/$1" ]; }
# A zombie counts as gone (the daemons started here are reaped by init, not by this script).
pid_alive() {
  local st
  [ -n "${1:-}" ] && st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}
pid_of() { [ -s "$1" ] && cat "$1" 2>/dev/null || true; }

# Interface name of a node's uplink peer in the segment namespace (unique per node, ≤ 15 chars).
peer_name() { # NAME [PREFIX]
  local p=${2:-u}
  if [ ${#1} -le 13 ]; then echo "$p-$1"; else echo "$p-$(printf '%s' "$1" | sha1sum | cut -c1-13)"; fi
}

node_paths() { # NAME
  R=$RUN_BASE/$1
  S=$STATE_BASE/$1
  SOCK=$R/libvirt/libvirt-sock
  URI="qemu:///system?socket=$SOCK"
}

# One operation at a time on this machine (nodes share segments). The daemons started here must
# not inherit fd 8, or they would hold the lock for their whole life.
lock() {
  mkdir -p "$(dirname "$LOCK")"
  exec 8>"$LOCK"
  flock 8
}

# --- inner: runs inside `ip netns exec NAME unshare --mount` ---------------------------------
inner() { # NAME
  node_paths "$1"
  local d
  for d in /run/libvirt /etc/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do mkdir -p "$d"; done
  mount --bind "$R/libvirt" /run/libvirt
  mount --bind "$S/etc" /etc/libvirt
  mount --bind "$S/lib" /var/lib/libvirt
  mount --bind "$S/cache" /var/cache/libvirt
  mount --bind "$S/log" /var/log/libvirt
  # Both daemons detach (-d) and keep this mount namespace alive; pid files outside the defaults
  # (/run/libvirtd.pid, /run/virtlogd.pid belong to the host's daemons).
  LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/virtlogd.log" virtlogd -d -p "$R/virtlogd.pid"
  LIBVIRT_LOG_OUTPUTS="3:file:/var/log/libvirt/libvirtd.log" libvirtd -d -p "$R/libvirtd.pid"
}

prepare_dirs() {
  mkdir -p "$R/libvirt" "$S"/{etc,lib,cache,log}
  chmod 755 "$R" "$R/libvirt" "$S" "$S/lib" "$S/log"
  chmod 711 "$S/cache"
  if [ ! -e "$S/etc/.koala-node" ]; then
    # The host's daemon configuration, without its domains, networks (no `default` network, no
    # autostart), storage pools or secrets.
    find /etc/libvirt -maxdepth 1 -type f -name '*.conf' -exec cp -p {} "$S/etc/" \;
    [ -d /etc/libvirt/nwfilter ] && cp -a /etc/libvirt/nwfilter "$S/etc/"
    [ -d /etc/libvirt/hooks ] && cp -a /etc/libvirt/hooks "$S/etc/"
    mkdir -p "$S/etc/qemu/networks/autostart" "$S/etc/qemu/autostart" "$S/etc/storage" "$S/etc/secrets"
    chmod 700 "$S/etc/secrets"
    # Each node its own host UUID (libvirt otherwise takes the machine's).
    if [ -f "$S/etc/libvirtd.conf" ] && ! grep -q '^[[:space:]]*host_uuid' "$S/etc/libvirtd.conf"; then
      printf '\n# koala-node-netns.sh: this node host\nhost_uuid = "%s"\n' "$(cat /proc/sys/kernel/random/uuid)" >>"$S/etc/libvirtd.conf"
    fi
    # QEMU capability probes take seconds under TCG: start from the host's cache (libvirt
    # revalidates every entry against the binaries and the kernel).
    if [ -d /var/cache/libvirt/qemu/capabilities ]; then
      mkdir -p "$S/cache/qemu"
      cp -a /var/cache/libvirt/qemu/capabilities "$S/cache/qemu/"
    fi
    : >"$S/etc/.koala-node"
  fi
}

start_daemons() { # NAME
  if pid_alive "$(pid_of "$R/libvirtd.pid")" && pid_alive "$(pid_of "$R/virtlogd.pid")" && [ -S "$SOCK" ]; then return 0; fi
  # A half-started node (one daemon died): stop the other, start both afresh. libvirtd finds
  # running guests again (its state dirs are the same); their console logs ended with virtlogd.
  kill_pidfile "$R/libvirtd.pid"; kill_pidfile "$R/virtlogd.pid"
  rm -f "$R/libvirt/libvirt-sock" "$R/libvirt/libvirt-sock-ro" "$R/libvirt/libvirt-admin-sock" "$R/libvirt/virtlogd-sock" "$R/libvirt/virtlogd-admin-sock"
  ip netns exec "$1" unshare --mount --propagation slave -- "$SELF" __inner "$1" </dev/null >>"$S/log/start.log" 2>&1 8>&- \
    || die "could not start libvirtd/virtlogd in $1 (see $S/log)"
  local i
  for i in $(seq 1 150); do
    if [ -S "$SOCK" ] && virsh -q -c "$URI" version >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "libvirtd of $1 does not answer on $SOCK (see $S/log/libvirtd.log)"
}

start_relay() { # NAME TARGET
  local ns=$1 target=$2 hp np
  hp=$(pid_of "$R/iscsi-host.pid"); np=$(pid_of "$R/iscsi-ns.pid")
  if pid_alive "$hp" && pid_alive "$np"; then return 0; fi
  kill_pidfile "$R/iscsi-host.pid"; kill_pidfile "$R/iscsi-ns.pid"
  rm -f "$R/iscsi.sock"
  setsid socat -lf "$R/iscsi-host.log" UNIX-LISTEN:"$R/iscsi.sock",fork,mode=600 TCP:"$target" </dev/null >/dev/null 2>&1 8>&- &
  echo $! >"$R/iscsi-host.pid"
  setsid ip netns exec "$ns" socat -lf "$R/iscsi-ns.log" TCP-LISTEN:3260,bind=127.0.0.1,reuseaddr,fork UNIX-CONNECT:"$R/iscsi.sock" </dev/null >/dev/null 2>&1 8>&- &
  echo $! >"$R/iscsi-ns.pid"
  local i
  for i in $(seq 1 50); do
    if [ -S "$R/iscsi.sock" ] && ip netns exec "$ns" ss -Hltn 'sport = :3260' | grep -q .; then return 0; fi
    sleep 0.1
  done
  die "the iSCSI relay of $ns did not start (see $R/iscsi-*.log)"
}

ensure_segment() { # SEG BR
  local seg=$1 br=$2
  if ! ns_exists "$seg"; then
    ip netns add "$seg"
    mkdir -p "$SEG_BASE/$seg"
    : >"$SEG_BASE/$seg/created-by-koala"
  fi
  ip -n "$seg" link set lo up
  ip -n "$seg" link show "$br" >/dev/null 2>&1 || ip -n "$seg" link add "$br" type bridge
  ip -n "$seg" link set "$br" up
}

ensure_uplink() { # NAME SEG BR IF
  local ns=$1 seg=$2 br=$3 ifn=$4 peer
  peer=$(peer_name "$ns")
  ensure_segment "$seg" "$br"
  if ! ip -n "$ns" link show "$ifn" >/dev/null 2>&1; then
    ip -n "$seg" link del "$peer" 2>/dev/null || true # left from an earlier life of this node
    ip -n "$ns" link add "$ifn" type veth peer name "$peer" netns "$seg"
  fi
  ip -n "$seg" link set "$peer" master "$br"
  ip -n "$seg" link set "$peer" up
  ip -n "$ns" link set "$ifn" up
  printf 'SEGMENT_NS=%s\nSEGMENT_BRIDGE=%s\nUPLINK=%s\nUPLINK_PEER=%s\n' "$seg" "$br" "$ifn" "$peer" >"$R/uplink"
}

ensure_public() { # NAME PUB IF ROUTER_CIDR
  local ns=$1 pub=$2 ifn=$3 router=$4 peer br=koala-inet
  peer=$(peer_name "$ns" p)
  ensure_segment "$pub" "$br"
  local have; have=$(ip -n "$pub" -o -4 addr show dev "$br")
  [[ $have == *" inet $router "* ]] || ip -n "$pub" addr add "$router" dev "$br"
  if ! ip -n "$ns" link show "$ifn" >/dev/null 2>&1; then
    ip -n "$pub" link del "$peer" 2>/dev/null || true
    ip -n "$ns" link add "$ifn" type veth peer name "$peer" netns "$pub"
  fi
  ip -n "$pub" link set "$peer" master "$br"
  ip -n "$pub" link set "$peer" up
  ip -n "$ns" link set "$ifn" up
  ip -n "$ns" route replace "$(network_of "$router")" dev "$ifn"
  ip -n "$ns" route replace default via "${router%/*}" dev "$ifn"
  printf 'PUBLIC_NS=%s\nPUBLIC_BRIDGE=%s\nPUBLIC_IF=%s\nPUBLIC_PEER=%s\nPUBLIC_ROUTER=%s\n' "$pub" "$br" "$ifn" "$peer" "$router" >"$R/public"
}

network_of() { # A.B.C.D/N -> its network A.B.C.D/N
  local a b c d v
  IFS=. read -r a b c d <<<"${1%/*}"
  v=$(( (a << 24 | b << 16 | c << 8 | d) & (0xffffffff << (32 - ${1#*/})) & 0xffffffff ))
  printf '%d.%d.%d.%d/%d\n' $((v >> 24)) $((v >> 16 & 255)) $((v >> 8 & 255)) $((v & 255)) "${1#*/}"
}

print_status() { # NAME
  printf 'NETNS=%s\nRUN_DIR=%s\nSTATE_DIR=%s\nLIBVIRT_SOCKET=%s\nLIBVIRT_URI=%s\n' "$1" "$R" "$S" "$SOCK" "$URI"
  [ -f "$R/iscsi-ns.pid" ] && printf 'ISCSI_PORTAL=127.0.0.1:3260\n'
  [ -f "$R/uplink" ] && cat "$R/uplink"
  [ -f "$R/public" ] && cat "$R/public"
  return 0
}

cmd_up() {
  local name=$1; shift
  local seg='' br=koala-seg ifn=koala-up0 iscsi=127.0.0.1:3260 pub='' pubif=koala-pub0 router=198.51.100.1/24
  while (($#)); do
    case $1 in
      --uplink-to) seg=${2:?}; shift 2 ;;
      --segment-bridge) br=${2:?}; shift 2 ;;
      --uplink-name) ifn=${2:?}; shift 2 ;;
      --iscsi) iscsi=${2:?}; shift 2 ;;
      --no-iscsi) iscsi=''; shift ;;
      --public-to) pub=${2:?}; shift 2 ;;
      --public-if) pubif=${2:?}; shift 2 ;;
      --public-router) router=${2:?}; shift 2 ;;
      *) usage ;;
    esac
  done
  check_name "$name" NAME
  if [ -n "$seg" ]; then check_name "$seg" SEGMENT_NS; [ "$seg" != "$name" ] || die "the segment cannot be the node's own namespace"; fi
  check_ifname "$br" --segment-bridge; check_ifname "$ifn" --uplink-name; check_ifname "$pubif" --public-if
  if [ -n "$pub" ]; then
    check_name "$pub" PUBLIC_NS
    [ "$pub" != "$name" ] && [ "$pub" != "$seg" ] || die "the public namespace must differ from the node's and the segment's"
    [ "$pubif" != "$ifn" ] || die "--public-if must differ from --uplink-name"
  fi
  [[ $router =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}/([89]|[12][0-9]|30)$ ]] || die "--public-router must be A.B.C.D/N (N 8-30), got '$router'"
  [ -z "$iscsi" ] || [[ $iscsi =~ ^[0-9.]+:[0-9]+$ ]] || die "--iscsi must be HOST:PORT, got '$iscsi'"
  for c in ip unshare socat libvirtd virtlogd virsh sysctl ss flock; do command -v "$c" >/dev/null || die "$c is missing (deploy/scripts/host-services.sh installs it)"; done
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
  node_paths "$name"
  lock
  ns_exists "$name" || ip netns add "$name"
  ip -n "$name" link set lo up
  ip netns exec "$name" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$name" sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null \
    || log "net.bridge.bridge-nf-call-iptables is not available (no br_netfilter): security groups will not filter bridged traffic"
  prepare_dirs
  [ -z "$seg" ] || ensure_uplink "$name" "$seg" "$br" "$ifn"
  [ -z "$pub" ] || ensure_public "$name" "$pub" "$pubif" "$router"
  [ -z "$iscsi" ] || start_relay "$name" "$iscsi"
  start_daemons "$name"
  print_status "$name"
}

kill_pidfile() { # FILE: TERM, then KILL after 5 s
  local pid; pid=$(pid_of "$1")
  pid_alive "$pid" || { rm -f "$1"; return 0; }
  kill "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
  pid_alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

kill_netns_pids() { # NAME
  local pids i
  pids=$(ip netns pids "$1" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null || true
  for i in $(seq 1 50); do
    pids=$(ip netns pids "$1" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  kill -9 $pids 2>/dev/null || true
  for i in $(seq 1 50); do [ -n "$(ip netns pids "$1" 2>/dev/null)" ] || return 0; sleep 0.1; done
  log "processes still in $1: $(ip netns pids "$1" | tr '\n' ' ')"
}

maybe_remove_segment() { # SEG BR
  local seg=$1 br=$2
  [ -f "$SEG_BASE/$seg/created-by-koala" ] || return 0
  ns_exists "$seg" || { rm -rf "${SEG_BASE:?}/$seg"; return 0; }
  if [ -z "$(ip -n "$seg" -o link show master "$br" 2>/dev/null)" ]; then remove_segment "$seg"; fi
}

remove_segment() { # SEG
  local seg=$1
  if ns_exists "$seg"; then
    kill_netns_pids "$seg"
    # Bridges and veths go with the namespace, but delete them now so that they are gone on return.
    local l
    for l in $(ip -n "$seg" -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      [ "$l" = lo ] || ip -n "$seg" link del "$l" 2>/dev/null || true
    done
    ip netns del "$seg"
  fi
  rm -rf "${SEG_BASE:?}/$seg"; rmdir "$SEG_BASE" "$(dirname "$SEG_BASE")" 2>/dev/null || true
}

cmd_down() {
  local name=$1
  check_name "$name" NAME
  node_paths "$name"
  lock
  local d n seg='' br='' peer='' pub='' pbr='' ppeer=''
  if [ -f "$R/uplink" ]; then
    seg=$(sed -n 's/^SEGMENT_NS=//p' "$R/uplink"); br=$(sed -n 's/^SEGMENT_BRIDGE=//p' "$R/uplink"); peer=$(sed -n 's/^UPLINK_PEER=//p' "$R/uplink")
  fi
  if [ -f "$R/public" ]; then
    pub=$(sed -n 's/^PUBLIC_NS=//p' "$R/public"); pbr=$(sed -n 's/^PUBLIC_BRIDGE=//p' "$R/public"); ppeer=$(sed -n 's/^PUBLIC_PEER=//p' "$R/public")
  fi
  # Through libvirt first, so it tears down what it made (QEMU, taps, dnsmasq, bridges, rules).
  if pid_alive "$(pid_of "$R/libvirtd.pid")" && [ -S "$SOCK" ]; then
    for d in $(timeout 20 virsh -q -c "$URI" list --name 2>/dev/null || true); do timeout 30 virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1 || true; done
    for n in $(timeout 20 virsh -q -c "$URI" net-list --name 2>/dev/null || true); do timeout 30 virsh -q -c "$URI" net-destroy "$n" >/dev/null 2>&1 || true; done
  fi
  kill_pidfile "$R/libvirtd.pid"
  kill_pidfile "$R/virtlogd.pid"
  kill_pidfile "$R/iscsi-ns.pid"
  kill_pidfile "$R/iscsi-host.pid"
  if ns_exists "$name"; then
    kill_netns_pids "$name"
    local l
    for l in $(ip -n "$name" -o link show 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      [ "$l" = lo ] || ip -n "$name" link del "$l" 2>/dev/null || true
    done
    ip netns del "$name"
  fi
  if [ -n "$seg" ] && ns_exists "$seg"; then
    [ -z "$peer" ] || ip -n "$seg" link del "$peer" 2>/dev/null || true
    maybe_remove_segment "$seg" "$br"
  fi
  if [ -n "$pub" ] && ns_exists "$pub"; then
    [ -z "$ppeer" ] || ip -n "$pub" link del "$ppeer" 2>/dev/null || true
    maybe_remove_segment "$pub" "$pbr"
  fi
  # The daemons' mount namespace died with its last process; its bind mounts with it.
  rm -rf "${RUN_BASE:?}/$name" "${STATE_BASE:?}/$name"
  rmdir "$RUN_BASE" "$STATE_BASE" "$SEG_BASE" 2>/dev/null || true
  rmdir "$(dirname "$RUN_BASE")" 2>/dev/null || true # /run/koala, when nothing else is in it
}

cmd_segment_down() {
  check_name "$1" SEGMENT_NS
  lock
  remove_segment "$1"
}

cmd_status() {
  check_name "$1" NAME
  node_paths "$1"
  ns_exists "$1" && pid_alive "$(pid_of "$R/libvirtd.pid")" && [ -S "$SOCK" ] || { log "node $1 is not up"; exit 1; }
  print_status "$1"
}

[ $# -ge 2 ] || usage
[ "$(id -u)" = 0 ] || die "must run as root"
cmd=$1; shift
case $cmd in
  up) cmd_up "$@" ;;
  down) [ $# = 1 ] || usage; cmd_down "$1" ;;
  segment-down) [ $# = 1 ] || usage; cmd_segment_down "$1" ;;
  status) [ $# = 1 ] || usage; cmd_status "$1" ;;
  __inner) inner "$1" ;;
  *) usage ;;
esac
