//! Test helpers: an in-process OAuth provider and protected API over real HTTP, and a clock
//! you move by hand. Enabled by the `testing` feature.
//!
//! ```no_run
//! # async fn run() -> Result<(), authed::Error> {
//! use authed::testing::TestProvider;
//! use authed::{AuthedClient, OAuthConfig};
//!
//! let provider = TestProvider::start().await;
//! let config = OAuthConfig::builder(provider.token_url())
//!     .client_id(TestProvider::CLIENT_ID)
//!     .client_secret(TestProvider::CLIENT_SECRET)
//!     .build()?;
//! let client = AuthedClient::builder(config.client_credentials().build())
//!     .base_url(provider.api_url())
//!     .build()?;
//! let response = client.get("hello").send().await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(provider.token_requests(), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use crate::token::Clock;

mod assertions;
mod conformance;
mod dpop;
mod introspection;
mod keys;

pub use conformance::{store_conformance, store_lock_conformance, store_lock_timeout_conformance};

/// A way for [`TestProvider`] to issue a bad ID token, to test that it is refused
/// ([`TestProvider::set_id_token_forgery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenForgery {
    /// No `id_token` in the token response.
    Missing,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 "signed" with the provider's public key as the HMAC secret.
    HmacWithPublicKey,
    /// Signed by another key, under the published key's `kid`.
    WrongSignature,
    /// Signed by a key the JWKS does not have, under a `kid` it does not list.
    UnknownKey,
    /// `iss` is another issuer (the real one plus `/`).
    WrongIssuer,
    /// `aud` is another client.
    WrongAudience,
    /// `aud` lists this client and another, with no `azp`.
    MultipleAudiencesWithoutAzp,
    /// `azp` names another client.
    WrongAzp,
    /// `exp` two minutes ago (beyond the 60 s skew).
    Expired,
    /// `iat` two minutes ahead.
    IssuedInFuture,
    /// `nonce` is not the one sent.
    WrongNonce,
    /// No `nonce`.
    NoNonce,
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> Arc<Self> {
        Arc::new(ManualClock {
            now: Mutex::new(start),
        })
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }

    /// Sets the clock.
    pub fn set(&self, to: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An OAuth provider and a protected API, served over HTTP on `127.0.0.1` by this process.
///
/// The token endpoint (`/token`) implements the client credentials, refresh token,
/// authorization code (PKCE S256 required), device code, JWT bearer (RFC 7523) and token
/// exchange (RFC 8693) grants with `client_secret_basic`, `client_secret_post` and
/// `client_secret_jwt` for [`CLIENT_ID`](Self::CLIENT_ID), `private_key_jwt` for clients
/// registered with [`register_client_key`](Self::register_client_key) (assertions verified
/// for real), or no authentication for [`PUBLIC_CLIENT_ID`](Self::PUBLIC_CLIENT_ID) (and for
/// the JWT bearer and token exchange grants, as Google's and GCP STS's endpoints). It issues opaque tokens with a configurable
/// lifetime, rotates refresh tokens and answers `invalid_grant` to any reuse of a rotated one.
/// `/authorize` plays a user who approves at once (or refuses, see
/// [`set_authorize_error`](Self::set_authorize_error)) and redirects with `code`, `state` and
/// RFC 9207 `iss`; `/device_authorization` starts device flows whose polls follow a script;
/// `/revoke` implements RFC 7009, `/introspect` RFC 7662. Everything under `/api/` needs a valid token and answers JSON, or
/// `401` with `WWW-Authenticate: Bearer error="invalid_token"`. Counters and switches let
/// tests check what happened and inject failures. The server stops when this is dropped.
#[derive(Debug)]
pub struct TestProvider {
    addr: SocketAddr,
    state: Arc<ProviderState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

#[derive(Debug)]
struct ProviderState {
    token_requests: AtomicUsize,
    invalid_grants: AtomicUsize,
    api_requests: AtomicUsize,
    api_rejections: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    lifetime: Duration,
    latency: Duration,
    refresh_tokens_for_client_credentials: bool,
    failure: Option<(u16, &'static str, String)>,
    access: HashMap<String, Issued>,
    refresh: HashMap<String, RefreshState>,
    issuer: String,
    rotate_refresh_tokens: bool,
    presented_refresh_tokens: Vec<String>,
    authorize_error: Option<(String, String)>,
    authorize_requests: Vec<HashMap<String, String>>,
    codes: HashMap<String, CodeGrant>,
    token_forms: Vec<HashMap<String, String>>,
    device_codes: HashMap<String, bool>,
    device_script: std::collections::VecDeque<String>,
    device_interval: Option<u64>,
    device_expires_in: u64,
    device_polls: Vec<tokio::time::Instant>,
    revocations: Vec<(String, Option<String>)>,
    id_token_alg: jsonwebtoken::Algorithm,
    id_token_forgery: Option<IdTokenForgery>,
    rotated: bool,
    subject: String,
    iss_parameter: bool,
    jwks_requests: usize,
    assertions: assertions::Assertions,
    dpop: dpop::DpopServer,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    used: bool,
    nonce: Option<String>,
    openid: bool,
    subject: String,
    dpop_jkt: Option<String>,
}

#[derive(Debug, Clone)]
struct Issued {
    client_id: String,
    expires: Instant,
    jkt: Option<String>,
    scope: Option<String>,
    issued_at: SystemTime,
}

#[derive(Debug, Clone)]
struct RefreshState {
    client_id: String,
    used: bool,
    /// A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
    jkt: Option<String>,
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", oauth2::CsrfToken::new_random().secret())
}

impl TestProvider {
    /// The client id the provider accepts.
    pub const CLIENT_ID: &'static str = "test-client";
    /// The client secret the provider accepts.
    pub const CLIENT_SECRET: &'static str = "test-secret";
    /// A public client (no secret, `auth_method(ClientAuthMethod::None)`), as native apps are.
    pub const PUBLIC_CLIENT_ID: &'static str = "test-public-client";

    /// Starts a provider issuing one-hour tokens, on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(ProviderState {
            token_requests: AtomicUsize::new(0),
            invalid_grants: AtomicUsize::new(0),
            api_requests: AtomicUsize::new(0),
            api_rejections: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                lifetime: Duration::from_secs(3600),
                latency: Duration::ZERO,
                refresh_tokens_for_client_credentials: false,
                failure: None,
                access: HashMap::new(),
                refresh: HashMap::new(),
                issuer: String::new(),
                rotate_refresh_tokens: true,
                presented_refresh_tokens: Vec::new(),
                authorize_error: None,
                authorize_requests: Vec::new(),
                codes: HashMap::new(),
                token_forms: Vec::new(),
                device_codes: HashMap::new(),
                device_script: Default::default(),
                device_interval: None,
                device_expires_in: 600,
                device_polls: Vec::new(),
                revocations: Vec::new(),
                id_token_alg: jsonwebtoken::Algorithm::EdDSA,
                id_token_forgery: None,
                rotated: false,
                subject: "user-1".to_owned(),
                iss_parameter: true,
                jwks_requests: 0,
                assertions: Default::default(),
                dpop: Default::default(),
            }),
        });
        let app = Router::new()
            .route("/token", axum::routing::post(token_endpoint))
            .route("/authorize", axum::routing::get(authorize_endpoint))
            .route(
                "/device_authorization",
                axum::routing::post(device_authorization_endpoint),
            )
            .route("/revoke", axum::routing::post(revocation_endpoint))
            .route(
                "/introspect",
                axum::routing::post(introspection::introspection_endpoint),
            )
            .route("/jwks", axum::routing::get(jwks_endpoint))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(metadata_endpoint),
            )
            .fallback(api)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        state.lock().issuer = format!("http://{addr}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        TestProvider {
            addr,
            state,
            _shutdown: tx,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state.lock())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The issuer identifier, sent as RFC 9207 `iss` on callbacks: the base URL.
    pub fn issuer(&self) -> String {
        self.base_url()
    }

    /// The authorization endpoint.
    pub fn authorization_url(&self) -> String {
        format!("{}/authorize", self.base_url())
    }

    /// The device authorization endpoint.
    pub fn device_authorization_url(&self) -> String {
        format!("{}/device_authorization", self.base_url())
    }

    /// The revocation endpoint.
    pub fn revocation_url(&self) -> String {
        format!("{}/revoke", self.base_url())
    }

    /// The introspection endpoint (RFC 7662): knows every token it issued, and answers
    /// `active: false` for unknown, expired and revoked ones. Only the confidential client
    /// may ask.
    pub fn introspection_url(&self) -> String {
        format!("{}/introspect", self.base_url())
    }

    /// The JSON Web Key Set with the key that signs ID tokens.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base_url())
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.with(|i| i.jwks_requests)
    }

    /// The signature algorithm of ID tokens: `EdDSA` (the default), `ES256`, `RS256` or
    /// `PS256`, each with a fixed test key.
    ///
    /// # Panics
    ///
    /// For any other name.
    pub fn set_id_token_algorithm(&self, alg: &str) {
        let alg = match alg {
            "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
            "ES256" => jsonwebtoken::Algorithm::ES256,
            "RS256" => jsonwebtoken::Algorithm::RS256,
            "PS256" => jsonwebtoken::Algorithm::PS256,
            other => panic!("the test provider has no {other} key"),
        };
        self.with(|i| i.id_token_alg = alg);
    }

    /// Issues bad ID tokens of this kind from now on; `None` (the default) issues good ones.
    pub fn set_id_token_forgery(&self, forgery: Option<IdTokenForgery>) {
        self.with(|i| i.id_token_forgery = forgery);
    }

    /// Replaces the EdDSA signing key with another one under a new `kid` (the JWKS then lists
    /// only the new key), as a provider rotating its keys does.
    pub fn rotate_signing_key(&self) {
        self.with(|i| i.rotated = !i.rotated);
    }

    /// The `sub` of the user who approves the next authorizations. Default `user-1`.
    pub fn set_subject(&self, sub: &str) {
        self.with(|i| i.subject = sub.to_owned());
    }

    /// Whether callbacks carry RFC 9207 `iss` (and the metadata says so). Default yes.
    pub fn set_iss_parameter(&self, on: bool) {
        self.with(|i| i.iss_parameter = on);
    }

    /// A configuration for [`CLIENT_ID`](Self::CLIENT_ID) with every endpoint of this
    /// provider, its issuer, and `clock`.
    pub fn config(&self, clock: Option<Arc<dyn Clock>>) -> crate::OAuthConfig {
        let mut b = crate::OAuthConfig::builder(self.token_url())
            .client_id(Self::CLIENT_ID)
            .client_secret(Self::CLIENT_SECRET)
            .issuer(self.issuer())
            .authorization_url(self.authorization_url())
            .device_authorization_url(self.device_authorization_url())
            .revocation_url(self.revocation_url())
            .jwks_url(self.jwks_url());
        if let Some(clock) = clock {
            b = b.clock(clock);
        }
        b.build()
            .expect("the test provider's configuration is valid")
    }

    /// Whether refresh responses rotate the refresh token. Default yes; when off, they omit
    /// `refresh_token` and the old one stays valid.
    pub fn set_rotate_refresh_tokens(&self, on: bool) {
        self.with(|i| i.rotate_refresh_tokens = on);
    }

    /// Makes `/authorize` redirect with this `error` and `error_description` (a user who
    /// refuses), until set to `None`.
    pub fn set_authorize_error(&self, error: Option<(&str, &str)>) {
        self.with(|i| i.authorize_error = error.map(|(e, d)| (e.to_owned(), d.to_owned())));
    }

    /// The query parameters of every request `/authorize` received.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| i.authorize_requests.clone())
    }

    /// The form of every request the token endpoint received, secrets included: for
    /// asserting what was sent.
    pub fn token_forms(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| i.token_forms.clone())
    }

    /// Every refresh token presented to the token endpoint, in order.
    pub fn presented_refresh_tokens(&self) -> Vec<String> {
        self.with(|i| i.presented_refresh_tokens.clone())
    }

    /// How many `invalid_grant` answers the token endpoint gave.
    pub fn invalid_grants(&self) -> usize {
        self.state.invalid_grants.load(Ordering::SeqCst)
    }

    /// The errors the next device-code polls get, in order (`authorization_pending`,
    /// `slow_down`, `access_denied`, `expired_token`); once used up, polls get tokens.
    pub fn set_device_script<I, S>(&self, errors: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let script = errors.into_iter().map(Into::into).collect();
        self.with(|i| i.device_script = script);
    }

    /// The `interval` device authorization responses carry; `None` (the default) omits it.
    pub fn set_device_interval(&self, secs: Option<u64>) {
        self.with(|i| i.device_interval = secs);
    }

    /// The `expires_in` of device authorization responses. Default 600.
    pub fn set_device_expires_in(&self, secs: u64) {
        self.with(|i| i.device_expires_in = secs);
    }

    /// When each device-code poll arrived, in Tokio time (pausable in tests).
    pub fn device_polls(&self) -> Vec<tokio::time::Instant> {
        self.with(|i| i.device_polls.clone())
    }

    /// Every revocation request: the token and its `token_type_hint`.
    pub fn revocations(&self) -> Vec<(String, Option<String>)> {
        self.with(|i| i.revocations.clone())
    }

    /// `true` while `refresh_token` is issued, unused and unrevoked.
    pub fn refresh_token_is_live(&self, refresh_token: &str) -> bool {
        self.with(|i| i.refresh.get(refresh_token).is_some_and(|r| !r.used))
    }

    /// The protected API's base URL (`/api/`).
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.base_url())
    }

    /// How long issued access tokens live. Default one hour.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.with(|i| i.lifetime = lifetime);
    }

    /// How long the token endpoint takes to answer. Default none.
    pub fn set_latency(&self, latency: Duration) {
        self.with(|i| i.latency = latency);
    }

    /// Whether client credentials responses carry a refresh token. Default no.
    pub fn set_refresh_tokens_for_client_credentials(&self, on: bool) {
        self.with(|i| i.refresh_tokens_for_client_credentials = on);
    }

    /// Makes the token endpoint answer every request with this status, content type and
    /// body, until [`clear_failure`](Self::clear_failure).
    pub fn fail_with(&self, status: u16, content_type: &'static str, body: impl Into<String>) {
        let body = body.into();
        self.with(|i| i.failure = Some((status, content_type, body)));
    }

    /// Makes the token endpoint work again.
    pub fn clear_failure(&self) {
        self.with(|i| i.failure = None);
    }

    /// Revokes every access token issued so far: the API refuses them from now on.
    pub fn revoke_access_tokens(&self) {
        self.with(|i| i.access.clear());
    }

    /// Issues a refresh token for the test client, as an authorization code flow would.
    pub fn issue_refresh_token(&self) -> String {
        let rt = random_token("rt-");
        self.with(|i| {
            i.refresh.insert(
                rt.clone(),
                RefreshState {
                    client_id: Self::CLIENT_ID.to_owned(),
                    used: false,
                    jkt: None,
                },
            )
        });
        rt
    }

    /// Requests the token endpoint has received.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Requests the API has received.
    pub fn api_requests(&self) -> usize {
        self.state.api_requests.load(Ordering::SeqCst)
    }

    /// API requests refused with 401.
    pub fn api_rejections(&self) -> usize {
        self.state.api_rejections.load(Ordering::SeqCst)
    }

    /// Whether `access_token` is one this provider issued, unexpired and not revoked: what its
    /// `/api/` checks, for a protected service of your own in a test (a gRPC server, say).
    pub fn accepts_access_token(&self, access_token: &str) -> bool {
        self.with(|i| {
            i.access
                .get(access_token)
                .is_some_and(|issued| issued.expires > Instant::now())
        })
    }
}

