#!/usr/bin/env bash
# The first README command: install what is missing, build, make a demo data
# directory (development PKI, demo terminal, master key) and run mamorid in the
# foreground on localhost with the embedded SQLite store.  Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
demo=${MAMORI_DEMO_DIR:-$top/demo}

"$top/scripts/install-deps.sh"
echo "demo: building (Release) in $top/build"
"$top/scripts/build.sh" "$top/build" -DCMAKE_BUILD_TYPE=Release

if [ ! -f "$demo/mamorid.conf" ]; then
  echo "demo: creating the demo data directory $demo"
  "$top/build/mamori" init "$demo"
fi
# The data directory is owned by the service user; its parents must let it in.
chmod o+x "$top" 2>/dev/null || true

"$top/build/mamorid" -n -c "$demo/mamorid.conf"
cat <<MSG

demo: mamorid is starting on https://localhost:8443 (internal, terminal
certificate required) and https://localhost:8444 (public).  In another shell:

  curl --cacert $demo/pki/ca.crt https://localhost:8444/healthz
  curl --cacert $demo/pki/ca.crt --cert $demo/terminals/demo.crt \\
       --key $demo/terminals/demo.key https://localhost:8443/v1/terminal

Press Ctrl-C to stop (SIGINT drains in-flight requests, like SIGTERM).
MSG
exec "$top/build/mamorid" -f -c "$demo/mamorid.conf"
