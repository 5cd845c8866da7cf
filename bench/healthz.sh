#!/usr/bin/env bash
# healthz.sh - GET /healthz over TLS keep-alive: mamorid against a bare
# libmicrohttpd + GnuTLS server (bench/mhd_baseline.c) in the same run.
#
# usage: bench/healthz.sh [BUILD_DIR]          (default: build)
#
# It builds nothing: BUILD_DIR must already hold mamorid, mamori and
# bench/mhd_baseline (make mamorid mamori mhd_baseline; use a Release
# build for figures worth recording).  It makes a throw-away data directory
# with `mamori init` on ephemeral loopback ports, starts mamorid and the
# baseline with the same certificate, key, TLS priorities and thread
# count, runs wrk against both, prints the figures and removes everything
# on exit.  See docs/benchmarks.md for recorded results.
#
# Environment:
#   DURATION=10          seconds per measured wrk run
#   WRK_THREADS=2        wrk -t
#   WRK_CONNECTIONS=64   wrk -c
#   LOG_LEVELS=warn      mamorid log.level values to measure, e.g. "warn info"
#   ROUNDS=1             repeat everything, alternating which server goes
#                        first; the summary shows the median of each figure
#
# Only the public listener is measured: wrk cannot present a client
# certificate, which the internal listener requires.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
DURATION=${DURATION:-10}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNECTIONS=${WRK_CONNECTIONS:-64}
LOG_LEVELS=${LOG_LEVELS:-warn}
ROUNDS=${ROUNDS:-1}

die() { echo "healthz.sh: $*" >&2; exit 1; }

if [ ! -d "$BUILD" ] && [ -d "$ROOT/$BUILD" ]; then
    BUILD=$ROOT/$BUILD
fi
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || die "no build directory $1"
MAMORI=$BUILD/mamori
MAMORID=$BUILD/mamorid
BASELINE=$BUILD/bench/mhd_baseline
for b in "$MAMORI" "$MAMORID" "$BASELINE"; do
    [ -x "$b" ] || die "$b is missing: make mamorid mamori mhd_baseline in $BUILD first"
done
for t in wrk curl awk pgrep; do
    command -v "$t" >/dev/null 2>&1 || die "$t is not installed"
done
case $DURATION in ''|*[!0-9]*|0) die "DURATION must be a whole number of seconds" ;; esac
case $ROUNDS in ''|*[!0-9]*|0) die "ROUNDS must be a whole number" ;; esac
for l in $LOG_LEVELS; do
    case $l in error|warn|info|debug) ;; *) die "LOG_LEVELS: $l is not a log level" ;; esac
done

TMP=$(mktemp -d /tmp/mamori-bench.XXXXXX)
# Started as root, mamorid's processes drop to the `mamori` user once they
# have read their files; they (and the SQLite store) must still reach the
# data dir afterwards.
chmod 0755 "$TMP"
DATA=$TMP/data
CONF=$DATA/mamorid.conf
MAMORID_PID=
BASELINE_PID=

stop_pid() {
    local pid=$1
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

cleanup() {
    stop_pid "$MAMORID_PID"
    stop_pid "$BASELINE_PID"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- helpers ---------------------------------------------------------------

# Accepted TCP connections so far in this network namespace (a system-wide
# counter: other traffic on the host adds to it, so it is an upper bound).
passive_opens() {
    awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 }
                   else print $col["PassiveOpens"] }' /proc/net/snmp
}

