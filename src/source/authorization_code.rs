use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::{CallbackError, Error, IdTokenError};
use crate::id_token::{self, Jwks};
use crate::oauth_error::OAuthError;
use crate::source::refresh::{Login, RefreshTokenSource};
use crate::token::Secret;

/// Longest `code` accepted from a callback. Real providers' codes are well under 2 KiB
/// (Microsoft's, the longest seen, about 1 KiB); anything longer is not sent on.
const MAX_CODE_LEN: usize = 4096;
/// Longest `state` accepted (ours are 43 characters).
const MAX_STATE_LEN: usize = 1024;
/// Longest `iss` accepted.
const MAX_ISS_LEN: usize = 2048;
/// How long a sign-in may take, from [`AuthorizationCode::authorize`] to the callback, by
/// default: long enough for a password manager, a second factor and a consent screen; short
/// enough that a leaked pending authorization is soon useless.
const DEFAULT_PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// The longest lifetime [`AuthorizationCodeBuilder::pending_lifetime`] accepts.
const MAX_PENDING_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Parameters the flow sets itself; [`AuthorizationCodeBuilder::param`] may not override them.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// Signs a user in with the authorization code grant and PKCE (RFC 6749 §4.1, RFC 7636).
///
/// [`authorize`](Self::authorize) makes the URL to send the user's browser to, with a fresh
/// S256 code challenge, `state`, and (when the `openid` scope is requested) `nonce`; keep the
/// returned [`PendingAuthorization`] until the provider redirects back. Then
/// [`complete`](Self::complete) checks the callback (`state` in constant time, RFC 9207 `iss`
/// when the provider sends it, `error=` as a typed error), exchanges the code with the
/// verifier, and returns the user's [`RefreshTokenSource`], already saved to the store.
///
/// Native apps receive the callback with [`LoopbackReceiver`](crate::LoopbackReceiver) (feature
/// `loopback`); web apps in their own callback handler.
///
/// ```no_run
/// # async fn run(callback_url: &str) -> Result<(), authed::Error> {
/// use authed::OAuthConfig;
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .authorization_url("https://auth.example.com/authorize")
///     .issuer("https://auth.example.com")
///     .jwks_url("https://auth.example.com/jwks")
///     .client_id("my-web-app")
///     .client_secret("s3cret")
///     .build()?;
/// let flow = config
///     .authorization_code("https://app.example.com/callback")
///     .scopes(["openid", "email"])
///     .prompt("consent")
///     .build()?;
/// let pending = flow.authorize();
/// // Redirect the browser to pending.url(); keep `pending` in the session (it is
/// // serializable). When the provider redirects to /callback:
/// let login = flow.complete_url(pending, callback_url).await?;
/// println!("signed in: {}", login.id_token_claims().map_or("?", |c| c.sub()));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    config: OAuthConfig,
    authorization_url: Url,
    redirect_uri: String,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    login: Login,
    pending_lifetime: Duration,
    jwks: Arc<Jwks>,
}

/// Builds an [`AuthorizationCode`] flow; from [`OAuthConfig::authorization_code`].
///
/// With the `openid` scope a `nonce` is sent too. Parameters the flow sets itself (`state`,
/// `code_challenge`, `redirect_uri`, ...) are refused by [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct AuthorizationCodeBuilder {
    config: OAuthConfig,
    redirect_uri: String,
    scopes: Vec<String>,
    params: Vec<(String, String)>,
    login: Login,
    pending_lifetime: Duration,
}

impl OAuthConfig {
    /// The authorization code flow with PKCE, redirecting back to `redirect_uri` (which must
    /// be registered at the provider).
    pub fn authorization_code(&self, redirect_uri: impl Into<String>) -> AuthorizationCodeBuilder {
        AuthorizationCodeBuilder {
            config: self.clone(),
            redirect_uri: redirect_uri.into(),
            scopes: Vec::new(),
            params: Vec::new(),
            login: Login::default(),
            pending_lifetime: DEFAULT_PENDING_LIFETIME,
        }
    }
}

