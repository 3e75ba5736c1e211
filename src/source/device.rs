use std::time::Duration;

use url::Url;

use crate::config::OAuthConfig;
use crate::endpoint::{Form, seconds};
use crate::error::Error;
use crate::oauth_error::OAuthError;
use crate::source::refresh::{Login, RefreshTokenSource};
use crate::token::Secret;

/// RFC 8628 §3.5: poll every 5 seconds unless the provider says otherwise.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for this and later polls.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// A zero interval would poll in a busy loop.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait after failed polls (unless `Retry-After` asks for more).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Signs a user in on a device without a browser (RFC 8628): the user enters a short code on
/// another device while this one polls the token endpoint.
///
/// [`start`](Self::start) returns the [`DeviceCode`] to show; [`poll`](Self::poll) waits for
/// the user, honouring `interval` (5 s by default) and `slow_down` (+5 s), and ends in the
/// user's [`RefreshTokenSource`]. Polling stops when the future is dropped: wrap it in
/// `tokio::select!` or `tokio::time::timeout` to cancel.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::OAuthConfig;
///
/// let config = OAuthConfig::builder("https://oauth2.googleapis.com/token")
///     .device_authorization_url("https://oauth2.googleapis.com/device/code")
///     .client_id("my-tv-app")
///     .build()?;
/// let device = config.device_authorization().scopes(["openid"]).build()?;
/// let code = device.start().await?;
/// println!("Go to {} and enter {}", code.verification_uri(), code.user_code());
/// let login = device.poll(&code).await?;
/// # let _ = login;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    config: OAuthConfig,
    device_authorization_url: Url,
    params: Vec<(String, String)>,
    login: Login,
}

/// Builds a [`DeviceAuthorization`]; from [`OAuthConfig::device_authorization`].
#[derive(Debug)]
#[must_use]
pub struct DeviceAuthorizationBuilder {
    config: OAuthConfig,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    login: Login,
}

impl OAuthConfig {
    /// The device authorization grant (RFC 8628), for devices without a browser.
    pub fn device_authorization(&self) -> DeviceAuthorizationBuilder {
        DeviceAuthorizationBuilder {
            config: self.clone(),
            scopes: Vec::new(),
            params: Vec::new(),
            login: Login::default(),
        }
    }
}

impl DeviceAuthorizationBuilder {
    crate::source::setters::request_setters!();

    crate::source::setters::login_setters!();

    /// Checks the settings and builds the flow.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration has no device authorization endpoint, or
    /// no revocation endpoint with [`require_revocation`](Self::require_revocation).
    pub fn build(mut self) -> Result<DeviceAuthorization, Error> {
        self.login.check(&self.config)?;
        let device_authorization_url = self
            .config
            .endpoints()
            .device_authorization_url
            .clone()
            .ok_or_else(|| Error::config("the device flow needs a device authorization URL"))?;
        if !self.scopes.is_empty() {
            self.params
                .push(("scope".to_owned(), self.scopes.join(" ")));
        }
        Ok(DeviceAuthorization {
            config: self.config,
            device_authorization_url,
            params: self.params,
            login: self.login,
        })
    }
}

/// A device authorization in progress: what to show the user, and what to poll with.
///
/// `Debug` shows neither the device code nor the user code.
#[derive(Clone)]
pub struct DeviceCode {
    device_code: Secret,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: Option<String>,
    interval: Duration,
    expires_at: tokio::time::Instant,
}

impl DeviceCode {
    /// The code the user types in.
    pub fn user_code(&self) -> &str {
        &self.user_code
    }

    /// Where the user types it in.
    pub fn verification_uri(&self) -> &str {
        &self.verification_uri
    }

    /// A URL that carries the user code too (good for a QR code), if the provider sent one.
    pub fn verification_uri_complete(&self) -> Option<&str> {
        self.verification_uri_complete.as_deref()
    }

    /// The interval polling starts with.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long the codes stay valid from now.
    pub fn expires_in(&self) -> Duration {
        self.expires_at
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

impl std::fmt::Debug for DeviceCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCode")
            .field("verification_uri", &self.verification_uri)
            .field("interval", &self.interval)
            .field("expires_in", &self.expires_in())
            .finish_non_exhaustive()
    }
}

