#!/usr/bin/env bash
# Boot-script throughput of edgeboot on loopback: the entry script (no store access) and the
# per-machine script (one SQLite transaction per request: lookup, observed facts, an event).
# Needs wrk (Debian's `wrk`) and a built dist/. Bounded: each run lasts DURATION seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# HTTP alone: DHCP and TFTP stay off, so the bench binds nothing on the host but loopback.
EDGEBOOT_SERVER_DATA_DIR="$dir" EDGEBOOT_STORE_URL="sqlite:$dir/edgeboot.db" EDGEBOOT_LOG_LEVEL=warn EDGEBOOT_DHCP_MODE=off EDGEBOOT_TFTP_ENABLED=false \
  node dist/main.js serve --set http.listen=127.0.0.1:18181 > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fs http://127.0.0.1:18181/healthz >/dev/null && break; sleep 0.2; done
token=$(cat "$dir/admin-token")
for i in $(seq 0 99); do
  mac=$(printf '52:54:00:00:%02x:%02x' $((i / 256)) $((i % 256)))
  curl -fs -X PUT -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"profile":"local-disk"}' "http://127.0.0.1:18181/api/v1/machines/$mac" >/dev/null
done
echo "== GET /boot.ipxe (entry script)"
wrk -t2 -c16 -d"${DURATION}s" http://127.0.0.1:18181/boot.ipxe | grep -E 'Requests/sec|Latency'
echo "== GET /ipxe?mac=… (registered machine: one write transaction per request)"
wrk -t2 -c16 -d"${DURATION}s" 'http://127.0.0.1:18181/ipxe?mac=52-54-00-00-00-07&arch=x86_64&platform=efi' | grep -E 'Requests/sec|Latency'
echo "RSS after load: $(ps -o rss= -p "$pid") KiB"
