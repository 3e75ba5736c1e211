//! DPoP at the speed of the machine (issue 19 point 4): CPU time per DPoP proof, ES256 and
//! EdDSA, against `openssl speed` for the same algorithm in the same run; and the raw
//! signature of the crate's signer, to show what assembling a proof adds.
//!
//! ```sh
//! cargo bench --bench dpop_proofs                 # aws-lc-rs, the default backend
//! cargo bench --bench dpop_proofs --no-default-features --features rust-crypto
//! ```
//!
//! Each round runs `openssl speed -seconds S <alg>` and then signs N proofs on one thread,
//! alternating, so both see the same machine load; CPU time is the thread's (user + system),
//! as `openssl speed` divides by CPU user time. The ratio per round is ours over openssl's;
//! the median of the rounds is reported. `AUTHED_PROOFS` (default 20,000 per round),
//! `AUTHED_ROUNDS` (default 5), `AUTHED_OPENSSL_SECONDS` (default 2).
//!
//! `AUTHED_PROOFS_ONLY=es256|eddsa|es256-raw|eddsa-raw` signs N proofs (or raw signatures)
//! and nothing else, for callgrind: `benches/dpop_proofs.sh` counts instructions per proof
//! with `--toggle-collect=dpop_proofs::sign_many`.

use std::process::Command;
use std::time::Duration;

use authed::{DpopKey, JwsSigner, SigningAlgorithm, SigningKey};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the OS knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What one round signs.
#[derive(Clone, Copy)]
enum Work {
    Proof,
    Raw,
}

/// Signs `n` proofs (or raw signatures of a proof-sized input) with `key`. Not inlined: the
/// function callgrind counts.
#[inline(never)]
fn sign_many(rt: &tokio::runtime::Runtime, key: &DpopKey, raw: &SigningKey, n: u64, work: Work) {
    let url: url::Url = "https://api.example.com/v1/reports?since=2026-01-01"
        .parse()
        .expect("a URL");
    let token = "eyJhbGciOiJFUzI1NiJ9.an-access-token-of-typical-length.0123456789abcdef";
    let input = [b'x'; 420];
    rt.block_on(async {
        for _ in 0..n {
            match work {
                Work::Proof => {
                    let proof = key.proof("GET", &url, Some(token)).await.expect("a proof");
                    std::hint::black_box(proof);
                }
                Work::Raw => {
                    let signature = raw.sign(&input).await.expect("a signature");
                    std::hint::black_box(signature);
                }
            }
        }
    });
}

/// One proof and one raw signature per key: what happens once per process (page faults, the
/// backend's lazy set-up) happens here.
#[inline(never)]
fn warm_up(rt: &tokio::runtime::Runtime, keys: &[(&DpopKey, &SigningKey)]) {
    let url: url::Url = "https://api.example.com/".parse().expect("a URL");
    rt.block_on(async {
        for (key, raw) in keys {
            std::hint::black_box(key.proof("GET", &url, None).await.expect("a proof"));
            std::hint::black_box(raw.sign(b"warm").await.expect("a signature"));
        }
    });
}

/// Microseconds of CPU per operation for `n` operations.
fn per_op(
    rt: &tokio::runtime::Runtime,
    key: &DpopKey,
    raw: &SigningKey,
    n: u64,
    work: Work,
) -> f64 {
    let start = thread_cpu();
    sign_many(rt, key, raw, n, work);
    (thread_cpu() - start).as_secs_f64() * 1e6 / n as f64
}

/// `openssl speed`'s microseconds per signature for `alg` (`ecdsap256`, `ed25519`,
/// `rsa2048`), or `None` without openssl.
fn openssl(alg: &str, seconds: u64) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), alg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The result line: "256 bits ecdsa (nistp256)   0.0000s   0.0001s  39741.2  14700.0"; for
    // RSA "rsa 2048 bits 0.000585s 0.000017s 1709.4 58820.2". sign/s is the second-to-last.
    let line = text.lines().rev().find(|l| {
        let l = l.to_ascii_lowercase();
        (l.contains("bits") && !l.contains("sign/s")) || l.starts_with("rsa")
    })?;
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let signs = numbers.get(numbers.len().checked_sub(2)?)?;
    Some(1e6 / signs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n = env("AUTHED_PROOFS", 20_000);
    let rounds = env("AUTHED_ROUNDS", 5);
    let seconds = env("AUTHED_OPENSSL_SECONDS", 2);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let keys = |alg| {
        let raw = SigningKey::generate(alg).expect("a key");
        (DpopKey::from_signer(raw.clone()).expect("a DPoP key"), raw)
    };
    let (es, es_raw) = keys(SigningAlgorithm::ES256);
    let (ed, ed_raw) = keys(SigningAlgorithm::EdDSA);

    if let Ok(only) = std::env::var("AUTHED_PROOFS_ONLY") {
        // Outside the counted function: aws-lc seeds its random generator on the first ECDSA
        // signature (~420 M instructions under callgrind, once per process).
        warm_up(&rt, &[(&es, &es_raw), (&ed, &ed_raw)]);
        match only.as_str() {
            "es256" => sign_many(&rt, &es, &es_raw, n, Work::Proof),
            "eddsa" => sign_many(&rt, &ed, &ed_raw, n, Work::Proof),
            "es256-raw" => sign_many(&rt, &es, &es_raw, n, Work::Raw),
            "eddsa-raw" => sign_many(&rt, &ed, &ed_raw, n, Work::Raw),
            other => panic!("AUTHED_PROOFS_ONLY={other}: es256, eddsa, es256-raw or eddsa-raw"),
        }
        return;
    }

    let backend = if cfg!(feature = "aws-lc-rs") {
        "aws-lc-rs"
    } else {
        "rust-crypto"
    };
    println!(
        "backend {backend}; {n} proofs per round, {rounds} rounds, openssl speed -seconds {seconds}"
    );
    // Warm up: page in the code, let the CPU settle.
    warm_up(&rt, &[(&es, &es_raw), (&ed, &ed_raw)]);
    sign_many(&rt, &es, &es_raw, n / 10, Work::Proof);
    sign_many(&rt, &ed, &ed_raw, n / 10, Work::Proof);
    println!(
        "| algorithm | round | openssl µs/sign | proof µs | raw signature µs | proof / openssl |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, openssl_alg, key, raw) in [
        ("ES256", "ecdsap256", &es, &es_raw),
        ("EdDSA", "ed25519", &ed, &ed_raw),
    ] {
        let mut ratios = Vec::new();
        let (mut ours, mut theirs, mut raws) = (Vec::new(), Vec::new(), Vec::new());
        for round in 1..=rounds {
            let native = openssl(openssl_alg, seconds);
            let proof = per_op(&rt, key, raw, n, Work::Proof);
            let signature = per_op(&rt, key, raw, n, Work::Raw);
            let shown = native.map_or("-".to_owned(), |v| format!("{v:.2}"));
            let ratio = native.map(|v| proof / v);
            println!(
                "| {name} | {round} | {shown} | {proof:.2} | {signature:.2} | {} |",
                ratio.map_or("-".to_owned(), |r| format!("{r:.3}"))
            );
            ours.push(proof);
            raws.push(signature);
            if let (Some(native), Some(ratio)) = (native, ratio) {
                theirs.push(native);
                ratios.push(ratio);
            }
        }
        println!(
            "| {name} | median | {} | {:.2} | {:.2} | {} |",
            if theirs.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2}", median(theirs))
            },
            median(ours),
            median(raws),
            if ratios.is_empty() {
                "-".to_owned()
            } else {
                format!("**{:.3}**", median(ratios))
            },
        );
    }
}
