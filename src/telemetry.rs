//! What the crate tells about itself: `tracing` spans around provider calls, around each HTTP
//! request they send (OpenTelemetry's HTTP client conventions) and around token waits, and,
//! with feature `metrics`, counters and histograms through the `metrics` facade. The spans
//! are made here, and every call site is one line; the public names are in
//! [`observability`](crate::observability). Without the feature the metric functions are
//! empty and compile away.
//!
//! Labels and fields only take values from small fixed sets (grant names, error kinds,
//! `ok` / `error`), never a token, a secret, a URL's path or query, or a client id: client
//! ids are not secret, but a multi-tenant app has too many of them for a metric label.

use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

use crate::error::Error;
#[cfg(feature = "metrics")]
use crate::observability::metric as names;

/// What a provider request asks for. Its [`label`](Self::label) is the `grant` span field
/// and metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// A token request, named by its `grant_type`.
    Token,
    /// RFC 7009 token revocation.
    Revocation,
    /// RFC 8628 device authorization (the device flow's first request).
    DeviceAuthorization,
    /// RFC 7662 token introspection.
    Introspection,
    /// The provider's signing keys, for ID token validation.
    Jwks,
    /// OpenID Connect / RFC 8414 metadata.
    Discovery,
    /// The OpenID Connect UserInfo endpoint.
    UserInfo,
    /// RFC 7591 dynamic client registration.
    Registration,
    /// A workload credential: a cloud metadata server, GitHub Actions' OIDC token.
    Workload,
}

impl Call {
    /// A short name from a fixed set: a token request's grant type (`client_credentials`,
    /// `refresh_token`, `authorization_code`, `device_code`, `jwt_bearer`, `token_exchange`,
    /// or `other`), else what the request is for.
    pub(crate) fn label(self, grant_type: Option<&str>) -> &'static str {
        match self {
            Call::Token => match grant_type.unwrap_or("") {
                "client_credentials" => "client_credentials",
                "refresh_token" => "refresh_token",
                "authorization_code" => "authorization_code",
                "urn:ietf:params:oauth:grant-type:device_code" => "device_code",
                "urn:ietf:params:oauth:grant-type:jwt-bearer" => "jwt_bearer",
                "urn:ietf:params:oauth:grant-type:token-exchange" => "token_exchange",
                // Not the grant type itself: it could be anything, and labels must stay few.
                _ => "other",
            },
            Call::Revocation => "revocation",
            Call::DeviceAuthorization => "device_authorization",
            Call::Introspection => "introspection",
            Call::Jwks => "jwks",
            Call::Discovery => "discovery",
            Call::UserInfo => "userinfo",
            Call::Registration => "registration",
            Call::Workload => "workload",
        }
    }
}

/// The span around one provider call (all its attempts, backoff and `Retry-After` waits
/// included), not itself an HTTP request: each request sent is an [`Attempt`] inside it.
/// `attempts` is recorded once, at the end (a subscriber may show each recorded value).
pub(crate) fn provider_request_span(grant: &'static str, url: &url::Url) -> Span {
    tracing::info_span!(
        "provider_request",
        grant,
        server.address = %ServerAddress(url),
        server.port = url.port_or_known_default(),
        attempts = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        otel.status_code = Empty,
        duration_ms = Empty,
    )
}

