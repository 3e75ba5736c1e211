//! How a sign-in's authorization request reaches the provider: in the URL, as a signed
//! request object (JAR, RFC 9101), or pushed first (PAR, RFC 9126); with the options that
//! shape it (the response mode, rich authorization details, the authentication asked for);
//! and the checks of the ID token's `acr` and `auth_time` against what was asked.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use url::Url;

use crate::authorization_details::{AuthorizationDetail, to_param};
use crate::config::OAuthConfig;
use crate::endpoint::{Answer, Form};
use crate::error::{Error, IdTokenError};
use crate::fapi::{Fapi2, FapiDuty};
use crate::id_token::{CLOCK_SKEW, IdTokenClaims};

/// How long a request object is valid: the browser has this long to reach the provider.
/// FAPI 2.0 Message Signing allows up to 60 minutes between `nbf` and `exp`.
const REQUEST_OBJECT_LIFETIME: Duration = Duration::from_secs(300);

/// The longest `request_uri` accepted from a pushed authorization response (oidc-provider's
/// are 70 characters, Keycloak's under 100).
const MAX_REQUEST_URI_LEN: usize = 2048;

/// The media type of a request object (RFC 9101 §10.2).
const REQUEST_OBJECT_TYPE: &str = "oauth-authz-req+jwt";

/// How the provider returns the authorization response to the redirect URI.
///
/// The JWT modes are JARM (OpenID "JWT Secured Authorization Response Mode"): the response
/// is one signed JWT, and nothing in it is trusted before its signature (against the
/// provider's JWKS), `iss`, `aud` and `exp` are checked. `fragment` modes are not offered: a
/// server never sees a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (the default for the code flow; sends no
    /// `response_mode`).
    #[default]
    Query,
    /// Parameters in a form the browser POSTs to the redirect URI (OAuth 2.0 Form Post
    /// Response Mode): nothing in the URL, browser history or `Referer`. Read the body with
    /// [`Callback::from_form_post`](crate::Callback::from_form_post).
    FormPost,
    /// JARM `jwt`: the provider's default JWT mode for the code flow (`query.jwt`).
    Jwt,
    /// JARM `query.jwt`: a `response` JWT in the query.
    QueryJwt,
    /// JARM `form_post.jwt`: a `response` JWT in a POSTed form.
    FormPostJwt,
}

impl ResponseMode {
    /// The `response_mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::FormPost => "form_post",
            ResponseMode::Jwt => "jwt",
            ResponseMode::QueryJwt => "query.jwt",
            ResponseMode::FormPostJwt => "form_post.jwt",
        }
    }

    /// A JARM mode: the response is a signed JWT.
    pub fn is_jwt(self) -> bool {
        matches!(
            self,
            ResponseMode::Jwt | ResponseMode::QueryJwt | ResponseMode::FormPostJwt
        )
    }
}

/// The request options a sign-in builder collects (see [`request_option_setters`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestOptions {
    pub(crate) response_mode: Option<ResponseMode>,
    pub(crate) pushed: bool,
    pub(crate) signed: bool,
    pub(crate) authorization_details: Vec<AuthorizationDetail>,
    pub(crate) acr_values: Vec<String>,
    pub(crate) max_age: Option<Duration>,
}

