#!/bin/sh
# DPoP proofs at the speed of the machine (issue 19 point 4), in one run:
# 1. instructions per proof and per raw signature, ES256 and EdDSA, counted with callgrind
#    (only `dpop_proofs::sign_many` is counted: key generation and setup are left out);
# 2. CPU time per proof against `openssl speed` for the same algorithm, rounds alternating
#    (benches/dpop_proofs.rs).
#
# Run from the crate root: `benches/dpop_proofs.sh` (needs valgrind and openssl; ~3 min after
# the build). AUTHED_PROOFS sets the proofs counted under callgrind (default 2,000);
# AUTHED_PROFILE_FEATURES the features (e.g. `rust-crypto` with AUTHED_NO_DEFAULT=1 for the
# pure-Rust backend). Uses CARGO_TARGET_DIR.
set -eu
cd "$(dirname "$0")/.."
n=${AUTHED_PROOFS:-2000}
features=${AUTHED_PROFILE_FEATURES:-}
nodefault=${AUTHED_NO_DEFAULT:+--no-default-features}
bin=$(cargo bench --bench dpop_proofs --no-run $nodefault ${features:+--features "$features"} 2>&1 \
    | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not build the dpop_proofs bench" >&2; exit 1; }
out=${TMPDIR:-/tmp}/authed-dpop.$$
mkdir -p "$out"
count() {
    AUTHED_PROOFS_ONLY=$1 AUTHED_PROOFS=$n valgrind --tool=callgrind \
        --callgrind-out-file="$out/$1.out" --toggle-collect='dpop_proofs::sign_many*' \
        "$bin" > "$out/$1.log" 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$out/$1.out"
}
es=$(count es256)
es_raw=$(count es256-raw)
ed=$(count eddsa)
ed_raw=$(count eddsa-raw)
echo "$n proofs each, instructions (callgrind)"
echo "| algorithm | per proof | per raw signature | proof / raw |"
echo "|---|---|---|---|"
# awk's arithmetic is floating point: no overflow for large counts.
awk -v es="$es" -v esr="$es_raw" -v ed="$ed" -v edr="$ed_raw" -v n="$n" 'BEGIN {
    printf "| ES256 | %.1f k | %.1f k | %.3f |\n", es / n / 1000, esr / n / 1000, es / esr
    printf "| EdDSA | %.1f k | %.1f k | %.3f |\n", ed / n / 1000, edr / n / 1000, ed / edr
}'
echo
"$bin"
echo "callgrind files: $out"
