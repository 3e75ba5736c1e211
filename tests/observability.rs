//! Observability through the public API against `TestProvider`: the `tracing` spans around
//! provider requests and token waits, with their fields, and (feature `metrics`) the
//! counters and the histogram, captured with a test `Layer` and `metrics-util`'s
//! `DebuggingRecorder`. No token, refresh token or client secret in any span field or
//! metric label.
//!
//! Each test runs on a current-thread runtime, so the thread-local subscriber and recorder
//! see the token requests that the cache runs as tasks of their own.

#[path = "support/spans.rs"]
mod spans;

use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{
    AccessToken, AuthedClient, OAuthConfig, RefreshToken, RetryPolicy, Token, TokenSource,
};
use spans::{SpanRecord, Spans, capture};

#[track_caller]
fn assert_fields(span: &SpanRecord, expected: &[(&str, &str)]) {
    for (field, value) in expected {
        assert_eq!(span.get(field), Some(*value), "{field} of {span:?}");
    }
}

/// A `provider_request` span: its grant, the endpoint's address, the last status, and
/// `error.type` only when the call failed (`error` is `None` for a success).
#[track_caller]
fn assert_provider_request(span: &SpanRecord, grant: &str, status: &str, error: Option<&str>) {
    assert_fields(
        span,
        &[
            ("grant", grant),
            ("server.address", "127.0.0.1"),
            ("http.response.status_code", status),
        ],
    );
    assert!(
        span.get("server.port")
            .is_some_and(|p| p.parse::<u16>().is_ok()),
        "{span:?}"
    );
    assert_eq!(span.get("error.type"), error, "{span:?}");
    assert_eq!(
        span.get("otel.status_code"),
        error.map(|_| "ERROR"),
        "{span:?}"
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
    assert_provider_request(request, "client_credentials", "200", None);
    assert_fields(request, &[("attempts", "1")]);
    assert_eq!(
        request.parent,
        Some("token_wait"),
        "the token request runs in the span of the caller that started it"
    );
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "missing"), ("refresh", "started")]);
    assert_eq!(wait.get("error.type"), None, "{wait:?}");
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
    assert_provider_request(request, "client_credentials", "200", None);
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "rejected")]);
    assert_eq!(wait.get("error.type"), None, "{wait:?}");

    // An expired token: the next caller waits.
    clock.advance(Duration::from_secs(3600));
    client.get("d").send().await.unwrap();
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(wait, &[("reason", "expired")]);
    assert_eq!(wait.get("error.type"), None, "{wait:?}");
    let [request] = &spans.take("provider_request")[..] else {
        panic!()
    };
    assert_provider_request(request, "client_credentials", "200", None);

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
    assert_provider_request(&requests[0], "revocation", "200", None);
    assert_provider_request(&requests[1], "refresh_token", "400", Some("invalid_grant"));
    let [wait] = &spans.take("token_wait")[..] else {
        panic!()
    };
    assert_fields(
        wait,
        &[
            ("reason", "expired"),
            ("error.type", "invalid_grant"),
            ("otel.status_code", "ERROR"),
        ],
    );

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
        Some("temporarily_unavailable"),
    );
    assert_fields(request, &[("attempts", "3")]);

    // One HTTP client span per request sent, inside the call's span; the second and third
    // carry their resend count, as OpenTelemetry's retry example shows.
    let posts = spans.named("POST");
    assert_eq!(posts.len(), 3, "{posts:?}");
    for (i, post) in posts.iter().enumerate() {
        assert_eq!(post.parent, Some("provider_request"), "{post:?}");
        assert_fields(
            post,
            &[
                ("otel.kind", "client"),
                ("http.request.method", "POST"),
                ("http.response.status_code", "503"),
                ("error.type", "temporarily_unavailable"),
                ("otel.status_code", "ERROR"),
            ],
        );
        let resend = (i > 0).then(|| i.to_string());
        assert_eq!(
            post.get("http.request.resend_count"),
            resend.as_deref(),
            "{post:?}"
        );
    }
}

