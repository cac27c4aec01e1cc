#!/usr/bin/env bash
# DHCP throughput of edgeboot (dhcp.mode: full) beside dnsmasq and Kea, measured with perfdhcp
# (Debian's kea-admin package) in one network-namespace topology and at the same rates:
#
#   [client ns] perfdhcp -l <veth-c> 10.90.0.2/16  <== veth ==>  10.90.0.1/16 <veth-s> [server ns]
#
# perfdhcp plays a relay: it broadcasts from port 67 with giaddr 10.90.0.2 and hops 1, and the
# servers answer giaddr:67. Every server gets the same subnet 10.90.0.0/16, the same pool
# 10.90.1.0-10.90.200.255 (51200 addresses), a 3600 s lease and router/DNS/domain options, and
# persists its leases under a temp dir: edgeboot in SQLite, Kea in its memfile CSV, dnsmasq in
# its lease file. Each (rate, server) run starts a fresh server with empty state.
#
# Needs root (namespaces), perfdhcp, a built dist/ (npx tsc -p tsconfig.json) with the pktinfo
# addon; dnsmasq and kea-dhcp4 are benchmarked when installed and skipped otherwise.
# Traffic stays inside the two namespaces this script makes; both are deleted, and every server
# it started is killed, on exit (also on error or Ctrl-C).
#
# Environment:
#   RATES="200 1000 2000 4000 8000"  exchanges (DORA) per second asked of perfdhcp
#   DURATION=10                      seconds of sending per run (perfdhcp -p)
#   CLIENTS=50000                    simulated clients (perfdhcp -R); keep below the pool size
#   SERVERS="edgeboot dnsmasq kea"   which servers, in this order
#   PROFILE=1                        run edgeboot under node --cpu-prof; profiles kept in PROFILE_DIR
#   PROFILE_DIR=/tmp/edgeboot-dhcp-profiles  where the .cpuprofile files go
#   LOG_LEVEL=warn                   edgeboot's log.level (its default, info, logs every reply)
#   KEEP=1                           keep the work dir (logs, perfdhcp outputs, lease files)
#   RESULTS=file.md                  also write the table there
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

RATES=${RATES:-"200 1000 2000 4000 8000"}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-50000}
SERVERS=${SERVERS:-"edgeboot dnsmasq kea"}
PROFILE=${PROFILE:-0}
PROFILE_DIR=${PROFILE_DIR:-/tmp/edgeboot-dhcp-profiles}
KEEP=${KEEP:-0}
LOG_LEVEL=${LOG_LEVEL:-warn}

die() { echo "dhcp-perfdhcp: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "needs root (it makes network namespaces)"
command -v perfdhcp >/dev/null || die "perfdhcp not found: apt-get install kea-admin"
[[ -f dist/main.js ]] || die "dist/main.js missing: npx tsc -p tsconfig.json"
[[ -f build/Release/udp_pktinfo.node ]] || die "build/Release/udp_pktinfo.node missing: npm ci (or npx node-gyp rebuild)"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -ge 1 && $DURATION -le 60 ]] || die "DURATION must be 1..60 seconds"
[[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -ge 1 && $CLIENTS -le 51200 ]] || die "CLIENTS must be 1..51200 (the pool size)"
for r in $RATES; do [[ $r =~ ^[0-9]+$ && $r -ge 1 && $r -le 50000 ]] || die "bad rate $r"; done

# Unique names: two runs (or another person's namespaces) never collide. Interface names ≤ 15.
tag=$(printf '%x%04x' $$ $RANDOM)
NS_S="ebbench-$tag-srv"
NS_C="ebbench-$tag-cli"
IF_S="ebb${tag}s"
IF_C="ebb${tag}c"
SERVER_IP=10.90.0.1
CLIENT_IP=10.90.0.2
POOL_FIRST=10.90.1.0
POOL_LAST=10.90.200.255
LEASE_SECONDS=3600
work=$(mktemp -d /tmp/edgeboot-dhcp-bench.XXXXXX)
pids=()
made_s=0
made_c=0
made_l=0