/// Records how a provider call ended: on its span, and in the metrics.
pub(crate) fn provider_request_done(
    span: &Span,
    grant: &'static str,
    result: Result<u16, &Error>,
    took: Duration,
) {
    record_outcome(span, result);
    span.record("duration_ms", took.as_millis() as u64);
    #[cfg(feature = "metrics")]
    {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(names::TOKEN_REQUESTS, names::GRANT => grant, names::OUTCOME => outcome)
            .increment(1);
        if let Err(e) = result {
            metrics::counter!(names::TOKEN_REQUEST_FAILURES, names::GRANT => grant, names::KIND => e.kind())
                .increment(1);
        }
        metrics::histogram!(names::TOKEN_REQUEST_DURATION, names::GRANT => grant)
            .record(took.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = grant;
}

/// `http.response.status_code` when there was an answer, and, on failure, `error.type` and
/// the OpenTelemetry status: OpenTelemetry sets `error.type` only when something failed.
fn record_outcome(span: &Span, result: Result<u16, &Error>) {
    let status = match result {
        Ok(status) => Some(status),
        Err(e) => {
            span.record("error.type", e.kind());
            span.record("otel.status_code", "ERROR");
            status_of(e)
        }
    };
    if let Some(status) = status {
        span.record("http.response.status_code", status);
    }
}

/// The HTTP status an error came with, when it came from an answer.
fn status_of(e: &Error) -> Option<u16> {
    match e {
        Error::MalformedResponse { status, .. } | Error::RateLimited { status, .. } => {
            Some(*status)
        }
        e => e.oauth_error().and_then(|o| o.status),
    }
}

/// One HTTP request sent to a provider: an OpenTelemetry HTTP client span (named by its
/// method, kind `client`) inside the call's `provider_request` span, and one value of the
/// `http.client.request.duration` histogram.
pub(crate) struct Attempt {
    span: Span,
    #[cfg(feature = "metrics")]
    started: tokio::time::Instant,
    #[cfg(feature = "metrics")]
    labels: Vec<metrics::Label>,
}

impl Attempt {
    /// A `POST`, the `resend`th time this call sends (0 for the first request).
    pub(crate) fn post(url: &url::Url, resend: u32) -> Self {
        // Span names are static: one call site per method.
        let span = tracing::info_span!(
            "POST",
            otel.kind = "client",
            http.request.method = "POST",
            server.address = %ServerAddress(url),
            server.port = url.port_or_known_default(),
            url.scheme = url.scheme(),
            url.full = %UrlForLogs(url),
            http.request.resend_count = (resend > 0).then_some(resend),
            http.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        Attempt::new(span, "POST", url)
    }

    /// A `GET` (discovery, JWKS): sent once per call.
    pub(crate) fn get(url: &url::Url) -> Self {
        let span = tracing::info_span!(
            "GET",
            otel.kind = "client",
            http.request.method = "GET",
            server.address = %ServerAddress(url),
            server.port = url.port_or_known_default(),
            url.scheme = url.scheme(),
            url.full = %UrlForLogs(url),
            http.response.status_code = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        Attempt::new(span, "GET", url)
    }

    fn new(span: Span, method: &'static str, url: &url::Url) -> Self {
        #[cfg(feature = "metrics")]
        let labels = {
            use crate::observability::field;
            let mut labels = vec![
                metrics::Label::new(field::HTTP_REQUEST_METHOD, method),
                metrics::Label::new(field::SERVER_ADDRESS, ServerAddress(url).to_string()),
                metrics::Label::new(field::URL_SCHEME, url.scheme().to_owned()),
            ];
            if let Some(port) = url.port_or_known_default() {
                labels.push(metrics::Label::new(field::SERVER_PORT, port.to_string()));
            }
            labels
        };
        #[cfg(not(feature = "metrics"))]
        let _ = (method, url);
        Attempt {
            span,
            #[cfg(feature = "metrics")]
            started: tokio::time::Instant::now(),
            #[cfg(feature = "metrics")]
            labels,
        }
    }

    /// Sends: runs `request` in this attempt's span and records how it ended (`status` reads
    /// the status of an answer).
    pub(crate) async fn run<T>(
        self,
        request: impl Future<Output = Result<T, Error>>,
        status: impl FnOnce(&T) -> u16,
    ) -> Result<T, Error> {
        use tracing::Instrument as _;
        let result = request.instrument(self.span.clone()).await;
        self.done(result.as_ref().map(status));
        result
    }

    fn done(self, result: Result<u16, &Error>) {
        record_outcome(&self.span, result);
        #[cfg(feature = "metrics")]
        {
            use crate::observability::field;
            let mut labels = self.labels;
            if let Some(status) = result.map_or_else(status_of, Some) {
                labels.push(metrics::Label::new(
                    field::HTTP_RESPONSE_STATUS_CODE,
                    status.to_string(),
                ));
            }
            if let Err(e) = result {
                labels.push(metrics::Label::new(field::ERROR_TYPE, e.kind()));
            }
            metrics::histogram!(names::HTTP_CLIENT_REQUEST_DURATION, labels)
                .record(self.started.elapsed().as_secs_f64());
        }
    }
}

/// A URL's host as OpenTelemetry's `server.address` has it: a name, or an IP address without
/// brackets.
struct ServerAddress<'a>(&'a url::Url);

impl std::fmt::Display for ServerAddress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.host() {
            Some(url::Host::Domain(d)) => f.write_str(d),
            Some(url::Host::Ipv4(ip)) => write!(f, "{ip}"),
            Some(url::Host::Ipv6(ip)) => write!(f, "{ip}"),
            None => Ok(()),
        }
    }
}

/// Shows a URL without user info, query and fragment, which can carry secrets: the form
/// every log line and span field has.
pub(crate) struct UrlForLogs<'a>(pub(crate) &'a url::Url);

