#!/usr/bin/env bash
# Audit log benchmark: bench/audit.sh BUILD_DIR [SECONDS [ENTRIES]]
#   Builds mamori and bench_audit in BUILD_DIR (use a Release build:
#   scripts/build.sh build-abench -DCMAKE_BUILD_TYPE=Release), then runs
#   (a) durable events/s through the forked audit writer with 1, 4 and 16
#   producers over IPC, with the fsync count (SECONDS 0 skips it), and
#   (b) `mamori audit verify` over ENTRIES entries (default 200000) next to
#   raw SHA-256, by wall and by CPU time (other load on a shared machine
#   moves wall time far more), with a deep verify and a breakdown.
#   MAMORI_BIN=path/to/mamori times another build's verify (e.g. an older
#   commit's, for a before/after with the same method).
#   The data goes to BUILD_DIR/bench-audit-data (a real disk, not tmpfs).
set -euo pipefail
build=${1:?usage: bench/audit.sh BUILD_DIR [SECONDS [ENTRIES]]}
secs=${2:-3}
entries=${3:-200000}
cmake --build "$build" -j"$(nproc)" --target mamori bench_audit >/dev/null
build=$(cd "$build" && pwd)
data="$build/bench-audit-data"
rm -rf "$data"
mkdir -p "$data"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "command: bench/audit.sh $* (build type: $(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt"))"
echo "git: $(git -C "$(dirname "$0")/.." rev-parse --short HEAD 2>/dev/null || echo unknown)"
"$build/bench/audit/bench_audit" "${MAMORI_BIN:-$build/mamori}" "$data" "$secs" "$entries"
rm -rf "$data"
