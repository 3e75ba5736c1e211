//! The in-process provider's state: the [`TestProvider`] handle, what it has issued, and the
//! switches tests set. Every endpoint reads and writes it under one lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use super::client_registry;
use super::client_registry::Assertions;
use super::dpop_server;
use super::request_state::RequestState;
use crate::clock::SystemClock;

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
/// `/revoke` implements RFC 7009, `/introspect` RFC 7662, `/userinfo` OpenID Connect Core
/// §5.3 ([`userinfo_url`](Self::userinfo_url)), `/end_session` RP-Initiated Logout
/// ([`end_session_url`](Self::end_session_url)), `/register` RFC 7591
/// ([`registration_url`](Self::registration_url)); tokens are issued per RFC 8707 resource
/// ([`resource_url`](Self::resource_url)). Everything under `/api/` needs a valid token and answers JSON, or
/// `401` with `WWW-Authenticate: Bearer error="invalid_token"`. Counters and switches let
/// tests check what happened and inject failures. The server stops when this is dropped.
#[derive(Debug)]
pub struct TestProvider {
    pub(super) addr: SocketAddr,
    pub(super) state: Arc<ProviderState>,
    pub(super) _shutdown: tokio::sync::oneshot::Sender<()>,
}

#[derive(Debug)]
pub(super) struct ProviderState {
    pub(super) token_requests: AtomicUsize,
    pub(super) invalid_grants: AtomicUsize,
    pub(super) api_requests: AtomicUsize,
    pub(super) api_rejections: AtomicUsize,
    pub(super) inner: Mutex<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) lifetime: Duration,
    pub(super) latency: Duration,
    pub(super) refresh_tokens_for_client_credentials: bool,
    pub(super) failure: Option<(u16, &'static str, String)>,
    pub(super) access: HashMap<String, Issued>,
    pub(super) refresh: HashMap<String, RefreshState>,
    pub(super) issuer: String,
    pub(super) rotate_refresh_tokens: bool,
    pub(super) presented_refresh_tokens: Vec<String>,
    pub(super) authorize_error: Option<(String, String)>,
    pub(super) authorize_requests: Vec<HashMap<String, String>>,
    pub(super) codes: HashMap<String, CodeGrant>,
    pub(super) token_forms: Vec<HashMap<String, String>>,
    pub(super) device_codes: HashMap<String, bool>,
    pub(super) device_script: std::collections::VecDeque<String>,
    pub(super) device_interval: Option<u64>,
    pub(super) device_expires_in: u64,
    pub(super) device_polls: Vec<tokio::time::Instant>,
    pub(super) revocations: Vec<(String, Option<String>)>,
    pub(super) id_token_alg: crate::jose::SigningAlgorithm,
    pub(super) keys: Arc<super::keys::Keys>,
    pub(super) id_token_forgery: Option<IdTokenForgery>,
    pub(super) rotated: bool,
    pub(super) subject: String,
    pub(super) iss_parameter: bool,
    pub(super) jwks_requests: usize,
    /// A document served at `/jwks` instead of the provider's own key set.
    pub(super) jwks_override: Option<serde_json::Value>,
    pub(super) assertions: client_registry::Assertions,
    pub(super) dpop: dpop_server::DpopServer,
    pub(super) oidc: OidcState,
    /// PAR, request objects, response modes, rich authorization details and `acr`.
    pub(super) requests: RequestState,
}

/// UserInfo, RP-Initiated Logout and dynamic registration: what they issued, saw and were
/// told.
#[derive(Debug, Default)]
pub(super) struct OidcState {
    pub(super) userinfo_signed: bool,
    pub(super) userinfo_subject: Option<String>,
    pub(super) userinfo_requests: usize,
    /// Every ID token issued, with the client it was issued to: an `id_token_hint` must be
    /// one of them.
    pub(super) id_tokens: HashMap<String, String>,
    /// `post_logout_redirect_uris` of the built-in clients.
    pub(super) post_logout_redirect_uris: Vec<String>,
    pub(super) end_sessions: Vec<HashMap<String, String>>,
    /// Clients registered through `/register`, by id.
    pub(super) registered: HashMap<String, Registered>,
    pub(super) registration_token: Option<String>,
    pub(super) registrations: Vec<serde_json::Value>,
    pub(super) invalid_target_spends_refresh_token: bool,
}

/// A client registered dynamically (RFC 7591).
#[derive(Debug, Clone)]
pub(super) struct Registered {
    pub(super) redirect_uris: Vec<String>,
    pub(super) post_logout_redirect_uris: Vec<String>,
    pub(super) public: bool,
}

#[derive(Debug, Clone)]
pub(super) struct CodeGrant {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) challenge: String,
    pub(super) used: bool,
    pub(super) nonce: Option<String>,
    pub(super) openid: bool,
    pub(super) subject: String,
    pub(super) dpop_jkt: Option<String>,
    /// The RFC 8707 `resource`s of the authorization request.
    pub(super) resources: Vec<String>,
    /// The authentication the user achieved: `acr` and `auth_time`.
    pub(super) acr: Option<String>,
    pub(super) auth_time: u64,
    /// The `authorization_details` granted (RFC 9396).
    pub(super) authorization_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub(super) struct Issued {
    pub(super) client_id: String,
    pub(super) expires: Instant,
    pub(super) jkt: Option<String>,
    pub(super) scope: Option<String>,
    pub(super) issued_at: SystemTime,
    /// The user it was issued for (`None` for client credentials).
    pub(super) subject: Option<String>,
    /// The RFC 8707 resource it was issued for: its audience.
    pub(super) resource: Option<String>,
    /// The `acr` of the sign-in the token comes from, for the API's step-up rule.
    pub(super) acr: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct RefreshState {
    pub(super) client_id: String,
    pub(super) used: bool,
    /// A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
    pub(super) jkt: Option<String>,
    /// The user of the grant, carried to every rotated refresh token.
    pub(super) subject: Option<String>,
    /// The resources the grant covers (RFC 8707 §2.2): a token request may name one of them.
    pub(super) resources: Vec<String>,
    /// What the sign-in granted, carried to every refreshed token.
    pub(super) acr: Option<String>,
    pub(super) authorization_details: Option<serde_json::Value>,
}

impl TestProvider {
    /// The client id the provider accepts.
    pub const CLIENT_ID: &'static str = "test-client";
    /// The client secret the provider accepts.
    pub const CLIENT_SECRET: &'static str = "test-secret";
    /// A public client (no secret, `auth_method(ClientAuthMethod::None)`), as native apps are.
    pub const PUBLIC_CLIENT_ID: &'static str = "test-public-client";

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state.lock())
    }
}

impl ProviderState {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Every client the provider knows starts with the test client and its secret.
impl Default for Assertions {
    fn default() -> Self {
        let mut secrets = HashMap::new();
        secrets.insert(
            TestProvider::CLIENT_ID.to_owned(),
            TestProvider::CLIENT_SECRET.to_owned(),
        );
        Assertions {
            keys: HashMap::new(),
            secrets,
            seen: HashMap::new(),
            clock: Arc::new(SystemClock),
            accepted: Vec::new(),
            exchange_token_type: "Bearer".to_owned(),
        }
    }
}
