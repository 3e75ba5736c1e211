//! Starting the in-process provider, its addresses, switches and counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;

use super::api::api;
use super::end_session::end_session_endpoint;
use super::endpoints::{
    authorize_endpoint, device_authorization_endpoint, metadata_endpoint, revocation_endpoint,
};
use super::http::random_token;
use super::id_token::jwks_endpoint;
use super::introspection;
use super::registration::registration_endpoint;
use super::state::{IdTokenForgery, Inner, ProviderState, RefreshState, TestProvider};
use super::token_endpoint::token_endpoint;
use super::userinfo::userinfo_endpoint;
use crate::clock::Clock;

impl TestProvider {
    /// Starts a provider issuing one-hour tokens, on a free port.
    ///
    /// It installs `jsonwebtoken`'s process-wide crypto provider (the crate's JOSE backend)
    /// unless one is installed: your tests can then use `jsonwebtoken` too, whichever of its
    /// backend features the build enables.
    pub async fn start() -> Self {
        // The provider checks assertions and proofs with jsonwebtoken, an implementation
        // independent of the crate's; naming its backend (the crate's) keeps it from panicking
        // when both backend features are on, in this process's other users of it too.
        crate::jose::install_crypto_provider();
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
                id_token_alg: crate::jose::SigningAlgorithm::EdDSA,
                keys: Arc::new(super::keys::Keys::generate()),
                id_token_forgery: None,
                rotated: false,
                subject: "user-1".to_owned(),
                iss_parameter: true,
                jwks_requests: 0,
                jwks_override: None,
                assertions: Default::default(),
                dpop: Default::default(),
                oidc: Default::default(),
                requests: Default::default(),
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
            .route("/par", axum::routing::post(super::requests::par_endpoint))
            .route(
                "/userinfo",
                axum::routing::get(userinfo_endpoint).post(userinfo_endpoint),
            )
            .route("/end_session", axum::routing::get(end_session_endpoint))
            .route("/register", axum::routing::post(registration_endpoint))
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

    /// Serves `jwks` at [`jwks_url`](Self::jwks_url) instead of the provider's own key set
    /// (`None`, the default, serves the provider's): to see what a client does with a
    /// provider's broken, hostile or odd keys. ID tokens are still signed with the provider's
    /// key.
    pub fn set_jwks(&self, jwks: Option<serde_json::Value>) {
        self.with(|i| i.jwks_override = jwks);
    }

    /// The signature algorithm of ID tokens: `EdDSA` (the default), `ES256`, `RS256` or
    /// `PS256`, each with a key the provider made when it started (RSA: on first use).
    ///
    /// # Panics
    ///
    /// For any other name.
    pub fn set_id_token_algorithm(&self, alg: &str) {
        let alg = match alg {
            "EdDSA" => crate::jose::SigningAlgorithm::EdDSA,
            "ES256" => crate::jose::SigningAlgorithm::ES256,
            "RS256" => crate::jose::SigningAlgorithm::RS256,
            "PS256" => crate::jose::SigningAlgorithm::PS256,
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
            .par_url(self.par_url())
            .device_authorization_url(self.device_authorization_url())
            .revocation_url(self.revocation_url())
            .jwks_url(self.jwks_url())
            .userinfo_url(self.userinfo_url())
            .end_session_url(self.end_session_url())
            .registration_url(self.registration_url());
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

    /// The protected API's base URL (`/api/`): it takes every unexpired, unrevoked access
    /// token this provider issued, and answers JSON naming the token's `client_id`, `sub`
    /// and `resource`.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.base_url())
    }

    /// The RFC 8707 resource indicator of the resource server `name`, `<base>/rs/<name>`,
    /// which is also its address: requests under `<base>/rs/<name>/` need a token issued for
    /// exactly this resource (anything else gets `401 invalid_token`). Name it at sign-in
    /// ([`AuthorizationCodeBuilder::resource`](crate::AuthorizationCodeBuilder::resource),
    /// or [`issue_refresh_token_for_resources`](Self::issue_refresh_token_for_resources)),
    /// then ask for its tokens with `resource` (at most one per token request, and only one
    /// the grant covers; else `invalid_target`, before the refresh token is spent).
    pub fn resource_url(&self, name: &str) -> String {
        format!("{}/rs/{name}", self.base_url())
    }

    /// Spends (rotates) the presented refresh token before refusing a resource the grant
    /// does not cover with `invalid_target`, as oidc-provider 9 does: the new refresh token
    /// is never sent, and presenting the old one again is a reuse (`invalid_grant`). Default
    /// off: the resource is checked first, and the refresh token stays live.
    pub fn set_invalid_target_spends_refresh_token(&self, on: bool) {
        self.with(|i| i.oidc.invalid_target_spends_refresh_token = on);
    }

    /// The resource an access token was issued for (`None` for a token without one, or one
    /// this provider did not issue).
    pub fn access_token_resource(&self, access_token: &str) -> Option<String> {
        self.with(|i| i.access.get(access_token).and_then(|t| t.resource.clone()))
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

    /// Issues a refresh token for the test client, as an authorization code flow by the
    /// current [subject](Self::set_subject) would.
    pub fn issue_refresh_token(&self) -> String {
        self.issue_refresh_token_to(None, &[])
    }

    /// Issues a refresh token for the test client to the user `sub`, as `sub`'s sign-in
    /// would: the tokens its refreshes return belong to `sub` ([`subject_of`](Self::subject_of)).
    pub fn issue_refresh_token_for(&self, sub: &str) -> String {
        self.issue_refresh_token_to(Some(sub.to_owned()), &[])
    }

    /// [`issue_refresh_token`](Self::issue_refresh_token) for a grant that covers these RFC
    /// 8707 resources, as an authorization request naming them would: refreshes may ask for
    /// a token for any one of them, and for no other.
    pub fn issue_refresh_token_for_resources(&self, resources: &[&str]) -> String {
        self.issue_refresh_token_to(None, resources)
    }

    fn issue_refresh_token_to(&self, subject: Option<String>, resources: &[&str]) -> String {
        let rt = random_token("rt-");
        self.with(|i| {
            let subject = subject.or_else(|| Some(i.subject.clone()));
            i.refresh.insert(
                rt.clone(),
                RefreshState {
                    client_id: Self::CLIENT_ID.to_owned(),
                    used: false,
                    jkt: None,
                    subject,
                    resources: resources.iter().map(|r| (*r).to_owned()).collect(),
                    acr: None,
                    authorization_details: None,
                },
            )
        });
        rt
    }

    /// The user an access token was issued to (by a sign-in's code exchange, or a refresh of
    /// a login issued with [`issue_refresh_token_for`](Self::issue_refresh_token_for)), if
    /// known: for checking that every request of a multi-user app carries its own user's
    /// token.
    pub fn subject_of(&self, access_token: &str) -> Option<String> {
        self.with(|i| i.access.get(access_token).and_then(|a| a.subject.clone()))
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
