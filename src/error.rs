//! The crate's one error type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A shareable error cause. `Arc`, not `Box`, so one failed token request can be delivered to
/// every caller that waited on it.
type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong while getting a token or calling an API with it.
///
/// Match on the variant (or use the `is_*` predicates) instead of parsing messages. What each
/// family means for your program:
///
/// | Variants | Meaning | What to do |
/// |---|---|---|
/// | [`TokenRevoked`](Error::TokenRevoked), [`AccessDenied`](Error::AccessDenied), [`Callback`](Error::Callback) | the user's grant is gone or was refused | sign the user in again ([`requires_reauthorization`](Error::requires_reauthorization)) |
/// | [`InvalidClient`](Error::InvalidClient), [`UnauthorizedClient`](Error::UnauthorizedClient), [`InvalidScope`](Error::InvalidScope), [`Config`](Error::Config), [`UntrustedOrigin`](Error::UntrustedOrigin) | the application is set up wrong | fix configuration ([`is_configuration`](Error::is_configuration)) |
/// | [`Transport`](Error::Transport) (but not a failed certificate check), [`MalformedResponse`](Error::MalformedResponse) with a 5xx status, [`OAuth`](Error::OAuth) `temporarily_unavailable` / `server_error`, [`RateLimited`](Error::RateLimited), [`LockTimeout`](Error::LockTimeout) | a passing failure (already retried under the [`RetryPolicy`](crate::RetryPolicy) where that is safe) | retry later ([`is_retryable`](Error::is_retryable), [`retry_after`](Error::retry_after)) |
/// | [`Unauthorized`](Error::Unauthorized) | the API refused a fresh token | check the token's audience and scopes, or sign in again |
/// | [`Store`](Error::Store) | the token store failed; no token was handed out | fix the store and retry |
///
/// No variant ever contains a token, a secret, a response body or a URL query.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider did not accept the client's credentials (`invalid_client`): wrong client id
    /// or secret, or the wrong client authentication method.
    #[error("invalid client: {0}")]
    InvalidClient(OAuthError),

    /// The grant is no longer valid (`invalid_grant`): the refresh token was revoked, expired or
    /// already used, or an authorization code was spent. The user must sign in again.
    #[error("token revoked or grant invalid: {0}")]
    TokenRevoked(OAuthError),

    /// The requested scope is unknown or exceeds what the client may ask for (`invalid_scope`).
    #[error("invalid scope: {0}")]
    InvalidScope(OAuthError),

    /// The client may not use this grant type (`unauthorized_client`).
    #[error("unauthorized client: {0}")]
    UnauthorizedClient(OAuthError),

    /// The user or the provider refused the authorization (`access_denied`).
    #[error("access denied: {0}")]
    AccessDenied(OAuthError),

    /// Any other OAuth error the provider sent (`invalid_request`, `server_error`,
    /// `temporarily_unavailable`, `unsupported_grant_type`, `expired_token`, ...).
    #[error("oauth error: {0}")]
    OAuth(OAuthError),

    /// The API answered `401 Unauthorized` and a fresh token did not help, or the request
    /// could not be retried with one.
    #[error("{0}")]
    Unauthorized(Unauthorized),

    /// The request never got a usable HTTP answer: connection, TLS, timeout, or body read
    /// failure. The cause is available through [`source()`](std::error::Error::source).
    #[error("http transport error")]
    Transport(#[source] Cause),

    /// The provider answered with something that is not a valid OAuth response: an HTML error
    /// page, invalid JSON, a missing `access_token`, a body over the size cap.
    #[error("malformed response from the provider (HTTP {status}): {reason}")]
    MalformedResponse {
        /// The HTTP status of the response.
        status: u16,
        /// What was wrong with it. Never contains the body.
        reason: String,
    },

    /// The crate was configured in a way that cannot work (bad URL, plain HTTP to a remote
    /// host, missing setting).
    #[error("configuration error: {0}")]
    Config(String),

    /// A request was made to an origin the [`AuthedClient`](crate::AuthedClient) is not
    /// configured to send tokens to. Nothing was sent.
    #[error("refusing to send a token to untrusted origin {origin}")]
    UntrustedOrigin {
        /// The origin (`scheme://host:port`) the request was for.
        origin: String,
    },

    /// An authorization callback was refused before any token request: its `state` did not
    /// match, its RFC 9207 `iss` named another issuer, it carried no code, or none arrived in
    /// time. Start the sign-in again.
    #[error("authorization callback rejected: {0}")]
    Callback(String),

    /// The [`TokenStore`](crate::TokenStore) failed to load, save or delete a token.
    #[error("token store error")]
    Store(#[source] Cause),

    /// The provider asked the client to slow down: HTTP 429 (RFC 6585 §4), or 503 with a
    /// `Retry-After` header (RFC 9110 §10.2.3). Until `retry_after` has passed, this client
    /// sends that endpoint nothing and answers with this error at once.
    #[error("rate limited by the provider (HTTP {status}){}", RetryAfter(*retry_after))]
    RateLimited {
        /// The HTTP status: 429 or 503.
        status: u16,
        /// How long the provider asked us to wait, capped (see
        /// [`RetryPolicy::retry_after_max`](crate::RetryPolicy::retry_after_max)); `None` when
        /// it named no delay.
        retry_after: Option<Duration>,
    },

    /// Another holder kept the token store's lock longer than the configured bound (a hung or
    /// stopped process). Nothing was refreshed or saved; the call may succeed later.
    #[error("timed out after {}ms waiting for the token store's lock", waited.as_millis())]
    LockTimeout {
        /// How long the lock was waited for.
        waited: Duration,
    },
}

struct RetryAfter(Option<Duration>);

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => write!(f, "; retry after {}ms", d.as_millis()),
            None => Ok(()),
        }
    }
}