/// The setters of [`RequestOptions`] on a sign-in builder (field `request`).
macro_rules! request_option_setters {
    () => {
        /// How the provider returns the response: [`ResponseMode::Query`](crate::ResponseMode::Query) (the default),
        /// [`ResponseMode::FormPost`](crate::ResponseMode::FormPost) for web apps, or a JWT-secured mode (JARM). Under
        /// [`Fapi2::MessageSigning`](crate::Fapi2::MessageSigning) the default is
        /// [`ResponseMode::Jwt`](crate::ResponseMode::Jwt), and only JWT modes are allowed.
        pub fn response_mode(mut self, mode: crate::source::ResponseMode) -> Self {
            self.request.response_mode = Some(mode);
            self
        }

        /// Pushes every sign-in's request to the provider first (PAR, RFC 9126): the browser
        /// gets only `client_id` and a single-use `request_uri`, and the request itself is
        /// sent with client authentication (and a DPoP proof when DPoP is on, which binds
        /// the code to the key). Done anyway when the provider requires it
        /// ([`require_pushed_authorization_requests`](crate::OAuthConfigBuilder::require_pushed_authorization_requests))
        /// or a [FAPI 2.0 profile](crate::OAuthConfigBuilder::fapi2) is on. Needs the
        /// configuration's [`par_url`](crate::OAuthConfigBuilder::par_url).
        #[doc(alias = "par")]
        pub fn pushed(mut self, pushed: bool) -> Self {
            self.request.pushed = pushed;
            self
        }

        /// Sends the request as a signed request object (JAR, RFC 9101: `typ`
        /// `oauth-authz-req+jwt`, `iss` the client id, `aud` the issuer, `exp`, `nbf`, `iat`
        /// and a random `jti`), signed with the configuration's
        /// [`request_signing_key`](crate::OAuthConfigBuilder::request_signing_key) or
        /// [`private_key`](crate::OAuthConfigBuilder::private_key); pushed when the request is
        /// pushed, else by value in the URL. Always on under
        /// [`Fapi2::MessageSigning`](crate::Fapi2::MessageSigning).
        #[doc(alias = "jar")]
        #[doc(alias = "request_object")]
        pub fn signed(mut self, signed: bool) -> Self {
            self.request.signed = signed;
            self
        }

        /// Rich authorization requests (RFC 9396): `authorization_details` to ask for, sent
        /// with the request (pushed, or inside the request object when there is one). May be
        /// called more than once. What was granted is on the token:
        /// [`Token::authorization_details`](crate::Token::authorization_details).
        pub fn authorization_details<I>(mut self, details: I) -> Self
        where
            I: IntoIterator<Item = crate::AuthorizationDetail>,
        {
            self.request.authorization_details.extend(details);
            self
        }

        /// `acr_values` (OpenID Connect Core §3.1.2.1): the authentication context classes
        /// wanted, most preferred first. With the `openid` scope, the ID token's `acr` must
        /// then be one of them, or the sign-in fails with [`IdTokenError::Acr`](crate::IdTokenError::Acr).
        pub fn acr_values<I, S>(mut self, acr_values: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.request
                .acr_values
                .extend(acr_values.into_iter().map(Into::into));
            self
        }

        /// `max_age` (OpenID Connect Core §3.1.2.1): the longest time since the user last
        /// authenticated; the provider makes the user sign in again when it is longer. With
        /// the `openid` scope, the ID token's `auth_time` must then be that recent (60 s of
        /// clock skew allowed), or the sign-in fails with
        /// [`IdTokenError::AuthTime`](crate::IdTokenError::AuthTime).
        pub fn max_age(mut self, max_age: std::time::Duration) -> Self {
            self.request.max_age = Some(max_age);
            self
        }

        /// Asks for what an API's step-up challenge named (RFC 9470):
        /// [`acr_values`](Self::acr_values) and [`max_age`](Self::max_age) from the
        /// [`StepUp`](crate::StepUp) of an [`Error::StepUpRequired`](crate::Error::StepUpRequired).
        pub fn step_up(mut self, step_up: &crate::StepUp) -> Self {
            self.request
                .acr_values
                .extend(step_up.acr_values().iter().cloned());
            if let Some(max_age) = step_up.max_age() {
                self.request.max_age = Some(max_age);
            }
            self
        }
    };
}
pub(crate) use request_option_setters;

/// What a flow's options come to under its configuration, checked once when it is built.
#[derive(Debug, Clone)]
pub(crate) struct RequestPlan {
    pub(crate) response_mode: ResponseMode,
    /// Where to push the request, when it is pushed.
    par_url: Option<Url>,
    signed: bool,
    authorization_details: Option<String>,
    acr_values: Vec<String>,
    max_age: Option<Duration>,
    /// FAPI 2.0: RFC 9207 `iss` is required on every callback.
    pub(crate) require_iss: bool,
}

/// Where the browser goes, and until when a pushed request is valid.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) url: String,
    pub(crate) expires_at: Option<SystemTime>,
}

