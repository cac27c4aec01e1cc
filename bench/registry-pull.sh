#!/usr/bin/env bash
# Pulling container images through edgeboot's registry mirror (/v2/), side by side with pulling
# them straight from the upstream registry, on loopback. A set of images that share one base
# layer are pushed into Debian's docker-registry (htpasswd basic auth) on port 80 of a loopback
# address; then skopeo pulls all of them at once (`skopeo copy --all --preserve-digests
# docker://… dir:…`, one process per image), RUNS times each in rotation:
#   reference  straight from the registry, with its credentials;
#   cold       through a freshly started edgeboot with an empty cache dir and store
#              (edgeboot fetches from the registry with the pull secret);
#   warm       through the same edgeboot again, everything cached.
# Prints medians and the ratios cold/reference and warm/reference, the bytes that left the
# registry in each phase (its access log, and edgeboot's edgeboot_cache_upstream_bytes_total)
# against the sum of the image sizes and the distinct bytes, CPU seconds of the servers, and
# edgeboot's peak RSS. Every pulled image's manifest is checked against the pushed digest,
# and its blobs by size (skopeo itself checks every blob's digest).
#
#   bench/registry-pull.sh                                # 8 images, 1 GiB distinct, 3 runs
#   BASE_MIB=64 UNIQUE_MIB="16 8,8 24" RUNS=5 bench/registry-pull.sh
#   SEQUENTIAL=1 bench/registry-pull.sh                   # one image after the other
#
# Environment:
#   BASE_MIB      the shared base layer (default 256)
#   UNIQUE_MIB    one word per image, each a comma list of its own layers in MiB
#                 (default "64,32 96 48,48 80 32,64 96 40,40 72,56": 8 images, 768 MiB)
#   RUNS          repetitions of each phase (default 3)
#   SEQUENTIAL    1: pull the images one after the other instead of all at once
#   REGISTRY_ADDR the registry's loopback address (default: a free random 127.x.y.z; port 80)
#   EB_PORT       edgeboot's HTTP port on 127.0.0.1 (default 18290)
#   DEST_DIR      where the pulled copies go (default /dev/shm if it is there, so the
#                 client's disk writes are not part of the figure; else the work dir)
#   PROFILE=1     run edgeboot under node --cpu-prof (one profile per edgeboot, i.e. per run:
#                 its cold and warm phases), kept in PROFILE_DIR (/tmp/edgeboot-registry-profiles);
#                 read them with bench/cpuprofile-top.mjs
#   LOG_LEVEL     edgeboot's log level (default info: one line per blob cached, which gives the
#                 fill times; request logging is off); KEEP=1 keeps the work dir
#
# Needs docker-registry, skopeo, htpasswd (apache2-utils), curl, node; builds dist/ if it is
# missing. Run as root (port 80). Traffic stays on 127.0.0.0/8; everything started is
# stopped and every temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE_MIB=${BASE_MIB:-256}
UNIQUE_MIB=${UNIQUE_MIB:-"64,32 96 48,48 80 32,64 96 40,40 72,56"}
RUNS=${RUNS:-3}
SEQUENTIAL=${SEQUENTIAL:-0}
EB_PORT=${EB_PORT:-18290}
LOG_LEVEL=${LOG_LEVEL:-info}
KEEP=${KEEP:-0}
PROFILE=${PROFILE:-0}
PROFILE_DIR=${PROFILE_DIR:-/tmp/edgeboot-registry-profiles}
USER_NAME=bench PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
for tool in docker-registry skopeo htpasswd curl node ss; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
if [ ! -f dist/main.js ] || [ ! -f dist/registry/mirror.js ]; then
  echo "building dist/ (npx tsc -p tsconfig.json)" >&2
  npx tsc -p tsconfig.json
fi

listening80() { ss -Hltn "( sport = :80 )" | awk '{ print $4 }' | grep -qE "^($1|0\.0\.0\.0|\*|\[::\]):80$"; }
if [ -z "${REGISTRY_ADDR:-}" ]; then
  for _ in $(seq 20); do
    REGISTRY_ADDR=127.$((RANDOM % 254 + 1)).$((RANDOM % 256)).$((RANDOM % 254 + 1))
    listening80 "$REGISTRY_ADDR" || break
  done
