use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::{Error, OAuthError};
use crate::source::refresh::{Login, RefreshTokenSource};
use crate::token::Secret;

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
/// let login = flow.complete_url(&pending, callback_url).await?;
/// # let _ = login;
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
        }
    }
}

impl AuthorizationCodeBuilder {
    crate::source::request_setters!();

    crate::source::login_setters!();

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

    /// A `resource` parameter (RFC 8707); may be given more than once.
    pub fn resource(self, resource: impl Into<String>) -> Self {
        self.param("resource", resource)
    }

    /// The `audience` parameter (Auth0 and others).
    pub fn audience(self, audience: impl Into<String>) -> Self {
        self.param("audience", audience)
    }

    /// Checks the settings and builds the flow.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the configuration has no authorization endpoint, the redirect
    /// URI is not an absolute URI, or a parameter the flow sets itself was given.
    pub fn build(self) -> Result<AuthorizationCode, Error> {
        let authorization_url = self
            .config
            .endpoints()
            .authorization_url
            .clone()
            .ok_or_else(|| {
                Error::config("the authorization code flow needs an authorization URL")
            })?;
        Url::parse(&self.redirect_uri)
            .map_err(|e| Error::config(format!("invalid redirect URI: {e}")))?;
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
        })
    }
}

/// What must be kept between sending the user to the provider and the callback: the URL, the
/// PKCE verifier, `state` and `nonce`.
///
/// Serializable, so a web app can keep it in its server-side session store (never in a
/// cookie the browser can read: the verifier is a secret). `Debug` shows none of it.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    url: String,
    redirect_uri: String,
    state: Secret,
    verifier: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<Secret>,
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
    /// [`Error::Callback`] when `url` is not an absolute URL.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let url = Url::parse(url).map_err(|_| Error::Callback("not a URL".to_owned()))?;
        Ok(Callback::from_query(url.query().unwrap_or("")))
    }

    /// The parameters of a query string (`code=..&state=..`, with or without the `?`).
    pub fn from_query(query: &str) -> Self {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut c = Callback::default();
        let (mut error, mut description, mut uri) = (None, None, None);
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => c.code = Some(Secret::new(v)),
                "state" => c.state = Some(Secret::new(v)),
                "iss" => c.iss = Some(v.into_owned()),
                "error" => error = Some(v.into_owned()),
                "error_description" => description = Some(v.into_owned()),
                "error_uri" => uri = Some(v.into_owned()),
                _ => {}
            }
        }
        c.error = error.map(|e| {
            OAuthError::new(e)
                .with_description(description.as_deref())
                .with_uri(uri.as_deref())
        });
        c
    }

    /// `true` when this looks like an authorization response at all (a code or an error).
    pub fn is_authorization_response(&self) -> bool {
        self.code.is_some() || self.error.is_some()
    }

    /// The provider's error, when the user or the provider refused.
    pub fn error(&self) -> Option<&OAuthError> {
        self.error.as_ref()
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
        }
    }

    /// The redirect URI this flow sends.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Finishes a sign-in from the callback: checks it, exchanges the code with the PKCE
    /// verifier, and returns the login, saved to the store first when there is one.
    ///
    /// Nothing is sent to the provider unless `state` matches and `iss` (when present and an
    /// issuer is configured) names the configured issuer.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] for a missing or wrong `state`, a wrong `iss`, or no code; the
    /// typed error of the callback's `error` (`access_denied` is [`Error::AccessDenied`]);
    /// the token endpoint's errors (a spent or wrong code, or a wrong verifier, is
    /// [`Error::TokenRevoked`]); [`Error::Store`] when the login cannot be saved.
    pub async fn complete(
        &self,
        pending: &PendingAuthorization,
        callback: &Callback,
    ) -> Result<RefreshTokenSource, Error> {
        // An error response may be forged by anyone who can make the browser visit the
        // redirect URI; a wrong state on it is reported as such, not as the provider's error.
        if callback.state.is_some() && !callback.state_matches(pending) {
            return Err(Error::Callback(
                "state does not match this sign-in".to_owned(),
            ));
        }
        if let (Some(iss), Some(issuer)) = (&callback.iss, &self.config.endpoints().issuer) {
            // RFC 9207: a response naming another issuer is a mix-up attack.
            if Url::parse(iss).ok().as_ref() != Some(issuer) {
                return Err(Error::Callback(
                    "iss does not name the configured issuer".to_owned(),
                ));
            }
        }
        if let Some(e) = &callback.error {
            return Err(Error::from_oauth(e.clone()));
        }
        if callback.state.is_none() {
            return Err(Error::Callback("the callback has no state".to_owned()));
        }
        let Some(code) = &callback.code else {
            return Err(Error::Callback("the callback has no code".to_owned()));
        };
        let form = Form::grant_type("authorization_code")
            .with("code", code.secret())
            .with("redirect_uri", pending.redirect_uri.clone())
            .with("code_verifier", pending.verifier.secret());
        let token = self
            .config
            .endpoint()
            .token(
                &self.config.endpoints().token_url,
                form,
                self.config.clock().now(),
            )
            .await?;
        self.login.start(&self.config, token).await
    }

    /// [`complete`](Self::complete) from the full callback URL.
    ///
    /// # Errors
    ///
    /// As [`complete`](Self::complete), and [`Error::Callback`] when `url` is not a URL.
    pub async fn complete_url(
        &self,
        pending: &PendingAuthorization,
        url: &str,
    ) -> Result<RefreshTokenSource, Error> {
        self.complete(pending, &Callback::from_url(url)?).await
    }
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