impl RequestOptions {
    /// Checks the options against the configuration (and its FAPI 2.0 profile, if any).
    pub(crate) fn plan(
        self,
        config: &OAuthConfig,
        redirect_uri: &Url,
    ) -> Result<RequestPlan, Error> {
        let fapi = config.fapi2();
        let endpoints = config.endpoints();
        let duty = |d: FapiDuty| Err(Error::Fapi(d));
        if fapi.is_some() && redirect_uri.scheme() != "https" {
            return duty(FapiDuty::HttpsRedirectUri);
        }
        let pushed =
            self.pushed || endpoints.require_pushed_authorization_requests || fapi.is_some();
        let par_url = match (&endpoints.par_url, pushed) {
            (_, false) => None,
            (Some(url), true) => Some(url.clone()),
            (None, true) if fapi.is_some() => return duty(FapiDuty::PushedAuthorizationRequests),
            (None, true) => {
                return Err(Error::config(
                    "a pushed authorization request (PAR) needs the provider's \
                     pushed_authorization_request_endpoint (par_url)",
                ));
            }
        };
        let message_signing = fapi == Some(Fapi2::MessageSigning);
        let signed = self.signed || message_signing;
        if signed && config.request_signer().is_none() {
            if message_signing {
                return duty(FapiDuty::SignedRequests);
            }
            return Err(Error::config(
                "a signed request object (JAR) needs a signing key: private_key or \
                 request_signing_key",
            ));
        }
        let default_mode = if message_signing {
            ResponseMode::Jwt
        } else {
            ResponseMode::Query
        };
        let response_mode = self.response_mode.unwrap_or(default_mode);
        if message_signing && !response_mode.is_jwt() {
            return duty(FapiDuty::SignedResponses(response_mode.as_str()));
        }
        let needs_issuer = signed || response_mode.is_jwt();
        if needs_issuer && endpoints.issuer.is_none() {
            return Err(Error::config(
                "signed request objects and JWT responses name the issuer: set issuer (discovery \
                 does)",
            ));
        }
        if response_mode.is_jwt() && endpoints.jwks_url.is_none() {
            return Err(Error::config(
                "a JWT-secured response (JARM) is verified with the provider's keys: set jwks_url \
                 (discovery does)",
            ));
        }
        Ok(RequestPlan {
            response_mode,
            par_url,
            signed,
            authorization_details: (!self.authorization_details.is_empty())
                .then(|| to_param(&self.authorization_details)),
            acr_values: self.acr_values,
            max_age: self.max_age,
            require_iss: fapi.is_some(),
        })
    }
}

impl RequestPlan {
    /// The options' own parameters, added to the flow's.
    fn add_params(&self, params: &mut Vec<(String, String)>) {
        let mut add = |k: &str, v: String| params.push((k.to_owned(), v));
        if self.response_mode != ResponseMode::Query {
            add("response_mode", self.response_mode.as_str().to_owned());
        }
        if let Some(details) = &self.authorization_details {
            add("authorization_details", details.clone());
        }
        if !self.acr_values.is_empty() {
            add("acr_values", self.acr_values.join(" "));
        }
        if let Some(max_age) = self.max_age {
            add("max_age", max_age.as_secs().to_string());
        }
    }

    /// Sends the request the way the plan says, and returns the URL for the browser,
    /// validated by the one check for browser URLs.
    pub(crate) async fn prepare(
        &self,
        config: &OAuthConfig,
        authorization_url: &Url,
        mut params: Vec<(String, String)>,
    ) -> Result<Prepared, Error> {
        self.add_params(&mut params);
        let now = config.clock().now();
        let client_id = config.client_id().to_owned();
        let request = if self.signed {
            let object = request_object(config, &params, now).await?;
            vec![
                ("client_id".to_owned(), client_id.clone()),
                ("request".to_owned(), object),
            ]
        } else {
            params
        };
        let (front, expires_at) = match &self.par_url {
            None => (request, None),
            Some(par_url) => {
                // Client authentication names the client: `client_id` is not sent twice.
                let form = Form::new().extend(request.iter().filter(|(k, _)| k != "client_id"));
                let answer = config
                    .endpoint()
                    .post_pushed_authorization(par_url, form)
                    .await?;
                let (request_uri, expires_in) = pushed_answer(&answer)?;
                (
                    vec![
                        ("client_id".to_owned(), client_id),
                        ("request_uri".to_owned(), request_uri),
                    ],
                    Some(now + expires_in),
                )
            }
        };
        let mut url = authorization_url.clone();
        url.query_pairs_mut().extend_pairs(front);
        crate::browser::check_browser_url(url.as_str(), config.allows_insecure_http())
            .map_err(|why| Error::config(format!("the authorization URL is refused: {why}")))?;
        Ok(Prepared {
            url: url.into(),
            expires_at,
        })
    }

