//! Observability through the public API against `TestProvider`: the `tracing` spans around
//! provider requests and token waits, with their fields, and (feature `metrics`) the
//! counters and the histogram, captured with a test `Layer` and `metrics-util`'s
//! `DebuggingRecorder`. No token, refresh token or client secret in any span field or
//! metric label.
//!
//! Each test runs on a current-thread runtime, so the thread-local subscriber and recorder
//! see the token requests that the cache runs as tasks of their own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AccessToken, AuthedClient, OAuthConfig, RefreshToken, RetryPolicy, Token, TokenSource,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as recorded: its name, its parent's name and its fields, as text.
#[derive(Debug, Clone, Default)]
struct SpanRecord {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
    /// Returned by [`Spans::take`] already.
    taken: bool,
}

impl SpanRecord {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every span with the fields given when it was made and recorded later.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<SpanRecord>>>);

/// Where a span's record is in the list.
struct Index(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("the span exists");
        let mut record = SpanRecord {
            name: attrs.metadata().name(),
            parent: span.parent().map(|p| p.name()),
            ..SpanRecord::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        let mut spans = self.0.lock().unwrap();
        span.extensions_mut().insert(Index(spans.len()));
        spans.push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("the span exists");
        let extensions = span.extensions();
        let Some(Index(i)) = extensions.get::<Index>() else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[*i].fields));
    }
}

impl Spans {
    fn named(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// The spans of this name made since the last call, oldest first.
    fn take(&self, name: &str) -> Vec<SpanRecord> {
        let mut spans = self.0.lock().unwrap();
        let new = spans.iter_mut().filter(|s| s.name == name && !s.taken);
        new.map(|s| {
            s.taken = true;
            s.clone()
        })
        .collect()
    }
}

fn capture() -> (Spans, tracing::subscriber::DefaultGuard) {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    (spans, tracing::subscriber::set_default(subscriber))
}

#[track_caller]
fn assert_fields(span: &SpanRecord, expected: &[(&str, &str)]) {
    for (field, value) in expected {
        assert_eq!(span.get(field), Some(*value), "{field} of {span:?}");
    }
}

#[track_caller]
fn assert_provider_request(span: &SpanRecord, grant: &str, status: &str, outcome: &str) {
    assert_fields(
        span,
        &[
            ("grant", grant),
            ("host", "127.0.0.1"),
            ("status", status),
            ("outcome", outcome),
        ],
    );
    assert!(
        span.get("duration_ms")
            .is_some_and(|d| d.parse::<u64>().is_ok()),
        "{span:?}"
    );
}

#[tokio::test]
async fn provider_requests_and_token_waits_have_spans_with_their_fields() {
    let (spans, _guard) = capture();
    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = provider.config(Some(clock.clone()));
    let client = AuthedClient::builder(config.client_credentials().build())
        .base_url(provider.api_url())
        .build()
        .unwrap();

    // The first request waits for the first token.
    client.get("a").send().await.unwrap();
    let [request] = &spans.take("provider_request")[..] else {
        panic!("{:?}", spans.0.lock().unwrap());
    };
    assert_provider_request(request, "client_credentials", "200", "ok");
    assert_fields(request, &[("attempts", "1")]);
    assert_eq!(
        request.parent,
        Some("token_wait"),
        "the token request runs in the span of the caller that started it"
    );
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(
        wait,
        &[
            ("reason", "missing"),
            ("refresh", "started"),
            ("outcome", "ok"),
        ],
    );
    assert!(wait.get("wait_ms").is_some(), "{wait:?}");

    // A cached token: no wait, no provider request.
    client.get("b").send().await.unwrap();
    assert!(spans.take("provider_request").is_empty());
    assert!(spans.take("token_wait").is_empty());

    // A 401 invalid_token: one wait for the replacement.
    provider.revoke_access_tokens();
    client.get("c").send().await.unwrap();
    let [request] = &spans.take("provider_request")[..] else {
        panic!()
    };
    assert_provider_request(request, "client_credentials", "200", "ok");
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "rejected"), ("outcome", "ok")]);

    // An expired token: the next caller waits.
    clock.advance(Duration::from_secs(3600));
    client.get("d").send().await.unwrap();
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "expired"), ("outcome", "ok")]);
    let [request] = &spans.take("provider_request")[..] else {
        panic!()
    };
    assert_provider_request(request, "client_credentials", "200", "ok");

    // A failing refresh: the provider's answer is the outcome, for the wait too.
    let spent = provider.issue_refresh_token();
    config
        .revoke_refresh_token(&RefreshToken::new(spent.clone()))
        .await
        .unwrap();
    let revoked = config
        .refresh_token_source()
        .from_token(expired_login(spent.clone()))
        .await
        .unwrap();
    let e = revoked.token().await.unwrap_err();
    assert!(e.is_revoked(), "{e:?}");
    let requests = spans.take("provider_request");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_provider_request(&requests[0], "revocation", "200", "ok");
    assert_provider_request(&requests[1], "refresh_token", "400", "invalid_grant");
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "expired"), ("outcome", "invalid_grant")]);

    // No secret in any span field.
    let mut secrets = vec![TestProvider::CLIENT_SECRET.to_owned(), spent];
    secrets.push(
        client
            .source()
            .token()
            .await
            .unwrap()
            .access_token()
            .secret()
            .to_owned(),
    );
    assert_no_secret_in(&span_values(&spans), secrets);
}

