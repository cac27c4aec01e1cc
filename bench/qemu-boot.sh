#!/usr/bin/env bash
# A whole PXE boot, side by side: the same QEMU BIOS guest (QEMU's iPXE ROM → DHCP → HTTP boot
# script → kernel + initrd → test/vm/init, which reports over HTTP and powers off) booted from
# edgeboot and from a reference built from dnsmasq (DHCP + TFTP) and nginx (HTTP, sendfile), in
# the topology of the VM tests (test/helpers/boot-lab.ts), built twice: for each server a bridge
# in a namespace, the server at 10.77.0.1 with radvd, the guest on a tap. Both servers start
# once and keep running, as on a site; one boot each warms them up (reported apart: a fresh
# Node process compiles its routes on first use), then RUNS boots each, in rotation. Prints
# every boot's seconds from QEMU's start to the report (the console line) and to the
# power-off, the medians and the ratio.
#
#   sudo bench/qemu-boot.sh              # 3 runs each
#   RUNS=5 sudo -E bench/qemu-boot.sh
#   PCAP_DIR=/tmp/boots sudo -E bench/qemu-boot.sh   # also a capture of each boot (tcpdump)
#
# The reference is configured as well as it can be: no ping before an offer (--no-ping), and
# 175.176 (no-pxedhcp) for iPXE, so it saves the same 3 s edgeboot saves. Its boot script is a
# static file; edgeboot's goes through /boot.ipxe and /ipxe (one more HTTP round trip, and a
# store transaction). Needs root, qemu-system-x86, ipxe-qemu, linux-image-amd64, busybox-static,
# cpio, kmod, radvd, dnsmasq-base, nginx, curl and dist/ built. All traffic stays inside the
# namespaces made here (ebqb-*-$$), removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MAC=52:54:00:eb:0b:01
SRV=10.77.0.1
namespaces=()
for tool in qemu-system-x86_64 dnsmasq nginx radvd curl cpio; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)" >&2; exit 2; }
done
[ -f dist/main.js ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 2; }

