//! Load driver: `AuthedClient` against a fixed `Authorization` header and the hand-rolled
//! `tokio::sync::Mutex<Option<Token>>` pattern, side by side, against a provider and API
//! served by this process on 127.0.0.1.
//!
//! Run: `cargo bench --bench load` (about 3 minutes; `AUTHED_LOAD_QUICK=1` for a ~40 s
//! smoke run). Prints one table per scenario; BENCHMARKS.md explains the figures.
//!
//! Clients: (a) `baseline`: reqwest with a fixed header holding a long-lived token;
//! (b) `authed`: `AuthedClient` + `ClientCredentials`; (c) `mutex`: a token behind a
//! `tokio::sync::Mutex<Option<..>>`, fetched under the lock when it has expired, with no
//! margin and no retry, as most hand-written code does. Each scenario runs the three in
//! alternating rounds on the same server; counters are per round.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authed::testing::TestProvider;
use authed::{AuthedClient, OAuthConfig, TokenSource};
use reqwest::header::{AUTHORIZATION, HeaderValue};

fn quick() -> bool {
    std::env::var_os("AUTHED_LOAD_QUICK").is_some()
}

/// `AUTHED_LOAD_ONLY=steady,memory` runs only those scenarios (steady, stampede, refresh,
/// memory), for profiling one of them.
fn enabled(scenario: &str) -> bool {
    std::env::var("AUTHED_LOAD_ONLY").map_or(true, |only| only.split(',').any(|s| s == scenario))
}

/// `AUTHED_LOAD_URL=absolute`: the authed client gets the same absolute URL string as the
/// others instead of a path relative to its base URL (for `benches/callgrind.sh`).
static AUTHED_ABSOLUTE: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("AUTHED_LOAD_URL").is_ok_and(|v| v == "absolute"));

/// `AUTHED_LOAD_URL=relative`: the baseline joins `hello` onto a parsed base URL, as the
/// authed client does with a relative path (the like-for-like row of `benches/callgrind.sh`).
static BASELINE_JOINS: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("AUTHED_LOAD_URL").is_ok_and(|v| v == "relative"));

/// `AUTHED_LOAD_GIVEN_CLIENT=1`: the authed client gets `http()` as a caller-given client
/// (for the row that shows what keeping the URL costs).
static GIVEN_CLIENT: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var("AUTHED_LOAD_GIVEN_CLIENT").is_ok_and(|v| v == "1"));

/// One client under test.
#[derive(Clone)]
enum Client {
    /// reqwest with a fixed header, and the parsed base URL a joining baseline joins onto.
    Baseline(reqwest::Client, HeaderValue, url::Url),
    Authed(AuthedClient),
    Mutex(Arc<HandRolled>),
    /// `AuthedClient` with DPoP: a proof signed per request, ES256 (`dpop`) or EdDSA
    /// (`dpop-eddsa`). Profile mode only (`benches/callgrind.sh`).
    Dpop(AuthedClient, &'static str),
}

impl Client {
    fn name(&self) -> &'static str {
        match self {
            Client::Baseline(..) => "baseline",
            Client::Authed(_) => "authed",
            Client::Dpop(_, name) => name,
            Client::Mutex(_) => "mutex",
        }
    }

    /// One `GET /api/hello`, body read. `false` when it did not end in a 200.
    async fn request(&self, url: &str) -> bool {
        let response = match self {
            Client::Baseline(http, header, base) if *BASELINE_JOINS => match base.join("hello") {
                Ok(url) => http
                    .get(url)
                    .header(AUTHORIZATION, header.clone())
                    .send()
                    .await
                    .ok(),
                Err(_) => None,
            },
            Client::Baseline(http, header, _) => http
                .get(url)
                .header(AUTHORIZATION, header.clone())
                .send()
                .await
                .ok(),
            Client::Authed(client) if *AUTHED_ABSOLUTE => client.get(url).send().await.ok(),
            Client::Authed(client) => client.get("hello").send().await.ok(),
            Client::Dpop(client, _) if *AUTHED_ABSOLUTE => client.get(url).send().await.ok(),
            Client::Dpop(client, _) => client.get("hello").send().await.ok(),
            Client::Mutex(hand) => {
                let header = hand.header().await;
                hand.http
                    .get(url)
                    .header(AUTHORIZATION, header)
                    .send()
                    .await
                    .ok()
            }
        };
        match response {
            Some(r) => r.status() == 200 && r.bytes().await.is_ok(),
            None => false,
        }
    }
}

/// The pattern most Rust services hand-roll today.
struct HandRolled {
    http: reqwest::Client,
    token_url: String,
    token: tokio::sync::Mutex<Option<(HeaderValue, Instant)>>,
}