cleanup() {
  local rc=$?
  set +e
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # Only the namespaces this run made (deleting one also deletes its end of the veth pair).
  [[ $made_c == 1 ]] && ip netns del "$NS_C" 2>/dev/null
  [[ $made_s == 1 ]] && ip netns del "$NS_S" 2>/dev/null
  # A veth pair still in this namespace (a failure before it moved): delete it too.
  [[ $made_l == 1 ]] && ip link del "$IF_S" 2>/dev/null
  if [[ $KEEP == 1 ]]; then echo "work dir kept: $work" >&2; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS_S" || die "cannot make namespace $NS_S"
made_s=1
ip netns add "$NS_C" || die "cannot make namespace $NS_C"
made_c=1
ip link add "$IF_S" type veth peer name "$IF_C"
made_l=1
ip link set "$IF_S" netns "$NS_S"
ip link set "$IF_C" netns "$NS_C"
ip -n "$NS_S" addr add "$SERVER_IP/16" dev "$IF_S"
ip -n "$NS_C" addr add "$CLIENT_IP/16" dev "$IF_C"
for ns in "$NS_S" "$NS_C"; do ip -n "$ns" link set lo up; done
ip -n "$NS_S" link set "$IF_S" up
ip -n "$NS_C" link set "$IF_C" up
# No default route in either namespace: nothing can leave them.

in_c() { ip netns exec "$NS_C" "$@"; }

# CPU seconds (user+system) a process has used so far.
cpu_seconds() {
  local hz
  hz=$(getconf CLK_TCK)
  awk -v hz="$hz" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}

# Runs a command in the server namespace, its output to $1/log; sets $srv_pid to the server's own
# pid. `ip netns exec` (not nsenter) because it also mounts that namespace's /sys, where edgeboot
# reads interface indexes; it forks, so the server writes its pid before exec'ing.
launch() {
  local dir=$1
  shift
  ip netns exec "$NS_S" sh -c 'echo $$ >"$0"; exec "$@"' "$dir/server.pid" "$@" >"$dir/log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do [[ -s $dir/server.pid ]] && break; sleep 0.05; done
  [[ -s $dir/server.pid ]] || die "server did not start: $(cat "$dir/log")"
  srv_pid=$(cat "$dir/server.pid")
  pids+=("$srv_pid")
}

# Starts one server in the server namespace; sets $srv_pid. The state lives in $2.
start_server() {
  local name=$1 dir=$2
  case $name in
    edgeboot)
      local subnets
      subnets=$(printf '[{"cidr":"10.90.0.0/16","pool":["%s","%s"],"router":"%s","dns":["%s"],"domain":"bench.example","leaseSeconds":%d}]' \
        "$POOL_FIRST" "$POOL_LAST" "$SERVER_IP" "$SERVER_IP" "$LEASE_SECONDS")
      local node_args=()
      if [[ $PROFILE == 1 ]]; then mkdir -p "$PROFILE_DIR"; node_args=(--cpu-prof --cpu-prof-dir="$PROFILE_DIR" --cpu-prof-name="edgeboot-r${rate}-${tag}.cpuprofile"); fi
      launch "$dir" env EDGEBOOT_SERVER_DATA_DIR="$dir" EDGEBOOT_STORE_URL="sqlite:$dir/edgeboot.db" EDGEBOOT_LOG_LEVEL="$LOG_LEVEL" \
        EDGEBOOT_DHCP_MODE=full EDGEBOOT_DHCP_INTERFACES="$IF_S" EDGEBOOT_DHCP_SUBNETS="$subnets" \
        node "${node_args[@]}" dist/main.js serve --set http.listen=127.0.0.1:0
      ;;
    dnsmasq)
      # --no-ping: otherwise dnsmasq ARP/ICMP-probes each new address and waits for the
      # timeout (3 s here, nobody answers), which measures the probe, not the server.
      launch "$dir" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface="$IF_S" --bind-interfaces \
        --dhcp-range="$POOL_FIRST,$POOL_LAST,255.255.0.0,${LEASE_SECONDS}" --dhcp-lease-max=60000 --no-ping \
        --dhcp-option=option:router,"$SERVER_IP" --dhcp-option=option:dns-server,"$SERVER_IP" \
        --dhcp-option=option:domain-name,bench.example \
        --dhcp-leasefile="$dir/dnsmasq.leases" --pid-file="$dir/dnsmasq.pid"
      ;;
    kea)
      cat >"$dir/kea-dhcp4.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "$IF_S" ] },
    "lease-database": { "type": "memfile", "persist": true, "name": "$dir/kea-leases4.csv", "lfc-interval": 0 },
    "valid-lifetime": $LEASE_SECONDS,
    "subnet4": [ { "id": 1, "subnet": "10.90.0.0/16",
                   "pools": [ { "pool": "$POOL_FIRST - $POOL_LAST" } ],
                   "option-data": [ { "name": "routers", "data": "$SERVER_IP" },
                                    { "name": "domain-name-servers", "data": "$SERVER_IP" },
                                    { "name": "domain-name", "data": "bench.example" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "stderr" } ], "severity": "WARN" } ]
} }
EOF
      launch "$dir" env KEA_PIDFILE_DIR="$dir" KEA_LOCKFILE_DIR="$dir" kea-dhcp4 -c "$dir/kea-dhcp4.json"
      ;;
  esac
}

