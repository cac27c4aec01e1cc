# Shared by bench/registry-pull.sh and bench/bundle-build.sh (sourced, not run): generated
# images (bench/make-images.mjs) pushed into Debian's docker-registry with htpasswd basic auth
# on port 80 of a free random 127.x.y.z, and a fresh edgeboot that uses it with a pull secret.
#
# The sourcing script sets `set -euo pipefail`, cds to the repository, and may set before
# sourcing: BENCH_NAME (names the work dir /tmp/edgeboot-bench-$BENCH_NAME.XXXXXX and the CPU
# profiles), EXTRA_TOOLS (more commands it needs), and the environment below. Sourcing checks
# the tools, builds dist/ if missing, picks the registry's address, makes the work dir ($work)
# and sets the EXIT trap: every process in pids[] and $eb_pid is stopped, every dir in
# cleanup_dirs[] removed, and $work too unless KEEP=1.
#
# Environment (all optional):
#   BASE_MIB      the shared base layer (default 256)
#   UNIQUE_MIB    one word per image, each a comma list of its own layers in MiB
#                 (default "64,32 96 48,48 80 32,64 96 40,40 72,56": 8 images, 768 MiB)
#   REGISTRY_ADDR the registry's loopback address (default: a free random 127.x.y.z; port 80)
#   EB_PORT       edgeboot's HTTP port on 127.0.0.1 (default 18290)
#   PROFILE=1     run edgeboot under node --cpu-prof, one profile per edgeboot, in PROFILE_DIR
#   LOG_LEVEL     edgeboot's log level (default info); KEEP=1 keeps the work dir
BENCH_NAME=${BENCH_NAME:-registry}
BASE_MIB=${BASE_MIB:-256}
UNIQUE_MIB=${UNIQUE_MIB:-"64,32 96 48,48 80 32,64 96 40,40 72,56"}
EB_PORT=${EB_PORT:-18290}
LOG_LEVEL=${LOG_LEVEL:-info}
KEEP=${KEEP:-0}
PROFILE=${PROFILE:-0}
PROFILE_DIR=${PROFILE_DIR:-/tmp/edgeboot-$BENCH_NAME-profiles}
USER_NAME=bench PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
for tool in docker-registry skopeo htpasswd curl node ss ${EXTRA_TOOLS:-}; do command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }; done
if [ ! -f dist/main.js ] || [ ! -f dist/registry/mirror.js ] || [ ! -f dist/precache/bundles.js ]; then
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

work=$(mktemp -d "/tmp/edgeboot-bench-$BENCH_NAME.XXXXXX")
pids=()
eb_pid=''
cleanup_dirs=()
cleanup() {
  for p in "${pids[@]}" $eb_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for d in "${cleanup_dirs[@]}"; do rm -rf "$d"; done
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
# Generates the OCI layout; sets tags[], digest[tag], size[tag] (manifest + config + layers),
# total (the sum of the image sizes) and distinct (bytes of the distinct blobs).
tags=()
declare -A digest size
make_images() {
  local t0 t1 tag d s
  t0=$(now)
  node bench/make-images.mjs "$work/layout" "$BASE_MIB" "$UNIQUE_MIB" >"$work/images.txt"
  t1=$(now)
  while read -r tag d s; do
    if [ "$tag" = distinct ]; then distinct=$d; continue; fi
    tags+=("$tag"); digest[$tag]=$d; size[$tag]=$s
  done <"$work/images.txt"
  total=0; for tag in "${tags[@]}"; do total=$((total + size[$tag])); done
  echo "images: ${#tags[@]} (base ${BASE_MIB} MiB + \"$UNIQUE_MIB\" MiB), sum of image sizes $(mib $total) MiB, distinct blobs $(mib "$distinct") MiB; generated in $(secs $((t1 - t0))) s"
}

# --- the upstream registry ---------------------------------------------------------------------
# Starts docker-registry on $REG:80 (pid in reg_pid); its access log (combined) is
# $work/registry/access.log.
start_registry() {
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
}

# skopeo with a home, auth file and registries.conf of its own (no machine setting applies)
printf '{"auths":{}}\n' >"$work/home/auth.json"
printf 'unqualified-search-registries = []\n' >"$work/home/registries.conf"
sk() {
  env -i PATH="$PATH" HOME="$work/home" XDG_RUNTIME_DIR="$work/home" TMPDIR="$work/home" \
    REGISTRY_AUTH_FILE="$work/home/auth.json" CONTAINERS_REGISTRIES_CONF="$work/home/registries.conf" \
    skopeo --insecure-policy "$@"
}

# Pushes every image of the layout as $REG/bench/<tag>:v1, then removes the layout.
push_images() {
  local t0 t1 t
  t0=$(now)
  for t in "${tags[@]}"; do
    sk copy --quiet --all --preserve-digests --dest-tls-verify=false --dest-creds "$USER_NAME:$PASSWORD" "oci:$work/layout:$t" "docker://$REG/bench/$t:v1"
  done
  t1=$(now)
  rm -rf "$work/layout"
  echo "pushed to docker-registry on $REG:80 (basic auth) in $(secs $((t1 - t0))) s"
}

# --- edgeboot ----------------------------------------------------------------------------------
eb_n=0
# A new edgeboot with an empty cache dir and store (the previous one stopped and removed); its
# data dir is $eb_dir (admin token in $eb_dir/admin-token), its log $work/eb.log.
start_edgeboot() {
  [ -f "$work/pull-secret.json" ] || printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REG" "$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)" >"$work/pull-secret.json"
  if [ -n "$eb_pid" ]; then
    kill "$eb_pid" 2>/dev/null || true
    wait "$eb_pid" 2>/dev/null || true
    rm -rf "$work/eb.$eb_n"
  fi
  eb_n=$((eb_n + 1))
  local d=$work/eb.$eb_n node_args=()
  eb_dir=$d
  mkdir -p "$d"
  if [ "$PROFILE" = 1 ]; then mkdir -p "$PROFILE_DIR"; node_args=(--cpu-prof --cpu-prof-dir="$PROFILE_DIR" --cpu-prof-name="edgeboot-$BENCH_NAME-$eb_n.cpuprofile"); fi
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