/// Checks `values` against `secrets` and every refresh token the provider was sent.
#[track_caller]
fn assert_no_secret_in(values: &[String], mut secrets: Vec<String>) {
    secrets.push("expired-access-token".to_owned());
    assert!(values.len() > 20, "{values:?}");
    for secret in &secrets {
        assert!(secret.len() >= 6, "{secret}");
        for value in values {
            assert!(!value.contains(secret.as_str()), "a secret in {value}");
        }
    }
}

fn expired_login(refresh_token: String) -> Token {
    Token::new(AccessToken::new("expired-access-token"))
        .with_expires_at(Some(SystemTime::UNIX_EPOCH))
        .with_refresh_token(Some(RefreshToken::new(refresh_token)))
}

#[tokio::test]
async fn retried_attempts_are_counted_on_one_span() {
    let (spans, _guard) = capture();
    let provider = TestProvider::start().await;
    provider.fail_with(
        503,
        "application/json",
        r#"{"error":"temporarily_unavailable"}"#,
    );
    let source = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .retry(
            RetryPolicy::default()
                .with_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(1)),
        )
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let e = source.token().await.unwrap_err();
    assert_eq!(e.kind(), "temporarily_unavailable");
    assert_eq!(provider.token_requests(), 3);
    let [request] = &spans.named("provider_request")[..] else {
        panic!()
    };
    assert_provider_request(
        request,
        "client_credentials",
        "503",
        "temporarily_unavailable",
    );
    assert_fields(request, &[("attempts", "3")]);
}

/// Every recorded span field, for the secrets check.
fn span_values(spans: &Spans) -> Vec<String> {
    let spans = spans.0.lock().unwrap();
    spans
        .iter()
        .flat_map(|s| s.fields.values().cloned())
        .collect()
}

#[cfg(feature = "metrics")]
mod metrics {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// Counter totals and histogram values by `name{label=value,...}` (labels sorted), added
    /// up over snapshots: a snapshot resets what it reads.
    struct Totals {
        snapshotter: Snapshotter,
        counters: BTreeMap<String, u64>,
        histograms: BTreeMap<String, Vec<f64>>,
        labels: Vec<String>,
    }

    impl Totals {
        fn new(recorder: &DebuggingRecorder) -> Self {
            Totals {
                snapshotter: recorder.snapshotter(),
                counters: BTreeMap::new(),
                histograms: BTreeMap::new(),
                labels: Vec::new(),
            }
        }

        fn update(&mut self) {
            for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
                let (_, key) = key.into_parts();
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                self.labels.extend(labels.iter().cloned());
                let name = format!("{}{{{}}}", key.name(), labels.join(","));
                match value {
                    DebugValue::Counter(n) => *self.counters.entry(name).or_default() += n,
                    DebugValue::Histogram(values) => self
                        .histograms
                        .entry(name)
                        .or_default()
                        .extend(values.into_iter().map(|v| v.into_inner())),
                    DebugValue::Gauge(_) => {}
                }
            }
        }

        fn counter(&mut self, name: &str) -> u64 {
            self.update();
            self.counters.get(name).copied().unwrap_or(0)
        }