/// The OpenTelemetry semantic conventions for HTTP client spans (stable, `docs/http/http-spans.md`
/// of open-telemetry/semantic-conventions): the attributes a client span must have, those it
/// may have, and the methods it knows.
mod semconv {
    pub const REQUIRED: &[&str] = &[
        "http.request.method",
        "server.address",
        "server.port",
        "url.full",
    ];
    /// Conditionally required, recommended or opt-in attributes of an HTTP client span.
    pub const OPTIONAL: &[&str] = &[
        "error.type",
        "http.response.status_code",
        "http.request.resend_count",
        "url.scheme",
        "network.protocol.name",
        "network.protocol.version",
        "network.peer.address",
        "network.peer.port",
    ];
    pub const METHODS: &[&str] = &[
        "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
    ];
    /// `http.client.request.duration`'s attributes (`docs/http/http-metrics.md`).
    #[cfg(feature = "metrics")]
    pub const METRIC_ATTRIBUTES: &[&str] = &[
        "http.request.method",
        "server.address",
        "server.port",
        "error.type",
        "http.response.status_code",
        "url.scheme",
        "network.protocol.name",
        "network.protocol.version",
    ];
}

/// A sign-in (discovery, code exchange, JWKS), API calls, a refresh at expiry and a refresh
/// after a 401, recorded whole: every span and field name the crate uses is one of its
/// published constants, every HTTP request is an OpenTelemetry HTTP client span inside its
/// call's span, and no field or label carries a secret or a query string.
#[tokio::test]
async fn a_sign_in_refresh_and_api_calls_follow_the_opentelemetry_http_conventions() {
    use authed::observability::{field, span};

    #[cfg(feature = "metrics")]
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    #[cfg(feature = "metrics")]
    let mut totals = metrics::Totals::new(&recorder);
    #[cfg(feature = "metrics")]
    let _recorder = ::metrics::set_default_local_recorder(&recorder);
    let (spans, _guard) = capture();

    let provider = TestProvider::start().await;
    let clock = ManualClock::new(SystemTime::now());
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .clock(clock.clone())
        .build()
        .unwrap();
    let flow = config
        .authorization_code("http://127.0.0.1:9/callback")
        .scopes(["openid", "api"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let pending_secrets = serde_json::to_value(&pending).unwrap();
    let callback = provider.sign_in(&pending).await;
    let login = flow.complete(pending, &callback).await.unwrap();
    let client = AuthedClient::builder(login.clone())
        .base_url(provider.api_url())
        .build()
        .unwrap();
    client
        .get("me")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    client
        .get("me")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    provider.revoke_access_tokens();
    client
        .get("me")
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // Discovery reads the OpenID Connect document and the RFC 8414 one, which this provider
    // does not serve (a 404, an HTTP client span that failed).
    let grants: Vec<_> = spans
        .named(span::PROVIDER_REQUEST)
        .iter()
        .map(|s| s.get("grant").unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        grants,
        [
            "discovery",
            "discovery",
            "authorization_code",
            "jwks",
            "refresh_token",
            "refresh_token"
        ]
    );

    let all: Vec<SpanRecord> = spans
        .all()
        .into_iter()
        .filter(|s| s.target.starts_with("authed"))
        .collect();
    let names = [
        span::PROVIDER_REQUEST,
        span::POST,
        span::GET,
        span::TOKEN_WAIT,
    ];
    let fields = [
        field::HTTP_REQUEST_METHOD,
        field::SERVER_ADDRESS,
        field::SERVER_PORT,
        field::URL_SCHEME,
        field::URL_FULL,
        field::HTTP_RESPONSE_STATUS_CODE,
        field::HTTP_REQUEST_RESEND_COUNT,
        field::ERROR_TYPE,
        field::OTEL_KIND,
        field::OTEL_STATUS_CODE,
        field::GRANT,
        field::ATTEMPTS,
        field::DURATION_MS,
        field::REASON,
        field::REFRESH,
        field::WAIT_MS,
    ];
    for s in &all {
        assert!(names.contains(&s.name), "an unpublished span name: {s:?}");
        for name in s.fields.keys() {
            assert!(
                fields.contains(&name.as_str()),
                "an unpublished field: {s:?}"
            );
        }
    }

    // HTTP client spans: one per request sent, inside its call's span, as the conventions
    // name them.
    let port = url::Url::parse(&provider.token_url())
        .unwrap()
        .port()
        .unwrap()
        .to_string();
    let client_spans: Vec<&SpanRecord> = all
        .iter()
        .filter(|s| s.get("otel.kind") == Some("client"))
        .collect();
    assert_eq!(client_spans.len(), 6, "{client_spans:#?}");
    for s in &client_spans {
        let method = s.get("http.request.method").unwrap();
        assert!(semconv::METHODS.contains(&method), "{s:?}");
        assert_eq!(s.name, method, "a client span is named by its method");
        assert_eq!(s.parent, Some(span::PROVIDER_REQUEST), "{s:?}");
        for attribute in semconv::REQUIRED {
            assert!(s.get(attribute).is_some(), "no {attribute}: {s:?}");
        }
        for name in s.fields.keys().filter(|k| !k.starts_with("otel.")) {
            assert!(
                semconv::REQUIRED.contains(&name.as_str())
                    || semconv::OPTIONAL.contains(&name.as_str()),
                "{name} is not an HTTP client span attribute"
            );
        }
        assert_fields(
            s,
            &[
                ("server.address", "127.0.0.1"),
                ("server.port", &port),
                ("url.scheme", "http"),
            ],
        );
        let url = s.get("url.full").unwrap();
        assert!(url.starts_with(&provider.base_url()), "{url}");
        assert!(!url.contains(['?', '#', '@']), "{url}");
        // error.type and an error status only on failure (a 4xx is one for a client); the
        // first request of a call has no resend count.
        match s.get("http.response.status_code") {
            Some("200") => {
                assert_eq!(s.get("error.type"), None, "{s:?}");
                assert_eq!(s.get("otel.status_code"), None, "{s:?}");
            }
            Some("404") if url.contains("/.well-known/oauth-authorization-server") => {
                assert!(s.get("error.type").is_some(), "{s:?}");
                assert_eq!(s.get("otel.status_code"), Some("ERROR"), "{s:?}");
            }
            _ => panic!("{s:?}"),
        }
        assert_eq!(s.get("http.request.resend_count"), None, "{s:?}");
    }
    let methods: Vec<_> = client_spans.iter().map(|s| s.name).collect();
    assert_eq!(methods, ["GET", "GET", "POST", "GET", "POST", "POST"]);
    let every = spans.all();
    for (i, call) in every.iter().enumerate() {
        if call.name != span::PROVIDER_REQUEST {
            continue;
        }
        assert_eq!(
            call.get("otel.kind"),
            None,
            "the call's span is not a client span"
        );
        let sent = every.iter().filter(|s| s.parent_index == Some(i)).count();
        assert_eq!(call.get("attempts"), Some("1"), "{call:?}");
        assert_eq!(sent, 1, "one client span per request sent: {call:?}");
    }
    let waits = spans.named(span::TOKEN_WAIT);
    let reasons: Vec<_> = waits.iter().map(|w| w.get("reason").unwrap()).collect();
    assert_eq!(reasons, ["expired", "rejected"], "{waits:?}");

    // No secret anywhere: the client secret, the PKCE verifier, state, nonce, the code and
    // every token issued.
    let mut secrets = vec![TestProvider::CLIENT_SECRET.to_owned()];
    for key in ["verifier", "state", "nonce"] {
        secrets.extend(pending_secrets[key].as_str().map(str::to_owned));
    }
    for form in provider.token_forms() {
        secrets.extend(form.get("code").cloned());
        secrets.extend(form.get("refresh_token").cloned());
    }
    let token = login.current().unwrap();
    secrets.push(token.access_token().secret().to_owned());
    secrets.extend(token.refresh_token().map(|r| r.secret().to_owned()));
    #[allow(unused_mut)]
    let mut values = spans.values();
    #[cfg(feature = "metrics")]
    {
        values.extend(metrics::assert_conventions(&mut totals, client_spans.len()));
    }
    assert_no_secret_in(&values, secrets);
}

/// Every recorded span field, for the secrets check.
fn span_values(spans: &Spans) -> Vec<String> {
    spans.values()
}

#[cfg(feature = "metrics")]
mod metrics {
    use super::*;
    use std::collections::BTreeMap;

    use ::metrics::Unit;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// Counter totals and histogram values by `name{label=value,...}` (labels sorted), added
    /// up over snapshots: a snapshot resets what it reads.
    pub(super) struct Totals {
        snapshotter: Snapshotter,
        counters: BTreeMap<String, u64>,
        histograms: BTreeMap<String, Vec<f64>>,
        /// Every label seen, as `(metric, "key=value")`.
        labels: Vec<(String, String)>,
        /// Each metric's unit and description, as described to the recorder.
        described: BTreeMap<String, (Option<Unit>, Option<String>)>,
    }

    impl Totals {
        pub(super) fn new(recorder: &DebuggingRecorder) -> Self {
            Totals {
                snapshotter: recorder.snapshotter(),
                counters: BTreeMap::new(),
                histograms: BTreeMap::new(),
                labels: Vec::new(),
                described: BTreeMap::new(),
            }
        }

        fn update(&mut self) {
            for (key, unit, description, value) in self.snapshotter.snapshot().into_vec() {
                let (_, key) = key.into_parts();
                self.described.insert(
                    key.name().to_owned(),
                    (unit, description.map(|d| d.to_string())),
                );
                let mut labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                self.labels
                    .extend(labels.iter().map(|l| (key.name().to_owned(), l.clone())));
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

        // A `token()` future dropped unpolled waited for nothing: no miss. `AuthedClient`
        // drops one when no token is at hand and awaits the next, which counts.
        drop(client.source().token());
        totals.assert(&[(MISSES, 0), (HITS, 0)]);

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
        values.extend(labels.iter().map(|(_, l)| l.clone()));
        assert_no_secret_in(&values, secrets);
        let own = labels
            .iter()
            .filter(|(metric, _)| metric.starts_with("authed_"));
        for (_, label) in own {
            let (key, value) = label.split_once('=').unwrap();
            assert!(["grant", "outcome", "kind"].contains(&key), "{label}");
            assert!(
                value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{label}"
            );
        }
    }

    /// The metrics of a run whose `requests` HTTP requests all succeeded: every name is a
    /// published constant and described with its unit, and `http.client.request.duration` has
    /// one value per request, with the conventions' attributes. Returns every label value.
    pub(super) fn assert_conventions(totals: &mut Totals, requests: usize) -> Vec<String> {
        use authed::observability::metric;
        totals.update();
        let published = [
            (metric::HTTP_CLIENT_REQUEST_DURATION, Unit::Seconds),
            (metric::TOKEN_REQUESTS, Unit::Count),
            (metric::TOKEN_REQUEST_FAILURES, Unit::Count),
            (metric::TOKEN_REQUEST_DURATION, Unit::Seconds),
            (metric::CACHE_HITS, Unit::Count),
            (metric::CACHE_MISSES, Unit::Count),
            (metric::UNAUTHORIZED_RETRIES, Unit::Count),
            (metric::BACKGROUND_REFRESHES, Unit::Count),
        ];
        assert!(totals.described.len() >= 6, "{:#?}", totals.described);
        for (name, (unit, description)) in &totals.described {
            let Some((_, expected)) = published.iter().find(|(n, _)| n == name) else {
                panic!("an unpublished metric: {name}");
            };
            assert_eq!(unit.as_ref(), Some(expected), "{name}");
            assert!(description.as_ref().is_some_and(|d| d.len() > 10), "{name}");
        }
        let durations: Vec<(&String, &Vec<f64>)> = totals
            .histograms
            .iter()
            .filter(|(k, _)| k.starts_with("http.client.request.duration{"))
            .collect();
        let values: usize = durations.iter().map(|(_, v)| v.len()).sum();
        assert_eq!(values, requests, "{durations:#?}");
        for (key, _) in &durations {
            for required in [
                "http.request.method=",
                "server.address=127.0.0.1",
                "server.port=",
            ] {
                assert!(key.contains(required), "{key}");
            }
            assert!(
                key.contains("http.response.status_code=200")
                    || key.contains("http.response.status_code=404"),
                "{key}"
            );
        }
        let semconv_labels = totals
            .labels
            .iter()
            .filter(|(m, _)| m == metric::HTTP_CLIENT_REQUEST_DURATION);
        for (_, label) in semconv_labels {
            let (key, _) = label.split_once('=').unwrap();
            assert!(super::semconv::METRIC_ATTRIBUTES.contains(&key), "{label}");
        }
        totals.labels.iter().map(|(_, l)| l.clone()).collect()
    }
}
