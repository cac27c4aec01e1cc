#!/usr/bin/env bash
# The tar reader and writer, side by side: edgeboot's own ustar code as it was before issue 17
# (src/registry/tar.ts and src/precache/tar-header.ts at BASE) against tar-stream, which
# replaced both. Writes an archive of FILES files of SIZE_MIB MiB each (streamed from disk, as
# bundle blobs are) and reads one small file back out of an archive of the same size (as a
# release image's layer is read); RUNS runs each in rotation, medians in MiB/s and their ratio.
#
#   bench/tar.sh                      # 8 x 128 MiB, 5 runs
#   FILES=4 SIZE_MIB=256 RUNS=3 bench/tar.sh
#
# Needs git (for the old code) and node_modules. Everything is in a temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-29c1dae}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/old"
git show "$BASE:src/registry/tar.ts" >"$work/old/tar.ts"
git show "$BASE:src/precache/tar-header.ts" >"$work/old/tar-header.ts"
FILES=${FILES:-8} SIZE_MIB=${SIZE_MIB:-128} RUNS=${RUNS:-5} WORK="$work" REPO="$PWD" node --import tsx bench/tar-run.ts
