//! Token introspection (RFC 7662): a resource server or gateway asks the provider whether a
//! token is active and what it stands for.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::config::OAuthConfig;
use crate::endpoint::{Form, seconds};
use crate::error::Error;
use crate::oauth_error::OAuthError;
use crate::token::{AccessToken, RefreshToken};

impl OAuthConfig {
    /// Asks the provider's introspection endpoint (RFC 7662) about `token`, without a
    /// `token_type_hint`.
    ///
    /// The request goes through the same client as every other provider request: the
    /// configured client authentication (a resource server is a client too), no redirects,
    /// the timeout, the 1 MiB cap, and the retry policy (asking twice is harmless).
    ///
    /// An inactive token (unknown, expired, revoked, or not for this client) is a normal
    /// result with [`Introspection::is_active`] `false`, not an error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), authed::Error> {
    /// use authed::TokenSource;
    /// use authed::testing::TestProvider;
    ///
    /// let provider = TestProvider::start().await;
    /// let config = authed::OAuthConfig::builder(provider.token_url())
    ///     .introspection_url(provider.introspection_url())
    ///     .client_id(TestProvider::CLIENT_ID)
    ///     .client_secret(TestProvider::CLIENT_SECRET)
    ///     .build()?;
    /// let token = config.client_credentials().scopes(["reports:read"]).build().token().await?;
    ///
    /// let info = config.introspect_access_token(token.access_token()).await?;
    /// assert!(info.is_active());
    /// assert!(info.has_scope("reports:read"));
    /// assert_eq!(info.client_id(), Some(TestProvider::CLIENT_ID));
    ///
    /// assert!(!config.introspect("not-a-token").await?.is_active());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] without an introspection endpoint (configured with
    ///   [`introspection_url`](crate::OAuthConfigBuilder::introspection_url) or discovered
    ///   from `introspection_endpoint`).
    /// - [`Error::InvalidClient`] when the provider refuses the client's credentials: an
    ///   `invalid_client` answer, or a 401 or 403 without an error code (RFC 7662 §2.3;
    ///   django-oauth-toolkit answers a bare 403).
    /// - [`Error::MalformedResponse`] when the answer has no boolean `active`, or a standard
    ///   member of the wrong type (a string `exp`, a numeric `scope`).
    /// - The provider's other errors and transport errors, as for a token request.
    pub async fn introspect(&self, token: &str) -> Result<Introspection, Error> {
        self.introspect_one(token, None).await
    }

    /// [`introspect`](Self::introspect) an access token (`token_type_hint=access_token`).
    ///
    /// # Errors
    ///
    /// As [`introspect`](Self::introspect).
    pub async fn introspect_access_token(
        &self,
        token: &AccessToken,
    ) -> Result<Introspection, Error> {
        self.introspect_one(token.secret(), Some("access_token"))
            .await
    }

    /// [`introspect`](Self::introspect) a refresh token (`token_type_hint=refresh_token`).
    ///
    /// # Errors
    ///
    /// As [`introspect`](Self::introspect).
    pub async fn introspect_refresh_token(
        &self,
        token: &RefreshToken,
    ) -> Result<Introspection, Error> {
        self.introspect_one(token.secret(), Some("refresh_token"))
            .await
    }

    async fn introspect_one(
        &self,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Introspection, Error> {
        let url = self
            .endpoints()
            .introspection_url
            .as_ref()
            .ok_or_else(|| Error::config("no introspection endpoint is configured"))?;
        let mut form = Form::new().with("token", token);
        if let Some(hint) = hint {
            form = form.with("token_type_hint", hint);
        }
        let answer = self
            .endpoint()
            .post_form_retrying(crate::telemetry::Call::Introspection, url, form)
            .await
            .map_err(refused_client)?;
        Introspection::from_fields(answer.status, answer.fields)
    }
}

/// RFC 7662 §2.3: a client whose credentials are wrong gets 401 with `invalid_client`.
/// Some servers answer without an error code: django-oauth-toolkit a bare 403 with an
/// empty body. Either status without a code can only mean the client was not
/// authenticated, so it is reported as what it is.
fn refused_client(e: Error) -> Error {
    match e {
        Error::MalformedResponse {
            status: status @ (401 | 403),
            ..
        } => Error::InvalidClient(
            OAuthError::new("invalid_client")
                .with_description(Some(
                    "the introspection endpoint refused the client's credentials (no error \
                     code in its answer)",
                ))
                .with_status(Some(status)),
        ),
        other => other,
    }
}

/// The provider's answer about a token (RFC 7662 §2.2).
///
/// When the token is not active, every other member is empty: RFC 7662 says nothing else
/// about an inactive token can be relied on, so nothing of it is kept.
///
/// `Debug` shows the standard members and only the names of the others.
#[derive(Clone, PartialEq)]
pub struct Introspection {
    active: bool,
    scopes: Vec<String>,
    client_id: Option<String>,
    username: Option<String>,
    token_type: Option<String>,
    exp: Option<SystemTime>,
    iat: Option<SystemTime>,
    nbf: Option<SystemTime>,
    sub: Option<String>,
    aud: Vec<String>,
    iss: Option<String>,
    jti: Option<String>,
    cnf: Option<Confirmation>,
    extra: Map<String, Value>,
}

/// The `cnf` (confirmation) member: the key or certificate a sender-constrained token is
/// bound to (RFC 7800; RFC 9449 §6 for DPoP, RFC 8705 §3 for mutual TLS).
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmation {
    fields: Map<String, Value>,
}

impl Confirmation {
    /// `jkt`: the SHA-256 JWK thumbprint of the DPoP key the token is bound to (RFC 9449).
    pub fn jkt(&self) -> Option<&str> {
        self.fields.get("jkt").and_then(Value::as_str)
    }

