//! Token revocation (RFC 7009).

use crate::config::OAuthConfig;
use crate::endpoint::Form;
use crate::error::Error;
use crate::oauth_error::OAuthError;
use crate::token::{AccessToken, RefreshToken, Token};

/// What the provider said to the revocation of one token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Revoked {
    /// The provider answered 200: the token is revoked (RFC 7009 §2.2).
    Confirmed,
    /// The provider said the token was no longer valid (Google's 400 `invalid_token`, or a
    /// dead-grant code): RFC 7009 §2.2 counts that as revoked. Its answer is kept here.
    AlreadyInvalid(OAuthError),
    /// The provider does not revoke access tokens (Amazon Cognito's `unsupported_token_type`),
    /// and the refresh token they were issued with was revoked, which ends them.
    NotRevocable(OAuthError),
}

/// The outcome of [`OAuthConfig::revoke`] and
/// [`RefreshTokenSource::logout`](crate::RefreshTokenSource::logout): what the provider said
/// about each token, including the answers that count as success without saying "revoked".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocation {
    refresh_token: Option<Revoked>,
    access_token: Option<Revoked>,
}

impl Revocation {
    /// The refresh token's revocation; `None` when there was none to revoke, or no
    /// revocation endpoint.
    pub fn refresh_token(&self) -> Option<&Revoked> {
        self.refresh_token.as_ref()
    }

    /// The access token's revocation; `None` when nothing was sent (no revocation endpoint).
    pub fn access_token(&self) -> Option<&Revoked> {
        self.access_token.as_ref()
    }
}

impl OAuthConfig {
    /// Revokes a login at the provider (RFC 7009): its refresh token, then its access token.
    ///
    /// Revoking the refresh token usually ends the whole grant; the access token is revoked
    /// too because RFC 7009 leaves that to the provider. To also forget a stored login, use
    /// [`RefreshTokenSource::logout`](crate::RefreshTokenSource::logout).
    ///
    /// An unknown or already revoked token is not an error (RFC 7009 §2.2): the provider
    /// answers 200, or, like Google, 400 `invalid_token` or a dead-grant code
    /// ([`Revoked::AlreadyInvalid`], with the provider's answer). After the refresh token
    /// was revoked, a provider that revokes no access tokens (Amazon Cognito answers
    /// `unsupported_token_type`) has ended them with it: [`Revoked::NotRevocable`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] without a revocation endpoint; the provider's error otherwise
    /// (`unsupported_token_type` for the refresh token, or for an access token alone, is
    /// [`Error::OAuth`]).
    pub async fn revoke(&self, token: &Token) -> Result<Revocation, Error> {
        let refresh_token = match token.refresh_token() {
            Some(refresh_token) => Some(self.revoke_refresh_token(refresh_token).await?),
            None => None,
        };
        let access_token = match self
            .revoke_one(token.access_token().secret(), "access_token")
            .await
        {
            Err(Error::OAuth(e))
                if refresh_token.is_some()
                    && e.error.eq_ignore_ascii_case("unsupported_token_type") =>
            {
                tracing::debug!(error = %e, "access tokens are not revocable here; the refresh token was");
                Revoked::NotRevocable(e)
            }
            other => other?,
        };
        Ok(Revocation {
            refresh_token,
            access_token: Some(access_token),
        })
    }

    /// Revokes one refresh token (RFC 7009, `token_type_hint=refresh_token`).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_refresh_token(&self, token: &RefreshToken) -> Result<Revoked, Error> {
        self.revoke_one(token.secret(), "refresh_token").await
    }

    /// Revokes one access token (RFC 7009, `token_type_hint=access_token`).
    ///
    /// # Errors
    ///
    /// As [`revoke`](Self::revoke).
    pub async fn revoke_access_token(&self, token: &AccessToken) -> Result<Revoked, Error> {
        self.revoke_one(token.secret(), "access_token").await
    }

    async fn revoke_one(&self, token: &str, hint: &str) -> Result<Revoked, Error> {
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
            Ok(_) => Ok(Revoked::Confirmed),
            // RFC 7009 §2.2: on 200 "the content of the response body is ignored by the
            // client"; some providers answer `OK` or an HTML page.
            Err(Error::MalformedResponse {
                status: 200..=299, ..
            }) => Ok(Revoked::Confirmed),
            Err(e) => match already_invalid(e) {
                Ok(answer) => {
                    tracing::debug!(error = %answer, "the token was already invalid; counted as revoked");
                    Ok(Revoked::AlreadyInvalid(answer))
                }
                Err(e) => Err(e),
            },
        }
    }
}

/// RFC 7009 §2.2: "invalid tokens do not cause an error response", since the client cannot
/// do anything about them. Google answers them with 400 `invalid_token` all the same, and
/// some providers with a dead-grant code; either way the token no longer works. The
/// provider's answer, or the error unchanged.
fn already_invalid(e: Error) -> Result<OAuthError, Error> {
    match e {
        Error::TokenRevoked(o) => Ok(o),
        Error::OAuth(o) if o.error.eq_ignore_ascii_case("invalid_token") => Ok(o),
        other => Err(other),
    }
}