impl HandRolled {
    async fn header(&self) -> HeaderValue {
        let mut token = self.token.lock().await;
        if let Some((header, expires)) = &*token
            && Instant::now() < *expires
        {
            return header.clone();
        }
        let (header, lifetime) = fetch_token(&self.http, &self.token_url).await;
        *token = Some((header.clone(), Instant::now() + lifetime));
        header
    }
}

/// A client credentials token request; the bearer header and the lifetime.
async fn fetch_token(http: &reqwest::Client, token_url: &str) -> (HeaderValue, Duration) {
    let body: serde_json::Value = http
        .post(token_url)
        .basic_auth(TestProvider::CLIENT_ID, Some(TestProvider::CLIENT_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token response");
    let token = body["access_token"].as_str().expect("access_token");
    let lifetime = body["expires_in"].as_f64().unwrap_or(3600.0);
    (
        HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        Duration::from_secs_f64(lifetime),
    )
}

/// `AUTHED_LOAD_HTTP2=1`: every client speaks HTTP/2 to the in-process server (prior
/// knowledge), so that thousands of callers share a few connections. Over HTTP/1 each
/// caller in flight holds a socket at both ends, and 10,000 callers would need more open
/// files than a process may have here (20,000).
static HTTP2: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::env::var_os("AUTHED_LOAD_HTTP2").is_some());

/// Every client the same: no redirects followed by reqwest (authed follows them itself).
fn http() -> reqwest::Client {
    let builder = reqwest::Client::builder();
    let builder = if *HTTP2 {
        builder.http2_prior_knowledge()
    } else {
        builder
    };
    builder
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// The three clients, against `provider`. The baseline's token is fetched while tokens
/// live an hour, so it stays valid whatever lifetime the scenario sets afterwards.
async fn make_clients(provider: &TestProvider) -> Vec<Client> {
    let (header, _) = fetch_token(&http(), &provider.token_url()).await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .expect("config");
    let authed = authed_client(config.client_credentials().build(), provider);
    let hand = HandRolled {
        http: http(),
        token_url: provider.token_url(),
        token: tokio::sync::Mutex::new(None),
    };
    let base = url::Url::parse(&provider.api_url()).expect("base URL");
    vec![
        Client::Baseline(http(), header, base),
        Client::Authed(authed),
        Client::Mutex(Arc::new(hand)),
    ]
}

/// An authed client whose tokens are DPoP-bound, for the per-request cost of a proof.
fn dpop_client(provider: &TestProvider, algorithm: authed::SigningAlgorithm) -> Client {
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .dpop(algorithm)
        .build()
        .expect("config");
    let name = match algorithm {
        authed::SigningAlgorithm::EdDSA => "dpop-eddsa",
        _ => "dpop",
    };
    Client::Dpop(
        authed_client(config.client_credentials().build(), provider),
        name,
    )
}

/// An `AuthedClient` over `source` for the provider's API. Over HTTP/1 with its own reqwest
/// client, whose settings are `http()`'s (no redirects, a 30 s connect timeout): a client
/// the caller gives may follow redirects on its own, so the rules keep each request's URL
/// to tell where an answer came from (BENCHMARKS.md shows what that costs). Over HTTP/2
/// with `http()`, for prior knowledge.
fn authed_client(
    source: impl authed::TokenSource + 'static,
    provider: &TestProvider,
) -> AuthedClient {
    let builder = AuthedClient::builder(source).base_url(provider.api_url());
    let builder = if *HTTP2 || *GIVEN_CLIENT {
        builder.http_client(http())
    } else {
        builder
    };
    builder.build().expect("client")
}

/// One request: when it started (since the round began) and how long it took.
#[derive(Clone, Copy)]
struct Sample {
    start: Duration,
    latency: Duration,
}

/// What one client did in the rounds of one scenario.
#[derive(Default)]
struct Tally {
    elapsed: Duration,
    ok: usize,
    failed: usize,
    token_requests: usize,
    rejections: usize,
    samples: Vec<Sample>,
    /// When token requests arrived, per round (since that round began).
    token_times: Vec<Vec<Duration>>,
    round_samples: Vec<Vec<Sample>>,
    /// Requests per second of each round.
    round_rps: Vec<f64>,
    /// 401s the API sent, and requests that ended in an error, per round.
    round_rejections: Vec<usize>,
    round_failed: Vec<usize>,
}

/// Runs `client` with `concurrency` callers for `duration`.
async fn round(
    provider: &Arc<TestProvider>,
    client: &Client,
    concurrency: usize,
    duration: Duration,
    tally: &mut Tally,
) {
    let url = format!("{}hello", provider.api_url());
    let tokens_before = provider.token_requests();
    let rejections_before = provider.api_rejections();
    // One request before the clock starts: while the other clients had their rounds, this
    // one's 2 s token expired, and the round should measure refreshes under load, not the
    // first token after an idle spell. (Its token request still counts.)
    client.request(&url).await;
    let begin = Instant::now();
    let deadline = begin + duration;

    // Token request arrival times, sampled every millisecond.
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let provider = provider.clone();
        tokio::spawn(async move {
            let mut times = Vec::new();
            let mut seen = provider.token_requests();
            let mut tick = tokio::time::interval(Duration::from_millis(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = &mut stop_rx => break,
                }
                let now = provider.token_requests();
                for _ in seen..now {
                    times.push(begin.elapsed());
                }
                seen = now;
            }
            times
        })
    };

    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut failed = 0;
                loop {
                    let start = Instant::now();
                    if start >= deadline {
                        break;
                    }
                    if client.request(&url).await {
                        samples.push(Sample {
                            start: start - begin,
                            latency: start.elapsed(),
                        });
                    } else {
                        failed += 1;
                    }
                }
                (samples, failed)
            })
        })
        .collect();
    let mut samples = Vec::new();
    let mut round_failed = 0;
    for caller in callers {
        let (s, failed) = caller.await.expect("caller");
        samples.extend(s);
        round_failed += failed;
    }
    tally.failed += round_failed;
    tally.round_failed.push(round_failed);
    let elapsed = begin.elapsed();
    tally.elapsed += elapsed;
    tally
        .round_rps
        .push(samples.len() as f64 / elapsed.as_secs_f64());
    // Let a refresh still in flight land in this round's counts, not the next client's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stop_tx.send(());
    tally.token_times.push(watcher.await.expect("watcher"));
    tally.token_requests += provider.token_requests() - tokens_before;
    tally.rejections += provider.api_rejections() - rejections_before;
    tally
        .round_rejections
        .push(provider.api_rejections() - rejections_before);
    tally.ok += samples.len();
    tally.samples.extend_from_slice(&samples);
    tally.round_samples.push(samples);
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    latencies.sort_unstable();
    let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// Runs every client for `rounds` alternating rounds and prints the table.
