#!/usr/bin/env bash
# Install what mamori needs on Debian 12, idempotently, and say what it does.
# Safe to run again; run as root (or with sudo).
set -euo pipefail

PACKAGES=(
  # toolchain
  gcc clang make cmake pkg-config cppcheck libclang-rt-14-dev
  # libraries (found with pkg-config)
  libmicrohttpd-dev libgnutls28-dev libjansson-dev libseccomp-dev libsodium-dev
  libsqlite3-dev libpq-dev libcurl4-openssl-dev libcsv-dev libzstd-dev
  libunistring-dev libcmocka-dev
  # tools used by tests, the demo and benchmarks
  gnutls-bin curl ca-certificates postgresql wrk
  # the lint checks (scripts/check-*.sh) are perl with PerlIO encoding layers
  perl
)

say() { printf 'install-deps: %s\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "needs root to install packages and create the service user; re-run with sudo" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  say "all ${#PACKAGES[@]} packages already installed"
else
  say "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# mamorid drops privileges to this user when started as root.
if id mamori >/dev/null 2>&1; then
  say "service user 'mamori' exists"
else
  say "creating system user 'mamori'"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mamori
fi
