#!/usr/bin/env bash
# The HTTP route fuzz of test/integration/http-fuzz.test.ts at full size: FUZZ_REQUESTS (default
# 200,000) seeded requests over every route with inject(), in a network namespace of its own
# (unshare --net, loopback only: nothing can leave the machine), then /healthz. Prints the seed,
# requests per second, the answers by status, intended 5xx (unreachable upstream) and every 5xx
# that was not meant (each with the request to replay). Needs root (unshare) and node_modules.
# Bounded: FUZZ_SECONDS (default 1800). Exit 1 when any 5xx was not meant or /healthz failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export EB_FUZZ_CHILD=1 FUZZ_REQUESTS=${FUZZ_REQUESTS:-200000} FUZZ_SECONDS=${FUZZ_SECONDS:-1800}
[ -d /dev/shm ] && export TMPDIR=/dev/shm
out=$(mktemp)
trap 'rm -f "$out"' EXIT
unshare --net -- sh -c 'ip link set lo up && exec "$0" "$@"' \
  node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs test/helpers/http-fuzz-run.ts | tee "$out" | grep -v '^FUZZ-RESULT'
node -e '
const line = require("fs").readFileSync(process.argv[1], "utf8").split("\n").find((l) => l.startsWith("FUZZ-RESULT "));
if (!line) { console.log("no result: the fuzz process died"); process.exit(1); }
const r = JSON.parse(line.slice("FUZZ-RESULT ".length));
const fivexx = Object.entries(r.byStatus).filter(([s]) => Number(s) >= 500).reduce((n, [, c]) => n + c, 0);
console.log(`seed ${r.seed}: ${r.requests} requests over ${r.routes} routes in ${r.seconds.toFixed(1)} s = ${r.perSecond} requests/s`);
console.log(`by status ${JSON.stringify(r.byStatus)}`);
console.log(`5xx: ${fivexx} (${r.intended5xx} intended: unreachable upstream; ${r.failures.length} not meant); /healthz after: ${r.healthz}`);
for (const f of r.failures) console.log(`NOT MEANT #${f.index} ${f.status} ${JSON.stringify(f.request)}`);
process.exit(r.failures.length === 0 && r.healthz === 200 ? 0 : 1);
' "$out"