# CPU time (user + system, clock ticks) used so far by the given processes
# and all their threads.
cpu_ticks() {
    local p total=0 t
    for p in "$@"; do
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# The server processes to charge: mamorid's parent and children, or the
# baseline.
server_pids() {
    if [ "$1" = mamorid ]; then
        echo "$MAMORID_PID" $(pgrep -P "$MAMORID_PID")
    else
        echo "$BASELINE_PID"
    fi
}

# wrk's latency figure (e.g. 812.00us, 1.20ms, 1.01s) in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

# What to add to an error: whether mamorid is still up, and its log.
server_state() {
    if [ -n "$MAMORID_PID" ] && ! kill -0 "$MAMORID_PID" 2>/dev/null; then
        echo "; mamorid (pid $MAMORID_PID) is gone, its log ends:"
        tail -n 5 "$TMP"/mamorid-*.log 2>/dev/null
    fi
}

# run_wrk OUTFILE THREADS CONNECTIONS SECONDS URL [extra wrk args...]
run_wrk() {
    local out=$1 t=$2 c=$3 d=$4 url=$5
    shift 5
    wrk -t"$t" -c"$c" -d"${d}s" --latency "$@" "$url" >"$out" 2>&1 ||
        die "wrk failed: $(cat "$out")$(server_state)"
}

rps()      { awk '/^Requests\/sec:/ { print $2 }' "$1"; }
requests() { awk '/requests in/ { print $1 }' "$1"; }
pct()      { to_ms "$(awk -v p="$2%" '$1 == p { print $2 }' "$1")"; }
errors()   {
    awk '/Socket errors|Non-2xx/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$1"
}

wait_ports() {
    local _
    for _ in $(seq 1 100); do
        if [ -s "$DATA/run/ports.json" ]; then
            return 0
        fi
        kill -0 "$MAMORID_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

json_field() {
    sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$DATA/run/ports.json"
}

start_mamorid() {
    local level=$1
    sed -i "s/^log\.level = .*/log.level = $level/" "$CONF"
    "$MAMORID" -f -c "$CONF" 2>>"$TMP/mamorid-$level.log" &
    MAMORID_PID=$!
    wait_ports || die "mamorid did not start: $(tail -5 "$TMP/mamorid-$level.log")"
    PUBLIC_PORT=$(json_field public_port)
}

stop_mamorid() {
    stop_pid "$MAMORID_PID"
    MAMORID_PID=
}

# Keep-alive check: two transfers in one curl, then one wrk connection for
# 2 s, counting the TCP connections the server accepted.  For scale, the
# rate of full handshakes (new TCP + TLS connection, no request) from
# `openssl s_time -new` when openssl is installed.
keepalive_check() {
    local name=$1 url=$2 port=$3 second before after reqs hs
    second=$(curl -s --cacert "$DATA/pki/ca.crt" -o /dev/null -o /dev/null \
                  -w '%{num_connects}\n' "$url" "$url" | tail -n 1)
    before=$(passive_opens)
    run_wrk "$TMP/ka1.txt" 1 1 2 "$url"
    after=$(passive_opens)
    reqs=$(requests "$TMP/ka1.txt")
    printf '  %-9s curl URL URL: new connections for the 2nd transfer: %s (0 = reused)\n' \
        "$name" "$second"
    printf '  %-9s wrk -t1 -c1 -d2s: %s req/s, %s requests over %s TCP connection(s)\n' \
        "$name" "$(rps "$TMP/ka1.txt")" "$reqs" "$((after - before))"
    if command -v openssl >/dev/null 2>&1; then
        hs=$(openssl s_time -connect "127.0.0.1:$port" -new -time 2 2>/dev/null |
             awk '/connections in [0-9.]+ real seconds/ { printf "%.0f", $1 / $4 }')
        printf '  %-9s openssl s_time -new: %s full TLS handshakes/s (what no keep-alive costs)\n' \
            "$name" "${hs:-?}"
    fi
}

# measure NAME LABEL URL: warm up 1 s, then the measured run; one line
# "name label req/s p50 p90 p99 cpu-us/req conns notes" goes to
# $TMP/results.  cpu-us/req is the server's CPU time per request, which
# other load on the host disturbs much less than req/s.
measure() {
    local name=$1 label=$2 url=$3 out before after cpu0 cpu1 cpu wcpu
    out=$TMP/wrk-$name-$label-$ROUND.txt
    run_wrk "$TMP/warmup.txt" "$WRK_THREADS" "$WRK_CONNECTIONS" 1 "$url"
    # shellcheck disable=SC2046
    set -- $(server_pids "$name")
    before=$(passive_opens)
    cpu0=$(cpu_ticks "$@")
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%U %S' -o "$out.time" \
            wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"${DURATION}s" --latency "$url" \
            >"$out" 2>&1 || die "wrk failed: $(cat "$out")$(server_state)"
    else
        run_wrk "$out" "$WRK_THREADS" "$WRK_CONNECTIONS" "$DURATION" "$url"
    fi
    cpu1=$(cpu_ticks "$@")
    after=$(passive_opens)
    cpu=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$(requests "$out")" \
          'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "-" }')
    wcpu=-
    if [ -s "$out.time" ]; then
        wcpu=$(awk -v n="$(requests "$out")" \
               'NR == 1 { if (n > 0) printf "%.1f", ($1 + $2) * 1e6 / n; else print "-" }' \
               "$out.time")
    fi
    printf '%-9s %-6s %10s %9s %9s %9s %10s %10s %6s  %s\n' "$name" "$label" \
        "$(rps "$out")" "$(pct "$out" 50)" "$(pct "$out" 90)" "$(pct "$out" 99)" \
        "$cpu" "$wcpu" "$((after - before))" "$(errors "$out")" | tee -a "$TMP/results"
}

measure_mamorid() {
    local level
    for level in $LOG_LEVELS; do
        start_mamorid "$level"
        if [ "$KEEPALIVE_DONE" = 0 ]; then
            echo "== keep-alive"
            keepalive_check mamorid "https://localhost:$PUBLIC_PORT/healthz" "$PUBLIC_PORT"
            keepalive_check baseline "$BASELINE_URL" "$BASELINE_PORT"
            KEEPALIVE_DONE=1
            echo
            echo "== runs: wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d${DURATION}s --latency URL"
            echo "   (latency in ms; cpu-us/req = server CPU time per request;" \
                 "wrk-us/req = wrk's own; conns = TCP connections accepted)"
            printf '%-9s %-6s %10s %9s %9s %9s %10s %10s %6s  %s\n' server log req/s p50 p90 \
                p99 cpu-us/req wrk-us/req conns notes
        fi
        measure mamorid "$level" "https://localhost:$PUBLIC_PORT/healthz"
        stop_mamorid
    done
}

# Median of column $3 of the results rows of server $1 / label $2.
median() {
    awk -v n="$1" -v l="$2" -v c="$3" '$1 == n && $2 == l { print $c }' "$TMP/results" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit
            if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ---- set up ----------------------------------------------------------------

echo "== machine"
echo "  date     : $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "  cpus     : $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))"
echo "  kernel   : $(uname -sr)"
echo "  load avg : $(cut -d' ' -f1-3 /proc/loadavg) (before; other work on the host skews every figure)"
echo "  wrk      : $(wrk --version 2>&1 | head -n 1 | awk '{ print $1, $2 }')"
echo "  libs     : libmicrohttpd $(pkg-config --modversion libmicrohttpd 2>/dev/null || echo '?')," \
     "GnuTLS $(pkg-config --modversion gnutls 2>/dev/null || echo '?')"
echo "  build    : $BUILD ($(awk -F= '/^CMAKE_BUILD_TYPE:/ { print $2 }' "$BUILD/CMakeCache.txt" 2>/dev/null))"

"$MAMORI" init --internal-listen 127.0.0.1:0 --public-listen 127.0.0.1:0 "$DATA" >/dev/null ||
    die "mamori init failed"
THREADS=$(awk -F' *= *' '$1 == "threads" { print $2 }' "$CONF")
CLK_TCK=$(getconf CLK_TCK)
WORKERS=$(awk -F' *= *' '$1 == "workers" { print $2 }' "$CONF")

"$BASELINE" -c "$DATA/pki/server.crt" -k "$DATA/pki/server.key" -t "$THREADS" \
    >"$TMP/baseline.port" 2>"$TMP/baseline.log" &
BASELINE_PID=$!
for _ in $(seq 1 50); do
    [ -s "$TMP/baseline.port" ] && break
    sleep 0.1
done
BASELINE_PORT=$(head -n 1 "$TMP/baseline.port")
[ -n "$BASELINE_PORT" ] || die "mhd_baseline did not start: $(cat "$TMP/baseline.log")"
BASELINE_URL=https://localhost:$BASELINE_PORT/healthz

echo "  servers  : mamorid workers=$WORKERS threads=$THREADS; mhd_baseline threads=$THREADS;" \
     "both on 127.0.0.1, sharing the CPUs with wrk"
echo "  tls      : $(curl -sv --cacert "$DATA/pki/ca.crt" -o /dev/null "$BASELINE_URL" 2>&1 |
                     sed -n 's/^\* SSL connection using //p')"