impl std::fmt::Display for UrlForLogs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            self.0.origin().ascii_serialization(),
            self.0.path()
        )
    }
}

/// The span around a caller's wait for a token: `reason` is `missing` (none yet),
/// `expired` or `rejected` (a 401); `refresh` is `started` when this caller started the
/// token request, `joined` when it waited on one in flight.
pub(crate) fn token_wait_span(reason: &'static str, refresh: &'static str) -> Span {
    tracing::info_span!(
        "token_wait",
        reason,
        refresh,
        error.type = Empty,
        otel.status_code = Empty,
        wait_ms = Empty
    )
}

/// Records how a token wait ended: `error.type` only when it failed.
pub(crate) fn token_wait_done<T>(span: &Span, result: &Result<T, Error>, took: Duration) {
    if let Err(e) = result {
        span.record("error.type", e.kind());
        span.record("otel.status_code", "ERROR");
    }
    span.record("wait_ms", took.as_millis() as u64);
}

/// A finished background refresh (one started ahead of expiry while the token was valid).
pub(crate) fn background_refresh<T>(result: &Result<T, Error>) {
    #[cfg(feature = "metrics")]
    metrics::counter!(
        names::BACKGROUND_REFRESHES,
        "outcome" => if result.is_ok() { "ok" } else { "error" }
    )
    .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// A request sent once more with a fresh token after its token was rejected (a 401).
pub(crate) fn unauthorized_retry() {
    #[cfg(feature = "metrics")]
    metrics::counter!(names::UNAUTHORIZED_RETRIES).increment(1);
}

/// A cache's hit and miss counters, registered once when the cache is made, so that a
/// cache read only adds one relaxed atomic increment (with most recorders). Without
/// feature `metrics` it is empty and costs nothing.
///
/// Registered with the recorder installed when the cache is made: install yours before
/// building token sources.
#[derive(Debug)]
pub(crate) struct CacheMetrics {
    #[cfg(feature = "metrics")]
    hits: metrics::Counter,
    #[cfg(feature = "metrics")]
    misses: metrics::Counter,
}

impl CacheMetrics {
    pub(crate) fn new() -> Self {
        // Cheap, and the recorder installed now may be another than at the last build.
        #[cfg(feature = "metrics")]
        crate::observability::describe_metrics();
        CacheMetrics {
            #[cfg(feature = "metrics")]
            hits: metrics::counter!(names::CACHE_HITS),
            #[cfg(feature = "metrics")]
            misses: metrics::counter!(names::CACHE_MISSES),
        }
    }

    /// A valid token served from the cache.
    #[inline]
    pub(crate) fn hit(&self) {
        #[cfg(feature = "metrics")]
        self.hits.increment(1);
    }

    /// A caller that found no valid token and went to the slow path.
    #[inline]
    pub(crate) fn miss(&self) {
        #[cfg(feature = "metrics")]
        self.misses.increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth_error::OAuthError;

    #[test]
    fn a_providers_own_codes_do_not_become_labels() {
        // A provider (or an attacker in front of one) choosing codes must not be able to
        // mint label values.
        for code in ["made_up_code_123", "https://evil.example/?q=1", ""] {
            let e = Error::from_oauth(OAuthError::new(code));
            assert_eq!(e.kind(), "oauth_error", "{code}");
        }
        let e = Error::from_oauth(OAuthError::new("Temporarily_Unavailable"));
        assert_eq!(e.kind(), "temporarily_unavailable");
        assert_eq!(
            Error::from_oauth(OAuthError::new("invalid_grant")).kind(),
            "invalid_grant"
        );
        assert_eq!(Call::Token.label(Some("password")), "other");
        assert_eq!(Call::Token.label(None), "other");
        assert_eq!(
            Call::Token.label(Some("urn:ietf:params:oauth:grant-type:device_code")),
            "device_code"
        );
    }
}