work=$(mktemp -d)
cleanup() {
  exec 2>/dev/null  # no "Killed" notices for the servers stopped here
  for ns in "${namespaces[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
srv_ns() { echo "ebqb-$1-srv-$$"; }
sw_ns() { echo "ebqb-$1-sw-$$"; }
in_srv() { local who=$1; shift; ip netns exec "$(srv_ns "$who")" "$@"; }

# The network of one server: a switch namespace with br0, the server's namespace on it, radvd.
network() {
  local sw srv; sw=$(sw_ns "$1") srv=$(srv_ns "$1")
  ip netns add "$sw"; namespaces+=("$sw"); ip netns add "$srv"; namespaces+=("$srv")
  ip -n "$sw" link set lo up; ip -n "$srv" link set lo up
  ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0; ip -n "$sw" link set br0 up
  ip -n "$srv" link add eth0 type veth peer name v-srv netns "$sw"
  ip -n "$sw" link set v-srv master br0; ip -n "$sw" link set v-srv up
  ip -n "$srv" addr add "$SRV/24" dev eth0; ip -n "$srv" link set eth0 up
  printf 'interface eth0 {\n AdvSendAdvert on;\n MinRtrAdvInterval 3;\n MaxRtrAdvInterval 10;\n AdvDefaultLifetime 0;\n prefix fd77::/64 { AdvOnLink on; AdvAutonomous on; };\n};\n' >"$work/radvd.conf"
  (ip netns exec "$srv" radvd --nodaemon --config "$work/radvd.conf" --pidfile "$work/radvd-$1.pid" --logmethod none &)
}

test/vm/build-initramfs.sh "$work/images" >/dev/null
network edgeboot
network reference

# edgeboot: full DHCP, TFTP, HTTP; the guest registered with a profile over the same files.
mkdir -p "$work/profiles" "$work/eb"
cat >"$work/profiles/bench.yaml" <<EOF
name: bench
description: the busybox initramfs of test/vm, which reports and powers off
artifacts:
  kernel: { url: "file://$work/images/vmlinuz" }
  initramfs: { url: "file://$work/images/initramfs.img" }
boot:
  kernel: kernel
  initrds: [initramfs]
  args: console=ttyS0 quiet eb.role=report eb.events={{ machine.eventsUrl }} eb.after=poweroff
EOF
cat >"$work/edgeboot.json" <<EOF
{ "server": { "dataDir": "$work/eb" }, "store": { "url": "sqlite:$work/eb/edgeboot.db" },
  "http": { "listen": "0.0.0.0:8080" }, "tftp": { "listen": "0.0.0.0:69" }, "log": { "level": "warn" },
  "profiles": { "dirs": ["$work/profiles"] },
  "dhcp": { "mode": "full", "subnets": [ { "cidr": "10.77.0.0/24", "pool": ["10.77.0.160", "10.77.0.199"],
            "router": "$SRV", "dns": ["$SRV"], "domain": "bench.test", "leaseSeconds": 600 } ] } }
EOF

# The reference: dnsmasq for DHCP and TFTP, nginx for a static script and the same two files.
mkdir -p "$work/www" "$work/nginx"
ln -s "$work/images/vmlinuz" "$work/www/vmlinuz"; ln -s "$work/images/initramfs.img" "$work/www/initramfs.img"
cat >"$work/www/boot.ipxe" <<EOF
#!ipxe
kernel http://$SRV:8080/vmlinuz initrd=initramfs console=ttyS0 quiet eb.role=report eb.events=http://$SRV:8080/report eb.after=poweroff
initrd --name initramfs http://$SRV:8080/initramfs.img
boot
EOF
cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
user root;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 256; }
http {
  access_log $work/nginx/access.log;
  sendfile on;
  default_type application/octet-stream;
  server {
    listen $SRV:8080;
    root $work/www;
    location = /report { return 201; }
  }
}
EOF

wait_http() { for _ in $(seq 100); do in_srv "$1" curl -fs -o /dev/null "$2" && return 0; sleep 0.1; done; echo "not serving: $2" >&2; return 1; }