stop_server() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Ready = a DISCOVER answered: -n 1 sends one and -W waits 0.5 s for the OFFER. -r 1 matters:
# without a rate perfdhcp 2.2 keeps sending as fast as it can during the -W wait.
wait_ready() {
  local name=$1 pid=$2 dir=$3
  for _ in $(seq 40); do
    kill -0 "$pid" 2>/dev/null || { cat "$dir/log" >&2; die "$name exited at start"; }
    local out
    out=$(in_c timeout 5 perfdhcp -4 -l "$IF_C" -B -r 1 -n 1 -W 500000 -b mac=02:00:00:00:00:01 2>&1 || true)
    if grep -q '^received packets: [1-9]' <<<"$out"; then return 0; fi
    sleep 0.25
  done
  cat "$dir/log" >&2
  die "$name never answered a DISCOVER"
}

# UDP datagrams a namespace's kernel dropped because a socket's receive buffer was full.
rcvbuf_errors() {
  ip netns exec "$1" awk '/^Udp:/ { if (!h) { for (i = 2; i <= NF; i++) col[$i] = i; h = 1 } else print $col["RcvbufErrors"] }' /proc/net/snmp
}

# Leases on disk after the server stopped: distinct bound addresses.
leases_on_disk() {
  local name=$1 dir=$2
  case $name in
    edgeboot)
      if command -v sqlite3 >/dev/null; then
        sqlite3 "$dir/edgeboot.db" "SELECT count(*) FROM leases WHERE state = 'bound'"
      else
        node -e 'const D=require(process.argv[1]);const db=new D(process.argv[2],{readonly:true});console.log(db.prepare("SELECT count(*) AS n FROM leases WHERE state = ?").get("bound").n)' \
          "$ROOT/node_modules/better-sqlite3" "$dir/edgeboot.db"
      fi
      ;;
    dnsmasq) [[ -f $dir/dnsmasq.leases ]] && wc -l <"$dir/dnsmasq.leases" || echo 0 ;;
    kea) [[ -f $dir/kea-leases4.csv ]] && tail -n +2 "$dir/kea-leases4.csv" | cut -d, -f1 | sort -u | wc -l || echo 0 ;;
  esac
}

# perfdhcp's final report -> "rate do_sent do_recv do_drop ra_sent ra_recv ra_drop do_avg ra_avg do_max ra_max"
parse_perfdhcp() {
  awk '
    /^Rate:/ { rate = $2 }
    /Statistics for: DISCOVER-OFFER/ { s = "do" }
    /Statistics for: REQUEST-ACK/ { s = "ra" }
    /^sent packets:/ { sent[s] = $3 }
    /^received packets:/ { recv[s] = $3 }
    /^drops ratio:/ { drop[s] = $3 }
    /^avg delay: [0-9.]+ ms/ { avg[s] = $3 }
    /^max delay: [0-9.]+ ms/ { max[s] = $3 }
    END {
      printf "%s %d %d %s %d %d %s %s %s %s %s\n", rate + 0, sent["do"], recv["do"], (drop["do"] == "" ? "nan" : drop["do"]),
        sent["ra"], recv["ra"], (drop["ra"] == "" ? "nan" : drop["ra"]),
        (avg["do"] == "" ? "nan" : avg["do"]), (avg["ra"] == "" ? "nan" : avg["ra"]),
        (max["do"] == "" ? "nan" : max["do"]), (max["ra"] == "" ? "nan" : max["ra"])
    }' "$1"
}

available=()
for s in $SERVERS; do
  case $s in
    edgeboot) available+=(edgeboot) ;;
    dnsmasq) if command -v dnsmasq >/dev/null; then available+=(dnsmasq); else echo "dnsmasq not installed: skipped" >&2; fi ;;
    kea) if command -v kea-dhcp4 >/dev/null; then available+=(kea); else echo "kea-dhcp4 not installed: skipped (apt-get install kea-dhcp4-server)" >&2; fi ;;
    *) die "unknown server $s (edgeboot, dnsmasq, kea)" ;;
  esac
done