impl AuthorizationCodeBuilder {
    crate::source::setters::request_setters!();

    crate::source::setters::login_setters!();

    /// The `prompt` parameter (OpenID Connect): `login`, `consent`, `select_account`, `none`.
    pub fn prompt(self, prompt: impl Into<String>) -> Self {
        self.param("prompt", prompt)
    }

    /// The `login_hint` parameter: the user's address or name, to preselect the account.
    pub fn login_hint(self, hint: impl Into<String>) -> Self {
        self.param("login_hint", hint)
    }

    /// Google's `access_type`; `offline` asks for a refresh token.
    pub fn access_type(self, access_type: impl Into<String>) -> Self {
        self.param("access_type", access_type)
    }

    /// A `resource` parameter (RFC 8707 §2.1): a resource the login's tokens will be for;
    /// may be given more than once. With exactly one, the code exchange and the login's own
    /// refreshes name it too (RFC 8707 §2.2; MCP requires it on every token request); with
    /// several, get each one's tokens from [`RefreshTokenSource::for_resource`], which
    /// refuses, before sending, any resource not named here. Each must be an absolute URI
    /// without a fragment ([`build`](Self::build) checks).
    pub fn resource(self, resource: impl Into<String>) -> Self {
        self.param("resource", resource)
    }

    /// The `audience` parameter (Auth0 and others).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.param("audience", audience)
    }

    /// How long a [`PendingAuthorization`] may wait for its callback, measured by the
    /// configuration's clock: 10 minutes by default, at most 24 hours. A later callback is
    /// refused with [`CallbackError::Expired`] and nothing is sent. The crate remembers each
    /// completed sign-in this long to refuse a replay, so a shorter lifetime also means less
    /// memory on a busy server.
    pub fn pending_lifetime(mut self, lifetime: Duration) -> Self {
        self.pending_lifetime = lifetime;
        self
    }

    /// Checks the settings and builds the flow.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration has no authorization endpoint, the
    /// authorization URL is not one to hand to a browser, the redirect URI is not `https`
    /// (or `http` on loopback, or a private-use scheme of a native app, RFC 8252 §7.1; no
    /// fragment), a [`resource`](Self::resource) is not an absolute URI without a fragment, a
    /// parameter the flow sets itself was given, or the `openid` scope is asked for without
    /// the issuer and JWKS URL that ID token validation needs,
    /// [`require_revocation`](Self::require_revocation) is set without a revocation endpoint,
    /// or the [`pending_lifetime`](Self::pending_lifetime) is zero or over 24 hours.
    pub fn build(self) -> Result<AuthorizationCode, Error> {
        self.login.check(&self.config)?;
        if self.pending_lifetime.is_zero() || self.pending_lifetime > MAX_PENDING_LIFETIME {
            return Err(Error::config(
                "the pending authorization lifetime must be between 1 second and 24 hours",
            ));
        }
        let authorization_url = self
            .config
            .endpoints()
            .authorization_url
            .clone()
            .ok_or_else(|| {
                Error::config("the authorization code flow needs an authorization URL")
            })?;
        crate::browser::check_browser_url(
            authorization_url.as_str(),
            self.config.allows_insecure_http(),
        )
        .map_err(|why| Error::config(format!("the authorization URL is refused: {why}")))?;
        crate::browser::check_redirect_uri(&self.redirect_uri)?;
        if self.scopes.iter().any(|s| s == "openid") {
            let e = self.config.endpoints();
            if e.issuer.is_none() || e.jwks_url.is_none() {
                return Err(Error::config(
                    "an OpenID Connect sign-in (scope openid) needs the issuer and jwks_url to \
                     validate the ID token; discovery sets both",
                ));
            }
        }
        for (_, resource) in self.params.iter().filter(|(k, _)| k == "resource") {
            crate::source::resource::check_resource(resource)?;
        }
        if let Some((k, _)) = self
            .params
            .iter()
            .find(|(k, _)| RESERVED.contains(&k.as_str()))
        {
            return Err(Error::config(format!(
                "the authorization parameter {k:?} is set by the flow itself"
            )));
        }
        Ok(AuthorizationCode {
            config: self.config,
            authorization_url,
            redirect_uri: self.redirect_uri,
            scopes: self.scopes,
            params: self.params,
            login: self.login,
            pending_lifetime: self.pending_lifetime,
            jwks: Arc::default(),
        })
    }
}

