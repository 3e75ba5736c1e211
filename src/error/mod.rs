//! The crate's one error type.
//!
//! One school for every message (the one of std, rustls and STYLE.md §4): an error's
//! `Display` says what happened in words, with its own data (the provider's `error` code,
//! status and description, the reason of a refused callback or ID token); an underlying
//! error of another kind (reqwest's, a store's, the failed exchange behind
//! `CodeExchange`) is only its `source()`, never repeated in `Display`. So printing the
//! chain (`{e}: {source}: ...`, as anyhow and eyre do) shows each text once, and `{e}` alone
//! still says what happened. The reason types (`OAuthError`, `CallbackError`,
//! `IdTokenError`, `Unauthorized`) are data of their variant, printed by it, not sources.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::challenge::StepUp;
use crate::fapi::FapiDuty;
use crate::oauth_error::{OAuthError, clean};
use crate::provider_codes::{DeadGrant, is_dead_grant, is_rate_limit};
use crate::transport_failure::{TlsFailure, reason_of, tls_failure, transport_summary};

/// A shareable error cause. `Arc`, not `Box`, so one failed token request can be delivered to
/// every caller that waited on it.
mod reasons;

pub use reasons::{CallbackError, IdTokenError, Unauthorized, UserInfoError};

type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong while getting a token or calling an API with it.
///
/// Match on the variant (or use the `is_*` predicates) instead of parsing messages. What each
/// family means for your program:
///
/// | Variants | Meaning | What to do |
/// |---|---|---|
/// | [`TokenRevoked`](Error::TokenRevoked), [`AccessDenied`](Error::AccessDenied), [`Callback`](Error::Callback), [`CodeExchange`](Error::CodeExchange), [`IdToken`](Error::IdToken), [`LoginReplaced`](Error::LoginReplaced), [`RefreshOutcomeUnknown`](Error::RefreshOutcomeUnknown) | the user's grant is gone, was refused, was replaced by another login, or was lost with a refresh's answer, or the sign-in failed | sign the user in again ([`requires_reauthorization`](Error::requires_reauthorization)) |
/// | [`StepUpRequired`](Error::StepUpRequired) | the API wants a stronger or more recent authentication (RFC 9470) | sign the user in again with what it asks for ([`AuthorizationCodeBuilder::step_up`](crate::AuthorizationCodeBuilder::step_up)) |
/// | [`InvalidClient`](Error::InvalidClient), [`UnauthorizedClient`](Error::UnauthorizedClient), [`InvalidScope`](Error::InvalidScope), [`Config`](Error::Config), [`Fapi`](Error::Fapi), [`UntrustedOrigin`](Error::UntrustedOrigin), [`UnsupportedTokenType`](Error::UnsupportedTokenType), [`ServerCertificateRejected`](Error::ServerCertificateRejected), [`ClientCertificateRejected`](Error::ClientCertificateRejected), [`InvalidRedirectUri`](Error::InvalidRedirectUri), [`InvalidClientMetadata`](Error::InvalidClientMetadata) | the application is set up wrong | fix configuration ([`is_configuration`](Error::is_configuration)) |
/// | [`UserInfo`](Error::UserInfo) | a UserInfo answer was refused (another user's `sub`, a bad signature) | do not use it; [`UserInfoError`] says why |
/// | [`Transport`](Error::Transport), [`MalformedResponse`](Error::MalformedResponse) or [`HttpStatus`](Error::HttpStatus) with a 5xx or 429 status, [`OAuth`](Error::OAuth) `temporarily_unavailable` / `server_error` / `slow_down`, [`RateLimited`](Error::RateLimited), [`LockTimeout`](Error::LockTimeout), [`Timeout`](Error::Timeout) | a passing failure (already retried under the [`RetryPolicy`](crate::RetryPolicy) where that is safe) | retry later ([`is_retryable`](Error::is_retryable), [`retry_after`](Error::retry_after)) |
/// | [`HttpStatus`](Error::HttpStatus) with another status | an API answered with an error status (`error_for_status()?`) | depends on the status |
/// | [`Unauthorized`](Error::Unauthorized) | the API refused a fresh token | check the token's audience and scopes, or sign in again |
/// | [`RedirectedUnauthorized`](Error::RedirectedUnauthorized) | a redirect led to another origin, which refused a request that carried no token | fix the API URL |
/// | [`UntrustedRedirect`](Error::UntrustedRedirect) | the HTTP client followed a redirect to an origin that may not receive tokens | build the client with `redirect::Policy::none()` |
/// | [`Store`](Error::Store) | the token store failed; no token was handed out | fix the store and retry |
/// | [`Signing`](Error::Signing) | a key service did not sign; nothing was sent | retry, or fix the signer ([`is_retryable`](Error::is_retryable)) |
///
/// No variant ever contains a token, a secret, a response body or a URL query.
///
/// # Printing an error
///
/// `Display` (`{e}`) says in one line what happened, with the provider's `error` code, HTTP
/// status and description where there is one: "the provider rejected the client
/// credentials: invalid_client (HTTP 401): client authentication failed". An underlying error
/// (reqwest's for [`Transport`](Error::Transport), your store's for [`Store`](Error::Store),
/// the failed exchange for [`CodeExchange`](Error::CodeExchange)) is not repeated there; it is
/// the [`source()`](std::error::Error::source). To show everything, print the chain of
/// sources, as `anyhow`/`eyre` reports do; every text in it appears once:
///
/// ```
/// use std::error::Error as _;
///
/// use authed::testing::TestProvider;
/// use authed::{Error, OAuthConfig, TokenSource};
///
/// /// `error: cause: cause of the cause`.
/// fn report(e: &dyn std::error::Error) -> String {
///     let mut text = e.to_string();
///     let mut next = e.source();
///     while let Some(cause) = next {
///         text.push_str(&format!(": {cause}"));
///         next = cause.source();
///     }
///     text
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Error> {
/// let provider = TestProvider::start().await;
/// let config = OAuthConfig::builder(provider.token_url())
///     .client_id(TestProvider::CLIENT_ID)
///     .client_secret("not-the-secret")
///     .build()?;
/// let source = config.client_credentials().build();
///
/// match source.token().await {
///     // Matched by kind, not by message.
///     Err(e @ Error::InvalidClient(_)) => {
///         assert!(e.is_configuration() && !e.is_retryable());
///         assert_eq!(e.oauth_error().unwrap().error, "invalid_client");
///         assert!(e.source().is_none(), "the provider's answer is in the message itself");
///         println!("{}", report(&e));
///     }
///     other => panic!("expected InvalidClient, got {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider did not accept the client's credentials (`invalid_client`): wrong client id
    /// or secret, or the wrong client authentication method.
    #[error("the provider rejected the client credentials: {0}")]
    InvalidClient(OAuthError),

    /// The grant is no longer valid: the refresh token was revoked, expired or already used,
    /// or an authorization code was spent. The user must sign in again.
    ///
    /// RFC 6749 calls this `invalid_grant`; providers' own names for it map here too
    /// (GitHub's `bad_refresh_token` and `bad_verification_code`, Slack's
    /// `invalid_refresh_token` and `invalid_code`, HubSpot's
    /// `BAD_REFRESH_TOKEN` and `BAD_AUTH_CODE`, in any case), as do the codes a preset or
    /// [`OAuthConfigBuilder::revoked_grant_errors`](crate::OAuthConfigBuilder::revoked_grant_errors)
    /// adds. The code is kept as sent. A refresh that ends here removes the stored login.
    #[error("the grant was revoked or is no longer valid: {0}")]
    TokenRevoked(OAuthError),

    /// The requested scope is unknown or exceeds what the client may ask for (`invalid_scope`).
    #[error("the provider refused the requested scope: {0}")]
    InvalidScope(OAuthError),

    /// The client may not use this grant type (`unauthorized_client`).
    #[error("the client is not allowed to use this grant: {0}")]
    UnauthorizedClient(OAuthError),

    /// The user or the provider refused the authorization (`access_denied`).
    #[error("the authorization was refused: {0}")]
    AccessDenied(OAuthError),

    /// Any other OAuth error the provider sent (`invalid_request`, `server_error`,
    /// `temporarily_unavailable`, `unsupported_grant_type`, `expired_token`, ...).
    #[error("the provider answered with an error: {0}")]
    OAuth(OAuthError),

    /// The API answered `401 Unauthorized` and a fresh token did not help, or the request
    /// could not be retried with one.
    #[error("{0}")]
    Unauthorized(Unauthorized),

    /// The API answered `401` with `error="insufficient_user_authentication"` (RFC 9470): the
    /// token is fine, but the user's authentication is not strong or recent enough. Nothing
    /// was refreshed or sent again; sign the user in again with what [`StepUp`] names
    /// ([`AuthorizationCodeBuilder::step_up`](crate::AuthorizationCodeBuilder::step_up)).
    #[error("{0}")]
    StepUpRequired(StepUp),

    /// The request never got a usable HTTP answer: connection, TLS, timeout, or body read
    /// failure. `Display` names which in words ("could not connect to the server", "the HTTP
    /// request timed out", "the server's TLS certificate was not accepted", ...); the
    /// underlying error (reqwest's, without the URL) is the
    /// [`source()`](std::error::Error::source).
    #[error("{}", transport_summary(.0.as_ref()))]
    Transport(#[source] Cause),

    /// The server's TLS certificate was not accepted: not issued by a trusted CA, expired, or
    /// for another name. Retrying cannot help until the trust roots (or the URL) change. The
    /// TLS library's error is the [`source()`](std::error::Error::source).
    #[error("the server's TLS certificate was not accepted")]
    ServerCertificateRejected(#[source] Cause),

    /// The server refused the client certificate in the TLS handshake (mutual TLS, RFC 8705):
    /// none was presented where one is required, or the server does not trust its CA, or it
    /// expired or was revoked. Not retried: the same certificate gets the same refusal. The TLS
    /// library's error (the server's alert) is the [`source()`](std::error::Error::source).
    #[error("the server refused the client certificate")]
    ClientCertificateRejected(#[source] Cause),

    /// An HTTP answer with an error status (4xx or 5xx) from reqwest's `error_for_status()`:
    /// `response.error_for_status()?` in a function returning this crate's error. The request
    /// got an answer, so this is not a [`Transport`](Error::Transport) failure; retryable only
    /// for 5xx and 429. (The provider's endpoints report their errors as the OAuth variants,
    /// never as this one.)
    #[error("the server answered with HTTP {status}{}", reason_of(*status))]
    HttpStatus {
        /// The HTTP status.
        status: u16,
    },

    /// The provider answered with something that is not a valid OAuth response: an HTML error
    /// page, invalid JSON, a missing `access_token`, a body over the size cap.
    #[error("malformed response from the provider (HTTP {status}): {reason}")]
    MalformedResponse {
        /// The HTTP status of the response.
        status: u16,
        /// What was wrong with it. Never contains the body.
        reason: String,
    },

    /// The provider issued a token of a type this crate cannot use (RFC 6749 §7.1): anything
    /// but `Bearer` (in any case, or missing), Slack's `bot` and `user` bearer tokens and the
    /// names given to
    /// [`OAuthConfigBuilder::bearer_token_types`](crate::OAuthConfigBuilder::bearer_token_types)
    /// (eBay's `User Access Token`), such as `mac`, `N_A` or `DPoP`. The token is not cached
    /// or sent, since presenting it as a bearer token would not work and could leak it.
    #[error(
        "the provider issued a token of unsupported type {token_type:?} (a bearer token type of \
         the provider's own name is accepted with OAuthConfigBuilder::bearer_token_types)"
    )]
    UnsupportedTokenType {
        /// The `token_type` as the provider sent it (control characters replaced).
        token_type: String,
    },

    /// The crate was configured in a way that cannot work (bad URL, plain HTTP to a remote
    /// host, missing setting).
    #[error("configuration error: {0}")]
    Config(String),

    /// A configuration or sign-in flow under a FAPI 2.0 profile
    /// ([`OAuthConfigBuilder::fapi2`](crate::OAuthConfigBuilder::fapi2)) does not meet one of
    /// the client's duties, named by the [`FapiDuty`]. Nothing was sent.
    #[error("the FAPI 2.0 profile is not met: {0}")]
    Fapi(FapiDuty),

    /// The API redirected the request to another origin, and that origin answered
    /// `401 Unauthorized`. The token was not sent there (reqwest drops `Authorization` when a
    /// redirect leaves the origin), so this is not a rejection of the token: it was neither
    /// refreshed nor sent again. Request that origin directly (after
    /// [`allow_origin`](crate::AuthedClientBuilder::allow_origin)) if it is meant to get the
    /// token.
    #[error(
        "the request was redirected to {origin}, which did not receive the token and answered 401"
    )]
    RedirectedUnauthorized {
        /// The origin (`scheme://host:port`) that answered 401.
        origin: String,
    },

    /// The `reqwest::Client` under an [`AuthedClient`](crate::AuthedClient) or
    /// [`AuthMiddleware`](crate::middleware::AuthMiddleware) followed a redirect to an origin
    /// that may not receive tokens, so the answer is that origin's, not the API's: it is not
    /// returned. reqwest drops `Authorization` on such a redirect but forwards other headers,
    /// a DPoP proof among them. Build that client with
    /// `.redirect(reqwest::redirect::Policy::none())`: authed then follows redirects itself,
    /// only within the allowed origins, and returns a redirect elsewhere as the API's answer.
    #[error("the HTTP client followed a redirect to {origin}, which may not receive tokens")]
    UntrustedRedirect {
        /// The origin (`scheme://host:port`) that answered.
        origin: String,
    },

    /// A request was made to an origin the [`AuthedClient`](crate::AuthedClient) is not
    /// configured to send tokens to. Nothing was sent.
    #[error("refusing to send a token to untrusted origin {origin}")]
    UntrustedOrigin {
        /// The origin (`scheme://host:port`) the request was for.
        origin: String,
    },

    /// An authorization callback was refused before any token request (see
    /// [`CallbackError`] for why), or none arrived in time. Start the sign-in again.
    #[error("sign-in failed: {0}")]
    Callback(CallbackError),

    /// The authorization code exchange failed in a way that would look passing (a transport
    /// failure, a 5xx answer, `server_error`): the code may have been spent all the same, and
    /// sending it again could revoke the login (RFC 6749 §10.5). Not retryable; start a new
    /// sign-in. The original failure is the [`source()`](std::error::Error::source).
    #[error("the authorization code exchange failed; start a new sign-in")]
    CodeExchange(#[source] Arc<Error>),

    /// The ID token of an OpenID Connect sign-in did not pass validation (OpenID Connect Core
    /// §3.1.3.7); no login was started or saved.
    #[error("the ID token was rejected: {0}")]
    IdToken(IdTokenError),

    /// A UserInfo answer (OpenID Connect Core §5.3) was refused (see [`UserInfoError`] for
    /// why): none of its claims were used.
    #[error("the userinfo answer was refused: {0}")]
    UserInfo(UserInfoError),

    /// A dynamic client registration (RFC 7591 §3.2.2) was refused for a redirect URI
    /// (`invalid_redirect_uri`): not allowed, malformed, or not of the kind the provider
    /// accepts.
    #[error("the provider refused a redirect URI of the registration: {0}")]
    InvalidRedirectUri(OAuthError),

    /// A dynamic client registration (RFC 7591 §3.2.2) was refused for a metadata field
    /// (`invalid_client_metadata`): the description names which, when the provider says.
    #[error("the provider refused the client metadata of the registration: {0}")]
    InvalidClientMetadata(OAuthError),

    /// The [`TokenStore`](crate::TokenStore) failed to load, save or delete a token.
    #[error("the token store failed")]
    Store(#[source] Cause),

    /// A [`JwsSigner`](crate::JwsSigner) did not sign: the key service failed (the cause), or
    /// answered with a signature its own public key does not verify. Nothing that needed the
    /// signature (a token request, an API request with a DPoP proof) was sent.
    #[error("the signing key did not sign; nothing was sent")]
    Signing(#[source] Cause),

    /// The provider asked the client to slow down: HTTP 429 (RFC 6585 §4), or 503 with a
    /// `Retry-After` header (RFC 9110 §10.2.3). Until `retry_after` has passed, this client
    /// sends that endpoint nothing and answers with this error at once.
    #[error(
        "rate limited by the provider (HTTP {status}){}{}",
        ProviderWords(error.as_ref()),
        RetryAfter(*retry_after)
    )]
    RateLimited {
        /// The HTTP status: 429, 503, or the status of an answer that says so in the
        /// provider's own words (Microsoft's `invalid_grant` AADSTS50196 comes with 400).
        status: u16,
        /// How long the provider asked us to wait, capped (see
        /// [`RetryPolicy::with_retry_after_max`](crate::RetryPolicy::with_retry_after_max)); `None` when
        /// it named no delay.
        retry_after: Option<Duration>,
        /// The provider's own code and text, when its answer had any (Okta's `E0000047`,
        /// Discord's and Reddit's message: a body without a code gets the HTTP status as
        /// its code); also through [`oauth_error`](Error::oauth_error).
        error: Option<OAuthError>,
    },

    /// Another holder kept the token store's lock longer than the configured bound (a hung or
    /// stopped process). Nothing was refreshed or saved; the call may succeed later.
    #[error("timed out after {}ms waiting for the token store's lock", waited.as_millis())]
    LockTimeout {
        /// How long the lock was waited for.
        waited: Duration,
    },

    /// The call's time budget ([`OAuthConfigBuilder::timeout`](crate::OAuthConfigBuilder::timeout))
    /// ran out, retries included. A token request the call was waiting for is not abandoned:
    /// it belongs to the source's cache, which reads its answer to the end and keeps the
    /// token, so the next call may get it without a new request.
    #[error("timed out after {}ms waiting for a token", waited.as_millis())]
    Timeout {
        /// How long the call waited.
        waited: Duration,
    },

    /// The source's login was replaced: another login was saved under its store key (a
    /// second user signing in without an ID token under the default key, a sign-in in
    /// another process). A source serves only its own login and never adopts another's
    /// tokens: sign this user in again. The new login's own source works.
    #[error("another login was saved under this login's key; sign in again")]
    LoginReplaced,

    /// The answer to a refresh request was lost after the provider may have rotated the
    /// refresh token (a timeout, a gateway's 502 or 504, a connection cut), and the login
    /// could not be recovered: presented once more, the refresh token was refused, or that
    /// answer was lost too, or [`LostRefresh`](crate::LostRefresh) says not to present it
    /// again. The user must sign in again. See the crate documentation, "Rotation".
    #[error(
        "the answer to a refresh was lost and the login could not be recovered{}; sign in again",
        if *presented_again { " (the refresh token was refused when presented again)" } else { "" }
    )]
    RefreshOutcomeUnknown {
        /// Whether the refresh token was presented once more (and refused, or its answer
        /// lost too); `false` when it was not presented again.
        presented_again: bool,
    },
}

