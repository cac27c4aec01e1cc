#!/usr/bin/env bash
# Building a precache bundle (POST /api/v1/bundles) of generated images, on loopback. The same
# 8 images as bench/registry-pull.sh (a shared base layer plus layers of their own) are pushed
# into Debian's docker-registry (htpasswd basic auth) on port 80 of a loopback address
# (bench/lib-registry.sh); then, RUNS times, each with a freshly started edgeboot (empty cache
# dir and store):
#   cold  a bundle of all the images (`"images": [...]`): POST, then GET the status every 0.1 s
#         until it is ready. edgeboot pulls every blob from the registry (an image job), then
#         writes one .tgz per image from its content store;
#   warm  a bundle of another spec over the same images (the same refs as `"aiImages"`, so
#         another id), in the same edgeboot: every blob is cached, so this is the cost of the
#         archives alone (plus the tag manifests, which are asked upstream each time).
# Each phase reports its seconds (POST to ready; and the image job's part of them), the
# bundle's bytes and bytes per second, the bytes that left the registry (its access log, and
# edgeboot_cache_upstream_bytes_total) against the bundle's size and against what
# factory-precaching-cli would fetch (a `skopeo copy` per image, nothing shared: the sum of
# the image sizes), edgeboot's CPU seconds and peak RSS. Then each bundle is downloaded with
# curl (bundle.json and every file, to /dev/shm) and checked: every file's size and sha256
# against bundle.json, and bundle.json against the status. The cold bundle is checked further:
# each .tgz is unpacked, its one top directory must be named after the image's pushed
# manifest digest, its manifest.json must have that digest, its blobs the image's bytes and
# each blob the sha256 it is named by, and mapping.txt / ocp-images.txt must list every image.
# Medians and a table at the end.
#
#   bench/bundle-build.sh                                 # 8 images, 1 GiB distinct, 3 runs
#   BASE_MIB=64 UNIQUE_MIB="16 8,8 24" RUNS=1 bench/bundle-build.sh
#
# Environment: BASE_MIB, UNIQUE_MIB, REGISTRY_ADDR, PROFILE, LOG_LEVEL, KEEP as in
# bench/lib-registry.sh, and
#   RUNS       repetitions (default 3), each with a fresh edgeboot
#   PARALLEL   the bundle spec's "parallel": images pulled at once (default 4)
#   EB_PORT    edgeboot's HTTP port on 127.0.0.1 (default 18291)
#   FETCH_DIR  where the downloaded bundles go (default /dev/shm if it is there, else the
#              work dir); each is deleted once checked
#   PROFILE_DIR  for PROFILE=1 (default /tmp/edgeboot-bundle-profiles)
#
# Needs docker-registry, skopeo, htpasswd (apache2-utils), curl, node, GNU tar, sha256sum;
# builds dist/ if it is missing. Run as root (port 80). Traffic stays on 127.0.0.0/8;
# everything started is stopped and every temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PARALLEL=${PARALLEL:-4}
EB_PORT=${EB_PORT:-18291}
BENCH_NAME=bundle
EXTRA_TOOLS="tar sha256sum"
# shellcheck source=bench/lib-registry.sh
. bench/lib-registry.sh   # the tools, the address, $work and its cleanup, the registry and edgeboot
[[ $PARALLEL =~ ^[0-9]+$ ]] && [ "$PARALLEL" -ge 1 ] && [ "$PARALLEL" -le 64 ] || { echo "PARALLEL must be 1-64" >&2; exit 2; }

