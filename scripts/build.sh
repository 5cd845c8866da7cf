#!/usr/bin/env bash
# Configure and build into a directory: scripts/build.sh DIR [cmake args...]
set -euo pipefail
dir=${1:?usage: build.sh DIR [cmake args...]}
shift
cmake -S "$(dirname "$0")/.." -B "$dir" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