/// What must be kept between sending the user to the provider and the callback: the URL, the
/// PKCE verifier, `state` and `nonce`.
///
/// Serializable, so a web app can keep it in its server-side session store (never in a
/// cookie the browser can read: the verifier is a secret; delete it from the session when
/// the callback arrives). Single use: [`AuthorizationCode::complete`] takes it by value, and
/// every flow of the same configuration refuses a second completion of the same sign-in
/// (say, from a session read twice) with [`CallbackError::AlreadyCompleted`] and no request.
/// It expires after the flow's
/// [`pending_lifetime`](AuthorizationCodeBuilder::pending_lifetime) (10 minutes): a callback
/// after that is [`CallbackError::Expired`]. `Debug` shows none of it.
#[derive(Serialize, Deserialize)]
pub struct PendingAuthorization {
    url: String,
    redirect_uri: String,
    state: Secret,
    verifier: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<Secret>,
    /// When the sign-in expires, in Unix seconds. Missing (0) in pending authorizations kept
    /// by older versions: those are expired.
    #[serde(default)]
    expires_at: u64,
}

impl PendingAuthorization {
    /// The URL to send the user's browser to. It carries `state` and the code challenge:
    /// show it to the user, but do not log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The redirect URI the provider will send the browser back to.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The `nonce` sent with an OpenID Connect request, to check against the ID token's.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_ref().map(Secret::secret)
    }

    /// When the sign-in expires: a callback after this is refused with
    /// [`CallbackError::Expired`].
    pub fn expires_at(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(self.expires_at)
    }

    /// A copy of `state`, for a receiver that must recognise the callback.
    #[cfg_attr(not(feature = "loopback"), allow(dead_code))]
    pub(crate) fn state(&self) -> Secret {
        self.state.clone()
    }

    /// `true` when `state` is this authorization's, compared in constant time.
    pub(crate) fn state_matches(&self, state: &str) -> bool {
        self.state
            .secret()
            .as_bytes()
            .ct_eq(state.as_bytes())
            .into()
    }
}

impl std::fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("redirect_uri", &self.redirect_uri)
            .field("has_nonce", &self.nonce.is_some())
            .finish_non_exhaustive()
    }
}

/// The parameters of an authorization response (the redirect back to the app).
///
/// Make one from the full callback URL, from its query string, or from a code and state
/// pair. `Debug` shows neither the code nor the state.
#[derive(Clone, Default)]
pub struct Callback {
    code: Option<Secret>,
    state: Option<Secret>,
    iss: Option<String>,
    error: Option<OAuthError>,
    /// Why the parameters cannot be an authorization response, found while parsing and
    /// reported by [`AuthorizationCode::complete`] before anything else.
    problem: Option<CallbackError>,
}

impl Callback {
    /// A successful response's `code` and `state`.
    pub fn new(code: impl Into<String>, state: impl Into<String>) -> Self {
        Callback {
            code: Some(Secret::new(code)),
            state: Some(Secret::new(state)),
            ..Callback::default()
        }
    }

    /// Sets the RFC 9207 `iss` parameter.
    pub fn iss(mut self, iss: impl Into<String>) -> Self {
        self.iss = Some(iss.into());
        self
    }