start_edgeboot() {
  (in_srv edgeboot node dist/main.js serve --config "$work/edgeboot.json" >"$work/edgeboot.log" 2>&1 &)
  wait_http edgeboot "http://127.0.0.1:8080/readyz"
  local token; token=$(cat "$work/eb/admin-token")
  in_srv edgeboot curl -fsS -o /dev/null -X PUT -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"profile":"bench"}' "http://127.0.0.1:8080/api/v1/machines/$MAC"
}
start_reference() {
  (in_srv reference sh -c "dnsmasq --no-daemon --conf-file=/dev/null --port=0 --no-resolv --no-hosts --no-ping \
    --interface=eth0 --bind-interfaces --dhcp-range=10.77.0.160,10.77.0.199,255.255.255.0,10m \
    --dhcp-option=3,$SRV --dhcp-option=6,$SRV --dhcp-userclass=set:ipxe,iPXE \
    --dhcp-boot=tag:ipxe,http://$SRV:8080/boot.ipxe --dhcp-boot=tag:!ipxe,undionly.kpxe \
    --dhcp-option=tag:ipxe,encap:175,176,1 --enable-tftp --tftp-root=/usr/lib/ipxe \
    --dhcp-leasefile=$work/dnsmasq.leases --pid-file=$work/dnsmasq.pid --user=root --log-facility=$work/dnsmasq.log 2>>$work/dnsmasq.log & \
    exec nginx -p $work/nginx -c $work/nginx/nginx.conf -e $work/nginx/error.log" &)
  wait_http reference "http://$SRV:8080/boot.ipxe"
  for _ in $(seq 50); do grep -q 'DHCP, IP range' "$work/dnsmasq.log" 2>/dev/null && return 0; sleep 0.1; done
  echo "dnsmasq did not start: $(cat "$work/dnsmasq.log")" >&2; return 1
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# One boot of a guest on the network of server $1: prints "<ms to the report> <ms to power-off>".
boot_once() {
  local sw; sw=$(sw_ns "$1")
  local con="$work/console.log" sercon="$work/sercon"
  : >"$con"; printf '\xf8\x03' >"$sercon"
  ip -n "$sw" tuntap add dev tap0 mode tap; ip -n "$sw" link set tap0 master br0; ip -n "$sw" link set tap0 up
  local cap=
  if [ -n "${PCAP_DIR:-}" ]; then
    mkdir -p "$PCAP_DIR"
    ip netns exec "$sw" tcpdump -i br0 -n -s 256 --immediate-mode -U -w "$PCAP_DIR/$2.pcap" 2>/dev/null & cap=$!
    sleep 1
  fi
  local t0 report=0; t0=$(now_ms)
  ip netns exec "$sw" timeout -s KILL 150 qemu-system-x86_64 -accel tcg -machine pc -m 512 -smp 1 -nodefaults \
    -no-user-config -display none -monitor none -serial "file:$con" -fw_cfg "name=etc/sercon-port,file=$sercon" 2>>"$work/qemu.log" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device "virtio-net-pci,netdev=n0,mac=$MAC,bootindex=1" &
  local qemu=$!
  while kill -0 "$qemu" 2>/dev/null; do
    if [ "$report" = 0 ] && grep -q 'eb-init: reported booted' "$con"; then report=$(( $(now_ms) - t0 )); fi
    sleep 0.05
  done
  wait "$qemu" || true
  local off=$(( $(now_ms) - t0 ))
  [ "$report" = 0 ] && grep -q 'eb-init: reported booted' "$con" && report=$off
  ip -n "$sw" link del tap0
  [ -z "$cap" ] || { sleep 0.2; kill "$cap"; wait "$cap" 2>/dev/null || true; }
  [ "$report" != 0 ] || { echo "no report in this boot; console tail:" >&2; tail -20 "$con" >&2; return 1; }
  echo "$report $off"
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
start_edgeboot
start_reference
for server in edgeboot reference; do
  read -r r o < <(boot_once "$server" "$server-warm-up")
  awk -v s="$server" -v r="$r" -v o="$o" 'BEGIN { printf "warm-up  %-9s  report %6.2f s  power-off %6.2f s\n", s, r / 1000, o / 1000 }'
done
declare -A report off
for run in $(seq "$RUNS"); do
  for server in edgeboot reference; do
    read -r r o < <(boot_once "$server" "$server-$run")
    report[$server]+="$r "; off[$server]+="$o "
    awk -v n="$run" -v s="$server" -v r="$r" -v o="$o" 'BEGIN { printf "run %d    %-9s  report %6.2f s  power-off %6.2f s\n", n, s, r / 1000, o / 1000 }'
  done
done
eb=$(tr ' ' '\n' <<<"${report[edgeboot]}" | grep . | median); ref=$(tr ' ' '\n' <<<"${report[reference]}" | grep . | median)
ebo=$(tr ' ' '\n' <<<"${off[edgeboot]}" | grep . | median); refo=$(tr ' ' '\n' <<<"${off[reference]}" | grep . | median)
awk -v n="$RUNS" -v a="$eb" -v b="$ref" -v c="$ebo" -v d="$refo" 'BEGIN {
  printf "\nmedian of %d: to the report  edgeboot %.2f s, dnsmasq+nginx %.2f s, edgeboot/reference %.3f\n", n, a / 1000, b / 1000, a / b
  printf "             to power-off   edgeboot %.2f s, dnsmasq+nginx %.2f s, edgeboot/reference %.3f\n", c / 1000, d / 1000, c / d
}'