impl ProviderState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"token\""),
        );
    }
    resp
}

/// The client id and secret from Basic (form-urlencoded, RFC 6749 §2.3.1) or the body.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| -> String {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

// A test server answering one request at a time: the size of its error type does not matter.
#[allow(clippy::result_large_err)]
/// The authenticated client's id: a confidential client with its secret or its assertion,
/// the public client with none, or nobody for a grant that needs no client.
fn authenticate(
    inner: &mut Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    path: &str,
) -> Result<String, Response> {
    if let Some(result) = assertions::client(inner, form, path) {
        return result;
    }
    let unauthenticated = !headers.contains_key(header::AUTHORIZATION);
    match client_credentials(headers, form) {
        Some((id, secret)) if inner.assertions.secret_matches(&id, &secret) => Ok(id),
        None if unauthenticated
            && form.get("client_id").map(String::as_str)
                == Some(TestProvider::PUBLIC_CLIENT_ID) =>
        {
            Ok(TestProvider::PUBLIC_CLIENT_ID.to_owned())
        }
        None if unauthenticated && assertions::anonymous_grant(form) => {
            Ok(form.get("client_id").cloned().unwrap_or_default())
        }
        _ => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )),
    }
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn invalid_grant(state: &ProviderState, description: &str) -> Response {
    state.invalid_grants.fetch_add(1, Ordering::SeqCst);
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

#[allow(clippy::result_large_err)] // as `authenticate`
/// Checks one grant's request and says whether its response carries a refresh token.
fn check_grant(
    state: &ProviderState,
    inner: &mut Inner,
    client_id: &str,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
) -> Result<bool, Response> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    match field("grant_type") {
        "client_credentials" => Ok(inner.refresh_tokens_for_client_credentials),
        "refresh_token" => {
            let presented = field("refresh_token");
            inner.presented_refresh_tokens.push(presented.to_owned());
            let rotate = inner.rotate_refresh_tokens;
            match inner.refresh.get_mut(presented) {
                Some(rt)
                    if !rt.used
                        && rt.client_id == client_id
                        && rt.jkt.as_deref().is_none_or(|j| Some(j) == jkt) =>
                {
                    rt.used = rotate;
                    Ok(rotate)
                }
                _ => Err(invalid_grant(
                    state,
                    "refresh token is invalid, expired or already used",
                )),
            }
        }
        "authorization_code" => {
            let Some(grant) = inner.codes.get_mut(field("code")) else {
                return Err(invalid_grant(state, "unknown authorization code"));
            };
            let verifier = oauth2::PkceCodeVerifier::new(field("code_verifier").to_owned());
            let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier);
            if grant.used
                || grant.dpop_jkt.as_deref().is_some_and(|j| Some(j) != jkt)
                || grant.client_id != client_id
                || grant.redirect_uri != field("redirect_uri")
                || challenge.as_str() != grant.challenge
            {
                return Err(invalid_grant(
                    state,
                    "code spent, or client, redirect_uri or code_verifier do not match",
                ));
            }
            grant.used = true;
            Ok(true)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            inner.device_polls.push(tokio::time::Instant::now());
            match inner.device_codes.get_mut(field("device_code")) {
                Some(used) if !*used => {}
                _ => return Err(invalid_grant(state, "unknown or spent device code")),
            }
            if let Some(error) = inner.device_script.pop_front() {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    &error,
                    "scripted answer",
                ));
            }
            inner
                .device_codes
                .insert(field("device_code").to_owned(), true);
            Ok(true)
        }
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant type",
        )),
    }
}

