//! Refresh ahead of expiry, in the background, against the in-process provider with a clock
//! moved by hand: what the load benchmark's numbers rest on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::testing::{ManualClock, TestProvider};
use authed::{AuthedClient, ClientCredentials, OAuthConfig, RetryPolicy, TokenSource};

/// With the default policy, a one-hour token enters its refresh window 3240 s after issue
/// (3600 - 60 s margin - 300 s refresh-ahead) and stops being used at 3540 s.
const WINDOW: Duration = Duration::from_secs(3240);
const MARGIN: Duration = Duration::from_secs(3540);

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn source(provider: &TestProvider, clock: &Arc<ManualClock>) -> ClientCredentials {
    OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .clock(clock.clone())
        // These tests count the cache's own retries: one request per refresh.
        .retry(RetryPolicy::none())
        .build()
        .unwrap()
        .client_credentials()
        .build()
}

/// The token `token()` returns on its first poll; panics if the caller would have to wait.
fn without_waiting(source: &impl TokenSource) -> String {
    let mut fut = source.token();
    match Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(token)) => token.access_token().secret().to_owned(),
        Poll::Ready(Err(e)) => panic!("token() failed: {e}"),
        Poll::Pending => panic!("token() made the caller wait"),
    }
}

async fn secret(source: &impl TokenSource) -> String {
    source
        .token()
        .await
        .unwrap()
        .access_token()
        .secret()
        .to_owned()
}

/// Waits (for an event, not a time) until `cond` holds; gives up after a minute, which no
/// loaded machine needs.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..60_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Waits until a background refresh has installed a token other than `old`.
async fn replaced(source: &ClientCredentials, old: &str) -> String {
    let mut new = String::new();
    until("the background refresh to install a new token", || {
        new = without_waiting(source);
        new != old
    })
    .await;
    new
}

#[tokio::test]
async fn background_refresh_starts_once_per_window() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start());
    let source = source(&provider, &clock);
    let first = secret(&source).await;

    // Just before the window: no refresh however often the token is read.
    clock.advance(WINDOW - Duration::from_nanos(1));
    for _ in 0..100 {
        assert_eq!(without_waiting(&source), first);
    }
    tokio::task::yield_now().await;
    assert_eq!(provider.token_requests(), 1);

    // In the window: many reads, one refresh.
    clock.advance(Duration::from_nanos(1));
    for _ in 0..100 {
        assert_eq!(without_waiting(&source), first);
    }
    let second = replaced(&source, &first).await;
    assert_eq!(provider.token_requests(), 2);

    // The new token is quiet until its own window, 3240 s after it was issued.
    clock.advance(WINDOW - Duration::from_secs(1));
    for _ in 0..100 {
        assert_eq!(without_waiting(&source), second);
    }
    tokio::task::yield_now().await;
    assert_eq!(provider.token_requests(), 2);
    clock.advance(Duration::from_secs(1));
    assert_eq!(without_waiting(&source), second);
    replaced(&source, &second).await;
    assert_eq!(provider.token_requests(), 3);
}

#[tokio::test]
async fn callers_during_a_background_refresh_never_wait_for_the_endpoint() {
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start());
    let source = source(&provider, &clock);
    let first = secret(&source).await;

    // The endpoint now takes an hour: anyone waiting on it would hang the test.
    provider.set_latency(Duration::from_secs(3600));
    clock.advance(WINDOW);
    for _ in 0..1000 {
        assert_eq!(without_waiting(&source), first);
    }
    until("the background token request to arrive", || {
        provider.token_requests() == 2
    })
    .await;
    // Right up to the margin, callers keep the old token and no second request is made.
    clock.advance(MARGIN - WINDOW - Duration::from_nanos(1));
    for _ in 0..1000 {
        assert_eq!(without_waiting(&source), first);
    }
    assert_eq!(provider.token_requests(), 2);
}

thread_local! {
    static LOG: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes `tracing` output to a buffer per thread. A `#[tokio::test]` runs its tasks on its
/// own thread, so each test sees its own events. One global subscriber rather than
/// `set_default` per test: with scoped subscribers on parallel test threads, tracing can cache
/// a callsite as disabled and drop events.
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.with(|log| log.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_warnings() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::WARN)
                .with_writer(|| ThreadLog)
                .finish(),
        )
        .expect("the only global subscriber");
    });
}

/// Background refresh failures logged on this thread.
fn failures() -> usize {
    LOG.with(|log| {
        String::from_utf8_lossy(&log.borrow())
            .matches("background token refresh failed")
            .count()
    })
}

#[tokio::test]
async fn a_failing_background_refresh_keeps_the_valid_token_and_retries_after_backoff() {
    capture_warnings();
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(start());
    let source = source(&provider, &clock);
    let first = secret(&source).await;

    provider.fail_with(503, "text/html", "<html>maintenance</html>");
    clock.advance(WINDOW);
    assert_eq!(without_waiting(&source), first);
    until("the first background failure", || failures() == 1).await;
    assert_eq!(provider.token_requests(), 2);

    // Backoff after one failure: 1 s. Not a request before it, one right at it.
    clock.advance(Duration::from_millis(999));
    for _ in 0..100 {
        assert_eq!(without_waiting(&source), first);
    }
    tokio::task::yield_now().await;
    assert_eq!(provider.token_requests(), 2);
    clock.advance(Duration::from_millis(1));
    assert_eq!(without_waiting(&source), first);
    until("the second background failure", || failures() == 2).await;
    assert_eq!(provider.token_requests(), 3);

    // Then 2 s. The provider recovers; the retry installs a new token.
    provider.clear_failure();
    clock.advance(Duration::from_millis(1999));
    assert_eq!(without_waiting(&source), first);
    tokio::task::yield_now().await;
    assert_eq!(provider.token_requests(), 3);
    clock.advance(Duration::from_millis(1));
    assert_eq!(without_waiting(&source), first);
    replaced(&source, &first).await;
    assert_eq!(provider.token_requests(), 4);
    assert_eq!(failures(), 2);
}

