//! The fleet benchmark: 16 OS processes share one RedisStore (a real redis-server) and one
//! token endpoint with 4 s tokens for 60 s, first with client credentials and refresh-token
//! rotation side by side, then with the refresh lock's holder SIGKILLed in the middle of a
//! token request. Prints one summary line per run (the figures in BENCHMARKS.md).
//!
//! Run: `scripts/stores --bench` (starts redis-server), or with a Redis of your own:
//! `AUTHED_REDIS_URL=redis://127.0.0.1:6379/ cargo bench --features redis --bench fleet`.
//! `AUTHED_FLEET_PROCESSES` and `AUTHED_FLEET_SECS` change the size (defaults 16 and 60).

#[path = "../tests/support/fleet.rs"]
mod fleet;

use std::time::Duration;

use fleet::Plan;

fn main() {
    if std::env::var("AUTHED_FLEET_CHILD").is_ok() {
        fleet::child_main();
        return;
    }
    let Ok(url) = std::env::var("AUTHED_REDIS_URL") else {
        eprintln!("fleet bench skipped: set AUTHED_REDIS_URL, or run scripts/stores --bench");
        return;
    };
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let processes = number("AUTHED_FLEET_PROCESSES", 16) as usize;
    let secs = number("AUTHED_FLEET_SECS", 60);
    let child = || {
        let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
        cmd.env("AUTHED_FLEET_CHILD", "1");
        cmd
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (grants, kill_holder) in [("both", false), ("refresh", true)] {
        let plan = Plan {
            processes,
            duration: Duration::from_secs(secs),
            lifetime: Duration::from_secs(4),
            grants,
            lock_ttl: Duration::from_secs(2),
            kill_holder,
            // Short, so that a killed holder's in-flight bound (twice this, plus 1 s) ends
            // within the run.
            timeout: Duration::from_secs(1),
        };
        let outcome = rt.block_on(fleet::run(&url, &plan, child));
        println!("fleet: {}", outcome.summary(&plan));
    }
}