        #[track_caller]
        fn assert(&mut self, expected: &[(&str, u64)]) {
            self.update();
            for (name, value) in expected {
                assert_eq!(
                    self.counters.get(*name).copied().unwrap_or(0),
                    *value,
                    "{name} in {:#?}",
                    self.counters
                );
            }
        }
    }

    const HITS: &str = "authed_cache_hits_total{}";
    const MISSES: &str = "authed_cache_misses_total{}";
    const RETRIES: &str = "authed_unauthorized_retries_total{}";
    const CC_OK: &str = "authed_token_requests_total{grant=client_credentials,outcome=ok}";
    const RT_OK: &str = "authed_token_requests_total{grant=refresh_token,outcome=ok}";
    const RT_ERROR: &str = "authed_token_requests_total{grant=refresh_token,outcome=error}";
    const RT_REVOKED: &str =
        "authed_token_request_failures_total{grant=refresh_token,kind=invalid_grant}";
    const BACKGROUND_OK: &str = "authed_background_refreshes_total{outcome=ok}";

    /// Client credentials, a 401 retry, a user login's refresh (in the foreground and in the
    /// background) and a refresh of a revoked login, counted exactly; then no secret in any
    /// metric label or span field.
    #[tokio::test]
    async fn counters_and_the_refresh_latency_histogram() {
        let recorder = DebuggingRecorder::new();
        let mut totals = Totals::new(&recorder);
        let _recorder = ::metrics::set_default_local_recorder(&recorder);
        let (spans, _guard) = capture();

        let provider = TestProvider::start().await;
        let clock = ManualClock::new(SystemTime::now());
        let config = provider.config(Some(clock.clone()));
        let client = AuthedClient::builder(config.client_credentials().build())
            .base_url(provider.api_url())
            .build()
            .unwrap();
        let mut secrets = vec![TestProvider::CLIENT_SECRET.to_owned()];

        // One miss and a token request; then hits.
        client.get("a").send().await.unwrap();
        totals.assert(&[(MISSES, 1), (HITS, 0), (CC_OK, 1)]);
        client.get("b").send().await.unwrap();
        client.get("c").send().await.unwrap();
        totals.assert(&[(MISSES, 1), (HITS, 2), (CC_OK, 1), (RETRIES, 0)]);
        secrets.push(
            client
                .source()
                .token()
                .await
                .unwrap()
                .access_token()
                .secret()
                .to_owned(),
        );
        totals.assert(&[(HITS, 3)]);

        // A 401: one retry, one more token request.
        provider.revoke_access_tokens();
        client.get("d").send().await.unwrap();
        totals.assert(&[(RETRIES, 1), (CC_OK, 2), (HITS, 4), (MISSES, 1)]);

        // A user login: refreshed when expired, then in the background ahead of expiry.
        let first = provider.issue_refresh_token();
        secrets.push(first.clone());
        let login = config
            .refresh_token_source()
            .from_token(expired_login(first))
            .await
            .unwrap();
        let token = login.token().await.unwrap();
        totals.assert(&[(RT_OK, 1), (MISSES, 2), (BACKGROUND_OK, 0)]);
        secrets.push(token.access_token().secret().to_owned());
        secrets.push(token.refresh_token().unwrap().secret().to_owned());
        clock.advance(Duration::from_secs(3600 - 200));
        login.token().await.unwrap();
        // The background refresh is a task of its own: wait for it to be counted.
        for _ in 0..10_000 {
            if totals.counter(BACKGROUND_OK) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        totals.assert(&[(BACKGROUND_OK, 1), (RT_OK, 2), (MISSES, 2)]);
        let token = login.current().unwrap();
        secrets.push(token.access_token().secret().to_owned());
        secrets.push(token.refresh_token().unwrap().secret().to_owned());

        // A failing refresh: counted as a failure by its kind.
        let spent = provider.issue_refresh_token();
        secrets.push(spent.clone());
        config
            .revoke_refresh_token(&RefreshToken::new(spent.clone()))
            .await
            .unwrap();
        let revoked = config
            .refresh_token_source()
            .from_token(expired_login(spent))
            .await
            .unwrap();
        assert!(revoked.token().await.unwrap_err().is_revoked());
        totals.assert(&[
            (RT_ERROR, 1),
            (RT_REVOKED, 1),
            (RT_OK, 2),
            (
                "authed_token_requests_total{grant=revocation,outcome=ok}",
                1,
            ),
        ]);

        // Refresh latency: one value per refresh token request.
        let latencies =
            &totals.histograms["authed_token_request_duration_seconds{grant=refresh_token}"];
        assert_eq!(latencies.len(), 3, "{latencies:?}");
        assert!(
            latencies.iter().all(|s| *s >= 0.0 && *s < 60.0),
            "{latencies:?}"
        );
        assert_eq!(
            totals.histograms["authed_token_request_duration_seconds{grant=client_credentials}"]
                .len(),
            2
        );

        // No secret in a label or a span field; labels come from small fixed sets.
        for form in provider.token_forms() {
            secrets.extend(form.get("refresh_token").cloned());
        }
        let labels = totals.labels.clone();
        let mut values = span_values(&spans);
        values.extend(labels.iter().cloned());
        assert_no_secret_in(&values, secrets);
        for label in &labels {
            let (key, value) = label.split_once('=').unwrap();
            assert!(["grant", "outcome", "kind"].contains(&key), "{label}");
            assert!(
                value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
        }
    }
}