async fn token_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let (latency, failure) = {
        let i = state.lock();
        (i.latency, i.failure.clone())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some((status, content_type, body)) = failure {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response();
    }
    let form = parse_form(&body);
    state.lock().token_forms.push(form.clone());
    let mut inner = state.lock();
    let client_id = match authenticate(&mut inner, &headers, &form, "/token") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let jkt = match dpop::token_request(&mut inner, &headers) {
        Ok(jkt) => jkt,
        Err(resp) => return resp,
    };
    let extra = match assertions::grant(&mut inner, &form).transpose() {
        Ok(extra) => extra,
        Err(resp) => return resp,
    };
    let with_refresh = match extra {
        Some(_) => false,
        None => match check_grant(&state, &mut inner, &client_id, &form, jkt.as_deref()) {
            Ok(with_refresh) => with_refresh,
            Err(resp) => return resp,
        },
    };
    let lifetime = inner.lifetime;
    let access = match &extra {
        Some(extra) => assertions::issue(&inner, extra, lifetime),
        None => random_token("at-"),
    };
    inner.access.insert(
        access.clone(),
        Issued {
            client_id: client_id.clone(),
            expires: Instant::now() + lifetime,
            jkt: jkt.clone(),
            scope: form.get("scope").cloned(),
            issued_at: SystemTime::now(),
        },
    );
    let mut response = json!({
        "access_token": access,
        "token_type": dpop::token_type(jkt.as_deref()),
        "expires_in": lifetime.as_secs_f64(),
    });
    if let Some(scope) = form.get("scope") {
        response["scope"] = json!(scope);
    }
    let openid_grant = (form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .then(|| form.get("code").and_then(|c| inner.codes.get(c)).cloned())
        .flatten()
        .filter(|g| g.openid);
    if let Some(id_token) = openid_grant.and_then(|grant| id_token(&inner, &grant)) {
        response["id_token"] = json!(id_token);
    }
    if let Some(extra) = &extra {
        assertions::finish(&inner, extra, &access, &mut response);
    }
    if with_refresh {
        let rt = random_token("rt-");
        inner.refresh.insert(
            rt.clone(),
            RefreshState {
                jkt: jkt.filter(|_| client_id == TestProvider::PUBLIC_CLIENT_ID),
                client_id,
                used: false,
            },
        );
        response["refresh_token"] = json!(rt);
    }
    let mut response = axum::Json(response).into_response();
    dpop::add_nonce(&inner, &mut response);
    response
}

/// Plays the user: approves at once (or refuses when told to) and redirects back.
async fn authorize_endpoint(State(state): State<Arc<ProviderState>>, uri: Uri) -> Response {
    let query: HashMap<String, String> = parse_form(uri.query().unwrap_or("").as_bytes());
    let mut inner = state.lock();
    inner.authorize_requests.push(query.clone());
    let field = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let known_client =
        [TestProvider::CLIENT_ID, TestProvider::PUBLIC_CLIENT_ID].contains(&field("client_id"));
    let Ok(mut redirect) = url::Url::parse(field("redirect_uri")) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    if !known_client {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let error = if field("response_type") != "code" {
        Some((
            "unsupported_response_type".to_owned(),
            "only code".to_owned(),
        ))
    } else if field("code_challenge_method") != "S256" || field("code_challenge").is_empty() {
        Some((
            "invalid_request".to_owned(),
            "PKCE with S256 is required".to_owned(),
        ))
    } else {
        inner.authorize_error.clone()
    };
    {
        let mut q = redirect.query_pairs_mut();
        match error {
            Some((error, description)) => {
                q.append_pair("error", &error)
                    .append_pair("error_description", &description);
            }
            None => {
                let code = random_token("code-");
                let subject = inner.subject.clone();
                inner.codes.insert(
                    code.clone(),
                    CodeGrant {
                        client_id: field("client_id").to_owned(),
                        redirect_uri: field("redirect_uri").to_owned(),
                        challenge: field("code_challenge").to_owned(),
                        used: false,
                        nonce: query.get("nonce").cloned(),
                        openid: field("scope").split(' ').any(|s| s == "openid"),
                        subject,
                        dpop_jkt: query.get("dpop_jkt").cloned(),
                    },
                );
                q.append_pair("code", &code);
            }
        }
        if let Some(s) = query.get("state") {
            q.append_pair("state", s);
        }
        if inner.iss_parameter {
            q.append_pair("iss", &inner.issuer);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response()
}

/// The signing key in use, its algorithm and `kid`.
fn signing_key(inner: &Inner) -> (jsonwebtoken::EncodingKey, jsonwebtoken::Algorithm, String) {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let alg = inner.id_token_alg;
    let key = match alg {
        Algorithm::EdDSA if inner.rotated => EncodingKey::from_ed_pem(keys::ED2_PEM.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(keys::ED_PEM.as_bytes()),
        Algorithm::ES256 => EncodingKey::from_ec_pem(keys::EC_PEM.as_bytes()),
        _ => EncodingKey::from_rsa_pem(keys::RSA_PEM.as_bytes()),
    }
    .expect("the test keys parse");
    let kid = format!("{alg:?}-{}", if inner.rotated { 2 } else { 1 });
    (key, alg, kid)
}

/// The public JWK of the key in use.
fn public_jwk(inner: &Inner) -> serde_json::Value {
    crate::id_token::install_crypto_provider();
    let (key, alg, kid) = signing_key(inner);
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).expect("a public JWK");
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    serde_json::to_value(jwk).expect("a JWK serializes")
}

/// An ID token for `grant`, signed by the key in use, or forged as told.
fn id_token(inner: &Inner, grant: &CodeGrant) -> Option<String> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    crate::id_token::install_crypto_provider();
    let forgery = inner.id_token_forgery;
    if forgery == Some(IdTokenForgery::Missing) {
        return None;
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = json!({
        "iss": inner.issuer,
        "sub": grant.subject,
        "aud": grant.client_id,
        "exp": now + 600,
        "iat": now,
        "email": format!("{}@example.com", grant.subject),
        "name": format!("Test User {}", grant.subject),
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(nonce);
    }
    match forgery {
        Some(IdTokenForgery::WrongIssuer) => claims["iss"] = json!(format!("{}/", inner.issuer)),
        Some(IdTokenForgery::WrongAudience) => claims["aud"] = json!("another-client"),
        Some(IdTokenForgery::MultipleAudiencesWithoutAzp) => {
            claims["aud"] = json!([grant.client_id, "another-client"]);
        }
        Some(IdTokenForgery::WrongAzp) => claims["azp"] = json!("another-client"),
        Some(IdTokenForgery::Expired) => claims["exp"] = json!(now - 120),
        Some(IdTokenForgery::IssuedInFuture) => claims["iat"] = json!(now + 120),
        Some(IdTokenForgery::WrongNonce) => claims["nonce"] = json!("not-the-nonce"),
        Some(IdTokenForgery::NoNonce) => {
            claims.as_object_mut().map(|c| c.remove("nonce"));
        }
        _ => {}
    }
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let (key, alg, kid) = signing_key(inner);
    let mut header = Header::new(alg);
    header.kid = Some(kid.clone());
    let token = match forgery {
        Some(IdTokenForgery::AlgNone) => {
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid})),
                b64(&claims)
            )
        }
        Some(IdTokenForgery::HmacWithPublicKey) => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid);
            let secret = public_jwk(inner).to_string();
            let key = EncodingKey::from_secret(secret.as_bytes()).expect("an HMAC key");
            jsonwebtoken::encode(&header, &claims, &key).expect("signs")
        }
        Some(IdTokenForgery::WrongSignature | IdTokenForgery::UnknownKey) => {
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(if forgery == Some(IdTokenForgery::UnknownKey) {
                "unpublished".to_owned()
            } else {
                format!("{:?}-1", Algorithm::EdDSA)
            });
            // A key the JWKS never lists (the rotation key, while not rotated).
            let pem = if inner.rotated {
                keys::ED_PEM
            } else {
                keys::ED2_PEM
            };
            let key = EncodingKey::from_ed_pem(pem.as_bytes()).expect("the test key parses");
            jsonwebtoken::encode(&header, &claims, &key).expect("signs")
        }
        _ => jsonwebtoken::encode(&header, &claims, &key).expect("signs"),
    };
    Some(token)
}

