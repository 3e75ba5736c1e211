//! Why a sign-in step or an API call failed, in detail: the reasons that some
//! [`Error`](crate::Error) variants carry.

use std::fmt;

use crate::oauth_error::clean;

/// Why an authorization callback was refused. Nothing was sent to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// `state` is not this sign-in's.
    #[error("state does not match this sign-in")]
    StateMismatch,
    /// The callback has no `state`.
    #[error("the callback has no state")]
    MissingState,
    /// The RFC 9207 `iss` parameter is not the configured issuer, character for character.
    #[error("iss does not name the configured issuer")]
    IssuerMismatch,
    /// The provider announces `authorization_response_iss_parameter_supported`, and the
    /// callback has no `iss`.
    #[error("the callback has no iss, and the provider always sends one")]
    MissingIssuer,
    /// The callback has neither `code` nor `error`.
    #[error("the callback has no code")]
    MissingCode,
    /// A parameter (`code`, `state`, `iss`, `error`, ...) appears more than once
    /// (RFC 6749 §3.1).
    #[error("the callback repeats the parameter {0}")]
    DuplicateParameter(&'static str),
    /// The callback carries both `code` and `error`.
    #[error("the callback carries both code and error")]
    CodeAndError,
    /// A parameter is longer than any provider sends.
    #[error("the callback parameter {0} is too long")]
    TooLong(&'static str),
    /// The callback is not a URL.
    #[error("not a URL")]
    NotAUrl,
    /// A pasted redirect address is not the loopback receiver's redirect URI (another host,
    /// port or path).
    #[error("the address is not this sign-in's redirect URI")]
    NotTheRedirectUri,
    /// This sign-in was already completed (or attempted): an authorization code is sent at
    /// most once.
    #[error("this sign-in was already completed; start a new one")]
    AlreadyCompleted,
    /// The pending authorization is older than its lifetime
    /// ([`AuthorizationCodeBuilder::pending_lifetime`](crate::AuthorizationCodeBuilder::pending_lifetime),
    /// 10 minutes by default), or was kept by a version of this crate that gave it none.
    #[error("this sign-in expired before the callback arrived; start a new one")]
    Expired,
    /// No callback arrived within the loopback receiver's timeout.
    #[error("timed out waiting for the browser to come back")]
    Timeout,
    /// The loopback receiver stopped before a callback arrived.
    #[error("the loopback server stopped before a callback arrived")]
    ReceiverStopped,
}

/// Why an ID token was refused (OpenID Connect Core §3.1.3.7). Nothing of the token itself
/// is kept in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// A nonce was sent, and the token response carries no `id_token`.
    #[error("the token response has no id_token")]
    Missing,
    /// Not a compact JWS with a JSON header and claims.
    #[error("not a signed JWT")]
    Malformed,
    /// The `alg` is not one of RS256, PS256, ES256, EdDSA (`none` and HMAC are refused).
    #[error("signature algorithm not allowed")]
    AlgorithmNotAllowed,
    /// No key of the provider's JWKS matches the token's `kid` and `alg`, even after
    /// fetching the JWKS again.
    #[error("no matching key in the provider's JWKS")]
    UnknownKey,
    /// The signature does not verify with the provider's key.
    #[error("invalid signature")]
    BadSignature,
    /// `iss` is not the configured issuer, character for character.
    #[error("iss is not the configured issuer")]
    Issuer,
    /// `aud` does not contain the client id, or `azp` is missing (several audiences) or
    /// names another client.
    #[error("aud / azp do not name this client")]
    Audience,
    /// `exp` is in the past (beyond the allowed clock skew), or missing.
    #[error("expired")]
    Expired,
    /// `iat` is in the future (beyond the allowed clock skew), or missing.
    #[error("issued in the future")]
    IssuedInFuture,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("not valid yet")]
    NotYetValid,
    /// `nonce` is missing or is not the one sent.
    #[error("nonce does not match")]
    Nonce,
    /// The provider's JWKS could not be fetched or read, or no JWKS URL is configured.
    #[error("the provider's JWKS is unavailable")]
    Jwks,
    /// `acr_values` were asked for, and `acr` is missing or not one of them.
    #[error("acr is not one of the acr_values asked for")]
    Acr,
    /// `max_age` was asked for, and `auth_time` is missing, in the future, or older.
    #[error("auth_time is missing or older than the max_age asked for")]
    AuthTime,
}

/// Why a UserInfo answer was refused ([`Error::UserInfo`](crate::Error::UserInfo)). Nothing of the answer is kept
/// in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserInfoError {
    /// Its `sub` is not the ID token's (OpenID Connect Core §5.3.2): the answer is about
    /// another user, and none of it may be used.
    #[error("its sub is not the signed-in user's")]
    SubjectMismatch,
    /// The login has no ID token to compare the answer's `sub` with: it was not an OpenID
    /// Connect sign-in (ask for the `openid` scope).
    #[error("the login has no ID token subject to check it against")]
    NoSubject,
    /// Not a JSON object or a signed JWT, or no `sub` string in it.
    #[error("it is not a claims object with a sub")]
    Malformed,
    /// An encrypted (JWE) answer, which this crate does not decrypt.
    #[error("it is encrypted, which is not supported")]
    Encrypted,
    /// A signed answer whose signature did not verify against the provider's JWKS (the
    /// reason as for an ID token).
    #[error("its signature was refused: {0}")]
    Signature(IdTokenError),
    /// A signed answer whose `iss` is not the configured issuer, character for character.
    #[error("its iss is not the configured issuer")]
    Issuer,
    /// A signed answer whose `aud` does not name this client.
    #[error("its aud does not name this client")]
    Audience,
}

/// Why an API call ended in [`Error::Unauthorized`](crate::Error::Unauthorized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized {
    /// `true` when a fresh token was fetched and the request sent again, and the API still
    /// answered 401.
    pub retried: bool,
    /// `false` when the request body was a stream that cannot be sent twice, so no retry
    /// was attempted.
    pub replayable: bool,
    /// `false` when the token source had no other token than the one rejected (a
    /// [`StaticToken`](crate::StaticToken) cannot refresh): nothing was refreshed, and the
    /// request was not sent again.
    pub refreshable: bool,
    /// The `error` parameter of the API's `WWW-Authenticate: Bearer` challenge, if any.
    pub error: Option<String>,
    /// The challenge's `error_description`, if any.
    pub description: Option<String>,
}

impl fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.refreshable {
            f.write_str(
                "the API rejected the access token, and its source has no other to offer \
                 (a static token cannot be refreshed)",
            )?;
        } else if self.retried {
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
    pub(crate) fn new(challenge: Option<&crate::challenge::Challenge>) -> Self {
        Unauthorized {
            retried: false,
            replayable: true,
            refreshable: true,
            error: challenge.and_then(|c| c.error.as_deref().map(clean)),
            description: challenge.and_then(|c| c.description.as_deref().map(clean)),
        }
    }
}
