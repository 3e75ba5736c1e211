//! Playing the user's browser in a sign-in: following the authorization URL to the provider,
//! which approves at once, and catching where it redirects.

use super::state::TestProvider;
use crate::source::{Callback, PendingAuthorization};

impl TestProvider {
    /// Signs the user in as a browser would: opens `pending`'s authorization URL at this
    /// provider, which approves at once (as the user set with
    /// [`set_subject`](Self::set_subject), or refuses when told to with
    /// [`set_authorize_error`](Self::set_authorize_error)), and returns the redirect back to
    /// the app, ready for [`AuthorizationCode::complete`](crate::AuthorizationCode::complete).
    ///
    /// ```
    /// # #[tokio::main] async fn main() -> Result<(), authed::Error> {
    /// use authed::TokenSource as _;
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// let flow = provider
    ///     .config(None)
    ///     .authorization_code("http://127.0.0.1:8080/callback")
    ///     .scopes(["openid"])
    ///     .build()?;
    /// let pending = flow.authorize();
    /// let callback = provider.sign_in(&pending).await;
    /// let login = flow.complete(pending, &callback).await?;
    /// assert_eq!(login.id_token_claims().map(|c| c.sub()), Some("user-1"));
    /// assert!(login.token().await.is_ok());
    /// # Ok(()) }
    /// ```
    ///
    /// # Panics
    ///
    /// When `pending` was made for another provider, or this one refuses to redirect (an
    /// unknown client, a malformed redirect URI): a test's mistake, not a sign-in's outcome.
    pub async fn sign_in(&self, pending: &PendingAuthorization) -> Callback {
        let url = pending.url();
        assert!(
            url.starts_with(&self.authorization_url()),
            "the authorization URL is not this provider's: {url}"
        );
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a plain HTTP client builds");
        let response = http
            .get(url)
            .send()
            .await
            .expect("the test provider answers");
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        match location {
            Some(location) if status.is_redirection() => Callback::from_url(&location)
                .expect("the test provider redirects to an absolute URL"),
            _ => panic!(
                "the test provider refused the authorization request ({status}): {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}