async fn jwks_endpoint(State(state): State<Arc<ProviderState>>) -> Response {
    let mut inner = state.lock();
    inner.jwks_requests += 1;
    axum::Json(json!({ "keys": [public_jwk(&inner)] })).into_response()
}

async fn metadata_endpoint(State(state): State<Arc<ProviderState>>) -> Response {
    let inner = state.lock();
    let base = inner.issuer.clone();
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device_authorization"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint": format!("{base}/introspect"),
        "jwks_uri": format!("{base}/jwks"),
        "authorization_response_iss_parameter_supported": inner.iss_parameter,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA", "HS256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", assertions::JWT_BEARER, assertions::TOKEN_EXCHANGE],
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256", "RS256", "PS256"],
    }))
    .into_response()
}

async fn device_authorization_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    if let Err(resp) = authenticate(&mut inner, &headers, &form, "/device_authorization") {
        return resp;
    }
    let device_code = random_token("dc-");
    let user_code = format!("U{}", &random_token("")[..7]).to_uppercase();
    inner.device_codes.insert(device_code.clone(), false);
    let verification_uri = format!("{}/device", inner.issuer);
    let mut response = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": inner.device_expires_in,
    });
    if let Some(interval) = inner.device_interval {
        response["interval"] = json!(interval);
    }
    axum::Json(response).into_response()
}