    /// `x5t#S256`: the base64url SHA-256 thumbprint of the client certificate the token is
    /// bound to (RFC 8705 §3.1).
    pub fn x5t_s256(&self) -> Option<&str> {
        self.fields.get("x5t#S256").and_then(Value::as_str)
    }

    /// Every member of `cnf`.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: an unknown member could hold anything, a token included.
        let extra: Vec<&str> = self.extra.keys().map(String::as_str).collect();
        f.debug_struct("Introspection")
            .field("active", &self.active)
            .field("scopes", &self.scopes)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("token_type", &self.token_type)
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .field("nbf", &self.nbf)
            .field("sub", &self.sub)
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .field("jti", &self.jti)
            .field("cnf", &self.cnf)
            .field("extra", &extra)
            .finish()
    }
}

impl Introspection {
    /// Reads the answer's members; `status` is only for errors.
    pub(crate) fn from_fields(status: u16, mut fields: Map<String, Value>) -> Result<Self, Error> {
        let malformed = |what: &str| {
            Error::malformed(
                status,
                format!("introspection response with {what} (RFC 7662 §2.2)"),
            )
        };
        let active = match fields.get("active") {
            Some(Value::Bool(b)) => *b,
            None => return Err(malformed("no active member")),
            Some(_) => return Err(malformed("an active member that is not a boolean")),
        };
        let mut info = Introspection {
            active,
            scopes: Vec::new(),
            client_id: None,
            username: None,
            token_type: None,
            exp: None,
            iat: None,
            nbf: None,
            sub: None,
            aud: Vec::new(),
            iss: None,
            jti: None,
            cnf: None,
            extra: Map::new(),
        };
        if !active {
            return Ok(info);
        }
        fields.remove("active");
        let mut string = |name: &str| match fields.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(malformed(&format!("a {name} that is not a string"))),
        };
        info.scopes = string("scope")?
            .map(|s| s.split_ascii_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        info.client_id = string("client_id")?;
        info.username = string("username")?;
        info.token_type = string("token_type")?;
        info.sub = string("sub")?;
        info.iss = string("iss")?;
        info.jti = string("jti")?;
        let mut time = |name: &str| match fields.remove(name).as_ref().map(seconds) {
            None | Some(None) => Ok(None),
            Some(Some(Ok(d))) => SystemTime::UNIX_EPOCH
                .checked_add(d.min(MAX_NUMERIC_DATE))
                .map(Some)
                .ok_or_else(|| malformed(&format!("an unusable {name}"))),
            Some(Some(Err(()))) => Err(malformed(&format!("a {name} that is not a NumericDate"))),
        };
        info.exp = time("exp")?;
        info.iat = time("iat")?;
        info.nbf = time("nbf")?;
        info.aud = match fields.remove("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(malformed("an aud array with a member that is not a string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(malformed("an aud that is neither a string nor an array")),
        };
        info.cnf = match fields.remove("cnf") {
            None | Some(Value::Null) => None,
            Some(Value::Object(fields)) => Some(Confirmation { fields }),
            Some(_) => return Err(malformed("a cnf that is not an object")),
        };
        info.extra = fields;
        Ok(info)
    }

    /// `active`: the provider considers the token valid right now.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Active, and by its `exp` and `nbf` (when given) valid at `now`. A resource server that
    /// caches introspection results checks this before reusing one.
    pub fn is_active_at(&self, now: SystemTime) -> bool {
        self.active && self.exp.is_none_or(|exp| now < exp) && self.nbf.is_none_or(|nbf| nbf <= now)
    }

