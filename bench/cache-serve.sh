#!/usr/bin/env bash
# Serving a cached rootfs to many machines at once, side by side with nginx (sendfile) serving
# the same file, on loopback: CLIENTS concurrent curl downloads of a SIZE_MIB file, RUNS times
# each in rotation, aggregate throughput medians and their ratio; edgeboot's peak RSS
# (VmHWM, reset between phases) while filling the cache, serving one client and serving the
# concurrent runs; and the upstream bytes when
# MACHINES machines ask edgeboot at once for the same uncached file (goal: one copy).
#
#   bench/cache-serve.sh                          # 1 GiB, 50 clients, 3 runs, 10 machines
#   SIZE_MIB=256 CLIENTS=20 RUNS=5 bench/cache-serve.sh
#
# nginx is also the upstream edgeboot's cache fills from (its access log counts the bytes).
# Needs nginx, curl and dist/ built. Traffic stays on 127.0.0.1; everything is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
CLIENTS=${CLIENTS:-50}
RUNS=${RUNS:-3}
MACHINES=${MACHINES:-10}
EB=18280 NGX=18281
for tool in nginx curl; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
[ -f dist/main.js ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 2; }

work=$(mktemp -d)
chmod 755 "$work"   # nginx workers run as another user
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/www" "$work/nginx" "$work/profiles" "$work/eb"
head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$work/www/rootfs.img"
cp "$work/www/rootfs.img" "$work/www/fresh.img"   # the uncached one of the upstream test
want=$(sha256sum <"$work/www/rootfs.img" | cut -d' ' -f1)

cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log $work/nginx/access.log;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server { listen 127.0.0.1:$NGX; root $work/www; }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)

cat >"$work/profiles/bench.yaml" <<EOF
name: bench
description: a rootfs from the local upstream, through the cache
artifacts:
  rootfs: { url: "http://127.0.0.1:$NGX/rootfs.img", sha256: $want }
  fresh: { url: "http://127.0.0.1:$NGX/fresh.img", sha256: $want }
boot:
  kernel: rootfs
  initrds: []
  args: console=ttyS0
EOF
EDGEBOOT_SERVER_DATA_DIR="$work/eb" EDGEBOOT_STORE_URL="sqlite:$work/eb/edgeboot.db" EDGEBOOT_CACHE_DIR="$work/eb/cache" \
  EDGEBOOT_PROFILES_DIRS="$work/profiles" EDGEBOOT_DHCP_MODE=off EDGEBOOT_TFTP_ENABLED=false EDGEBOOT_LOG_LEVEL=warn \
  node dist/main.js serve --set "http.listen=127.0.0.1:$EB" >"$work/eb.log" 2>&1 &
eb_pid=$!
pids+=($eb_pid)
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$EB/readyz" && curl -fs -o /dev/null "http://127.0.0.1:$NGX/rootfs.img" -r 0-0 && break; sleep 0.1; done
token=$(cat "$work/eb/admin-token")
node dist/main.js cache pull "http://127.0.0.1:$NGX/rootfs.img" --sha256 "$want" --server "http://127.0.0.1:$EB" --token "$token" >/dev/null
hwm() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$eb_pid/status"; }
# Peak RSS from now on (Linux >= 4.0: "5" resets VmHWM), so the cache fill's peak is not counted.
reset_hwm() { echo 5 >"/proc/$eb_pid/clear_refs"; }
hwm0=$(hwm)
reset_hwm

# N concurrent downloads; prints the aggregate MiB/s. Every body is checked by size.
fetch_all() {
  local url=$1 n=$2 t0 t1 bad=0
  t0=$(date +%s%N)
  local curls=()
  for i in $(seq "$n"); do curl -fsS -o /dev/null -w '%{size_download}\n' "$url" >"$work/size.$i" & curls+=($!); done
  for p in "${curls[@]}"; do wait "$p" || true; done
  t1=$(date +%s%N)
  for i in $(seq "$n"); do [ "$(cat "$work/size.$i")" = $((SIZE_MIB * 1048576)) ] || bad=$((bad + 1)); done
  [ "$bad" = 0 ] || echo "$bad of $n downloads were short" >&2
  awk -v n="$n" -v s="$SIZE_MIB" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f\n", n * s / (ns / 1e9) }'
}

one=$(fetch_all "http://127.0.0.1:$EB/assets/bench/rootfs" 1)
hwm1=$(hwm)
reset_hwm
declare -A rate
for run in $(seq "$RUNS"); do
  for server in edgeboot nginx; do
    url="http://127.0.0.1:$NGX/rootfs.img"
    [ "$server" = edgeboot ] && url="http://127.0.0.1:$EB/assets/bench/rootfs"
    r=$(fetch_all "$url" "$CLIENTS")
    rate[$server]+="$r "
    printf 'run %d  %-8s  %d clients  %6d MiB/s\n' "$run" "$server" "$CLIENTS" "$r"
  done
done
hwmN=$(hwm)
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
e=$(median <<<"${rate[edgeboot]}"); n=$(median <<<"${rate[nginx]}")
awk -v e="$e" -v n="$n" -v c="$CLIENTS" -v r="$RUNS" 'BEGIN { printf "\nmedian of %d, %d clients: edgeboot %d MiB/s, nginx %d MiB/s, edgeboot/nginx %.2f\n", r, c, e, n, e / n }'
echo "edgeboot peak RSS: ${hwm0} MiB filling the cache, then ${hwm1} MiB serving 1 client (${one} MiB/s), ${hwmN} MiB serving ${CLIENTS} concurrent clients"

# The same uncached file asked by MACHINES machines at once: how many bytes left the upstream?
before=$(awk '$7 == "/fresh.img" { s += $10 } END { print s + 0 }' "$work/nginx/access.log")
fetch_all "http://127.0.0.1:$EB/assets/bench/fresh" "$MACHINES" >/dev/null
sleep 0.5
after=$(awk '$7 == "/fresh.img" { s += $10 } END { print s + 0 }' "$work/nginx/access.log")
awk -v b=$((after - before)) -v s=$((SIZE_MIB * 1048576)) -v m="$MACHINES" 'BEGIN { printf "%d machines asking for one uncached %d MiB file: %.2f copies from the upstream (%d bytes)\n", m, s / 1048576, b / s, b }'
