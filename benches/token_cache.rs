//! The cached-token path: `token()` on a valid token against the cost of an `Arc` clone, on 1
//! and 2 threads.
//!
//! Run: `cargo bench --bench token_cache` (results in BENCHMARKS.md).
//!
//! `token()` on a valid token returns an already-completed future; it is polled once here with
//! a no-op waker, exactly as `.await` would on its first poll. The 2-thread figures are the
//! wall time for each thread to do its share of calls concurrently on the same source, per
//! call: equal to the 1-thread figure means perfect scaling.

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use authed::testing::TestProvider;
use authed::{ClientCredentials, OAuthConfig, Token, TokenSource};
use criterion::{Criterion, criterion_group, criterion_main};

/// A source holding a valid one-hour token, fetched once from a local provider.
fn warm_source() -> ClientCredentials {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let provider = TestProvider::start().await;
        let config = OAuthConfig::builder(provider.token_url())
            .client_id(TestProvider::CLIENT_ID)
            .client_secret(TestProvider::CLIENT_SECRET)
            .build()
            .expect("config");
        let source = config.client_credentials().build();
        source.token().await.expect("first token");
        assert_eq!(provider.token_requests(), 1);
        source
    })
}

/// `token()` on a cached token, polled once as `.await` would.
fn cached_token(source: &ClientCredentials) -> Arc<Token> {
    let mut fut = source.token();
    match Pin::new(&mut fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(token)) => token,
        _ => panic!("a cached token must be ready on the first poll"),
    }
}

/// Runs `op` `iters` times on each of `threads` threads at once; the wall time of the slowest.
fn on_threads<S: Sync>(threads: usize, iters: u64, shared: &S, op: fn(&S)) -> Duration {
    let barrier = Barrier::new(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(shared);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn bench(c: &mut Criterion) {
    let source = warm_source();
    let arc = Arc::new(SystemTime::now());

    let mut group = c.benchmark_group("cached_token");
    for threads in [1, 2] {
        group.bench_function(format!("arc_clone/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &arc, |a| {
                    black_box(Arc::clone(black_box(a)));
                })
            })
        });
        group.bench_function(format!("token/{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                on_threads(threads, iters, &source, |s| {
                    black_box(cached_token(black_box(s)));
                })
            })
        });
    }
    group.finish();

    // What a clock read costs, for the analysis in BENCHMARKS.md.
    let mut group = c.benchmark_group("clock");
    group.bench_function("SystemTime::now", |b| {
        b.iter(|| black_box(SystemTime::now()))
    });
    group.bench_function("Instant::now", |b| b.iter(|| black_box(Instant::now())));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