    /// The parameters of a full callback URL (`https://app.example.com/cb?code=..&state=..`).
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] with [`CallbackError::NotAUrl`] when `url` is not an absolute URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let url = Url::parse(url).map_err(|_| Error::Callback(CallbackError::NotAUrl))?;
        Ok(Callback::from_query(url.query().unwrap_or("")))
    }

    /// The parameters of a query string (`code=..&state=..`, with or without the `?`).
    ///
    /// Parsing is strict (RFC 6749 §3.1): a repeated `code`, `state`, `iss`, `error`,
    /// `error_description` or `error_uri`, `code` together with `error`, or an over-long
    /// value makes the callback one that [`AuthorizationCode::complete`] refuses before any
    /// request. Unknown parameters are ignored.
    pub fn from_query(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut c = Callback::default();
        let (mut error, mut description, mut uri) = (None, None, None);
        let mut problem = None;
        fn set<T>(
            slot: &mut Option<T>,
            value: T,
            name: &'static str,
            problem: &mut Option<CallbackError>,
        ) {
            if slot.is_some() {
                problem.get_or_insert(CallbackError::DuplicateParameter(name));
            }
            *slot = Some(value);
        }
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => set(&mut c.code, Secret::new(v), "code", &mut problem),
                "state" => set(&mut c.state, Secret::new(v), "state", &mut problem),
                "iss" => set(&mut c.iss, v.into_owned(), "iss", &mut problem),
                "error" => set(&mut error, v.into_owned(), "error", &mut problem),
                "error_description" => {
                    set(
                        &mut description,
                        v.into_owned(),
                        "error_description",
                        &mut problem,
                    );
                }
                "error_uri" => set(&mut uri, v.into_owned(), "error_uri", &mut problem),
                _ => {}
            }
        }
        if problem.is_none() && c.code.is_some() && error.is_some() {
            problem = Some(CallbackError::CodeAndError);
        }
        c.error = error.map(|e| {
            OAuthError::new(e)
                .with_description(description.as_deref())
                .with_uri(uri.as_deref())
        });
        c.problem = problem;
        c
    }

    /// The first reason this cannot be an authorization response: a parsing problem, or a
    /// value longer than any provider sends.
    pub(crate) fn problem(&self) -> Option<CallbackError> {
        let long = |v: Option<&str>, max: usize| v.is_some_and(|v| v.len() > max);
        self.problem.or_else(|| {
            if long(self.code.as_ref().map(Secret::secret), MAX_CODE_LEN) {
                Some(CallbackError::TooLong("code"))
            } else if long(self.state.as_ref().map(Secret::secret), MAX_STATE_LEN) {
                Some(CallbackError::TooLong("state"))
            } else if long(self.iss.as_deref(), MAX_ISS_LEN) {
                Some(CallbackError::TooLong("iss"))
            } else {
                None
            }
        })
    }

    /// `true` when the parameters are well-formed (no repeats, no `code` with `error`, no
    /// over-long value).
    pub fn is_well_formed(&self) -> bool {
        self.problem().is_none()
    }

    /// `true` when this looks like an authorization response at all (a code or an error).
    pub fn is_authorization_response(&self) -> bool {
        self.code.is_some() || self.error.is_some()
    }

    /// The provider's error, when the user or the provider refused.
    pub fn error(&self) -> Option<&OAuthError> {
        self.error.as_ref()
    }

    /// `state` is present and is `state` (constant-time comparison).
    #[cfg_attr(not(feature = "loopback"), allow(dead_code))]
    pub(crate) fn state_is(&self, state: &str) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| bool::from(s.secret().as_bytes().ct_eq(state.as_bytes())))
    }

    /// `state` is present and is `pending`'s (constant-time comparison).
    pub(crate) fn state_matches(&self, pending: &PendingAuthorization) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| pending.state_matches(s.secret()))
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("has_code", &self.code.is_some())
            .field("has_state", &self.state.is_some())
            .field("iss", &self.iss)
            .field("error", &self.error)
            .field("problem", &self.problem)
            .finish()
    }
}

