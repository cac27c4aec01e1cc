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
# The images, the registry and edgeboot are set up by bench/lib-registry.sh (shared with
# bench/bundle-build.sh). Needs docker-registry, skopeo, htpasswd (apache2-utils), curl, node;
# builds dist/ if it is missing. Run as root (port 80). Traffic stays on 127.0.0.0/8; everything started is
# stopped and every temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SEQUENTIAL=${SEQUENTIAL:-0}
BENCH_NAME=registry
PROFILE_DIR=${PROFILE_DIR:-/tmp/edgeboot-registry-profiles}
# shellcheck source=bench/lib-registry.sh
. bench/lib-registry.sh   # the tools, the address, $work and its cleanup, the registry and edgeboot

if [ -z "${DEST_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then DEST_DIR=$(mktemp -d /dev/shm/edgeboot-bench-pull.XXXXXX); else DEST_DIR=$work/pulled; fi
else
  DEST_DIR=$(mktemp -d "$DEST_DIR/edgeboot-bench-pull.XXXXXX")
fi
cleanup_dirs+=("$DEST_DIR")

make_images
start_registry
push_images

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
