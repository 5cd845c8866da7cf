#!/usr/bin/env bash
# The first README command: install what is missing, build, make a demo data
# directory (development PKI, demo terminal, master key) and run mamorid in the
# foreground on localhost with the embedded SQLite store.  Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
# The daemon runs as the service user, which must reach the data directory:
# keep it where services keep their data, not under a private home.
demo=${MAMORI_DEMO_DIR:-/var/lib/mamori/demo}

"$top/scripts/install-deps.sh"
echo "demo: building (Release) in $top/build"
MAMORI_BUILD_TARGETS="mamorid mamori" \
  "$top/scripts/build.sh" "$top/build" -DCMAKE_BUILD_TYPE=Release

echo "demo: installing into /usr/local (binaries, man pages, reference data)"
cmake --install "$top/build" >/dev/null
if [ ! -f "$demo/mamorid.conf" ]; then
  echo "demo: creating the demo data directory $demo"
  mkdir -p "$(dirname "$demo")"
  mamori init "$demo"
fi

mamorid -n -c "$demo/mamorid.conf"
# A demo directory made by an older mamori: bring its database to this
# version first (the daemon never migrates on its own; a no-op when current).
mamori migrate -c "$demo/mamorid.conf"

# Demo data (R9.4: synthetic only): the municipality 131016 (千代田区), the demo
# terminal registered to it, and 1,000 synthetic residents with their vouchers
# and vaccinations.  Every step is idempotent, so a second run changes nothing.
conf="$demo/mamorid.conf"
if ! mamori tenant list -c "$conf" 2>/dev/null | grep -q '^131016 '; then
  mamori tenant create -c "$conf" 131016
fi
mamori staff terminal-register -c "$conf" --tenant 131016 --name demo \
  --cert "$demo/terminals/demo.crt" >/dev/null 2>&1 || true   # already registered
if [ ! -d "$demo/synth" ]; then
  mamori synth --municipality 131016 --count 1000 --seed demo --out "$demo/synth"
fi
for kind in residents vouchers vaccinations; do
  mamori import -c "$conf" --tenant 131016 --kind "$kind" "$demo/synth/$kind.csv"
done
cat <<MSG

demo: mamorid is starting on https://localhost:8443 (internal, terminal
certificate required) and https://localhost:8444 (public).  In another shell:

  curl --cacert $demo/pki/ca.crt https://localhost:8444/healthz
  curl --cacert $demo/pki/ca.crt --cert $demo/terminals/demo.crt \\
       --key $demo/terminals/demo.key https://localhost:8443/v1/terminal

Press Ctrl-C to stop (SIGINT drains in-flight requests, like SIGTERM).
MSG
exec mamorid -f -c "$demo/mamorid.conf"