    /// With the `openid` scope, the ID token's `acr` must be one of the `acr_values` asked
    /// for, and its `auth_time` no older than `max_age` (OpenID Connect Core §3.1.3.7
    /// items 11 and 12, RFC 9470 §4).
    pub(crate) fn check_authentication(
        &self,
        claims: &IdTokenClaims,
        now: SystemTime,
    ) -> Result<(), Error> {
        if !self.acr_values.is_empty() {
            let acr = claims.get("acr").and_then(Value::as_str);
            if !acr.is_some_and(|acr| self.acr_values.iter().any(|a| a == acr)) {
                return Err(Error::IdToken(IdTokenError::Acr));
            }
        }
        if let Some(max_age) = self.max_age {
            let now = now
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let skew = CLOCK_SKEW.as_secs_f64();
            let recent = claims
                .get("auth_time")
                .and_then(Value::as_f64)
                .is_some_and(|t| t <= now + skew && now <= t + max_age.as_secs_f64() + skew);
            if !recent {
                return Err(Error::IdToken(IdTokenError::AuthTime));
            }
        }
        Ok(())
    }
}

/// The `request_uri` and its lifetime from a pushed authorization response (RFC 9126 §2.2).
fn pushed_answer(answer: &Answer) -> Result<(String, Duration), Error> {
    let status = answer.status;
    let request_uri = answer
        .str("request_uri")
        .filter(|u| !u.is_empty() && u.len() <= MAX_REQUEST_URI_LEN)
        .ok_or_else(|| {
            Error::malformed(
                status,
                "the pushed authorization response has no usable request_uri",
            )
        })?;
    let expires_in = answer
        .fields
        .get("expires_in")
        .and_then(crate::endpoint::seconds)
        .and_then(Result::ok)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::malformed(
                status,
                "the pushed authorization response has no positive expires_in",
            )
        })?;
    Ok((request_uri.to_owned(), expires_in))
}

/// A request object (RFC 9101 §4) carrying every parameter, signed with the configuration's
/// request signing key.
async fn request_object(
    config: &OAuthConfig,
    params: &[(String, String)],
    now: SystemTime,
) -> Result<String, Error> {
    use secrecy::ExposeSecret as _;
    let key = config
        .request_signer()
        .ok_or_else(|| Error::config("no key to sign request objects with"))?;
    let issuer = config
        .endpoints()
        .issuer
        .as_deref()
        .ok_or_else(|| Error::config("a request object names the issuer as its audience"))?;
    let mut claims = crate::endpoint::jwt_claims(
        config.client_id(),
        config.client_id(),
        issuer,
        now,
        REQUEST_OBJECT_LIFETIME,
    );
    // A request object is about no one: `sub` would say otherwise.
    claims.remove("sub");
    for (k, v) in params {
        claims.insert(k.clone(), claim_value(k, v));
    }
    let object = key.sign_jwt(REQUEST_OBJECT_TYPE, &claims).await?;
    Ok(object.expose_secret().to_owned())
}

/// A parameter as a request object claim: JSON where the parameter is JSON
/// (`authorization_details`, RFC 9396 §3; `claims`) or a number (`max_age`), else a string.
fn claim_value(name: &str, value: &str) -> Value {
    match name {
        "authorization_details" | "claims" => {
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()))
        }
        "max_age" => value
            .parse::<u64>()
            .map_or_else(|_| Value::String(value.to_owned()), Value::from),
        _ => Value::String(value.to_owned()),
    }
}