results="$work/results.tsv"
: >"$results"
echo "perfdhcp $(perfdhcp -v 2>&1 | awk '/VERSION/ {print $2}'), $(nproc) CPUs, ${DURATION}s per run, $CLIENTS clients, rates: $RATES" >&2
for rate in $RATES; do
  for name in "${available[@]}"; do
    dir="$work/$name-$rate"
    mkdir -p "$dir"
    start_server "$name" "$dir"
    pid=$srv_pid
    wait_ready "$name" "$pid" "$dir"
    cpu0=$(cpu_seconds "$pid")
    sq0=$(rcvbuf_errors "$NS_S")
    cq0=$(rcvbuf_errors "$NS_C")
    # -W: after the period, wait 1 s for answers in flight instead of counting them as drops.
    rc=0
    in_c timeout $((DURATION + 20)) perfdhcp -4 -l "$IF_C" -B -r "$rate" -p "$DURATION" -R "$CLIENTS" -W 1000000 \
      >"$dir/perfdhcp.out" 2>&1 || rc=$?
    # 3: some exchanges were not completed, which is what this measures.
    [[ $rc == 0 || $rc == 3 ]] || { cat "$dir/perfdhcp.out" >&2; die "perfdhcp failed ($rc) against $name at $rate/s"; }
    cpu1=$(cpu_seconds "$pid")
    sq=$(($(rcvbuf_errors "$NS_S") - sq0))
    cq=$(($(rcvbuf_errors "$NS_C") - cq0))
    rss=$(ps -o rss= -p "$pid" | tr -d ' ')
    stop_server "$pid"
    leases=$(leases_on_disk "$name" "$dir")
    read -r prate dos dor dod ras rar rad doa raa dom ram < <(parse_perfdhcp "$dir/perfdhcp.out")
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v d="$DURATION" 'BEGIN { printf "%.0f", (b - a) / d * 100 }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
      "$rate" "$name" "$prate" "$dos" "$dor" "$dod" "$ras" "$rar" "$rad" "$doa" "$raa" "$dom" "$ram" "$leases" "$cpu" "$rss" "$sq" "$cq" >>"$results"
    printf '  %-8s %6s/s: %s DISCOVERs sent, %s ACKs received, drops DO %s%% RA %s%%, server CPU %s%%, full receive buffer drops: server %s client %s\n' \
      "$name" "$rate" "$dos" "$rar" "$dod" "$rad" "$cpu" "$sq" "$cq" >&2
  done
done

# One table: rate × server, and edgeboot ÷ each reference at the same rate.
# exchanges/s = ACKs received ÷ DURATION (perfdhcp's own "Rate:" line divides by the period plus
# the -W drain second); sent/s = DISCOVERs perfdhcp managed to send ÷ DURATION; lost % = DORAs
# begun that got no ACK; latency = mean DISCOVER→OFFER + mean REQUEST→ACK.
table() {
  awk -F'\t' -v dur="$DURATION" '
    function f(x, d) { return (x == "nan" || x == "" || x == "-nan") ? "–" : sprintf("%." d "f", x) }
    function lat(a, b) { return (a == "nan" || b == "nan") ? "nan" : a + b }
    function mx(a, b) { if (a == "nan") return b; if (b == "nan") return a; return (a + 0 > b + 0) ? a : b }
    {
      n++; rate[n] = $1; name[n] = $2; dos[n] = $4; rar[n] = $8; xps[n] = $8 / dur
      dod[n] = $6; rad[n] = $9; l[n] = lat($10, $11); m[n] = mx($12, $13); leases[n] = $14; cpu[n] = $15; rss[n] = $16; sq[n] = $17; cq[n] = $18
      if ($2 == "edgeboot") { ex[$1] = xps[n]; el[$1] = l[n] }
    }
    END {
      print "| rate/s | server | sent/s | exchanges/s | lost % | drops % DO / RA | avg latency ms (DO+RA) | max ms (DO or RA) | server CPU % | UDP rcvbuf drops server / client | leases on disk | edgeboot ÷ this: exchanges/s | edgeboot ÷ this: latency |"
      print "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
      for (i = 1; i <= n; i++) {
        lost = dos[i] > 0 ? (1 - rar[i] / dos[i]) * 100 : "nan"
        r1 = "–"; r2 = "–"
        if (name[i] != "edgeboot" && (rate[i] in ex)) {
          if (xps[i] > 0) r1 = sprintf("%.2f", ex[rate[i]] / xps[i])
          if (l[i] != "nan" && el[rate[i]] != "nan" && l[i] > 0) r2 = sprintf("%.3g", el[rate[i]] / l[i])
        }
        printf "| %s | %s | %.0f | %.0f | %s | %s / %s | %s | %s | %s | %s / %s | %s | %s | %s |\n", rate[i], name[i], dos[i] / dur, xps[i], f(lost, 1),
          f(dod[i], 1), f(rad[i], 1), f(l[i], 2), f(m[i], 1), cpu[i], sq[i], cq[i], leases[i], r1, r2
      }
      print ""
      for (i = 1; i <= n; i++) if (name[i] == "edgeboot") printf "edgeboot after %s/s: RSS %.0f MiB, %s bound leases persisted in SQLite (after it stopped)\n", rate[i], rss[i] / 1024, leases[i]
    }' "$results"
}
echo
table
if [[ -n ${RESULTS:-} ]]; then table >"$RESULTS"; fi
