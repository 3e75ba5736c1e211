//! What the crate tells about itself: `tracing` spans around provider requests and around
//! token waits, and, with feature `metrics`, counters and a histogram through the `metrics`
//! facade. The span and metric names live here, and every call site is one line. Without the
//! feature the metric functions are empty and compile away.
//!
//! Labels and fields only take values from small fixed sets (grant names, error kinds,
//! `ok` / `error`), never a token, a secret, a URL's path or query, or a client id: client
//! ids are not secret, but a multi-tenant app has too many of them for a metric label.

use std::time::Duration;

use tracing::Span;
use tracing::field::Empty;

use crate::error::Error;

/// The metric names, documented in the crate docs ("Observability").
#[cfg(feature = "metrics")]
mod names {
    pub(super) const TOKEN_REQUESTS: &str = "authed_token_requests_total";
    pub(super) const TOKEN_REQUEST_FAILURES: &str = "authed_token_request_failures_total";
    pub(super) const TOKEN_REQUEST_DURATION: &str = "authed_token_request_duration_seconds";
    pub(super) const CACHE_HITS: &str = "authed_cache_hits_total";
    pub(super) const CACHE_MISSES: &str = "authed_cache_misses_total";
    pub(super) const UNAUTHORIZED_RETRIES: &str = "authed_unauthorized_retries_total";
    pub(super) const BACKGROUND_REFRESHES: &str = "authed_background_refreshes_total";
}

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
            Call::Jwks => "jwks",
            Call::Discovery => "discovery",
            Call::UserInfo => "userinfo",
            Call::Registration => "registration",
            Call::Workload => "workload",
        }
    }
}

/// The span around one provider call (all its attempts, backoff and `Retry-After` waits
/// included). `host` is the host alone: no path, no query. `attempts` is recorded once, at
/// the end (a subscriber may show each recorded value).
pub(crate) fn provider_request_span(grant: &'static str, url: &url::Url) -> Span {
    tracing::info_span!(
        "provider_request",
        grant,
        host = url.host_str().unwrap_or(""),
        attempts = Empty,
        status = Empty,
        outcome = Empty,
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
    let (status, outcome) = match result {
        Ok(status) => (Some(status), "ok"),
        Err(e) => (status_of(e), e.kind()),
    };
    if let Some(status) = status {
        span.record("status", status);
    }
    span.record("outcome", outcome);
    span.record("duration_ms", took.as_millis() as u64);
    #[cfg(feature = "metrics")]
    {
        let outcome = if result.is_ok() { "ok" } else { "error" };
        metrics::counter!(names::TOKEN_REQUESTS, "grant" => grant, "outcome" => outcome)
            .increment(1);
        if let Err(e) = result {
            metrics::counter!(names::TOKEN_REQUEST_FAILURES, "grant" => grant, "kind" => e.kind())
                .increment(1);
        }
        metrics::histogram!(names::TOKEN_REQUEST_DURATION, "grant" => grant)
            .record(took.as_secs_f64());
    }
    #[cfg(not(feature = "metrics"))]
    let _ = grant;
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

/// The span around a caller's wait for a token: `reason` is `missing` (none yet),
/// `expired` or `rejected` (a 401); `refresh` is `started` when this caller started the
/// token request, `joined` when it waited on one in flight.
pub(crate) fn token_wait_span(reason: &'static str, refresh: &'static str) -> Span {
    tracing::info_span!(
        "token_wait",
        reason,
        refresh,
        outcome = Empty,
        wait_ms = Empty
    )
}

/// Records how a token wait ended.
pub(crate) fn token_wait_done<T>(span: &Span, result: &Result<T, Error>, took: Duration) {
    span.record(
        "outcome",
        result.as_ref().map_or_else(Error::kind, |_| "ok"),
    );
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