impl Error {
    /// Wraps an error of a [`TokenStore`](crate::TokenStore) implementation.
    ///
    /// Keep secrets out of `e`'s messages: they are shown to users.
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Store(Arc::new(e))
    }

    pub(crate) fn transport(e: reqwest::Error) -> Self {
        // URLs can carry secrets in their query; reqwest keeps them unless told not to.
        Error::Transport(Arc::new(e.without_url()))
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    pub(crate) fn malformed(status: u16, reason: impl Into<String>) -> Self {
        Error::MalformedResponse {
            status,
            reason: reason.into(),
        }
    }

    /// Maps an RFC 6749 §5.2 error to its variant. GitHub's own names for two of them map
    /// the same way; the code itself is kept as sent.
    pub(crate) fn from_oauth(e: OAuthError) -> Self {
        match e.error.as_str() {
            "invalid_client" | "incorrect_client_credentials" => Error::InvalidClient(e),
            "invalid_grant" | "bad_verification_code" => Error::TokenRevoked(e),
            "invalid_scope" => Error::InvalidScope(e),
            "unauthorized_client" => Error::UnauthorizedClient(e),
            "access_denied" => Error::AccessDenied(e),
            _ => Error::OAuth(e),
        }
    }

    /// The provider's OAuth error, when this error came from one.
    pub fn oauth_error(&self) -> Option<&OAuthError> {
        match self {
            Error::InvalidClient(e)
            | Error::TokenRevoked(e)
            | Error::InvalidScope(e)
            | Error::UnauthorizedClient(e)
            | Error::AccessDenied(e)
            | Error::OAuth(e) => Some(e),
            _ => None,
        }
    }

    /// `true` for [`Error::InvalidClient`].
    pub fn is_invalid_client(&self) -> bool {
        matches!(self, Error::InvalidClient(_))
    }

    /// `true` for [`Error::TokenRevoked`].
    pub fn is_revoked(&self) -> bool {
        matches!(self, Error::TokenRevoked(_))
    }

    /// `true` for [`Error::AccessDenied`].
    pub fn is_access_denied(&self) -> bool {
        matches!(self, Error::AccessDenied(_))
    }

    /// `true` for [`Error::Unauthorized`].
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, Error::Unauthorized(_))
    }

    /// `true` for a request that timed out.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Transport(cause) => cause
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout),
            _ => false,
        }
    }

    /// `true` when only a new sign-in by the user can fix this: the grant was revoked or the
    /// user refused. Never acted on automatically by this crate.
    pub fn requires_reauthorization(&self) -> bool {
        matches!(
            self,
            Error::TokenRevoked(_) | Error::AccessDenied(_) | Error::Callback(_)
        )
    }

    /// `true` when the application's configuration is wrong and retrying cannot help.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Error::InvalidClient(_)
                | Error::UnauthorizedClient(_)
                | Error::InvalidScope(_)
                | Error::Config(_)
                | Error::UntrustedOrigin { .. }
        )
    }

    /// `true` for [`Error::RateLimited`].
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited { .. })
    }

    /// The delay the provider asked for, when it rate limited the request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// `true` when the same call may succeed later: transport failures (but not a failed
    /// certificate check, which stays failed until the configuration changes), 5xx and 429
    /// answers, rate limiting, a lock timeout, and the `server_error` /
    /// `temporarily_unavailable` OAuth errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(cause) => !is_certificate_error(cause.as_ref()),
            Error::RateLimited { .. } | Error::LockTimeout { .. } => true,
            Error::MalformedResponse { status, .. } => *status >= 500 || *status == 429,
            Error::OAuth(e) => {
                matches!(e.error.as_str(), "server_error" | "temporarily_unavailable")
                    || e.status.is_some_and(|s| s >= 500 || s == 429)
            }
            _ => false,
        }
    }
}