async fn revocation_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    if let Err(resp) = authenticate(&mut inner, &headers, &form, "/revoke") {
        return resp;
    }
    let token = form.get("token").cloned().unwrap_or_default();
    inner
        .revocations
        .push((token.clone(), form.get("token_type_hint").cloned()));
    inner.access.remove(&token);
    inner.refresh.remove(&token);
    StatusCode::OK.into_response()
}

async fn api(
    State(state): State<Arc<ProviderState>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if !uri.path().starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let presented =
        match dpop::presented_token(&mut state.lock(), &headers, method.as_str(), uri.path()) {
            Ok(presented) => presented,
            Err(resp) => {
                state.api_rejections.fetch_add(1, Ordering::SeqCst);
                return resp;
            }
        };
    let presented = presented.as_deref();
    let issued = presented.and_then(|t| state.lock().access.get(t).cloned());
    match issued {
        Some(issued) if issued.expires > Instant::now() => axum::Json(json!({
            "path": uri.path(),
            "client_id": issued.client_id,
            "message": "hello from the protected API",
        }))
        .into_response(),
        _ => {
            state.api_rejections.fetch_add(1, Ordering::SeqCst);
            let challenge = if presented.is_some() {
                "Bearer error=\"invalid_token\", error_description=\"the access token is unknown, expired or revoked\""
            } else {
                "Bearer realm=\"api\""
            };
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "unauthorized",
            )
                .into_response()
        }
    }
}
