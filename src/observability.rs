//! The names of everything `authed` tells about itself — `tracing` spans, their fields, and
//! (feature `metrics`) metrics — as constants, so that dashboards, alerts and tests can be
//! written against them.
//!
//! HTTP requests to a provider follow the [OpenTelemetry semantic conventions for HTTP
//! clients](https://opentelemetry.io/docs/specs/semconv/http/http-spans/) (stable, v1.x):
//! one `CLIENT` span per request sent over the wire, named by its method (`POST`, `GET`),
//! inside the span of the call that needed it, and the `http.client.request.duration`
//! histogram. The crate's own concepts (which grant, why a caller waited) keep short names of
//! their own. With [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry), the
//! `otel.kind` and `otel.status_code` fields set the span kind and status.
//!
//! # Spans
//!
//! All at INFO, with target `authed::telemetry`.
//!
//! | Span | Field | Value |
//! |---|---|---|
//! | [`provider_request`](span::PROVIDER_REQUEST): one call to a provider, every attempt, backoff and `Retry-After` wait included | `grant` | `client_credentials`, `refresh_token`, `authorization_code`, `device_code`, `jwt_bearer`, `token_exchange` or `other`; else `revocation`, `device_authorization`, `introspection`, `jwks`, `discovery`, `userinfo`, `registration`, `workload` (a cloud metadata server, GitHub's OIDC endpoint) |
//! | | `server.address`, `server.port` | the endpoint's host and port (never its path or query) |
//! | | `attempts` | requests sent, retries included (`0` when a `Retry-After` wait ruled out sending) |
//! | | `http.response.status_code` | the last answer's HTTP status (none after a transport failure) |
//! | | `error.type` | only when the call failed: its [`Error::kind`](crate::Error::kind) (`invalid_grant`, `transport`, `timeout`, `rate_limited`, ...) |
//! | | `otel.status_code` | `ERROR` when the call failed |
//! | | `duration_ms` | the whole call, as long as the caller waited |
//! | [`POST`](span::POST) or [`GET`](span::GET): one HTTP request sent, a child of `provider_request` (`otel.kind` = `client`) | `http.request.method` | `POST` (token, revocation, device authorization, introspection, registration) or `GET` (discovery, JWKS, userinfo, workload credentials) |
//! | | `server.address`, `server.port`, `url.scheme` | from the endpoint's URL |
//! | | `url.full` | the endpoint's URL without user info, query or fragment |
//! | | `http.request.resend_count` | `1`, `2`, ... on a request sent again (a retry, a DPoP nonce); absent on the first |
//! | | `http.response.status_code` | the answer's status (none after a transport failure) |
//! | | `error.type` | only when this request failed: its [`Error::kind`](crate::Error::kind) |
//! | | `otel.status_code` | `ERROR` when this request failed |
//! | [`token_wait`](span::TOKEN_WAIT): a caller waiting for a token; the `provider_request` it started is its child, and a background refresh runs in the span of the request whose read found the token due | `reason` | `missing` (no token yet), `expired`, or `rejected` (a 401 `invalid_token`) |
//! | | `refresh` | `started` (this caller started the token request) or `joined` (one was in flight) |
//! | | `error.type` | only when the wait ended in an error: its [`Error::kind`](crate::Error::kind) |
//! | | `otel.status_code` | `ERROR` when the wait ended in an error |
//! | | `wait_ms` | how long the caller waited |
//!
//! Requests to your own API through [`AuthedClient`](crate::AuthedClient) get no span from
//! `authed` (a 401 that is answered with a fresh token is counted, see below): trace them with
//! your HTTP stack's instrumentation (reqwest-tracing in a `reqwest_middleware` chain,
//! tower-http's `TraceLayer`).
//!
//! # Metrics
//!
//! With feature `metrics`, through the [`metrics`](https://docs.rs/metrics) facade into the
//! recorder the application installs (a Prometheus exporter, StatsD, ...). Each is described
//! (with its unit) when a token source is built, and by [`describe_metrics`].
//!
//! | Metric | Type, unit | Labels | What |
//! |---|---|---|---|
//! | [`http.client.request.duration`](metric::HTTP_CLIENT_REQUEST_DURATION) | histogram, seconds | `http.request.method`, `server.address`, `server.port`, `url.scheme`, `http.response.status_code` (when answered), `error.type` (when failed) | each HTTP request to a provider, as the OpenTelemetry convention defines it (its suggested buckets: 0.005 … 10 s) |
//! | [`authed_token_requests_total`](metric::TOKEN_REQUESTS) | counter | `grant`, `outcome` (`ok` / `error`) | provider calls, as `provider_request` spans count them |
//! | [`authed_token_request_failures_total`](metric::TOKEN_REQUEST_FAILURES) | counter | `grant`, `kind` ([`Error::kind`](crate::Error::kind)) | failed provider calls |
//! | [`authed_token_request_duration_seconds`](metric::TOKEN_REQUEST_DURATION) | histogram, seconds | `grant` | each call's duration, retries and waits included: refresh latency |
//! | [`authed_cache_hits_total`](metric::CACHE_HITS) | counter | none | `token()` calls answered from the cache |
//! | [`authed_cache_misses_total`](metric::CACHE_MISSES) | counter | none | `token()` calls that found no valid token and waited |
//! | [`authed_unauthorized_retries_total`](metric::UNAUTHORIZED_RETRIES) | counter | none | requests sent once more with a fresh token after a 401 |
//! | [`authed_background_refreshes_total`](metric::BACKGROUND_REFRESHES) | counter | `outcome` (`ok` / `error`) | refreshes ahead of expiry, while the token was still valid |
//!
//! The cache's counters are registered when a token source is built, so install the recorder
//! first. A cache hit then costs one atomic increment more (BENCHMARKS.md); without the
//! feature, nothing.
//!
//! # What never appears
//!
//! Fields and labels only take values from small fixed sets, or the endpoint's host, port and
//! path: never a token, a secret, a code, an assertion, a query string or a client id (which
//! is not secret, but a multi-tenant app has too many of them for a label).

