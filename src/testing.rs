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
/// The token endpoint (`/token`) implements the client credentials and refresh token
/// grants with `client_secret_basic` and `client_secret_post`, issues opaque tokens with a
/// configurable lifetime, rotates refresh tokens and answers `invalid_grant` to any reuse of a
/// rotated one. Everything under `/api/` needs a valid token and answers JSON, or
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
}

#[derive(Debug, Clone)]
struct Issued {
    client_id: String,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct RefreshState {
    client_id: String,
    used: bool,
}

fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", oauth2::CsrfToken::new_random().secret())
}

impl TestProvider {
    /// The client id the provider accepts.
    pub const CLIENT_ID: &'static str = "test-client";
    /// The client secret the provider accepts.
    pub const CLIENT_SECRET: &'static str = "test-secret";

    /// Starts a provider issuing one-hour tokens, on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(ProviderState {
            token_requests: AtomicUsize::new(0),
            api_requests: AtomicUsize::new(0),
            api_rejections: AtomicUsize::new(0),
            inner: Mutex::new(Inner {
                lifetime: Duration::from_secs(3600),
                latency: Duration::ZERO,
                refresh_tokens_for_client_credentials: false,
                failure: None,
                access: HashMap::new(),
                refresh: HashMap::new(),
            }),
        });
        let app = Router::new()
            .route("/token", axum::routing::post(token_endpoint))
            .fallback(api)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
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
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD.decode(basic).ok()?;
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
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    match client_credentials(&headers, &form) {
        Some((id, secret))
            if id == TestProvider::CLIENT_ID && secret == TestProvider::CLIENT_SECRET => {}
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
        }
    }
    let mut inner = state.lock();
    let with_refresh = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => inner.refresh_tokens_for_client_credentials,
        Some("refresh_token") => {
            let presented = form.get("refresh_token").cloned().unwrap_or_default();
            match inner.refresh.get_mut(&presented) {
                Some(rt) if !rt.used && rt.client_id == TestProvider::CLIENT_ID => rt.used = true,
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token is invalid, expired or already used",
                    );
                }
            }
            true
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "this provider supports client_credentials and refresh_token",
            );
        }
    };
    let access = random_token("at-");
    let lifetime = inner.lifetime;
    inner.access.insert(
        access.clone(),
        Issued {
            client_id: TestProvider::CLIENT_ID.to_owned(),
            expires: Instant::now() + lifetime,
        },
    );
    let mut response = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs_f64(),
    });
    if let Some(scope) = form.get("scope") {
        response["scope"] = json!(scope);
    }
    if with_refresh {
        let rt = random_token("rt-");
        inner.refresh.insert(
            rt.clone(),
            RefreshState {
                client_id: TestProvider::CLIENT_ID.to_owned(),
                used: false,
            },
        );
        response["refresh_token"] = json!(rt);
    }
    axum::Json(response).into_response()
}

async fn api(State(state): State<Arc<ProviderState>>, uri: Uri, headers: HeaderMap) -> Response {
    if !uri.path().starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
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