struct RetryAfter(Option<Duration>);

/// `: E0000047: API call exceeded rate limit`: the provider's code and words, when it sent
/// any (its status is already in the message).
struct ProviderWords<'a>(Option<&'a OAuthError>);

impl fmt::Display for ProviderWords<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(e) = self.0 else { return Ok(()) };
        write!(f, ": {}", e.error)?;
        match &e.description {
            Some(d) => write!(f, ": {d}"),
            None => Ok(()),
        }
    }
}

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

    /// Wraps an error of a [`JwsSigner`](crate::JwsSigner) implementation (a KMS or HSM
    /// that could not sign).
    ///
    /// Keep secrets out of `e`'s messages: they are shown to users.
    pub fn signing(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Signing(Arc::new(e))
    }

    pub(crate) fn transport(e: reqwest::Error) -> Self {
        if let Some(status) = e.status().filter(|_| e.is_status()) {
            return Error::HttpStatus {
                status: status.as_u16(),
            };
        }
        // URLs can carry secrets in their query; reqwest keeps them unless told not to.
        let e = e.without_url();
        match tls_failure(&e) {
            Some(TlsFailure::ServerCertificate) => Error::ServerCertificateRejected(Arc::new(e)),
            Some(TlsFailure::ClientCertificate) => Error::ClientCertificateRejected(Arc::new(e)),
            None => Error::Transport(Arc::new(e)),
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }

    /// The reason is cleaned and cut like provider text: a reason may quote what was received.
    pub(crate) fn malformed(status: u16, reason: impl Into<String>) -> Self {
        Error::MalformedResponse {
            status,
            reason: clean(&reason.into()),
        }
    }

    /// Maps an RFC 6749 §5.2 error to its variant, with the built-in table of dead-grant
    /// codes only.
    pub(crate) fn from_oauth(e: OAuthError) -> Self {
        Error::from_oauth_with(e, &[])
    }

    /// The one error mapping: maps a provider's error to its variant. A rate limit in the
    /// provider's own words (Microsoft's AADSTS50196, Okta's E0000047) is
    /// [`Error::RateLimited`], whatever the code; a dead grant by the built-in table or
    /// `revoked` (a preset's or the user's additions) is [`Error::TokenRevoked`]; GitHub's
    /// name for `invalid_client` maps like it. Codes are compared ignoring ASCII case and
    /// kept as sent.
    pub(crate) fn from_oauth_with(e: OAuthError, revoked: &[DeadGrant]) -> Self {
        if is_rate_limit(&e) {
            return Error::RateLimited {
                status: e.status.unwrap_or(429),
                retry_after: None,
                error: Some(e),
            };
        }
        if is_dead_grant(&e, revoked) {
            return Error::TokenRevoked(e);
        }
        match e.error.as_str() {
            "invalid_client" | "incorrect_client_credentials" => Error::InvalidClient(e),
            "invalid_scope" => Error::InvalidScope(e),
            "unauthorized_client" => Error::UnauthorizedClient(e),
            "access_denied" => Error::AccessDenied(e),
            "invalid_redirect_uri" => Error::InvalidRedirectUri(e),
            "invalid_client_metadata" => Error::InvalidClientMetadata(e),
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
            | Error::InvalidRedirectUri(e)
            | Error::InvalidClientMetadata(e)
            | Error::OAuth(e) => Some(e),
            Error::RateLimited { error, .. } => error.as_ref(),
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

    /// `true` for a request that timed out, or a call whose time budget ran out
    /// ([`Error::Timeout`]).
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::Timeout { .. } => true,
            Error::Transport(cause) => cause
                .downcast_ref::<reqwest::Error>()
                .is_some_and(reqwest::Error::is_timeout),
            _ => false,
        }
    }

    /// `true` when only a new sign-in by the user can fix this: the grant was revoked, the
    /// user refused, or a sign-in failed (a refused callback or ID token, a failed code
    /// exchange). Never acted on automatically by this crate.
    pub fn requires_reauthorization(&self) -> bool {
        matches!(
            self,
            Error::TokenRevoked(_)
                | Error::AccessDenied(_)
                | Error::Callback(_)
                | Error::CodeExchange(_)
                | Error::IdToken(_)
                | Error::StepUpRequired(_)
                | Error::LoginReplaced
                | Error::RefreshOutcomeUnknown { .. }
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
                | Error::Fapi(_)
                | Error::UntrustedOrigin { .. }
                | Error::UntrustedRedirect { .. }
                | Error::UnsupportedTokenType { .. }
                | Error::ServerCertificateRejected(_)
                | Error::ClientCertificateRejected(_)
                | Error::InvalidRedirectUri(_)
                | Error::InvalidClientMetadata(_)
                | Error::UserInfo(UserInfoError::NoSubject)
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

    /// `true` when the same call may succeed later: transport failures (but not a rejected
    /// certificate, which stays rejected until the configuration changes), 5xx and 429
    /// answers, rate limiting, a lock timeout, a call that ran out of time, a key service
    /// that did not sign, and the
    /// `server_error` / `temporarily_unavailable` / `slow_down` OAuth errors.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(_) => true,
            Error::RateLimited { .. }
            | Error::LockTimeout { .. }
            | Error::Timeout { .. }
            | Error::Signing(_) => true,
            Error::MalformedResponse { status, .. } | Error::HttpStatus { status } => {
                *status >= 500 || *status == 429
            }
            Error::OAuth(e) => {
                // `slow_down` (RFC 8628 §3.5, GitHub also sends it outside polling): the same
                // request succeeds after waiting longer.
                matches!(
                    e.error.as_str(),
                    "server_error" | "temporarily_unavailable" | "slow_down"
                ) || e.status.is_some_and(|s| s >= 500 || s == 429)
            }
            _ => false,
        }
    }
}