/// Span names.
pub mod span {
    /// One call to a provider endpoint, with every attempt.
    pub const PROVIDER_REQUEST: &str = "provider_request";
    /// One `POST` request sent to a provider (an OpenTelemetry HTTP client span).
    pub const POST: &str = "POST";
    /// One `GET` request sent to a provider (an OpenTelemetry HTTP client span).
    pub const GET: &str = "GET";
    /// A caller waiting for a token.
    pub const TOKEN_WAIT: &str = "token_wait";
}

/// Span field names, and the label names of the `http.client.request.duration` histogram.
pub mod field {
    /// OpenTelemetry `http.request.method`: `POST` or `GET`.
    pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
    /// OpenTelemetry `server.address`: the endpoint's host.
    pub const SERVER_ADDRESS: &str = "server.address";
    /// OpenTelemetry `server.port`: the endpoint's port, explicit or the scheme's default.
    pub const SERVER_PORT: &str = "server.port";
    /// OpenTelemetry `url.scheme`: `https` (or `http` on loopback).
    pub const URL_SCHEME: &str = "url.scheme";
    /// OpenTelemetry `url.full`, without user info, query or fragment.
    pub const URL_FULL: &str = "url.full";
    /// OpenTelemetry `http.response.status_code`.
    pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    /// OpenTelemetry `http.request.resend_count`: set on the second request of a call and later.
    pub const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
    /// OpenTelemetry `error.type`: set only on failure, to [`Error::kind`](crate::Error::kind).
    pub const ERROR_TYPE: &str = "error.type";
    /// `tracing-opentelemetry`'s span kind: `client` on the HTTP request spans.
    pub const OTEL_KIND: &str = "otel.kind";
    /// `tracing-opentelemetry`'s span status: `ERROR` on failure.
    pub const OTEL_STATUS_CODE: &str = "otel.status_code";
    /// What a provider call asks for (a grant type's short name, or `revocation`, ...).
    pub const GRANT: &str = "grant";
    /// How many requests a provider call sent.
    pub const ATTEMPTS: &str = "attempts";
    /// How long a provider call took, in milliseconds.
    pub const DURATION_MS: &str = "duration_ms";
    /// Why a caller waited for a token: `missing`, `expired` or `rejected`.
    pub const REASON: &str = "reason";
    /// Whether a waiting caller `started` the token request or `joined` one in flight.
    pub const REFRESH: &str = "refresh";
    /// How long a caller waited for a token, in milliseconds.
    pub const WAIT_MS: &str = "wait_ms";
}

/// Metric names and the labels of the crate's own metrics.
pub mod metric {
    /// OpenTelemetry's HTTP client request duration (seconds), one value per request sent.
    pub const HTTP_CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";
    /// Provider calls (counter), by `grant` and `outcome`.
    pub const TOKEN_REQUESTS: &str = "authed_token_requests_total";
    /// Failed provider calls (counter), by `grant` and `kind`.
    pub const TOKEN_REQUEST_FAILURES: &str = "authed_token_request_failures_total";
    /// Provider call duration in seconds (histogram), by `grant`.
    pub const TOKEN_REQUEST_DURATION: &str = "authed_token_request_duration_seconds";
    /// Tokens served from a cache (counter).
    pub const CACHE_HITS: &str = "authed_cache_hits_total";
    /// Token reads that found no valid token and waited (counter).
    pub const CACHE_MISSES: &str = "authed_cache_misses_total";
    /// Requests sent again with a fresh token after a 401 (counter).
    pub const UNAUTHORIZED_RETRIES: &str = "authed_unauthorized_retries_total";
    /// Refreshes ahead of expiry (counter), by `outcome`.
    pub const BACKGROUND_REFRESHES: &str = "authed_background_refreshes_total";

    /// Label: what a provider call asks for, as the `grant` span field.
    pub const GRANT: &str = "grant";
    /// Label: `ok` or `error`.
    pub const OUTCOME: &str = "outcome";
    /// Label: a failure's [`Error::kind`](crate::Error::kind).
    pub const KIND: &str = "kind";
}

/// Describes every metric (unit and meaning) to the recorder installed now. Building a token
/// source does it too; call this after installing your recorder to have the descriptions
/// before the first token source exists.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe_metrics() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_histogram!(
        metric::HTTP_CLIENT_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of HTTP client requests to OAuth provider endpoints"
    );
    describe_counter!(
        metric::TOKEN_REQUESTS,
        Unit::Count,
        "Calls to OAuth provider endpoints, retries included in one call"
    );
    describe_counter!(
        metric::TOKEN_REQUEST_FAILURES,
        Unit::Count,
        "Failed calls to OAuth provider endpoints, by error kind"
    );
    describe_histogram!(
        metric::TOKEN_REQUEST_DURATION,
        Unit::Seconds,
        "Duration of calls to OAuth provider endpoints, retries and waits included"
    );
    describe_counter!(
        metric::CACHE_HITS,
        Unit::Count,
        "Token reads answered from the cache"
    );
    describe_counter!(
        metric::CACHE_MISSES,
        Unit::Count,
        "Token reads that found no valid token and waited"
    );
    describe_counter!(
        metric::UNAUTHORIZED_RETRIES,
        Unit::Count,
        "Requests sent once more with a fresh token after a 401"
    );
    describe_counter!(
        metric::BACKGROUND_REFRESHES,
        Unit::Count,
        "Token refreshes started ahead of expiry while the token was still valid"
    );
}