async fn scenario(
    title: &str,
    provider: &Arc<TestProvider>,
    clients: &[Client],
    concurrency: usize,
    rounds: usize,
    duration: Duration,
) -> Vec<Tally> {
    let mut tallies: Vec<Tally> = clients.iter().map(|_| Tally::default()).collect();
    for _ in 0..rounds {
        for (client, tally) in clients.iter().zip(&mut tallies) {
            round(provider, client, concurrency, duration, tally).await;
        }
    }
    println!("\n## {title} (concurrency {concurrency}, {rounds} x {duration:?} per client)");
    println!(
        "| client | requests/s | ratio | median round ratio | p50 ms | p99 ms | failed | token requests | 401s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let base_rps = tallies[0].ok as f64 / tallies[0].elapsed.as_secs_f64();
    let base_rounds = tallies[0].round_rps.clone();
    for (client, t) in clients.iter().zip(&mut tallies) {
        let rps = t.ok as f64 / t.elapsed.as_secs_f64();
        // Each round against the baseline round just before it: robust to load from other
        // processes drifting during the run.
        let mut ratios: Vec<f64> = t
            .round_rps
            .iter()
            .zip(&base_rounds)
            .map(|(r, b)| r / b)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let mut lat: Vec<Duration> = t.samples.iter().map(|s| s.latency).collect();
        println!(
            "| {} | {:.0} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
            client.name(),
            rps,
            rps / base_rps,
            ratios[ratios.len() / 2],
            ms(percentile(&mut lat, 0.50)),
            ms(percentile(&mut lat, 0.99)),
            t.failed,
            t.token_requests,
            t.rejections,
        );
    }
    tallies
}

/// Token requests grouped into refreshes: requests less than `gap` apart belong to the same
/// one. The largest group is the stampede figure (1 = single-flight).
fn refreshes(times: &[Duration], gap: Duration) -> Vec<usize> {
    let mut groups: Vec<usize> = Vec::new();
    let mut last: Option<Duration> = None;
    for &t in times {
        match last {
            Some(l) if t - l < gap => *groups.last_mut().expect("group") += 1,
            _ => groups.push(1),
        }
        last = Some(t);
    }
    groups
}

fn stampede_report(clients: &[Client], tallies: &[Tally], latency: Duration) {
    println!(
        "| client | refreshes | token requests per refresh (max) | 401s sent by the API | requests that failed | 401s / failed per round |"
    );
    println!("|---|---|---|---|---|---|");
    for (client, t) in clients.iter().zip(tallies).skip(1) {
        let groups: Vec<usize> = t
            .token_times
            .iter()
            .flat_map(|times| refreshes(times, latency * 2))
            .collect();
        let rounds: Vec<String> = t
            .round_rejections
            .iter()
            .zip(&t.round_failed)
            .map(|(r, f)| format!("{r}/{f}"))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            client.name(),
            groups.len(),
            groups.iter().max().copied().unwrap_or(0),
            t.rejections,
            t.failed,
            rounds.join(", ")
        );
    }
}