    /// The scopes of `scope`, in order.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// `scope` as sent: the scopes joined by single spaces (empty when there were none).
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    /// The token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `client_id`: the client the token was issued to.
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// `username`: a human-readable name of the resource owner.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// `token_type`, as the provider spells it (`Bearer`, `DPoP`).
    pub fn token_type(&self) -> Option<&str> {
        self.token_type.as_deref()
    }

    /// `exp`: when the token expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.exp
    }

    /// `iat`: when the token was issued.
    pub fn issued_at(&self) -> Option<SystemTime> {
        self.iat
    }

    /// `nbf`: the token is not to be used before this time.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.nbf
    }

    /// `sub`: the subject, usually the resource owner's id.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// `aud`: the audiences, whether sent as a string or an array.
    pub fn aud(&self) -> &[String] {
        &self.aud
    }

    /// `iss`: the issuer of the token.
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// `jti`: the token's identifier.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// `cnf`: what a sender-constrained token is bound to (a DPoP key or a client
    /// certificate).
    pub fn cnf(&self) -> Option<&Confirmation> {
        self.cnf.as_ref()
    }

    /// Every other member of the answer, as sent (empty when the token is not active).
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }
}

/// `exp` values beyond this (year 9999) are held at it, far from `SystemTime`'s limits.
const MAX_NUMERIC_DATE: Duration = Duration::from_secs(253_402_300_799);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<Introspection, Error> {
        Introspection::from_fields(200, v.as_object().unwrap().clone())
    }

    #[test]
    fn every_standard_member_is_read() {
        let info = read(json!({
            "active": true, "scope": "a  b c", "client_id": "c", "username": "u",
            "token_type": "DPoP", "exp": 2000, "iat": "1000", "nbf": 1000.5, "sub": "s",
            "aud": ["x", "y"], "iss": "https://i", "jti": "j",
            "cnf": {"jkt": "k", "x5t#S256": "t"}, "tenant": "t1",
        }))
        .unwrap();
        let at = |s: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s);
        assert!(info.is_active());
        assert_eq!(info.scopes(), ["a", "b", "c"]);
        assert_eq!(info.scope(), "a b c");
        assert_eq!(
            (info.client_id(), info.username(), info.token_type()),
            (Some("c"), Some("u"), Some("DPoP"))
        );
        assert_eq!(
            (info.expires_at(), info.issued_at(), info.not_before()),
            (Some(at(2000.0)), Some(at(1000.0)), Some(at(1000.5)))
        );
        assert_eq!(
            (info.sub(), info.iss(), info.jti()),
            (Some("s"), Some("https://i"), Some("j"))
        );
        assert_eq!(info.aud(), ["x", "y"]);
        let cnf = info.cnf().unwrap();
        assert_eq!((cnf.jkt(), cnf.x5t_s256()), (Some("k"), Some("t")));
        assert_eq!(info.extra().len(), 1);
        assert_eq!(info.extra()["tenant"], "t1");
        assert!(info.is_active_at(at(1500.0)));
        assert!(!info.is_active_at(at(2000.0)), "expired at exp");
        assert!(!info.is_active_at(at(999.0)), "not yet valid");
        assert_eq!(
            read(json!({"active": true, "aud": "x"})).unwrap().aud(),
            ["x"]
        );
    }

    #[test]
    fn nothing_of_an_inactive_token_is_kept() {
        let info = read(json!({"active": false, "sub": "s", "scope": 1, "x": 1})).unwrap();
        assert!(!info.is_active());
        assert!(info.sub().is_none() && info.extra().is_empty() && info.scopes().is_empty());
    }

    #[test]
    fn a_missing_or_non_boolean_active_is_malformed() {
        for bad in [
            json!({}),
            json!({"active": "true"}),
            json!({"active": 1}),
            json!({"active": null}),
            json!({"active": true, "exp": "soon"}),
            json!({"active": true, "exp": -1}),
            json!({"active": true, "scope": ["a"]}),
            json!({"active": true, "aud": [1]}),
            json!({"active": true, "cnf": "k"}),
            json!({"active": true, "sub": 7}),
        ] {
            let e = read(bad.clone()).unwrap_err();
            assert!(
                matches!(e, Error::MalformedResponse { status: 200, .. }),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn huge_dates_do_not_panic() {
        let info = read(json!({"active": true, "exp": 1e300})).unwrap();
        assert!(info.is_active_at(SystemTime::now()));
    }
}