impl DeviceAuthorization {
    /// Asks the provider for a device code and a user code.
    ///
    /// # Errors
    ///
    /// The provider's error (`invalid_client`, `invalid_scope`, ...), transport errors, or
    /// [`Error::MalformedResponse`] when a required field is missing.
    pub async fn start(&self) -> Result<DeviceCode, Error> {
        let form = Form::new().extend(&self.params);
        let answer = self
            .config
            .endpoint()
            .post_form_retrying(
                crate::telemetry::Call::DeviceAuthorization,
                &self.device_authorization_url,
                form,
            )
            .await?;
        let status = answer.status;
        let required = |key: &str| {
            answer
                .str(key)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::malformed(
                        status,
                        format!("no {key} in the device authorization response"),
                    )
                })
        };
        let device_code = Secret::new(required("device_code")?);
        let user_code = required("user_code")?;
        // Google names it `verification_url`.
        let verification_uri =
            required("verification_uri").or_else(|_| required("verification_url"))?;
        let duration = |key: &str| match answer.fields.get(key).and_then(seconds) {
            Some(Ok(d)) => Ok(Some(d)),
            Some(Err(())) => Err(Error::malformed(
                status,
                format!("{key} is not a number of seconds"),
            )),
            None => Ok(None),
        };
        let expires_in = duration("expires_in")?.ok_or_else(|| {
            Error::malformed(status, "no expires_in in the device authorization response")
        })?;
        let interval = duration("interval")?
            .unwrap_or(DEFAULT_INTERVAL)
            .max(MIN_INTERVAL);
        crate::browser::check_verification_uris(
            status,
            &verification_uri,
            answer.str("verification_uri_complete"),
            self.config.allows_insecure_http(),
        )?;
        Ok(DeviceCode {
            device_code,
            user_code,
            verification_uri,
            verification_uri_complete: answer.str("verification_uri_complete").map(str::to_owned),
            interval,
            expires_at: tokio::time::Instant::now() + expires_in,
        })
    }

    /// Polls until the user approves, refuses, or the code expires, and returns the login
    /// (saved to the store first when there is one). Dropping the future stops polling.
    ///
    /// Polls every `interval` (5 s unless the provider names one). `slow_down` moves to the
    /// interval the error names (GitHub sends one), or adds 5 s (RFC 8628 §3.5). A
    /// transient failure (connection trouble, timeout, 5xx, 429) does not end the sign-in:
    /// polling backs off (doubling, up to 60 s, or longer when the provider sends
    /// `Retry-After`) and goes on. Nothing is sent after the codes expire, and a poll in
    /// flight at that moment is abandoned: the call ends at the deadline.
    ///
    /// # Errors
    ///
    /// [`Error::AccessDenied`] when the user refused; [`Error::OAuth`] with `expired_token`
    /// when the code expired (also when it expires between two polls); other provider
    /// errors; [`Error::Store`] when the login cannot be saved.
    pub async fn poll(&self, code: &DeviceCode) -> Result<RefreshTokenSource, Error> {
        let mut interval = code.interval;
        let mut wait = interval;
        let mut failures = 0u32;
        loop {
            tokio::time::sleep_until(code.expires_at.min(tokio::time::Instant::now() + wait)).await;
            if tokio::time::Instant::now() >= code.expires_at {
                return Err(expired());
            }
            let form = Form::grant_type("urn:ietf:params:oauth:grant-type:device_code")
                .with("device_code", code.device_code.secret());
            let request = self.config.endpoint().token(
                &self.config.endpoints().token_url,
                form,
                self.config.clock().now(),
            );
            let Ok(result) = tokio::time::timeout_at(code.expires_at, request).await else {
                return Err(expired());
            };
            wait = interval;
            match result {
                Ok(token) => {
                    // The scope travels in `params`, so the login's key covers it.
                    return self
                        .login
                        .start_signed_in(&self.config, token, &[], &self.params, None)
                        .await;
                }
                Err(Error::OAuth(e)) if e.error == "authorization_pending" => {
                    failures = 0;
                    tracing::debug!("device authorization pending");
                }
                // Also in a 429's body: the provider slowed us down, whatever the status.
                Err(e) if e.oauth_error().is_some_and(|o| o.error == "slow_down") => {
                    failures = 0;
                    interval = e
                        .oauth_error()
                        .and_then(OAuthError::interval)
                        .unwrap_or(interval + SLOW_DOWN_STEP)
                        .max(interval)
                        .max(MIN_INTERVAL)
                        .max(e.retry_after().unwrap_or_default());
                    wait = interval;
                    tracing::debug!(interval_secs = interval.as_secs(), "device flow slows down");
                }
                Err(e) if e.is_retryable() => {
                    // RFC 8628 §3.5: back off on connection trouble rather than give up.
                    failures += 1;
                    wait = interval
                        .saturating_mul(1 << failures.min(4))
                        .min(MAX_BACKOFF)
                        .max(interval)
                        .max(e.retry_after().unwrap_or_default());
                    tracing::debug!(error = %e, wait_secs = wait.as_secs(), "device poll failed; backing off");
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn expired() -> Error {
    Error::OAuth(
        OAuthError::new("expired_token")
            .with_description(Some("the device code expired before the user approved")),
    )
}