/// p99 in 100 ms windows that overlap a token request (arrival to `latency` later) against
/// the other windows.
fn refresh_window_report(clients: &[Client], tallies: &[Tally], latency: Duration) {
    const WINDOW: Duration = Duration::from_millis(100);
    println!(
        "| client | p99 ms, windows with a refresh | p99 ms, other windows | ratio | max ms with / without | windows with / without |"
    );
    println!("|---|---|---|---|---|---|");
    for (client, t) in clients.iter().zip(tallies) {
        let (mut during, mut other) = (Vec::new(), Vec::new());
        let (mut n_during, mut n_other) = (0, 0);
        for (samples, times) in t.round_samples.iter().zip(&t.token_times) {
            let windows = samples
                .iter()
                .map(|s| s.start)
                .max()
                .map_or(0, |m| (m.as_nanos() / WINDOW.as_nanos()) as usize + 1);
            let refreshing: Vec<bool> = (0..windows)
                .map(|w| {
                    let (from, to) = (WINDOW * w as u32, WINDOW * (w as u32 + 1));
                    times
                        .iter()
                        .any(|&t| t < to && t + latency + Duration::from_millis(2) > from)
                })
                .collect();
            n_during += refreshing.iter().filter(|r| **r).count();
            n_other += refreshing.iter().filter(|r| !**r).count();
            for s in samples {
                let w = (s.start.as_nanos() / WINDOW.as_nanos()) as usize;
                if refreshing[w] {
                    during.push(s.latency);
                } else {
                    other.push(s.latency);
                }
            }
        }
        let (pd, po) = (percentile(&mut during, 0.99), percentile(&mut other, 0.99));
        let (md, mo) = (percentile(&mut during, 1.0), percentile(&mut other, 1.0));
        println!(
            "| {} | {} | {} | {:.2} | {} / {} | {n_during} / {n_other} |",
            client.name(),
            ms(pd),
            ms(po),
            pd.as_secs_f64() / po.as_secs_f64().max(1e-9),
            ms(md),
            ms(mo),
        );
    }
}

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

