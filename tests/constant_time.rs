//! Issue 18 point 8: comparing two secrets (`==` on `AccessToken`, `RefreshToken`, `IdToken`,
//! `ClientSecret`) takes the same work wherever they differ, so that an attacker who can time
//! a comparison (a store checking a presented refresh token, say) learns nothing of the
//! secret from how long it took.
//!
//! Timing this on a shared machine would be flaky, so the work is counted instead: the test
//! runs itself under valgrind's callgrind twice, once comparing secrets that differ in their
//! first byte and once in their last, and the instruction counts of the comparison must be
//! equal. An early-exit comparison (`str == str`, memcmp) differs by thousands of
//! instructions on 4 KiB secrets.
//!
//! Needs valgrind (`apt-get install valgrind`); CI installs it. Without valgrind the test
//! says so and passes, except under `CI=true`, where it fails.

use std::hint::black_box;
use std::process::Command;

use authed::{AccessToken, ClientSecret, IdToken, RefreshToken};

const CHILD: &str = "AUTHED_CONSTANT_TIME_CHILD";
const LEN: usize = 4096;
const ROUNDS: usize = 10;

/// Two secrets of `LEN` bytes that differ only at `at`.
fn pair(at: usize) -> (String, String) {
    let a = "k".repeat(LEN);
    let mut b = a.clone().into_bytes();
    b[at] = b'j';
    (a, String::from_utf8(b).unwrap())
}

/// The measured function: every secret type compared `ROUNDS` times. Not inlined, so that
/// callgrind can count exactly this.
#[inline(never)]
fn compare_secrets(a: &str, b: &str) -> usize {
    let mut equal = 0;
    let (x, y) = (AccessToken::new(a), AccessToken::new(b));
    let (r, s) = (RefreshToken::new(a), RefreshToken::new(b));
    let (i, j) = (IdToken::new(a), IdToken::new(b));
    let (c, d) = (ClientSecret::new(a), ClientSecret::new(b));
    for _ in 0..ROUNDS {
        equal += usize::from(compared(&x, &y));
        equal += usize::from(compared(&r, &s));
        equal += usize::from(compared(&i, &j));
        equal += usize::from(compared(&c, &d));
    }
    equal
}

#[inline(never)]
fn compared<T: PartialEq>(a: &T, b: &T) -> bool {
    black_box(a) == black_box(b)
}

/// Instructions spent in `compare_secrets` for secrets differing at `at`.
fn instructions(at: &str) -> u64 {
    let out = std::env::temp_dir().join(format!(
        "authed-constant-time-{}-{at}.out",
        std::process::id()
    ));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--toggle-collect=*compare_secrets*")
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "secret_equality_takes_the_same_work_wherever_the_secrets_differ",
            "--test-threads=1",
        ])
        .env(CHILD, at)
        .output()
        .expect("valgrind runs");
    assert!(
        status.status.success(),
        "valgrind failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("totals:")))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .expect("callgrind reports a total")
}

#[test]
fn secret_equality_takes_the_same_work_wherever_the_secrets_differ() {
    if let Ok(at) = std::env::var(CHILD) {
        // Under valgrind: the measured work only.
        let (a, b) = pair(if at == "first" { 0 } else { LEN - 1 });
        assert_eq!(compare_secrets(&a, &b), 0);
        let (a, _) = pair(0);
        assert_eq!(compare_secrets(&a, &a.clone()), 4 * ROUNDS);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run this test: install valgrind"
        );
        eprintln!("valgrind is not installed: constant-time comparison not checked");
        return;
    }
    let first = instructions("first");
    let last = instructions("last");
    assert!(first > 0);
    assert_eq!(
        first, last,
        "comparing secrets that differ in the first byte took {first} instructions, in the last {last}"
    );
}

#[test]
fn secrets_still_compare_by_value() {
    let (a, b) = pair(LEN / 2);
    assert_eq!(AccessToken::new(&a), AccessToken::new(a.clone()));
    assert_ne!(AccessToken::new(&a), AccessToken::new(&b));
    assert_ne!(RefreshToken::new("short"), RefreshToken::new("longer"));
    assert_eq!(ClientSecret::new(""), ClientSecret::new(""));
    assert_ne!(IdToken::new(&a), IdToken::new(&a[1..]));
}
