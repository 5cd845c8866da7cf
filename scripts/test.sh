#!/usr/bin/env bash
# The second README command: install what is missing, build, and run every
# test: the normal build, the AddressSanitizer+UndefinedBehaviorSanitizer
# build, a clang -Werror build, and the linters.  Exits non-zero on any failure.
#   MAMORI_TEST_QUICK=1  skip the sanitizer and clang builds and the fuzzing
#                        (local iteration)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

"$top/scripts/install-deps.sh"
# Tests start the daemon as the service user; it must reach the build tree.
chmod o+x "$top" 2>/dev/null || true

# A throwaway PostgreSQL cluster for the storage tests, when that suite exists.
if [ -x "$top/scripts/pg-cluster.sh" ]; then
  pgdir=$(mktemp -d /tmp/mamori-pg-XXXXXX)
  trap '"$top/scripts/pg-cluster.sh" stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  "$top/scripts/pg-cluster.sh" start "$pgdir"
  MAMORI_TEST_PG=$("$top/scripts/pg-cluster.sh" env "$pgdir")
  export MAMORI_TEST_PG
fi

run_suite() {   # run_suite NAME BUILD_DIR cmake-args...
  local name=$1 dir=$2
  shift 2
  echo "== $name: build ($dir)"
  "$top/scripts/build.sh" "$dir" "$@"
  echo "== $name: ctest"
  (cd "$dir" && ctest --output-on-failure -j"$jobs")
}

run_suite "gcc" build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo

if [ "${MAMORI_TEST_QUICK:-0}" != 1 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DMAMORI_SANITIZE=ON
  echo "== clang -Werror build"
  CC=clang "$top/scripts/build.sh" build-clang -DCMAKE_BUILD_TYPE=Release
  echo "== fuzz (libFuzzer, ASan+UBSan, 20 s per harness)"
  "$top/scripts/fuzz.sh" 20
fi

echo "== lint"
"$top/scripts/lint.sh"
echo "test.sh: all suites passed"