impl AuthorizationCode {
    /// Starts a sign-in: a fresh verifier, `state` and `nonce`, and the URL to send the
    /// browser to.
    pub fn authorize(&self) -> PendingAuthorization {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let state = oauth2::CsrfToken::new_random();
        let nonce = self
            .scopes
            .iter()
            .any(|s| s == "openid")
            .then(oauth2::CsrfToken::new_random);
        let mut url = self.authorization_url.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.config.client_id())
                .append_pair("redirect_uri", &self.redirect_uri);
            if !self.scopes.is_empty() {
                q.append_pair("scope", &self.scopes.join(" "));
            }
            q.append_pair("state", state.secret())
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", "S256");
            if let Some(nonce) = &nonce {
                q.append_pair("nonce", nonce.secret());
            }
            // RFC 9449 §10: binds the code to the key that will redeem it.
            if let Some(key) = self.config.dpop_key() {
                q.append_pair("dpop_jkt", key.thumbprint());
            }
            for (k, v) in &self.params {
                q.append_pair(k, v);
            }
        }
        PendingAuthorization {
            url: url.into(),
            redirect_uri: self.redirect_uri.clone(),
            state: Secret::new(state.secret().as_str()),
            verifier: Secret::new(verifier.secret().as_str()),
            nonce: nonce.map(|n| Secret::new(n.secret().as_str())),
            expires_at: unix_seconds(self.config.clock().now() + self.pending_lifetime),
        }
    }

    /// The redirect URI this flow sends.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Finishes a sign-in from the callback: checks it, exchanges the code with the PKCE
    /// verifier, validates the ID token when a nonce was sent, and returns the login, saved
    /// to the store first when there is one.
    ///
    /// Nothing is sent to the provider unless the callback is well-formed (see
    /// [`Callback::from_query`]), `state` matches, `iss` is the configured issuer character
    /// for character (and present, when the provider announces
    /// `authorization_response_iss_parameter_supported`), the pending authorization has not
    /// outlived its [lifetime](AuthorizationCodeBuilder::pending_lifetime), and this sign-in
    /// was not completed before through any flow of this [`OAuthConfig`] (or its clones). The
    /// code is sent at most once: from the first matching callback on, the sign-in is spent
    /// whatever happens, and a failed exchange is never [retryable](Error::is_retryable) —
    /// start a new sign-in. The memory of spent sign-ins is this process's: with several
    /// replicas, delete the pending authorization from the shared session store when the
    /// callback arrives.
    ///
    /// With the `openid` scope the ID token is validated (OpenID Connect Core §3.1.3.7):
    /// signature against the provider's JWKS (RS256, PS256, ES256 or EdDSA), `iss`, `aud` /
    /// `azp`, `exp` and `iat` with 60 s of clock skew, and `nonce`. Its claims are on the
    /// login ([`RefreshTokenSource::id_token_claims`]), and its `sub` is part of the login's
    /// default store key, so two users' logins never share one.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] (with the [`CallbackError`]) for a malformed callback, a missing
    /// or wrong `state` or `iss`, no code, a spent or expired sign-in; the typed error of the
    /// callback's `error` (`access_denied` is [`Error::AccessDenied`]); the token endpoint's
    /// errors (a spent or wrong code, or a wrong verifier, is [`Error::TokenRevoked`]), with
    /// passing-looking failures reported as [`Error::CodeExchange`]; [`Error::IdToken`] for
    /// an ID token that fails validation; [`Error::Store`] when the login cannot be saved.
    pub async fn complete(
        &self,
        pending: PendingAuthorization,
        callback: &Callback,
    ) -> Result<RefreshTokenSource, Error> {
        self.finish(pending, callback, None).await
    }

    /// [`complete`](Self::complete), storing the login under `key` (the app's own name for
    /// the user, e.g. its user id) instead of the default key.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete).
    pub async fn complete_as(
        &self,
        pending: PendingAuthorization,
        callback: &Callback,
        key: impl Into<String>,
    ) -> Result<RefreshTokenSource, Error> {
        self.finish(pending, callback, Some(key.into())).await
    }

    /// [`complete`](Self::complete) from the full callback URL.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete), and [`Error::Callback`] when `url` is not a URL.
    pub async fn complete_url(
        &self,
        pending: PendingAuthorization,
        url: &str,
    ) -> Result<RefreshTokenSource, Error> {
        self.complete(pending, &Callback::from_url(url)?).await
    }

    async fn finish(
        &self,
        pending: PendingAuthorization,
        callback: &Callback,
        key: Option<String>,
    ) -> Result<RefreshTokenSource, Error> {
        let reject = |e: CallbackError| Err(Error::Callback(e));
        if let Some(problem) = callback.problem() {
            return reject(problem);
        }
        // An error response may be forged by anyone who can make the browser visit the
        // redirect URI; a wrong state on it is reported as such, not as the provider's error.
        match &callback.state {
            Some(_) if !callback.state_matches(&pending) => {
                return reject(CallbackError::StateMismatch);
            }
            Some(_) => {}
            None => return reject(CallbackError::MissingState),
        }
        let now = self.config.clock().now();
        let expires_at = pending.expires_at();
        // A lifetime beyond the longest allowed was not given by this crate: refused too.
        if now > expires_at || expires_at > now + MAX_PENDING_LIFETIME {
            return reject(CallbackError::Expired);
        }
        // From here on the callback is this sign-in's: it is spent, whatever happens next.
        if !self
            .config
            .spent_sign_ins()
            .spend(pending.state.secret(), expires_at, now)
        {
            return reject(CallbackError::AlreadyCompleted);
        }
        let endpoints = self.config.endpoints();
        match (&callback.iss, &endpoints.issuer) {
            // RFC 9207 §2.4: simple string comparison; anything else is a mix-up attack.
            (Some(iss), Some(issuer)) if iss != issuer => {
                return reject(CallbackError::IssuerMismatch);
            }
            (None, _) if endpoints.iss_parameter_supported => {
                return reject(CallbackError::MissingIssuer);
            }
            _ => {}
        }
        if let Some(e) = &callback.error {
            return Err(Error::from_oauth(e.clone()));
        }
        let Some(code) = &callback.code else {
            return reject(CallbackError::MissingCode);
        };
        let mut form = Form::grant_type("authorization_code")
            .with("code", code.secret())
            .with("redirect_uri", pending.redirect_uri.clone())
            .with("code_verifier", pending.verifier.secret());
        // RFC 8707 §2.2, MCP: a sign-in for one resource asks for its token; with several,
        // the login's token is the provider's default and each resource's comes from
        // `RefreshTokenSource::for_resource`.
        let mut login = self.login.clone();
        login.resources = self
            .params
            .iter()
            .filter(|(k, _)| k == "resource")
            .map(|(_, v)| v.clone())
            .collect();
        if let Some(resource) = login.own_resource() {
            form = form.with("resource", resource);
        }
        let token = self
            .config
            .endpoint()
            .token(&endpoints.token_url, form, self.config.clock().now())
            .await
            // The code may be spent even when the answer was lost: never invite a retry.
            .map_err(|e| {
                if e.is_retryable() {
                    Error::CodeExchange(Arc::new(e))
                } else {
                    e
                }
            })?;
        let claims = match &pending.nonce {
            Some(nonce) => {
                let raw = token
                    .id_token()
                    .ok_or(Error::IdToken(IdTokenError::Missing))?;
                Some(
                    id_token::validate(&self.config, &self.jwks, raw.secret(), nonce.secret())
                        .await?,
                )
            }
            None => None,
        };
        if key.is_some() {
            login.key = key;
        }
        login
            .start_signed_in(&self.config, token, &self.scopes, &self.params, claims)
            .await
    }
}

/// Whole seconds since the Unix epoch, rounded up: a lifetime is never shortened.
fn unix_seconds(t: SystemTime) -> u64 {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_query_parses_errors_and_ignores_the_rest() {
        let c =
            Callback::from_query("?error=access_denied&error_description=no%20thanks&x=1&state=s");
        assert_eq!(c.error().unwrap().error, "access_denied");
        assert_eq!(c.error().unwrap().description.as_deref(), Some("no thanks"));
        assert!(c.is_authorization_response());
        assert!(!Callback::from_query("foo=bar").is_authorization_response());
    }

    #[test]
    fn debug_shows_no_secret() {
        let c = Callback::new("the-code", "the-state");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("the-code") && !shown.contains("the-state"),
            "{shown}"
        );
    }
}
