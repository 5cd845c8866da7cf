#!/usr/bin/env bash
# Configure and build into a directory: scripts/build.sh DIR [cmake args...]
#   MAMORI_BUILD_TARGETS="a b"  build only these targets (default: all)
set -euo pipefail
dir=${1:?usage: build.sh DIR [cmake args...]}
shift
cmake -S "$(dirname "$0")/.." -B "$dir" "$@" >/dev/null
targets=()
for t in ${MAMORI_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