/// `true` when a TLS certificate check failed somewhere in `e`'s chain of causes. Checked by
/// type for rustls (the default backend) and by message for the platform TLS libraries,
/// whose error types differ per platform.
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        #[cfg(feature = "default-tls")]
        if let Some(rustls) = e.downcast_ref::<rustls::Error>() {
            return matches!(
                rustls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            );
        }
        // `io::Error::source` skips the error it wraps: look at that one too.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && is_certificate_error(inner)
        {
            return true;
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("certificate verify failed") || text.contains("invalid peer certificate") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Lets `?` turn the errors of a response's body methods (`text()`, `json()`) into [`Error`].
/// The URL is dropped: queries can carry secrets.
impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::transport(e)
    }
}

/// An OAuth error response (RFC 6749 §5.2), as the provider sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The provider's `error_description`, if any.
    pub description: Option<String>,
    /// The provider's `error_uri`, if any.
    pub uri: Option<String>,
    /// The HTTP status the error came with; `None` when it arrived another way (a redirect
    /// to a callback URL).
    pub status: Option<u16>,
    /// The `interval` a device flow `slow_down` names (GitHub sends one).
    interval: Option<Duration>,
}

/// Provider-controlled text ends up in logs and terminals: keep it short and printable.
const MAX_FIELD_CHARS: usize = 512;

pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect()
}

impl OAuthError {
    /// An error with the given code and no description.
    pub fn new(error: impl AsRef<str>) -> Self {
        OAuthError {
            error: clean(error.as_ref()),
            description: None,
            uri: None,
            status: None,
            interval: None,
        }
    }

    /// The new polling interval a device flow `slow_down` error carries, when the provider
    /// sent one (GitHub does; RFC 8628 §3.5 otherwise adds 5 seconds).
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    pub(crate) fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: Option<&str>) -> Self {
        self.description = description.map(clean);
        self
    }

    /// Sets the error URI.
    pub fn with_uri(mut self, uri: Option<&str>) -> Self {
        self.uri = uri.map(clean);
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(u) = &self.uri {
            write!(f, " see {u}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("error", &self.error)
            .field("description", &self.description)
            .field("uri", &self.uri)
            .field("status", &self.status)
            .field("interval", &self.interval)
            .finish()
    }
}

/// Why an API call ended in [`Error::Unauthorized`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized {
    /// `true` when a fresh token was fetched and the request sent again, and the API still
    /// answered 401.
    pub retried: bool,
    /// `false` when the request body was a stream that cannot be sent twice, so no retry
    /// was attempted.
    pub replayable: bool,
    /// The `error` parameter of the API's `WWW-Authenticate: Bearer` challenge, if any.
    pub error: Option<String>,
    /// The challenge's `error_description`, if any.
    pub description: Option<String>,
}

impl fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.retried {
            f.write_str("the API rejected the access token again after a refresh")?;
        } else if !self.replayable {
            f.write_str(
                "the API rejected the access token, and the request body is a stream that \
                 cannot be replayed with a fresh one",
            )?;
        } else {
            f.write_str("the API rejected the request as unauthorized")?;
        }
        if let Some(e) = &self.error {
            write!(f, " ({e}")?;
            if let Some(d) = &self.description {
                write!(f, ": {d}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl Unauthorized {
    pub(crate) fn new(challenge: Option<&crate::client::Challenge>) -> Self {
        Unauthorized {
            retried: false,
            replayable: true,
            error: challenge.and_then(|c| c.error.as_deref().map(clean)),
            description: challenge.and_then(|c| c.description.as_deref().map(clean)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        assert!(Error::from_oauth(OAuthError::new("invalid_client")).is_invalid_client());
        assert!(Error::from_oauth(OAuthError::new("invalid_grant")).is_revoked());
        assert!(Error::from_oauth(OAuthError::new("access_denied")).requires_reauthorization());
        assert!(Error::from_oauth(OAuthError::new("invalid_scope")).is_configuration());
        assert!(matches!(
            Error::from_oauth(OAuthError::new("unauthorized_client")),
            Error::UnauthorizedClient(_)
        ));
        let other = Error::from_oauth(OAuthError::new("temporarily_unavailable"));
        assert!(matches!(other, Error::OAuth(_)));
        assert!(other.is_retryable());
    }

    #[test]
    fn display_keeps_the_provider_description_and_status() {
        let e = Error::from_oauth(
            OAuthError::new("invalid_client")
                .with_description(Some("client authentication failed"))
                .with_status(Some(401)),
        );
        assert_eq!(
            e.to_string(),
            "invalid client: invalid_client: client authentication failed (HTTP 401)"
        );
    }

    #[test]
    fn provider_text_is_cleaned() {
        let long = "x".repeat(5000);
        let e = OAuthError::new("bad\r\ncode").with_description(Some(&long));
        assert_eq!(e.error, "badcode");
        assert_eq!(e.description.unwrap().len(), MAX_FIELD_CHARS);
    }
}
