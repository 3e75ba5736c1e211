#!/bin/sh
# Instructions per request, AuthedClient against a fixed `Authorization` header: the same
# GET through the same in-process server, both measured in this one run with callgrind.
#
# Run from the crate root: `benches/callgrind.sh` (needs valgrind; ~3 min after the build).
# AUTHED_PROFILE_REQUESTS sets the request count (default 10,000). Uses CARGO_TARGET_DIR.
#
# Only the driver's request function is counted (`--toggle-collect`): building the request,
# getting the token, sending, reading the body, as the caller's task sees it. The server,
# the token endpoint and hyper's connection tasks are the same for both clients and are
# left out, so the ratio is not diluted by them.
set -eu
cd "$(dirname "$0")/.."
requests=${AUTHED_PROFILE_REQUESTS:-10000}
bin=$(cargo bench --bench load --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the load bench" >&2; exit 1; }
out=${TMPDIR:-/tmp}/authed-callgrind.$$
mkdir -p "$out"
count() {
    AUTHED_LOAD_PROFILE=$1 AUTHED_LOAD_REQUESTS=$requests valgrind --tool=callgrind \
        --callgrind-out-file="$out/$1.out" --toggle-collect='load::Client::request::*' \
        "$bin" > "$out/$1.log" 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$1.out"
}
base=$(count baseline)
authed=$(count authed)
echo "| client | instructions | per request | ratio |"
echo "|---|---|---|---|"
awk -v b="$base" -v a="$authed" -v n="$requests" 'BEGIN {
    printf "| baseline (fixed header) | %d | %.1f k | 1.000 |\n", b, b / n / 1000
    printf "| authed | %d | %.1f k | %.3f |\n", a, a / n / 1000, a / b
}'
echo "callgrind files: $out (callgrind_annotate --inclusive=yes $out/authed.out)"
