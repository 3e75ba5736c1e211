#!/bin/sh
# Instructions per request, AuthedClient against a fixed `Authorization` header: the same
# GET through the same in-process server, every row measured in this one run with callgrind,
# and the machine's native signature cost from `openssl speed` in the same run.
#
# Run from the crate root: `benches/callgrind.sh` (needs valgrind and openssl; ~5 min after
# the build). AUTHED_PROFILE_REQUESTS sets the request count (default 10,000),
# AUTHED_PROFILE_CONCURRENCY the callers (default 1: with one connection the pool does the
# same work for every client, so the counts are repeatable), AUTHED_PROFILE_FEATURES the
# crate features to build with (e.g. `metrics`). Uses CARGO_TARGET_DIR.
#
# Only the driver's request function is counted (`--toggle-collect`): building the request,
# getting the token, sending, reading the body, as the caller's task sees it. The server,
# the token endpoint and hyper's connection tasks are the same for every client and are
# left out, so the ratio is not diluted by them. The token is fetched before counting.
#
# Rows, compared like for like:
# - `baseline, absolute` (reqwest, a fixed header, the absolute URL as a string) against
#   `authed, absolute` (the same absolute string: the same URL parsing), with its own
#   reqwest client of the same settings (no redirects, 30 s connect timeout), and with that
#   client given (`http_client`: it may follow redirects, so each request's URL is kept);
# - `baseline, joined` (the fixed header, `hello` joined onto a parsed base `Url`) against
#   `authed, relative` (`get("hello")` against its base URL: the same join);
# - `authed with DPoP` ES256 and EdDSA (a proof signed per request) against `authed,
#   absolute` (Bearer), with the same absolute string.
set -eu
cd "$(dirname "$0")/.."
requests=${AUTHED_PROFILE_REQUESTS:-10000}
concurrency=${AUTHED_PROFILE_CONCURRENCY:-1}
features=${AUTHED_PROFILE_FEATURES:-}
bin=$(cargo bench --bench load --no-run ${features:+--features "$features"} 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the load bench" >&2; exit 1; }
out=${TMPDIR:-/tmp}/authed-callgrind.$$
mkdir -p "$out"
# count PROFILE URL [given]: `given` gives the authed client `http()` as a caller's client.
count() {
    name=$1-$2${3:+-$3}
    AUTHED_LOAD_PROFILE=$1 AUTHED_LOAD_URL=$2 AUTHED_LOAD_REQUESTS=$requests \
        AUTHED_LOAD_CONCURRENCY=$concurrency AUTHED_LOAD_GIVEN_CLIENT=${3:+1} \
        valgrind --tool=callgrind \
        --callgrind-out-file="$out/$name.out" --toggle-collect='load::Client::request::*' \
        "$bin" > "$out/$name.log" 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$name.out"
}
base=$(count baseline absolute)
joined=$(count baseline relative)
authed=$(count authed absolute)
given=$(count authed absolute given)
relative=$(count authed relative)
es256=$(count dpop absolute)
eddsa=$(count dpop-eddsa absolute)
# Signatures per second of the same algorithms on this machine (OpenSSL, one core, 3 s each).
speed() {
    openssl speed -seconds 3 "$1" 2>/dev/null | awk -v alg="$2" '$0 ~ alg { print $(NF-1); exit }'
}
ecdsa=$(speed ecdsap256 "256 bits ecdsa")
ed25519=$(speed ed25519 "253 bits EdDSA")
echo "$requests requests, concurrency $concurrency"
echo "| client | instructions | per request | ratio | against |"
echo "|---|---|---|---|---|"
# %.0f, not %d: mawk's %d stops at 2^31 - 1, and a DPoP run counts more instructions.
awk -v b="$base" -v j="$joined" -v a="$authed" -v r="$relative" -v e="$es256" -v d="$eddsa" \
    -v g="$given" -v n="$requests" 'BEGIN {
    row("baseline, absolute string (fixed header)", b, b, "itself")
    row("authed, the same absolute string", a, b, "baseline, absolute string")
    row("authed, the same, with the client given as `http_client` (keeps each URL)", g, b, "baseline, absolute string")
    row("baseline, `hello` joined onto a parsed base URL", j, j, "itself")
    row("authed, `get(\"hello\")` against its base URL", r, j, "baseline, joined")
    row("authed with DPoP (ES256), absolute string", e, a, "authed, absolute (Bearer)")
    row("authed with DPoP (EdDSA), absolute string", d, a, "authed, absolute (Bearer)")
    printf "\nDPoP over Bearer per request: ES256 +%.1f k, EdDSA +%.1f k instructions\n", (e - a) / n / 1000, (d - a) / n / 1000
}
function row(name, x, y, against) {
    printf "| %s | %.0f | %.2f k | %.3f | %s |\n", name, x, x / n / 1000, x / y, against
}'
awk -v e="$ecdsa" -v d="$ed25519" 'BEGIN {
    printf "openssl speed, same run: ECDSA P-256 sign %.0f/s (%.1f us), Ed25519 sign %.0f/s (%.1f us)\n", e, 1e6 / e, d, 1e6 / d
}'
# The part of each count spent inside glibc's allocator moves by a few hundred instructions per
# request between runs (where malloc finds free chunks depends on the run's timing), in both
# directions; the rest is repeatable to a few tens of instructions. Printed apart, for judging
# a change.
outside_malloc() {
    callgrind_annotate --threshold=100 "$out/$1.out" 2>/dev/null | awk '
        /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
        /\.\/malloc\// { # glibc: malloc.c and arena.c
            gsub(",", "", $1); inside += $1
        }
        END { printf "%.0f", total - inside }'
}
awk -v b="$(outside_malloc baseline-absolute)" -v a="$(outside_malloc authed-absolute)" \
    -v j="$(outside_malloc baseline-relative)" -v r="$(outside_malloc authed-relative)" \
    -v t="$base" -v tj="$joined" -v n="$requests" 'BEGIN {
    printf "Outside malloc, absolute string: authed over the baseline by %.0f per request; with equal allocator shares, %.4f\n", (a - b) / n, (t + a - b) / t
    printf "Outside malloc, relative path: authed over the joining baseline by %.0f per request; with equal allocator shares, %.4f\n", (r - j) / n, (tj + r - j) / tj
}'
echo "callgrind files: $out (callgrind_annotate --inclusive=yes $out/authed-absolute.out)"