echo "  note     : wrk cannot send a client certificate, so only the public listener is measured"
echo

KEEPALIVE_DONE=0
: >"$TMP/results"
for ROUND in $(seq 1 "$ROUNDS"); do
    # Alternate the order so neither server always runs first.
    if [ $((ROUND % 2)) = 1 ]; then
        measure_mamorid
        measure baseline - "$BASELINE_URL"
    else
        measure baseline - "$BASELINE_URL"
        measure_mamorid
    fi
done

echo
echo "== summary: median of $ROUNDS round(s) of ${DURATION} s (load avg now $(cut -d' ' -f1-3 /proc/loadavg))"
for level in $LOG_LEVELS; do
    case $level in
    info|debug) echo "  log.level=$level: one access log line per request (to a file)" ;;
    *)          echo "  log.level=$level: the per-request access log (info) is off" ;;
    esac
done
printf '%-9s %-6s %10s %9s %9s %9s %10s %10s\n' server log req/s p50 p90 p99 \
    cpu-us/req wrk-us/req
for key in $(for l in $LOG_LEVELS; do echo "mamorid/$l"; done) baseline/-; do
    n=${key%%/*}
    l=${key#*/}
    printf '%-9s %-6s %10s %9s %9s %9s %10s %10s\n' "$n" "$l" "$(median "$n" "$l" 3)" \
        "$(median "$n" "$l" 4)" "$(median "$n" "$l" 5)" "$(median "$n" "$l" 6)" \
        "$(median "$n" "$l" 7)" "$(median "$n" "$l" 8)"
done
for level in $LOG_LEVELS; do
    awk -v m="$(median mamorid "$level" 3)" -v b="$(median baseline - 3)" \
        -v mc="$(median mamorid "$level" 7)" -v bc="$(median baseline - 7)" -v l="$level" \
        'BEGIN { if (b > 0 && mc > 0)
                     printf "ratio mamorid(log.level=%s)/baseline: req/s %.2f, CPU per request %.2f\n",
                            l, m / b, mc / bc }'
done
