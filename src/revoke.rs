//! Token revocation (RFC 7009).

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::Error;
use crate::token::{AccessToken, RefreshToken, Token};

impl OAuthConfig {
    /// Revokes a login at the provider (RFC 7009): its refresh token, then its access token.
    ///
    /// Revoking the refresh token usually ends the whole grant; the access token is revoked
    /// too because RFC 7009 leaves that to the provider. To also forget a stored login, use
    /// [`RefreshTokenSource::logout`](crate::RefreshTokenSource::logout).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a revocation endpoint; the provider's error otherwise
    /// (`unsupported_token_type` is [`Error::OAuth`]). An unknown or already revoked token is
    /// not an error (RFC 7009 §2.2): the provider answers 200, or, like Google, 400
    /// `invalid_token` or a dead-grant code ([`Error::TokenRevoked`]'s), which count as
    /// revoked too.
    pub async fn revoke(&self, token: &Token) -> Result<(), Error> {
        if let Some(refresh_token) = token.refresh_token() {
            self.revoke_refresh_token(refresh_token).await?;
        }
        self.revoke_access_token(token.access_token()).await
    }

    /// Revokes one refresh token (RFC 7009, `token_type_hint=refresh_token`).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_refresh_token(&self, token: &RefreshToken) -> Result<(), Error> {
        self.revoke_one(token.secret(), "refresh_token").await
    }

    /// Revokes one access token (RFC 7009, `token_type_hint=access_token`).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_access_token(&self, token: &AccessToken) -> Result<(), Error> {
        self.revoke_one(token.secret(), "access_token").await
    }

    async fn revoke_one(&self, token: &str, hint: &str) -> Result<(), Error> {
        let url = self
            .endpoints()
            .revocation_url
            .as_ref()
            .ok_or_else(|| Error::config("no revocation endpoint is configured"))?;
        let form = Form::new()
            .with("token", token)
            .with("token_type_hint", hint);
        match self
            .endpoint()
            .post_form(crate::telemetry::Call::Revocation, url, form)
            .await
        {
            Ok(_) => Ok(()),
            // RFC 7009 §2.2: on 200 "the content of the response body is ignored by the
            // client"; some providers answer `OK` or an HTML page.
            Err(Error::MalformedResponse {
                status: 200..=299, ..
            }) => Ok(()),
            Err(e) if is_already_invalid(&e) => {
                tracing::debug!(error = %e, "the token was already invalid; counted as revoked");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// RFC 7009 §2.2: "invalid tokens do not cause an error response", since the client cannot
/// do anything about them. Google answers them with 400 `invalid_token` all the same, and
/// some providers with a dead-grant code; either way the token no longer works.
fn is_already_invalid(e: &Error) -> bool {
    match e {
        Error::TokenRevoked(_) => true,
        Error::OAuth(o) => o.error.eq_ignore_ascii_case("invalid_token"),
        _ => false,
    }
}
