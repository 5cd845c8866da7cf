#!/usr/bin/env bash
# Build the libFuzzer harnesses with clang (ASan + UBSan) and run each for
# SECONDS (default 30) from its seed corpus (tests/fuzz/).
#
#   scripts/fuzz.sh [SECONDS]          MAMORI_FUZZ_DIR=build-fuzz by default
#
# New inputs that reach new code go to $MAMORI_FUZZ_DIR/corpus/<harness>/
# (the seeds in the repository are never written to).  A crash stops the
# run with libFuzzer's report and leaves crash-* in $MAMORI_FUZZ_DIR/;
# minimise it (<harness> -minimize_crash=1 crash-...), fix the bug, and
# add the input to tests/fuzz/regressions/<harness>/ so that test_csv
# replays it in every build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-30}
dir=${MAMORI_FUZZ_DIR:-$top/build-fuzz}
case $secs in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2;; esac

harnesses=(fuzz_csv_import fuzz_json_body)
CC=clang MAMORI_BUILD_TARGETS="${harnesses[*]}" "$top/scripts/build.sh" "$dir" \
  -DCMAKE_BUILD_TYPE=Debug -DMAMORI_SANITIZE=ON -DMAMORI_FUZZ=ON

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for h in "${harnesses[@]}"; do
  work="$dir/corpus/$h"
  mkdir -p "$work"
  echo "== fuzz $h for ${secs}s"
  # -timeout: one input taking over 10 s is a hang worth a report.
  dirs=("$work" "$top/tests/fuzz/corpus/$h")
  [ -d "$top/tests/fuzz/regressions/$h" ] && dirs+=("$top/tests/fuzz/regressions/$h")
  (cd "$dir" && "./tests/fuzz/$h" -max_total_time="$secs" -timeout=10 \
      -max_len=65536 -print_final_stats=1 "${dirs[@]}")
done
echo "fuzz.sh: no crash in ${secs}s per harness"