/// `total` requests through one `AuthedClient` by `concurrency` callers; RSS after the first
/// `warm` and at the end.
async fn memory(
    provider: &TestProvider,
    client: &Client,
    concurrency: usize,
    total: usize,
    warm: usize,
) {
    let url = format!("{}hello", provider.api_url());
    let before = rss_kib();
    let done = Arc::new(AtomicUsize::new(0));
    let (warm_tx, warm_rx) = tokio::sync::oneshot::channel();
    let warm_tx = Arc::new(std::sync::Mutex::new(Some(warm_tx)));
    let begin = Instant::now();
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, done, warm_tx) =
                (client.clone(), url.clone(), done.clone(), warm_tx.clone());
            tokio::spawn(async move {
                let mut failed = 0usize;
                loop {
                    let n = done.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    if n == warm
                        && let Some(tx) = warm_tx.lock().expect("lock").take()
                    {
                        let _ = tx.send(rss_kib());
                    }
                    if !client.request(&url).await {
                        failed += 1;
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for caller in callers {
        failed += caller.await.expect("caller");
    }
    let after = rss_kib();
    let at_warm = warm_rx.await.unwrap_or(0);
    println!(
        "\n## Memory: {total} requests through one {} client (concurrency {concurrency})",
        client.name()
    );
    println!(
        "| RSS before | RSS after {warm} requests | RSS after {total} | growth after the first {warm} | failed | requests/s |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {before} KiB | {at_warm} KiB | {after} KiB | {} KiB | {failed} | {:.0} |",
        after as i64 - at_warm as i64,
        total as f64 / begin.elapsed().as_secs_f64()
    );
}

fn main() {
    // With feature `metrics`, a real recorder (atomic counters, as Prometheus exporters
    // keep them), so that the cache's hit counter costs what it costs in production.
    #[cfg(feature = "metrics")]
    metrics_util::debugging::DebuggingRecorder::new()
        .install()
        .expect("no other recorder");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    if let Ok(name) = std::env::var("AUTHED_LOAD_PROFILE") {
        // A fixed number of requests through one client, for an instruction-counting
        // profiler: `benches/callgrind.sh` (see BENCHMARKS.md).
        let provider = Arc::new(TestProvider::start().await);
        let mut clients = make_clients(&provider).await;
        clients.push(dpop_client(&provider, authed::SigningAlgorithm::ES256));
        clients.push(dpop_client(&provider, authed::SigningAlgorithm::EdDSA));
        let client = clients
            .iter()
            .find(|c| c.name() == name)
            .expect("baseline, authed, mutex, dpop or dpop-eddsa");
        if let Client::Authed(authed) | Client::Dpop(authed, _) = client {
            // The one token request happens here, not inside the profiled request function.
            authed.source().token().await.expect("token");
        }
        let requests = std::env::var("AUTHED_LOAD_REQUESTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        let concurrency = std::env::var("AUTHED_LOAD_CONCURRENCY")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(32);
        memory(&provider, client, concurrency, requests, requests / 10).await;
        return;
    }
    let quick = quick();
    let (rounds, secs) = if quick { (3, 0.5) } else { (9, 1.0) };
    let round_time = Duration::from_secs_f64(secs);
    println!(
        "authed load benchmark: {} mode, {} worker threads, server in this process",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if enabled("memory") {
        // Memory first, while the heap holds nothing from the other scenarios.
        let provider = Arc::new(TestProvider::start().await);
        let clients = make_clients(&provider).await;
        let total = if quick { 200_000 } else { 1_000_000 };
        memory(&provider, &clients[1], 32, total, 100_000).await;
    }
    if enabled("steady") {
        let provider = Arc::new(TestProvider::start().await);
        let clients = make_clients(&provider).await;
        scenario(
            "Steady state, one-hour token",
            &provider,
            &clients,
            32,
            rounds,
            round_time,
        )
        .await;
    }

    // Stampede: 2 s tokens from an endpoint taking 50 ms. `AUTHED_LOAD_CALLERS=10000` (with
    // `AUTHED_LOAD_HTTP2=1`) sets the callers; `AUTHED_LOAD_ROUNDS` the rounds per client.
    let latency = Duration::from_millis(50);
    let callers: Vec<usize> = std::env::var("AUTHED_LOAD_CALLERS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![128, 1000]);
    let stampede_rounds = std::env::var("AUTHED_LOAD_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    for concurrency in callers.into_iter().filter(|_| enabled("stampede")) {
        // Tokens live 2 s up to 1,000 callers. Beyond, requests queue for seconds on 2 cores
        // (p99 ~3 s at 10,000 callers on a loaded machine): longer than a 2 s token lives, so
        // even a token taken the moment it was issued would expire on the way, whatever the
        // client does. There tokens live 12 s (`AUTHED_LOAD_TOKEN_SECS` overrides), and a
        // round lasts at least a lifetime, so every client's token expires with all callers in
        // flight.
        let token_secs: u64 = std::env::var("AUTHED_LOAD_TOKEN_SECS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(if concurrency > 1000 { 12 } else { 2 });
        let provider = Arc::new(TestProvider::start().await);
        let clients = make_clients(&provider).await;
        provider.set_token_lifetime(Duration::from_secs(token_secs));
        provider.set_latency(latency);
        let stampede_time = round_time
            .max(Duration::from_secs(if quick { 3 } else { 6 }))
            .max(Duration::from_secs(token_secs));
        let tallies = scenario(
            &format!("Stampede: {token_secs} s tokens, token endpoint 50 ms"),
            &provider,
            &clients,
            concurrency,
            stampede_rounds,
            stampede_time,
        )
        .await;
        stampede_report(&clients, &tallies, latency);
    }

    if !enabled("refresh") {
        return;
    }
    // Refresh under load: 2 s tokens from an endpoint taking 200 ms.
    let latency = Duration::from_millis(200);
    let provider = Arc::new(TestProvider::start().await);
    let clients = make_clients(&provider).await;
    provider.set_token_lifetime(Duration::from_secs(2));
    provider.set_latency(latency);
    let tallies = scenario(
        "Refresh under load: 2 s tokens, token endpoint 200 ms",
        &provider,
        &clients,
        32,
        2,
        round_time.max(Duration::from_secs(if quick { 3 } else { 6 })),
    )
    .await;
    refresh_window_report(&clients, &tallies, latency);
}
