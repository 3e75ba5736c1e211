#!/bin/sh
# Instructions per request, AuthedClient against a fixed `Authorization` header: the same
# GET through the same in-process server, all measured in this one run with callgrind.
#
# Run from the crate root: `benches/callgrind.sh` (needs valgrind; ~3 min after the build).
# AUTHED_PROFILE_REQUESTS sets the request count (default 10,000), AUTHED_PROFILE_CONCURRENCY
# the callers (default 1: with one connection the pool does the same work for every
# client, so the counts are repeatable), AUTHED_PROFILE_FEATURES the crate features to build
# with (e.g. `metrics`, which then counts cache hits into a recorder). Uses CARGO_TARGET_DIR.
#
# Only the driver's request function is counted (`--toggle-collect`): building the request,
# getting the token, sending, reading the body, as the caller's task sees it. The server,
# the token endpoint and hyper's connection tasks are the same for every client and are
# left out, so the ratio is not diluted by them. The token is fetched before counting.
#
# Rows: `baseline` (reqwest, a fixed header, the absolute URL as a string); `authed` with
# the same absolute URL string (the same work for the URL); `authed, relative path` with
# `get("hello")` against its base URL (what most code writes); `authed with DPoP` with the
# same absolute URL string and a DPoP-bound token (an ES256 proof signed per request).
set -eu
cd "$(dirname "$0")/.."
requests=${AUTHED_PROFILE_REQUESTS:-10000}
concurrency=${AUTHED_PROFILE_CONCURRENCY:-1}
features=${AUTHED_PROFILE_FEATURES:-}
bin=$(cargo bench --bench load --no-run ${features:+--features "$features"} 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the load bench" >&2; exit 1; }
out=${TMPDIR:-/tmp}/authed-callgrind.$$
mkdir -p "$out"
count() {
    AUTHED_LOAD_PROFILE=$1 AUTHED_LOAD_URL=$2 AUTHED_LOAD_REQUESTS=$requests \
        AUTHED_LOAD_CONCURRENCY=$concurrency valgrind --tool=callgrind \
        --callgrind-out-file="$out/$1-$2.out" --toggle-collect='load::Client::request::*' \
        "$bin" > "$out/$1-$2.log" 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$1-$2.out"
}
base=$(count baseline absolute)
authed=$(count authed absolute)
relative=$(count authed relative)
dpop=$(count dpop absolute)
echo "$requests requests, concurrency $concurrency"
echo "| client | instructions | per request | ratio |"
echo "|---|---|---|---|"
awk -v b="$base" -v a="$authed" -v r="$relative" -v d="$dpop" -v n="$requests" 'BEGIN {
    printf "| baseline (fixed header) | %d | %.2f k | 1.000 |\n", b, b / n / 1000
    printf "| authed, same URL string | %d | %.2f k | %.3f |\n", a, a / n / 1000, a / b
    printf "| authed, relative path | %d | %.2f k | %.3f |\n", r, r / n / 1000, r / b
    printf "| authed with DPoP (ES256), same URL string | %d | %.2f k | %.3f |\n", d, d / n / 1000, d / b
}'
echo "callgrind files: $out (callgrind_annotate --inclusive=yes $out/authed-absolute.out)"
