#!/usr/bin/env bash
# The dashboard (/ui/) on a big store: how soon the machines page and a machine's page start to
# arrive with 10,000 machines and 1,000,000 timeline events (goals: first byte under 150 ms and
# under 100 ms), beside the JSON API on the same server, and what 200 open dashboards' live
# streams (/ui/events) cost the server in memory (goal: RSS under 300 MB) and CPU while events
# are written.
#
#   bench/ui.sh                                   # 10,000 machines, 1,000,000 events, 20 runs, 200 streams
#   RUNS=50 bench/ui.sh
#   MACHINES=1000 EVENTS=100000 STREAMS=20 SSE_SECONDS=5 RUNS=5 bench/ui.sh   # a quick look
#   CPU_PROF=/tmp/ui-prof bench/ui.sh             # the server under --cpu-prof (bench/cpuprofile-top.mjs)
#
# 1. The store of a temp data dir is seeded before the server starts (bench/ui-load.mjs seed,
#    with bench/seed-store.mjs, the seeding machines-list.mjs shares): MACHINES machines as a
#    site's records look (hostname, IP, profile, labels, observed facts, every state, precache
#    progress) and EVENTS events over them as DHCP, TFTP and HTTP record a boot (dhcp-offer,
#    dhcp-ack, tftp-transfer, script-served, asset-served, with their data), interleaved in time,
#    40-160 a machine, one machine (node-5) with MAX_EVENTS (5000, the most the store keeps) and
#    one (node-5003) with 100.
# 2. edgeboot runs as `npm start` runs it (the node flags of package.json's start script) on
#    127.0.0.1:PORT, DHCP and TFTP off, log level warn, admin token from
#    EDGEBOOT_AUTH_ADMIN_TOKENS; curl logs in at /ui/login (CSRF field and cookie) into a jar.
# 3. RUNS rounds after one warm-up round (its figures are printed as "cold"), each round every
#    case once in turn, a new curl (and connection) per request: time_starttransfer (first byte)
#    and time_total, median and p95 (nearest rank). The pages: the machines page, a search
#    (q=node-12), a sort by IP descending on page 150, a state filter grouped by state, the htmx
#    rows fragment; a machine's page for node-5003 (100 events) and node-5 (5000: the newest 500
#    shown). The reference, same server: GET /api/v1/machines?limit=50 and
#    GET /api/v1/machines/<mac>/events (Bearer; its default page: the oldest 1000). Each body is
#    checked (status, machine counts, timeline steps) on the warm-up round.
# 4. STREAMS concurrent /ui/events streams (bench/ui-load.mjs sse), then RATE events a second for
#    SSE_SECONDS seconds posted by the admin API over 100 machines; every stream must have been
#    told of every machine posted to. The server's VmRSS before, with the streams open, its peak
#    while writing and after they closed, VmHWM (reset when the phase starts), and its CPU time.
#
# Needs curl, node and a built dist/ (npx tsc -p tsconfig.json). Only 127.0.0.1; every request
# has --max-time 10 and the stream phase its own deadlines; the temp dir and the server go on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
MACHINES=${MACHINES:-10000}
EVENTS=${EVENTS:-1000000}
MAX_EVENTS=${MAX_EVENTS:-5000}
STREAMS=${STREAMS:-200}
RATE=${RATE:-50}
SSE_SECONDS=${SSE_SECONDS:-20}
PORT=${PORT:-18292}
CPU_PROF=${CPU_PROF:-}
KEEP_LOG=${KEEP_LOG:-}
LOG_LEVEL=${LOG_LEVEL:-warn}
for tool in curl node awk; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
[ -f dist/main.js ] || { echo "build first: npx tsc -p tsconfig.json" >&2; exit 2; }
[ "$MACHINES" -ge 5004 ] || echo "note: MACHINES < 5004, the 100-event machine is the last one" >&2