#[tokio::test]
async fn a_short_lived_token_gets_background_retries_within_its_window() {
    // A 2 s token: refreshed from 1.0 s, used until 1.5 s. The backoff is capped at a quarter
    // of that 0.5 s window, so retries come every 125 ms instead of after the token expired.
    // The clock moves only after the previous failure is recorded (its warning, an event):
    // moving it while the failure is still in flight would start the backoff from the new
    // time, which is how this test failed under load.
    capture_warnings();
    let provider = TestProvider::start().await;
    provider.set_token_lifetime(Duration::from_secs(2));
    let clock = ManualClock::new(start());
    let source = source(&provider, &clock);
    let first = secret(&source).await;

    provider.fail_with(503, "text/plain", "down");
    clock.advance(Duration::from_millis(1000));
    assert_eq!(without_waiting(&source), first);
    until("the failed background request", || failures() == 1).await;
    assert_eq!(provider.token_requests(), 2);
    for expected in 3..=4 {
        // Each retry is 125 ms after the previous failure.
        clock.advance(Duration::from_millis(124));
        assert_eq!(without_waiting(&source), first);
        tokio::task::yield_now().await;
        assert_eq!(
            provider.token_requests(),
            expected - 1,
            "a retry before its backoff"
        );
        clock.advance(Duration::from_millis(1));
        assert_eq!(without_waiting(&source), first);
        until("the next background failure", || failures() == expected - 1).await;
        assert_eq!(provider.token_requests(), expected);
    }
    // The third retry, at 1.375 s, is still inside the window: callers never waited.
    provider.clear_failure();
    clock.advance(Duration::from_millis(125));
    until("a successful background retry", || {
        without_waiting(&source) != first
    })
    .await;
    assert_eq!(provider.token_requests(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stampede_at_expiry_makes_exactly_one_token_request() {
    let provider = TestProvider::start().await;
    provider.set_latency(Duration::from_millis(50));
    let clock = ManualClock::new(start());
    let source = Arc::new(source(&provider, &clock));
    let first = secret(&*source).await;

    // Past the margin with no refresh ahead (nobody called during the window).
    clock.advance(MARGIN);
    let callers: Vec<_> = (0..500)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { secret(&*source).await })
        })
        .collect();
    let mut got = Vec::new();
    for caller in callers {
        got.push(caller.await.unwrap());
    }
    assert_eq!(provider.token_requests(), 2);
    assert!(got.iter().all(|t| *t != first && *t == got[0]));
}

/// The number of live tasks once the provider has served a request from a plain reqwest
/// client that is gone again: reqwest keeps one task of its own alive after its first request.
async fn idle_tasks(provider: &TestProvider) -> usize {
    let tasks = tokio::runtime::Handle::current().metrics();
    let plain = reqwest::Client::new();
    plain.post(provider.token_url()).send().await.unwrap();
    drop(plain);
    let mut last = usize::MAX;
    until("the plain client's tasks to end", || {
        let now = tasks.num_alive_tasks();
        let settled = now == last;
        last = now;
        settled
    })
    .await;
    last
}

#[tokio::test]
async fn dropping_the_client_stops_all_background_work() {
    let tasks = tokio::runtime::Handle::current().metrics();
    let provider = TestProvider::start().await;
    let idle = idle_tasks(&provider).await;
    let before = provider.token_requests();
    let clock = ManualClock::new(start());
    let client = AuthedClient::builder(source(&provider, &clock))
        .base_url(provider.api_url())
        .build()
        .unwrap();
    let first = secret(client.source()).await;
    assert!(tasks.num_alive_tasks() > idle);

    // A background refresh is in flight when the last handle goes.
    provider.set_latency(Duration::from_millis(200));
    clock.advance(WINDOW);
    assert_eq!(without_waiting(client.source()), first);
    drop(client);
    // Both events, not just the task count: on a loaded machine the count can reach `idle`
    // before the in-flight request has even arrived.
    until(
        "the in-flight request to finish and every task to end",
        || tasks.num_alive_tasks() <= idle && provider.token_requests() - before == 2,
    )
    .await;
    assert_eq!(provider.token_requests() - before, 2);
}

#[tokio::test]
async fn dropping_a_source_with_the_system_clock_aborts_its_timer() {
    let tasks = tokio::runtime::Handle::current().metrics();
    let provider = TestProvider::start().await;
    let idle = idle_tasks(&provider).await;
    let source = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    source.token().await.unwrap();
    // The refresh timer sleeps for 54 minutes; without the abort it would outlive the source.
    drop(source);
    until("every task to end", || tasks.num_alive_tasks() <= idle).await;
    assert_eq!(
        provider.token_requests(),
        2,
        "the plain client's and the source's"
    );
}