if [ -z "${FETCH_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then FETCH_DIR=$(mktemp -d /dev/shm/edgeboot-bench-bundle.XXXXXX); else FETCH_DIR=$work/fetched; mkdir -p "$FETCH_DIR"; fi
else
  FETCH_DIR=$(mktemp -d "$FETCH_DIR/edgeboot-bench-bundle.XXXXXX")
fi
cleanup_dirs+=("$FETCH_DIR")

make_images
start_registry
push_images

refs=''; for t in "${tags[@]}"; do refs+="${refs:+,}\"$REG/bench/$t:v1\""; done
spec_cold="{\"images\":[$refs],\"aiImages\":[],\"parallel\":$PARALLEL}"
spec_warm="{\"images\":[],\"aiImages\":[$refs],\"parallel\":$PARALLEL}"

# JSON without jq: the bundle's status and its image job -> one line of figures, and the file
# list (name size sha256, one a line) into $3.
cat >"$work/status.cjs" <<'EOF'
const fs = require('node:fs');
const [status, job, list] = process.argv.slice(2).map((f, i) => (i < 2 ? JSON.parse(fs.readFileSync(f, 'utf8')) : f));
const m = status.manifest;
fs.writeFileSync(list, m.files.map((f) => `${f.name} ${f.size} ${f.sha256}\n`).join(''));
console.log([m.bytes, m.files.length, m.files.filter((f) => f.name.endsWith('.tgz')).length, m.seconds, job.seconds, job.bytes.upstream, job.bytes.total, job.blobs.fetched, job.blobs.cached].join(' '));
EOF
# bundle.json as downloaded is the manifest the status gave
cat >"$work/same.cjs" <<'EOF'
const fs = require('node:fs');
const { isDeepStrictEqual } = require('node:util');
const [file, status] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
process.exit(isDeepStrictEqual(file, status.manifest) ? 0 : 1);
EOF

token=''
api() { curl -fsS -H "authorization: Bearer $token" "$@"; }

# One build: POSTs spec $2 and polls until the bundle is ready; records phase $1's figures.
declare -A time fetch bytes up eb_up cpu_s rss dl_s
b_id='' b_files=''
build() {
  local p=$1 spec=$2 n u0 u1 c0 c1 t0 t1 body state job_id
  n=$(log_lines); u0=$(metric edgeboot_cache_upstream_bytes_total); c0=$(cpu "$eb_pid"); reset_hwm
  t0=$(now)
  body=$(api -H 'content-type: application/json' -d "$spec" "http://$EB/api/v1/bundles")
  printf '%s' "$body" >"$work/post.json"
  [[ $body =~ \"id\":\"([0-9a-f]{16})\" ]] || { echo "$p: POST /api/v1/bundles answered $body" >&2; exit 1; }
  b_id=${BASH_REMATCH[1]}
  while :; do
    # the bundle's own state comes first (its id, then its state; the job's follows)
    [[ $body =~ \"state\":\"([a-z]+)\" ]] && state=${BASH_REMATCH[1]} || state='?'
    [ "$state" = ready ] && break
    [ "$state" = building ] || { echo "$p: bundle $b_id is $state: $body" | head -c 2000 >&2; echo >&2; exit 1; }
    sleep 0.1
    body=$(api "http://$EB/api/v1/bundles/$b_id")
  done
  t1=$(now)
  c1=$(cpu "$eb_pid")
  printf '%s' "$body" >"$work/status.$p.json"
  [[ $(<"$work/post.json") =~ \"job\":\{\"id\":\"([^\"]+)\" ]] || { echo "$p: no image job in $(<"$work/post.json")" >&2; exit 1; }
  job_id=${BASH_REMATCH[1]}
  api "http://$EB/api/v1/images/jobs/$job_id" >"$work/job.$p.json"
  b_files=$work/files.$p
  local b nf nt server_s job_s job_up job_total bf bc h u m s
  read -r b nf nt server_s job_s job_up job_total bf bc < <(node "$work/status.cjs" "$work/status.$p.json" "$work/job.$p.json" "$b_files")
  u=$(upstream_since "$n"); u1=$(metric edgeboot_cache_upstream_bytes_total); h=$(hwm)
  m=$((${u1:-0} - ${u0:-0})); s=$(secs $((t1 - t0)))
  [ "$nt" = "${#tags[@]}" ] || { echo "$p: $nt archives for ${#tags[@]} images" >&2; exit 1; }
  time[$p]+="$s " fetch[$p]+="$job_s " bytes[$p]+="$b " up[$p]+="$u " eb_up[$p]+="$m "
  cpu_s[$p]+="$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') " rss[$p]+="$h "
  printf 'run %d  %-4s %6.2f s (image job %5.2f s, edgeboot says %.2f s)  bundle %s: %d files, %s MiB, %4.0f MiB/s  from the registry %s (edgeboot counted %s; job: %d blobs fetched, %d cached)  edgeboot CPU %.2f s, peak RSS %d MiB\n' \
    "$run" "$p" "$s" "$job_s" "$server_s" "$b_id" "$nf" "$(mib "$b")" "$(awk -v b="$b" -v s="$s" 'BEGIN { print b / 1048576 / s }')" \
    "$(fmt_bytes "$u")" "$(fmt_bytes "$m")" "$bf" "$bc" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')" "$h"
}
fmt_bytes() { awk -v b="$1" 'BEGIN { if (b >= 1048576) printf "%.0f MiB", b / 1048576; else printf "%.0f KiB", b / 1024 }'; }

# Downloads bundle $b_id (bundle.json, then every file of $b_files) into $FETCH_DIR and checks
# it; $2 = full also unpacks and checks each archive against the pushed images.
verify() {
  local p=$1 full=${2:-} d=$FETCH_DIR/$b_id name fsize sum got t0 t1 bad=0
  rm -rf "$d"; mkdir -p "$d"
  curl -fsS -o "$d/bundle.json" "http://$EB/bundles/$b_id/bundle.json"
  node "$work/same.cjs" "$d/bundle.json" "$work/status.$p.json" || { echo "$p: bundle.json is not the manifest of the status" >&2; bad=1; }
  t0=$(now)
  while read -r name fsize sum; do curl -fsS -o "$d/$name" "http://$EB/bundles/$b_id/$name"; done <"$b_files"
  t1=$(now)
  dl_s[$p]+="$(secs $((t1 - t0))) "
  while read -r name fsize sum; do
    got=$(stat -c %s "$d/$name")
    [ "$got" = "$fsize" ] || { echo "$p: $name is $got bytes, bundle.json says $fsize" >&2; bad=1; }
  done <"$b_files"
  awk '{ print $3 "  " $1 }' "$b_files" | (cd "$d" && sha256sum --quiet -c -) || { echo "$p: a file's sha256 is not bundle.json's" >&2; bad=1; }
  local checked=''
  if [ "$full" = full ]; then
    local t top hex x
    for t in "${tags[@]}"; do
      hex=${digest[$t]#sha256:}
      top=$t@sha256_$hex
      [ -f "$d/$top.tgz" ] || { echo "$p: no $top.tgz for $t" >&2; bad=1; continue; }
      x=$d/x; rm -rf "$x"; mkdir -p "$x"
      tar -xzf "$d/$top.tgz" -C "$x"
      [ "$(ls "$x")" = "$top" ] || { echo "$p: $top.tgz holds $(ls "$x" | head -3 | tr '\n' ' ')" >&2; bad=1; continue; }
      [ "$(sha256sum <"$x/$top/manifest.json" | cut -d' ' -f1)" = "$hex" ] || { echo "$p: $top/manifest.json is not ${digest[$t]}" >&2; bad=1; }
      [ "$(cat "$x/$top/version")" = "Directory Transport Version: 1.1" ] || { echo "$p: $top/version" >&2; bad=1; }
      got=$(find "$x/$top" -type f ! -name version -printf '%s\n' | awk '{ s += $1 } END { printf "%.0f", s }')
      [ "$got" = "${size[$t]}" ] || { echo "$p: $top holds $got bytes, the image ${size[$t]}" >&2; bad=1; }
      (cd "$x/$top" && find . -maxdepth 1 -type f -regextype posix-extended -regex '\./[0-9a-f]{64}' -printf '%f  %f\n' | sha256sum --quiet -c -) || { echo "$p: a blob of $top is not its digest" >&2; bad=1; }
      grep -qxF "$REG/bench/$t@${digest[$t]}=bench/$t:v1" "$d/mapping.txt" || { echo "$p: mapping.txt has no line for $t" >&2; bad=1; }
      grep -qxF "$REG/bench/$t@${digest[$t]}" "$d/ocp-images.txt" || { echo "$p: ocp-images.txt does not list $t" >&2; bad=1; }
      rm -rf "$x"
    done
    checked=', every archive unpacked and checked against the pushed image'
  else
    for t in "${tags[@]}"; do
      grep -qxF "$REG/bench/$t@${digest[$t]}" "$d/ai-images.txt" || { echo "$p: ai-images.txt does not list $t" >&2; bad=1; }
    done
  fi
  [ "$bad" = 0 ] || { echo "$p: bundle $b_id failed its checks" >&2; exit 1; }
  local all; all=$(awk '{ s += $2 } END { printf "%.0f", s }' "$b_files")
  printf '        %s downloaded with curl into %s in %.2f s (%.0f MiB/s): %d files, sizes and sha256s as bundle.json%s\n' \
    "$p" "$(dirname "$FETCH_DIR")" "$(secs $((t1 - t0)))" "$(awk -v b="$all" -v ns=$((t1 - t0)) 'BEGIN { print b / 1048576 / (ns / 1e9) }')" "$(wc -l <"$b_files")" "$checked"
  rm -rf "$d"
}

echo "building a bundle of ${#tags[@]} images (parallel $PARALLEL), $RUNS runs, each with a fresh edgeboot on $EB"
for run in $(seq "$RUNS"); do
  start_edgeboot
  token=$(<"$eb_dir/admin-token")
  build cold "$spec_cold"
  verify cold full
  build warm "$spec_warm"
  verify warm
done

# --- the summary -------------------------------------------------------------------------------
echo
echo "medians of $RUNS, a bundle of ${#tags[@]} images ($(mib $total) MiB in all, $(mib "$distinct") MiB distinct), parallel $PARALLEL:"
echo
printf '| | seconds | of which the image job | bundle | bundle MiB/s | from the registry | ÷ bundle | ÷ factory-precaching-cli | edgeboot CPU s | peak RSS | curl download into %s |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n' "$(dirname "$FETCH_DIR")"
for p in cold warm; do
  t=$(median <<<"${time[$p]}") b=$(median <<<"${bytes[$p]}") u=$(median <<<"${up[$p]}") dl=$(median <<<"${dl_s[$p]}")
  printf '| %s | %.2f | %.2f | %s MiB | %.0f | %s | %s | %s | %.2f | %.0f MiB | %.2f s (%.0f MiB/s) |\n' "$p" "$t" "$(median <<<"${fetch[$p]}")" "$(mib "$b")" \
    "$(awk -v b="$b" -v s="$t" 'BEGIN { print b / 1048576 / s }')" "$(fmt_bytes "$u")" \
    "$(awk -v u="$u" -v b="$b" 'BEGIN { printf (u / b >= 0.001 ? "%.3f" : "%.1e"), u / b }')" \
    "$(awk -v u="$u" -v t="$total" 'BEGIN { printf (u / t >= 0.001 ? "%.3f" : "%.1e"), u / t }')" \
    "$(median <<<"${cpu_s[$p]}")" "$(median <<<"${rss[$p]}")" "$dl" "$(awk -v b="$b" -v s="$dl" 'BEGIN { print b / 1048576 / s }')"
done
printf '| factory-precaching-cli (computed: a skopeo copy per image) | | | | | %s MiB | | 1 | | | |\n' "$(mib $total)"
echo
awk -v u="$(median <<<"${up[cold]}")" -v m="$(median <<<"${eb_up[cold]}")" -v b="$(median <<<"${bytes[cold]}")" -v t=$total -v d="$distinct" 'BEGIN {
  printf "cold: %.0f bytes left the registry (edgeboot counted %.0f bytes of blob bodies) for a bundle of %.0f bytes;\n  factory-precaching-cli would fetch %.0f (the sum of the image sizes): %.3f of that, %.4f of the distinct bytes, %.2fx less\n", u, m, b, t, u / t, u / d, t / u }'
awk -v u="$(median <<<"${up[warm]}")" -v m="$(median <<<"${eb_up[warm]}")" 'BEGIN { printf "warm: %.0f bytes from the registry (the tag manifests), edgeboot counted %.0f bytes of blob bodies\n", u, m }'
w_lines=$(grep -c '"level":[45]0' "$work/eb.log" || true)
[ "$w_lines" = 0 ] || { echo "edgeboot logged $w_lines warnings or errors, e.g.:"; grep '"level":[45]0' "$work/eb.log" | head -3; }
