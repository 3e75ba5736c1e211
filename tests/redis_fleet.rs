//! A fleet of real OS processes sharing one RedisStore against a real redis-server: one token
//! request per window, no refresh token spent twice, and recovery after the refresh lock's
//! holder is SIGKILLed in the middle of a token request. Short runs here (scripts/stores);
//! the 16-process, 60 s run is benches/fleet.rs. The children are this test binary again,
//! running the ignored `fleet_child` test.
#![cfg(all(feature = "redis", unix))]

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis.rs"]
mod support;

use std::time::Duration;

use fleet::Plan;

fn child() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "fleet_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("AUTHED_FLEET_CHILD", "1");
    cmd
}

/// The child side. Does nothing unless started by one of the tests below.
#[test]
#[ignore = "run as a child process by the tests in this file"]
fn fleet_child() {
    if std::env::var("AUTHED_FLEET_CHILD").is_ok() {
        fleet::child_main();
    }
}

fn processes() -> usize {
    std::env::var("AUTHED_FLEET_PROCESSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_makes_one_token_request_per_window_and_never_reuses_a_refresh_token() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let plan = Plan {
        processes: processes(),
        duration: Duration::from_secs(12),
        lifetime: Duration::from_secs(4),
        grants: "both",
        lock_ttl: Duration::from_secs(2),
        kill_holder: false,
        timeout: Duration::from_secs(30),
    };
    let outcome = fleet::run(&url, &plan, child).await;
    eprintln!("fleet: {}", outcome.summary(&plan));
    assert_eq!(outcome.failed_children, 0);
    assert_eq!(outcome.errors, 0);
    assert_eq!(outcome.invalid_grants, 0);
    assert_eq!(outcome.reused_refresh_tokens, 0);
    // One request per window for the whole fleet (plus the first), however many processes:
    // without the shared lock each process would make its own.
    let most = outcome.windows.ceil() as usize + 1;
    assert!(
        (1..=most).contains(&outcome.cc_requests),
        "{} client_credentials requests for {:.1} windows",
        outcome.cc_requests,
        outcome.windows
    );
    assert!(
        (1..=most).contains(&outcome.refresh_requests),
        "{} refresh requests for {:.1} windows",
        outcome.refresh_requests,
        outcome.windows
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_recovers_within_the_lock_lifetime_after_its_holder_is_killed_mid_refresh() {
    let Some(url) = support::redis_url() else {
        return;
    };
    let plan = Plan {
        processes: processes(),
        duration: Duration::from_secs(20),
        lifetime: Duration::from_secs(4),
        grants: "refresh",
        lock_ttl: Duration::from_secs(2),
        kill_holder: true,
        // The in-flight bound: 2 s, plus 1 s of clock skew.
        timeout: Duration::from_secs(1),
    };
    let outcome = fleet::run(&url, &plan, child).await;
    eprintln!("fleet with a kill: {}", outcome.summary(&plan));
    assert_eq!(outcome.failed_children, 0);
    // While the killed holder's answer may still come (its in-flight bound), nobody presents
    // its refresh token again (issue 17 point 4): callers without a valid token time out
    // meanwhile, and see no other error.
    assert_eq!(outcome.errors, 0, "the survivors must never see an error");
    assert_eq!(outcome.invalid_grants, 0);
    assert_eq!(outcome.reused_refresh_tokens, 0);
    let next = outcome
        .kill_to_next_request
        .expect("the holder was killed and the fleet went on");
    outcome
        .kill_to_new_token
        .expect("a new token was saved after the kill");
    // The dead holder's lock expires at most one lifetime after its last renewal, and its
    // in-flight record settles twice the timeout plus 1 s after it sent; the waiters poll
    // every 100 ms (the lock) and 250 ms (the record). Generous slack for a loaded machine.
    let in_flight = plan.timeout * 2 + Duration::from_secs(1);
    assert!(
        next <= plan.lock_ttl + in_flight + Duration::from_secs(5),
        "the fleet took {next:?} to recover (lock ttl {:?}, in-flight bound {in_flight:?})",
        plan.lock_ttl
    );
}
