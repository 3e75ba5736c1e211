//! OpenID Connect RP-Initiated Logout 1.0: the URL that sends the user's browser to the
//! provider's `end_session_endpoint`, checked like every URL handed to a browser, and
//! signing a login out both ways at once (the provider's session through the browser, the
//! tokens by revocation).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use url::Url;

use crate::browser::{check_browser_url, check_redirect_uri};
use crate::config::OAuthConfig;
use crate::error::Error;
use crate::source::{Logout, RefreshTokenSource};
use crate::token::{IdToken, Secret};

/// Builds an RP-Initiated Logout request; from [`OAuthConfig::end_session`] or, with the
/// login's ID token as the hint, [`RefreshTokenSource::end_session`].
#[derive(Debug)]
#[must_use]
pub struct EndSessionBuilder {
    config: OAuthConfig,
    login: Option<RefreshTokenSource>,
    id_token_hint: Option<IdToken>,
    post_logout_redirect_uri: Option<String>,
    state: Option<Secret>,
    logout_hint: Option<String>,
    ui_locales: Option<String>,
}

/// An RP-Initiated Logout request: the URL to send the user's browser to, and the `state` the
/// provider will send back to the `post_logout_redirect_uri`.
///
/// Serializable, so a web app can keep it in its server-side session until the browser comes
/// back (check it with [`is_callback`](Self::is_callback)). `Debug` shows neither the URL
/// (it carries the ID token) nor the state.
#[derive(Clone, Serialize, Deserialize)]
pub struct EndSession {
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    post_logout_redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Secret>,
}

impl OAuthConfig {
    /// An RP-Initiated Logout request (OpenID Connect RP-Initiated Logout 1.0) to the
    /// provider's `end_session_endpoint` (from discovery, or
    /// [`end_session_url`](crate::OAuthConfigBuilder::end_session_url)). It always carries
    /// `client_id`. To end a login's session, start from
    /// [`RefreshTokenSource::end_session`], which adds the login's ID token as
    /// `id_token_hint` and can revoke its tokens too.
    pub fn end_session(&self) -> EndSessionBuilder {
        EndSessionBuilder {
            config: self.clone(),
            login: None,
            id_token_hint: None,
            post_logout_redirect_uri: None,
            state: None,
            logout_hint: None,
            ui_locales: None,
        }
    }
}

impl RefreshTokenSource {
    /// An RP-Initiated Logout request for this login, with its ID token as `id_token_hint`
    /// (the one from its sign-in, kept across refreshes and in the store). Finish with
    /// [`build`](EndSessionBuilder::build) for the URL alone, or with
    /// [`sign_out`](EndSessionBuilder::sign_out) to revoke the login's tokens as well.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authed::Error> {
    /// use authed::Logout;
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// provider.set_post_logout_redirect_uris(&["https://app.example.com/signed-out"]);
    /// let flow = provider
    ///     .config(None)
    ///     .authorization_code("http://127.0.0.1:8400/callback")
    ///     .scopes(["openid"])
    ///     .build()?;
    /// let pending = flow.authorize();
    /// let callback = provider.approve(pending.url()).await; // plays the browser
    /// let login = flow.complete_url(pending, &callback).await?;
    ///
    /// let signed_out = login
    ///     .end_session()
    ///     .post_logout_redirect_uri("https://app.example.com/signed-out")
    ///     .sign_out()
    ///     .await?;
    /// assert!(matches!(signed_out.logout(), Ok(Logout::Revoked(_))));
    /// assert!(login.current().is_none(), "and forgotten");
    /// // Redirect the browser to signed_out.end_session().url(); keep the EndSession in the
    /// // session to check the provider's redirect back with `is_callback`.
    /// assert!(signed_out.end_session().url().contains("id_token_hint="));
    /// # Ok(()) }
    /// ```
    pub fn end_session(&self) -> EndSessionBuilder {
        let mut builder = self.config().end_session();
        builder.id_token_hint = self.current().and_then(|t| t.id_token().cloned());
        builder.login = Some(self.clone());
        builder
    }
}

impl EndSessionBuilder {
    /// The ID token the user signed in with (recommended: it tells the provider which
    /// session and client this is, and most providers redirect back only with it).
    pub fn id_token_hint(mut self, id_token: &IdToken) -> Self {
        self.id_token_hint = Some(id_token.clone());
        self
    }