impl Error {
    /// A short, stable name for what went wrong, from a fixed set: for a log field, a metric
    /// label or a `match` in a dashboard query. It never contains a token, a secret or
    /// text from the provider beyond the RFC 6749 codes named here.
    ///
    /// | Kind | Variant |
    /// |---|---|
    /// | `invalid_client`, `invalid_grant`, `invalid_scope`, `unauthorized_client`, `access_denied` | [`InvalidClient`](Error::InvalidClient), [`TokenRevoked`](Error::TokenRevoked), [`InvalidScope`](Error::InvalidScope), [`UnauthorizedClient`](Error::UnauthorizedClient), [`AccessDenied`](Error::AccessDenied) |
    /// | `server_error`, `temporarily_unavailable`, `invalid_request`, `unsupported_grant_type`, `invalid_token`, `authorization_pending`, `slow_down`, `expired_token`, or else `oauth_error` | [`OAuth`](Error::OAuth), by its code |
    /// | `timeout`, or else `transport` | [`Transport`](Error::Transport) |
    /// | `unauthorized`, `step_up_required`, `malformed_response`, `unsupported_token_type`, `config`, `fapi`, `redirected_unauthorized`, `untrusted_origin`, `callback`, `code_exchange`, `id_token`, `store`, `signing`, `rate_limited`, `lock_timeout`, `server_certificate_rejected`, `client_certificate_rejected`, `http_status`, `userinfo`, `invalid_redirect_uri`, `invalid_client_metadata` | the variant of that name |
    /// | `timeout` | [`Timeout`](Error::Timeout) too |
    ///
    /// ```
    /// let e = authed::Error::RateLimited { status: 429, retry_after: None, error: None };
    /// assert_eq!(e.kind(), "rate_limited");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidClient(_) => "invalid_client",
            Error::TokenRevoked(_) => "invalid_grant",
            Error::InvalidScope(_) => "invalid_scope",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::AccessDenied(_) => "access_denied",
            Error::OAuth(e) => {
                const KNOWN: &[&str] = &[
                    "server_error",
                    "temporarily_unavailable",
                    "invalid_request",
                    "unsupported_grant_type",
                    "invalid_token",
                    "authorization_pending",
                    "slow_down",
                    "expired_token",
                ];
                // Only codes from this fixed list: a provider's own codes are unbounded.
                KNOWN
                    .iter()
                    .find(|k| e.error.eq_ignore_ascii_case(k))
                    .copied()
                    .unwrap_or("oauth_error")
            }
            Error::Unauthorized(_) => "unauthorized",
            Error::StepUpRequired(_) => "step_up_required",
            Error::Transport(_) if self.is_timeout() => "timeout",
            Error::Transport(_) => "transport",
            Error::ServerCertificateRejected(_) => "server_certificate_rejected",
            Error::ClientCertificateRejected(_) => "client_certificate_rejected",
            Error::HttpStatus { .. } => "http_status",
            Error::MalformedResponse { .. } => "malformed_response",
            Error::UnsupportedTokenType { .. } => "unsupported_token_type",
            Error::Config(_) => "config",
            Error::Fapi(_) => "fapi",
            Error::RedirectedUnauthorized { .. } => "redirected_unauthorized",
            Error::UntrustedOrigin { .. } => "untrusted_origin",
            Error::UntrustedRedirect { .. } => "untrusted_redirect",
            Error::Callback(_) => "callback",
            Error::CodeExchange(_) => "code_exchange",
            Error::IdToken(_) => "id_token",
            Error::UserInfo(_) => "userinfo",
            Error::InvalidRedirectUri(_) => "invalid_redirect_uri",
            Error::InvalidClientMetadata(_) => "invalid_client_metadata",
            Error::Store(_) => "store",
            Error::Signing(_) => "signing",
            Error::RateLimited { .. } => "rate_limited",
            Error::LockTimeout { .. } => "lock_timeout",
            Error::Timeout { .. } => "timeout",
            Error::LoginReplaced => "login_replaced",
            Error::RefreshOutcomeUnknown { .. } => "refresh_outcome_unknown",
        }
    }
}

/// Lets `?` turn the errors of a response's body methods (`text()`, `json()`) into [`Error`].
/// The URL is dropped: queries can carry secrets.
impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        Error::transport(e)
    }
}

#[cfg(test)]
mod tests;