fi
[[ $REGISTRY_ADDR =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "REGISTRY_ADDR must be a 127.0.0.0/8 address" >&2; exit 2; }
listening80 "$REGISTRY_ADDR" && { echo "something listens on $REGISTRY_ADDR:80 already" >&2; exit 2; }
REG=$REGISTRY_ADDR
EB=127.0.0.1:$EB_PORT

work=$(mktemp -d /tmp/edgeboot-bench-registry.XXXXXX)
if [ -z "${DEST_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then DEST_DIR=$(mktemp -d /dev/shm/edgeboot-bench-pull.XXXXXX); else DEST_DIR=$work/pulled; fi
else
  DEST_DIR=$(mktemp -d "$DEST_DIR/edgeboot-bench-pull.XXXXXX")
fi
pids=()
eb_pid=''
cleanup() {
  for p in "${pids[@]}" $eb_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DEST_DIR"
  if [ "$KEEP" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$work/registry/storage" "$work/home" "$work/profiles"

now() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN { printf "%.2f", ns / 1e9 }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# user+system CPU seconds a process has used so far (fields 14 and 15 of /proc/<pid>/stat)
TCK=$(getconf CLK_TCK)
cpu() { awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }

# --- the images --------------------------------------------------------------------------------
t0=$(now)
node bench/make-images.mjs "$work/layout" "$BASE_MIB" "$UNIQUE_MIB" >"$work/images.txt"
t1=$(now)
tags=()
declare -A digest size
while read -r tag d s; do
  if [ "$tag" = distinct ]; then distinct=$d; continue; fi
  tags+=("$tag"); digest[$tag]=$d; size[$tag]=$s
done <"$work/images.txt"
total=0; for t in "${tags[@]}"; do total=$((total + size[$t])); done
echo "images: ${#tags[@]} (base ${BASE_MIB} MiB + \"$UNIQUE_MIB\" MiB), sum of image sizes $(mib $total) MiB, distinct blobs $(mib "$distinct") MiB; generated in $(secs $((t1 - t0))) s"

# --- the upstream registry ---------------------------------------------------------------------
htpasswd -Bbn "$USER_NAME" "$PASSWORD" >"$work/registry/htpasswd"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log: { level: warn, formatter: json, accesslog: { disabled: false } }
storage: { filesystem: { rootdirectory: $work/registry/storage }, maintenance: { uploadpurging: { enabled: false } } }
http: { addr: "$REG:80", secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n') }
auth: { htpasswd: { realm: bench, path: $work/registry/htpasswd } }
EOF
# No REGISTRY_* variable may reach it (each overrides a config key). Access log (combined) on stdout.
env -i PATH="$PATH" HOME="$work/registry" docker-registry serve "$work/registry/config.yml" >"$work/registry/access.log" 2>"$work/registry/registry.log" &
reg_pid=$!
pids+=("$reg_pid")
for _ in $(seq 100); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")" = 401 ] && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")" = 401 ] || { echo "docker-registry on $REG:80 did not start:" >&2; cat "$work/registry/registry.log" >&2; exit 1; }

# skopeo with a home, auth file and registries.conf of its own (no machine setting applies)
printf '{"auths":{}}\n' >"$work/home/auth.json"
printf 'unqualified-search-registries = []\n' >"$work/home/registries.conf"
sk() {
  env -i PATH="$PATH" HOME="$work/home" XDG_RUNTIME_DIR="$work/home" TMPDIR="$work/home" \
    REGISTRY_AUTH_FILE="$work/home/auth.json" CONTAINERS_REGISTRIES_CONF="$work/home/registries.conf" \
    skopeo --insecure-policy "$@"
}
t0=$(now)
for t in "${tags[@]}"; do
  sk copy --quiet --all --preserve-digests --dest-tls-verify=false --dest-creds "$USER_NAME:$PASSWORD" "oci:$work/layout:$t" "docker://$REG/bench/$t:v1"
done
t1=$(now)
rm -rf "$work/layout"
echo "pushed to docker-registry on $REG:80 (basic auth) in $(secs $((t1 - t0))) s"

# --- edgeboot ----------------------------------------------------------------------------------
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)" >"$work/pull-secret.json"
eb_n=0
# A new edgeboot with an empty cache dir and store (the previous one stopped and removed).
start_edgeboot() {
  if [ -n "$eb_pid" ]; then
    kill "$eb_pid" 2>/dev/null || true
    wait "$eb_pid" 2>/dev/null || true
    rm -rf "$work/eb.$eb_n"
  fi
  eb_n=$((eb_n + 1))
  local d=$work/eb.$eb_n node_args=()
  mkdir -p "$d"
  if [ "$PROFILE" = 1 ]; then mkdir -p "$PROFILE_DIR"; node_args=(--cpu-prof --cpu-prof-dir="$PROFILE_DIR" --cpu-prof-name="edgeboot-registry-$eb_n.cpuprofile"); fi
  EDGEBOOT_SERVER_DATA_DIR="$d" EDGEBOOT_STORE_URL="sqlite:$d/edgeboot.db" EDGEBOOT_CACHE_DIR="$d/cache" \
    EDGEBOOT_PROFILES_DIRS="$work/profiles" EDGEBOOT_DHCP_MODE=off EDGEBOOT_TFTP_ENABLED=false EDGEBOOT_LOG_LEVEL="$LOG_LEVEL" \
    EDGEBOOT_REGISTRY_PULL_SECRET="$work/pull-secret.json" EDGEBOOT_REGISTRY_INSECURE_REGISTRIES="$REG" \
    node "${node_args[@]}" dist/main.js serve --set "http.listen=$EB" >>"$work/eb.log" 2>&1 &
  eb_pid=$!
  for _ in $(seq 100); do curl -fs -o /dev/null "http://$EB/readyz" && return 0; sleep 0.1; done
  echo "edgeboot did not start:" >&2; tail -20 "$work/eb.log" >&2; exit 1
}
metric() { curl -fs "http://$EB/metrics" | awk -v m="$1" '$1 == m { printf "%.0f\n", $2 }'; }
hwm() { awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$eb_pid/status"; }
reset_hwm() { echo 5 >"/proc/$eb_pid/clear_refs"; }
# Body bytes the registry sent since line $1 of its access log (combined format: $10 is the size).
log_lines() { wc -l <"$work/registry/access.log"; }
upstream_since() { sleep 0.5; tail -n +$(($1 + 1)) "$work/registry/access.log" | awk '$10 ~ /^[0-9]+$/ { s += $10 } END { printf "%.0f\n", s }'; }
# Requests skopeo itself made to the registry since line $1 (none may, when it pulls through edgeboot).
skopeo_since() { tail -n +$(($1 + 1)) "$work/registry/access.log" | grep -c '"skopeo/' || true; }

# --- the pulls ---------------------------------------------------------------------------------
# Pulls every image from $1 (reference | edgeboot) into fresh dirs; prints the seconds taken
# and the CPU seconds the skopeo clients used.
# Fails the bench if a pull fails, a manifest is not the pushed one, or blob bytes are missing.
pull_all() {
  local src=$1 t0 t1 t bad=0 jobs=()
  rm -rf "${DEST_DIR:?}"/*
  t0=$(now)
  for t in "${tags[@]}"; do
    local from
    local -a auth
    if [ "$src" = reference ]; then from=docker://$REG/bench/$t:v1 auth=(--src-creds "$USER_NAME:$PASSWORD")
    else from=docker://$EB/$REG/bench/$t:v1 auth=(--src-no-creds); fi
    if [ "$SEQUENTIAL" = 1 ]; then
      sk copy --quiet --all --preserve-digests --src-tls-verify=false "${auth[@]}" "$from" "dir:$DEST_DIR/$t" >"$work/pull.$t.log" 2>&1 || bad=$((bad + 1))
    else
      sk copy --quiet --all --preserve-digests --src-tls-verify=false "${auth[@]}" "$from" "dir:$DEST_DIR/$t" >"$work/pull.$t.log" 2>&1 &
      jobs+=($!)
    fi
  done
  for p in "${jobs[@]}"; do wait "$p" || bad=$((bad + 1)); done
  t1=$(now)
  # CPU seconds of the skopeo clients: this subshell's reaped children (cutime + cstime)
  local client me=$BASHPID   # (inside $(…) BASHPID would be that subshell's)
  client=$(awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($14 + $15) / t }' "/proc/$me/stat")
  for t in "${tags[@]}"; do
    local got bytes
    got=sha256:$(sha256sum <"$DEST_DIR/$t/manifest.json" 2>/dev/null | cut -d' ' -f1) || true
    bytes=$(find "$DEST_DIR/$t" -type f ! -name version -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }')
    if [ "$got" != "${digest[$t]}" ] || [ "$bytes" != "${size[$t]}" ]; then
      echo "$src: $t pulled as $got, $bytes bytes; pushed ${digest[$t]}, ${size[$t]} bytes" >&2
      cat "$work/pull.$t.log" >&2
      bad=$((bad + 1))
    fi
  done
  [ "$bad" = 0 ] || { echo "$src: $bad of ${#tags[@]} pulls failed or differ" >&2; exit 1; }
  rm -rf "${DEST_DIR:?}"/*
  echo "$(secs $((t1 - t0))) $client"
}

mode=concurrently; [ "$SEQUENTIAL" = 1 ] && mode=sequentially
echo "pulling ${#tags[@]} images $mode with skopeo, $RUNS runs of each phase; edgeboot on $EB"
declare -A time up srv cli
hwm_cold=0 hwm_warm=0 eb_up_cold='' fills=''
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# One phase: pulls from $2 (reference | edgeboot), records it under $1 and prints a line.
phase() {
  local p=$1 n c0 c1 e0=0 e1=0 s client u m='' h
  n=$(log_lines); c0=$(cpu "$reg_pid"); [ "$2" = edgeboot ] && e0=$(cpu "$eb_pid")
  [ "$2" = edgeboot ] && reset_hwm
  read -r s client < <(pull_all "$2")
  [ -n "$s" ] || exit 1   # pull_all said why
  u=$(upstream_since "$n"); c1=$(cpu "$reg_pid")
  if [ "$2" = edgeboot ] && [ "$(skopeo_since "$n")" != 0 ]; then echo "$p: skopeo reached the registry directly, not through edgeboot" >&2; exit 1; fi
  if [ "$2" = edgeboot ]; then
    e1=$(cpu "$eb_pid"); h=$(hwm)
    if [ "$p" = cold ]; then
      m=$(metric edgeboot_cache_upstream_bytes_total); eb_up_cold+="$m "
      [ "$h" -gt "$hwm_cold" ] && hwm_cold=$h
    else
      [ "$h" -gt "$hwm_warm" ] && hwm_warm=$h
    fi
  fi
  time[$p]+="$s " up[$p]+="$u " cli[$p]+="$client "
  srv[$p]+="$(awk -v a="$c0" -v b="$c1" -v c="$e0" -v d="$e1" 'BEGIN { printf "%.2f", (b - a) + (d - c) }') "
  printf 'run %d  %-9s %6.2f s %5.0f MiB/s  from the registry %s%s  CPU: ' "$run" "$p" "$s" "$(awk -v b=$total -v s="$s" 'BEGIN { print b / 1048576 / s }')" \
    "$(awk -v b="$u" 'BEGIN { if (b >= 1048576) printf "%5.0f MiB", b / 1048576; else printf "%5.0f KiB", b / 1024 }')" \
    "$([ -n "$m" ] && printf ' (edgeboot counted %.0f MiB)' "$(mib "$m")")"
  [ "$2" = edgeboot ] && printf 'edgeboot %.2f s, ' "$(sub "$e0" "$e1")"
  printf 'registry %.2f s, skopeo %.2f s\n' "$(sub "$c0" "$c1")" "$client"
}
for run in $(seq "$RUNS"); do
  phase reference reference
  start_edgeboot
  l0=$(wc -l <"$work/eb.log")
  phase cold edgeboot
  # How long the cache took to fill each blob (its 'artifact cached' lines, logged at info).
  fills=$(tail -n +$((l0 + 1)) "$work/eb.log" | grep '"msg":"artifact cached"' | sed -n 's/.*"bytes":\([0-9]*\),"ms":\([0-9]*\).*/\1 \2/p' || true)
  phase warm edgeboot
done

# --- the summary -------------------------------------------------------------------------------
r=$(median <<<"${time[reference]}")
echo
echo "medians of $RUNS, ${#tags[@]} images pulled $mode ($(mib $total) MiB in all, $(mib "$distinct") MiB distinct):"
echo
printf '| | seconds | MiB/s to the clients | ÷ reference | server CPU s | skopeo CPU s | from the registry |\n|---|---:|---:|---:|---:|---:|---:|\n'
for p in reference cold warm; do
  t=$(median <<<"${time[$p]}")
  printf '| %s | %.2f | %.0f | %s | %.2f | %.2f | %s |\n' "$p" "$t" "$(awk -v b=$total -v s="$t" 'BEGIN { print b / 1048576 / s }')" \
    "$(awk -v t="$t" -v r="$r" -v p="$p" 'BEGIN { if (p != "reference") printf "%.2f", t / r }')" \
    "$(median <<<"${srv[$p]}")" "$(median <<<"${cli[$p]}")" \
    "$(awk -v u="$(median <<<"${up[$p]}")" 'BEGIN { if (u >= 1048576) printf "%.0f MiB", u / 1048576; else printf "%.0f KiB", u / 1024 }')"
done
echo
awk -v u="$(median <<<"${up[cold]}")" -v m="$(median <<<"$eb_up_cold")" -v t=$total -v d="$distinct" 'BEGIN {
  printf "cold: %.0f bytes left the registry (edgeboot counted %.0f bytes of blob bodies) for %.0f bytes of images:\n  %.3f of the sum of the image sizes, %.4f of the distinct bytes; dedup gain %.2fx\n", u, m, t, u / t, u / d, t / u }'
[ -n "$fills" ] && awk '{ if ($2 > ms) { ms = $2; b = $1 } n++ } END { printf "last cold run: %d blobs filled, the slowest %.0f MiB in %.2f s (%.0f MiB/s, fsync included)\n", n, b / 1048576, ms / 1000, b / 1048576 / (ms / 1000) }' <<<"$fills"
echo "edgeboot peak RSS: ${hwm_cold} MiB during a cold run, ${hwm_warm} MiB during a warm run"
w_lines=$(grep -c '"level":[45]0' "$work/eb.log" || true)
[ "$w_lines" = 0 ] || { echo "edgeboot logged $w_lines warnings or errors, e.g.:"; grep '"level":[45]0' "$work/eb.log" | head -3; }