    /// Where the provider sends the browser after the logout: one of the client's registered
    /// `post_logout_redirect_uris`. Checked like a redirect URI: `https`, `http` on
    /// loopback, or a native app's private-use scheme; no fragment. A random `state` is sent
    /// with it unless you set your own.
    pub fn post_logout_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.post_logout_redirect_uri = Some(uri.into());
        self
    }

    /// Your own `state`, sent back to the `post_logout_redirect_uri`. Default: a random
    /// value whenever there is a `post_logout_redirect_uri`.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(Secret::new(state));
        self
    }

    /// `logout_hint`: which user to log out, when the provider has several signed in.
    pub fn logout_hint(mut self, hint: impl Into<String>) -> Self {
        self.logout_hint = Some(hint.into());
        self
    }

    /// `ui_locales`: the languages of the provider's logout page, as BCP 47 tags separated
    /// by spaces, preferred first.
    pub fn ui_locales(mut self, locales: impl Into<String>) -> Self {
        self.ui_locales = Some(locales.into());
        self
    }

    /// The logout URL, checked like every URL handed to a browser.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without an end-session endpoint, for a `post_logout_redirect_uri`
    /// that is not one to redirect a browser to, or a URL that is not one to hand to a
    /// browser (plain HTTP off loopback, user info, ...).
    pub fn build(self) -> Result<EndSession, Error> {
        self.make().map(|(end, _)| end)
    }

    /// Signs the login out everywhere: builds the logout URL (any error above comes first,
    /// before anything is revoked), then [`logout`](RefreshTokenSource::logout)s the login
    /// (revocation at the provider, then forgotten here and in the store). Send the browser
    /// to [`SignOut::end_session`]'s URL afterwards whatever the revocation's outcome: it
    /// ends the provider's own session, which revocation does not.
    ///
    /// # Errors
    ///
    /// As [`build`](Self::build); [`Error::Config`] for a builder made from
    /// [`OAuthConfig::end_session`], which has no login to revoke. A failed revocation is
    /// not an error here: it is [`SignOut::logout`].
    pub async fn sign_out(self) -> Result<SignOut, Error> {
        let (end_session, login) = self.make()?;
        let login = login.ok_or_else(|| {
            Error::config("sign_out needs a login: start from RefreshTokenSource::end_session")
        })?;
        let logout = login.logout().await;
        if let Err(e) = &logout {
            tracing::warn!(error = %e, "signing out: the login's revocation failed");
        }
        Ok(SignOut {
            end_session,
            logout,
        })
    }

    fn make(self) -> Result<(EndSession, Option<RefreshTokenSource>), Error> {
        let endpoint = self
            .config
            .endpoints()
            .end_session_url
            .as_ref()
            .ok_or_else(|| {
                Error::config("no end-session endpoint is configured (end_session_url)")
            })?;
        let mut url: Url = endpoint.clone();
        let state = match (&self.post_logout_redirect_uri, self.state) {
            (Some(uri), state) => {
                check_redirect_uri(uri).map_err(|e| match e {
                    Error::Config(why) => {
                        Error::config(format!("the post_logout_redirect_uri is refused: {why}"))
                    }
                    other => other,
                })?;
                Some(state.unwrap_or_else(|| {
                    Secret::new(oauth2::CsrfToken::new_random().secret().as_str())
                }))
            }
            (None, state) => state,
        };
        {
            let mut q = url.query_pairs_mut();
            if let Some(hint) = &self.id_token_hint {
                q.append_pair("id_token_hint", hint.secret());
            }
            q.append_pair("client_id", self.config.client_id());
            if let Some(uri) = &self.post_logout_redirect_uri {
                q.append_pair("post_logout_redirect_uri", uri);
            }
            if let Some(state) = &state {
                q.append_pair("state", state.secret());
            }
            if let Some(hint) = &self.logout_hint {
                q.append_pair("logout_hint", hint);
            }
            if let Some(locales) = &self.ui_locales {
                q.append_pair("ui_locales", locales);
            }
        }
        check_browser_url(url.as_str(), self.config.allows_insecure_http())
            .map_err(|why| Error::config(format!("the end-session URL is refused: {why}")))?;
        let end = EndSession {
            url: url.into(),
            post_logout_redirect_uri: self.post_logout_redirect_uri,
            state,
        };
        Ok((end, self.login))
    }
}

impl EndSession {
    /// The URL to send the user's browser to. It carries the ID token: do not log it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `state` the provider sends back to the `post_logout_redirect_uri`.
    pub fn state(&self) -> Option<&str> {
        self.state.as_ref().map(Secret::secret)
    }

    /// `true` when `url` (the full address the browser came back to) is this logout's return:
    /// the `post_logout_redirect_uri` (scheme, host, port and path) with exactly one `state`,
    /// equal to this one (compared in constant time).
    pub fn is_callback(&self, url: &str) -> bool {
        let (Some(expected), Some(state), Ok(url)) = (
            self.post_logout_redirect_uri
                .as_deref()
                .and_then(|u| Url::parse(u).ok()),
            &self.state,
            Url::parse(url),
        ) else {
            return false;
        };
        let same_place = url.scheme() == expected.scheme()
            && url.host() == expected.host()
            && url.port_or_known_default() == expected.port_or_known_default()
            && url.path() == expected.path();
        let mut states = url.query_pairs().filter(|(k, _)| k == "state");
        let (Some((_, got)), None) = (states.next(), states.next()) else {
            return false;
        };
        same_place && bool::from(got.as_bytes().ct_eq(state.secret().as_bytes()))
    }
}

impl std::fmt::Debug for EndSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndSession")
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .field("has_state", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`EndSessionBuilder::sign_out`] did: the logout URL to send the browser to, and the
/// outcome of revoking the login's tokens.
#[derive(Debug)]
#[must_use = "the browser must still be sent to the end-session URL"]
pub struct SignOut {
    end_session: EndSession,
    logout: Result<Logout, Error>,
}

impl SignOut {
    /// The RP-Initiated Logout request: send the browser to its [`url`](EndSession::url).
    pub fn end_session(&self) -> &EndSession {
        &self.end_session
    }

    /// What the login's [`logout`](RefreshTokenSource::logout) did at the provider
    /// ([`Logout::Revoked`], [`Logout::NotRevoked`] without a revocation endpoint,
    /// [`Logout::NoLogin`]), or the revocation's error. Either way the login is gone from the
    /// source and its store, unless the store itself failed ([`Error::Store`]).
    pub fn logout(&self) -> Result<&Logout, &Error> {
        self.logout.as_ref()
    }

    /// The parts: the logout URL and the logout's outcome.
    pub fn into_parts(self) -> (EndSession, Result<Logout, Error>) {
        (self.end_session, self.logout)
    }
}