work=$(mktemp -d)
eb_pid=
cleanup() {
  if [ -n "$eb_pid" ] && ! kill -0 "$eb_pid" 2>/dev/null; then
    status=0
    wait "$eb_pid" 2>/dev/null || status=$?
    echo "edgeboot exited early (status $status); the end of its log:" >&2
    tail -n 30 "$work/eb.log" >&2 || true
  elif [ -n "$eb_pid" ]; then
    kill "$eb_pid" 2>/dev/null || true
    wait "$eb_pid" 2>/dev/null || true
  fi
  if [ -n "$KEEP_LOG" ] && [ -f "$work/eb.log" ]; then cp "$work/eb.log" "$KEEP_LOG"; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
base="http://127.0.0.1:$PORT"
token=bench-ui-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "seeding $MACHINES machines and $EVENTS events ..."
MACHINES=$MACHINES EVENTS=$EVENTS MAX_EVENTS=$MAX_EVENTS node bench/ui-load.mjs seed "$work/eb/edgeboot.db" >"$work/seed.txt"
. "$work/seed.txt"
echo "  ${seed_seconds}s; store $(du -m "$work/eb/edgeboot.db" | cut -f1) MiB"

# The node flags of `npm start` (package.json), as every launcher passes them.
start=$(node -p "require('./package.json').scripts.start")
flags=$(sed -E 's/^node (.*) dist\/main\.js serve$/\1/' <<<"$start")
# shellcheck disable=SC2086 # the flags are words
EDGEBOOT_SERVER_DATA_DIR="$work/eb" EDGEBOOT_STORE_URL="sqlite:$work/eb/edgeboot.db" EDGEBOOT_CACHE_DIR="$work/eb/cache" \
  EDGEBOOT_AUTH_ADMIN_TOKENS="$token" EDGEBOOT_DHCP_MODE=off EDGEBOOT_TFTP_ENABLED=false EDGEBOOT_LOG_LEVEL="$LOG_LEVEL" \
  node $flags ${CPU_PROF:+--cpu-prof --cpu-prof-dir="$CPU_PROF"} dist/main.js serve --set "http.listen=127.0.0.1:$PORT" >"$work/eb.log" 2>&1 &
eb_pid=$!
for _ in $(seq 150); do curl -fs -o /dev/null --max-time 1 "$base/readyz" && break; sleep 0.1; done
curl -fs -o /dev/null --max-time 2 "$base/readyz" || { cat "$work/eb.log" >&2; echo "edgeboot did not start" >&2; exit 1; }
mib() { awk -v f="$1:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$eb_pid/status"; }
cpu_ms() { awk '{ sub(/^.*\) /, ""); print ($12 + $13) * 10 }' "/proc/$eb_pid/stat"; }
rss_start=$(mib VmRSS)
echo 5 >"/proc/$eb_pid/clear_refs"

# Log in as a browser does: the form's CSRF field and cookie, then the token.
jar="$work/jar"
curl -sS --max-time 10 -c "$jar" -b "$jar" -o "$work/login.html" "$base/ui/login"
csrf=$(sed -n 's/.*name="_csrf" value="\([^"]*\)".*/\1/p' "$work/login.html" | head -n1)
code=$(curl -sS --max-time 10 -c "$jar" -b "$jar" -o /dev/null -w '%{http_code}' --data-urlencode "_csrf=$csrf" \
  --data-urlencode "token=$token" --data-urlencode "next=/ui/machines" "$base/ui/login")
[ "$code" = 303 ] || { echo "login answered $code" >&2; exit 1; }
session=$(awk '$6 == "edgeboot_ui" { print $7 }' "$jar")
[ -n "$session" ] || { echo "no session cookie after login" >&2; exit 1; }

path_most=${mac_most//:/-} path_typical=${mac_typical//:/-}
# name | URL | auth (ui: the session cookie; api: Bearer)
cases=(
  "machines|/ui/machines|ui"
  "search q=node-12|/ui/machines?q=node-12|ui"
  "sort ip desc p150|/ui/machines?sort=ip&dir=desc&page=150|ui"
  "state grouped|/ui/machines?state=installed&group=1|ui"
  "rows fragment|/ui/machines?fragment=rows|ui"
  "detail 100 events|/ui/machines/$path_typical|ui"
  "detail $mac_most_events events|/ui/machines/$path_most|ui"
  "API machines limit=50|/api/v1/machines?limit=50|api"
  "API events (100)|/api/v1/machines/$mac_typical/events|api"
  "API events ($mac_most_events)|/api/v1/machines/$mac_most/events|api"
)
get() { # get N OUT: one timed GET of case N, its body to OUT; prints "status ttfb total bytes"
  local url auth
  IFS='|' read -r _ url auth <<<"${cases[$1]}"
  local -a who=(-b "$jar")
  [ "$auth" = api ] && who=(-H "authorization: Bearer $token")
  curl -sS --max-time 10 "${who[@]}" -o "$2" -w '%{http_code} %{time_starttransfer} %{time_total} %{size_download}\n' "$base$url"
}

echo "timing ${#cases[@]} cases, $RUNS rounds after a warm-up ..."
cpu0=$(cpu_ms)
for ((r = 0; r <= RUNS; r++)); do
  for n in "${!cases[@]}"; do
    if [ "$r" = 0 ]; then get "$n" "$work/body-$n" >"$work/cold-$n"; else get "$n" /dev/null >>"$work/t-$n"; fi
  done
done
cpu_pages=$(($(cpu_ms) - cpu0))
rss_pages=$(mib VmRSS) hwm_pages=$(mib VmHWM)

# The warm-up bodies: statuses, and what each page must show.
fail() { echo "check failed: $*" >&2; exit 1; }
for n in "${!cases[@]}"; do
  awk -v n="${cases[$n]%%|*}" '$1 != 200 { print n ": HTTP " $1; bad = 1 } END { exit bad }' "$work/cold-$n" "$work/t-$n" >&2 || fail "status"
done
expect_q=$(seq 0 $((MACHINES - 1)) | grep -c '^12' || true)
expect_installed=$(( (MACHINES + 1) / 7 ))
grep -q "<p class=\"count\">$MACHINES machines" "$work/body-0" || fail "the machines page does not say $MACHINES machines"
grep -q "<p class=\"count\">$expect_q machine" "$work/body-1" || fail "the search does not find $expect_q machines"
grep -q 'Page 150 of' "$work/body-2" || fail "no page 150"
grep -q "<p class=\"count\">$expect_installed machine" "$work/body-3" || fail "state=installed is not $expect_installed machines"
grep -q '<tr class="group">' "$work/body-3" || fail "no group heading"
! grep -q '<html' "$work/body-4" && grep -q 'id="machine-table"' "$work/body-4" || fail "the rows fragment is not the table alone"
[ "$(grep -c 'data-event-id=' "$work/body-5")" = 100 ] || fail "node-5003's page does not list 100 steps"
[ "$(grep -c 'data-event-id=' "$work/body-6")" = 500 ] || fail "node-5's page does not list its newest 500 steps"
[ "$(grep -o '"mac":' "$work/body-7" | wc -l)" -ge 50 ] || fail "the API page has fewer than 50 machines"
[ "$(grep -o '"id":' "$work/body-8" | wc -l)" = 100 ] || fail "the API events of node-5003 are not 100"
events_most_api=$(grep -o '"id":' "$work/body-9" | wc -l)

# median and p95 (nearest rank) of column C of a file, in ms
quant() { cut -d' ' -f"$2" "$1" | sort -g | awk '{ v[NR] = $1 * 1000 } END { p = int(NR * 0.95); if (p < NR * 0.95) p++; m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f\n", m, v[p] }'; }
declare -A ttfb total
printf '\n%-26s %10s %8s %10s %8s %9s %8s\n' "case ($RUNS runs, ms)" "1st byte" "p95" "total" "p95" "KiB" "cold"
for n in "${!cases[@]}"; do
  name=${cases[$n]%%|*}
  read -r t_med t_p95 < <(quant "$work/t-$n" 2)
  read -r a_med a_p95 < <(quant "$work/t-$n" 3)
  ttfb[$n]=$t_med total[$n]=$a_med
  kib=$(awk '{ printf "%.1f", $4 / 1024 }' "$work/cold-$n")
  cold=$(awk '{ printf "%.1f", $2 * 1000 }' "$work/cold-$n")
  printf '%-26s %10s %8s %10s %8s %9s %8s\n' "$name" "$t_med" "$t_p95" "$a_med" "$a_p95" "$kib" "$cold"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }
echo
echo "page / API (medians of the first byte; of the total):"
echo "  machines page / API machines limit=50:    $(ratio "${ttfb[0]}" "${ttfb[7]}")x; $(ratio "${total[0]}" "${total[7]}")x"
echo "  detail 100 events / API events (100):     $(ratio "${ttfb[5]}" "${ttfb[8]}")x; $(ratio "${total[5]}" "${total[8]}")x"
echo "  detail $mac_most_events events / API events ($events_most_api): $(ratio "${ttfb[6]}" "${ttfb[9]}")x; $(ratio "${total[6]}" "${total[9]}")x"
met() { awk -v v="$1" -v g="$2" 'BEGIN { print (v < g ? "met" : "MISSED") }'; }
worst_list=$(printf '%s\n' "${ttfb[0]}" "${ttfb[1]}" "${ttfb[2]}" "${ttfb[3]}" "${ttfb[4]}" | sort -g | tail -n1)
worst_detail=$(printf '%s\n' "${ttfb[5]}" "${ttfb[6]}" | sort -g | tail -n1)
echo "goals: machines pages' first byte < 150 ms: $(met "$worst_list" 150) (slowest median $worst_list ms);" \
  "detail < 100 ms: $(met "$worst_detail" 100) (slowest median $worst_detail ms)"
echo "server: RSS $rss_start MiB after start, $rss_pages MiB after the pages (peak $hwm_pages); CPU $cpu_pages ms for $(((RUNS + 1) * ${#cases[@]})) requests"

echo
echo "SSE: $STREAMS streams, $RATE events/s for ${SSE_SECONDS}s ..."
BASE=$base SESSION=$session TOKEN=$token PID=$eb_pid STREAMS=$STREAMS RATE=$RATE SSE_SECONDS=$SSE_SECONDS MACHINES=$MACHINES \
  node bench/ui-load.mjs sse >"$work/sse.txt"
. "$work/sse.txt"
echo "  streams open: $streams in ${streams_open_ms} ms; told of every machine posted to: $streams_complete of $streams"
echo "  change messages per stream: min $messages_min, median $messages_median, max $messages_max (${stream_kib_median} KiB each)"
echo "  posted $posted events to $post_machines machines in ${write_seconds}s ($post_failed failed), POST median ${post_ms_median} ms, p95 ${post_ms_p95} ms"
echo "  POST to message: median ${delivery_ms_median} ms, p95 ${delivery_ms_p95} ms, max ${delivery_ms_max} ms (500 ms coalescing)"
echo "  RSS (MiB): before $rss_before_mib, streams open $rss_open_mib, peak writing $rss_peak_mib, VmHWM $hwm_mib, after closing $rss_after_mib"
echo "  server CPU: ${cpu_open_ms} ms opening, ${cpu_write_ms} ms during the writes, ${cpu_total_ms} ms in all (client ${client_cpu_ms} ms)"
echo "goal: RSS with $streams streams < 300 MB ($(awk 'BEGIN { printf "%.1f", 300e6 / 1048576 }') MiB): $(met "$hwm_mib" 286.1) (VmHWM $hwm_mib MiB)"
[ "$streams_complete" = "$streams" ] || fail "$((streams - streams_complete)) streams missed changes"
[ "$post_failed" = 0 ] || fail "$post_failed POSTs failed"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
