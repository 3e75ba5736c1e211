//! Memory per signed-in user: `AUTHED_SOURCES` (default 100,000) `RefreshTokenSource`s in one
//! process, each holding a valid one-hour token read once, and the RSS each one costs.
//!
//! Run: `cargo bench --bench sources` (a few seconds; results in BENCHMARKS.md).
//!
//! The tokens alone are measured first (the same tokens, kept alive), so that the table can
//! say what a source costs on top of its token.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use authed::{AccessToken, OAuthConfig, RefreshToken, Token, TokenSource};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// A user's token as a provider returns it: 43-character opaque tokens, one hour.
fn user_token(i: usize, now: SystemTime) -> Token {
    Token::new(AccessToken::new(format!("at-{i:040}")))
        .with_refresh_token(Some(RefreshToken::new(format!("rt-{i:040}"))))
        .with_lifetime(now, Duration::from_secs(3600))
}

fn main() {
    let n: usize = std::env::var("AUTHED_SOURCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
            .client_id("web-app")
            .build()
            .expect("config");
        let now = SystemTime::now();

        let start = rss_kib();
        let tokens: Vec<Token> = (0..n).map(|i| user_token(i, now)).collect();
        let with_tokens = rss_kib();

        let mut sources = Vec::with_capacity(n);
        let with_vec = rss_kib();
        for (i, token) in tokens.iter().enumerate() {
            let source = config
                .refresh_token_source()
                .key(format!("user-{i}"))
                .from_token(token.clone())
                .await
                .expect("source");
            black_box(source.token().await.expect("cached token"));
            sources.push(source);
        }
        let with_sources = rss_kib();

        let token_b = (with_tokens - start) as f64 * 1024.0 / n as f64;
        let source_b = (with_sources - with_vec) as f64 * 1024.0 / n as f64;
        println!(
            "authed sources benchmark: {n} sources, {} worker threads",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        println!("| sources | RSS for the tokens alone | RSS for the sources (their own token copies included) | per token | per source | per source, beyond its token |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| {n} | {} KiB | {} KiB | {token_b:.0} B | {source_b:.0} B | {:.0} B |",
            with_tokens - start,
            with_sources - with_vec,
            source_b - token_b
        );
        black_box((&tokens, &sources));
    });
}
