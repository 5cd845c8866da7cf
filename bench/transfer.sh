#!/usr/bin/env bash
# Transfer inquiry benchmark: bench/transfer.sh BUILD_DIR [N [THREADS]]
#   Builds bench_transfer in BUILD_DIR (use a Release build:
#   scripts/build.sh build-tbench -DCMAKE_BUILD_TYPE=Release) and runs it:
#   N single inquiries (default 400) from 1 thread and from THREADS
#   threads (default 4), 100 of each "no record" path interleaved, and a
#   bulk job of N rows without its rate limit.  Each inquiry goes through
#   the real audit writer (forked, fsync per acknowledged event) and the
#   store (SQLite in BUILD_DIR/bench-transfer-data, a real disk; and
#   PostgreSQL when MAMORI_TEST_PG is set).  Figures: docs/transfer.md.
set -euo pipefail
build=${1:?usage: bench/transfer.sh BUILD_DIR [N [THREADS]]}
n=${2:-400}
threads=${3:-4}
cmake --build "$build" -j"$(nproc)" --target bench_transfer >/dev/null
build=$(cd "$build" && pwd)
data="$build/bench-transfer-data"
rm -rf "$data"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "command: bench/transfer.sh $* (build type: $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt"))"
echo "git: $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$build/bench/transfer/bench_transfer" "$data" "$n" "$threads"
rm -rf "$data"
