//! A client's registration at a provider: endpoints, credentials and shared settings.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::endpoint::{
    AssertionSigner, ClientAssertion, ClientAuthMethod, Endpoint, default_auth_method,
    hmac_algorithm, http_client_from, negotiate_key_algorithm,
};
use crate::error::Error;
use crate::jose::jws::Signer;
use crate::jose::{DpopKey, JwsSigner, SigningAlgorithm};
use crate::mtls::{Identity, MtlsAliases, is_tls_method, with_identity};
use crate::provider_codes::DeadGrant;
use crate::retry::RetryPolicy;
use crate::spent_sign_ins::SpentSignIns;
use crate::token::{ClientSecret, ExpiryPolicy};

/// A client registered at an OAuth provider: its endpoints, its credentials, and the settings
/// every token source made from it shares (timeouts, expiry policy, clock).
///
/// Build one per registration and make token sources from it; it is cheap to clone.
///
/// ```no_run
/// # fn run() -> Result<(), authed::Error> {
/// let config = authed::OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("my-service")
///     .client_secret("s3cret")
///     .build()?;
/// let source = config.client_credentials().scopes(["reports:read"]).build();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct OAuthConfig {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    endpoints: Endpoints,
    endpoint: Endpoint,
    policy: ExpiryPolicy,
    clock: Arc<dyn Clock>,
    allow_insecure_http: bool,
    /// The sign-ins completed through every authorization code flow of this configuration.
    spent_sign_ins: Arc<SpentSignIns>,
}

/// A provider's endpoint URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// The issuer identifier, when known (discovery, presets), exactly as the provider spells
    /// it. RFC 9207 `iss` and ID tokens' `iss` must equal it character for character.
    pub issuer: Option<String>,
    /// The provider's metadata says `authorization_response_iss_parameter_supported: true`
    /// (RFC 9207): a callback without `iss` is then refused. Set with
    /// [`OAuthConfigBuilder::iss_parameter_supported`].
    #[doc(alias = "authorization_response_iss_parameter_supported")]
    pub iss_parameter_supported: bool,
    /// The provider's JSON Web Key Set (`jwks_uri`), for checking ID token signatures.
    pub jwks_url: Option<Url>,
    /// The token endpoint (the provider's `mtls_endpoint_aliases` one when the client
    /// presents a certificate).
    pub token_url: Url,
    /// The authorization endpoint, for the authorization code flow.
    pub authorization_url: Option<Url>,
    /// The device authorization endpoint (RFC 8628).
    pub device_authorization_url: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    pub revocation_url: Option<Url>,
    /// The introspection endpoint (RFC 7662).
    pub introspection_url: Option<Url>,
    /// The OpenID Connect UserInfo endpoint (`userinfo_endpoint`, Core §5.3).
    pub userinfo_url: Option<Url>,
    /// The OpenID Connect RP-Initiated Logout endpoint (`end_session_endpoint`).
    pub end_session_url: Option<Url>,
    /// The dynamic client registration endpoint (`registration_endpoint`, RFC 7591).
    pub registration_url: Option<Url>,
}

/// Builds an [`OAuthConfig`]. Setters never fail; [`build`](Self::build) reports the first
/// problem.
#[derive(Debug)]
#[must_use]
pub struct OAuthConfigBuilder {
    token_url: String,
    issuer: Option<String>,
    iss_parameter_supported: bool,
    jwks_url: Option<String>,
    authorization_url: Option<String>,
    device_authorization_url: Option<String>,
    revocation_url: Option<String>,
    introspection_url: Option<String>,
    /// `userinfo_url`, `end_session_url`, `registration_url`.
    pub(crate) oidc_urls: [Option<String>; 3],
    client_id: Option<String>,
    client_secret: Option<ClientSecret>,
    pub(crate) auth_method: Option<ClientAuthMethod>,
    auth_methods_supported: Option<Vec<String>>,
    auth_signing_algs_supported: Option<Vec<String>>,
    pub(crate) private_key: Option<Result<Signer, Error>>, // Err: reported by build()
    assertion_file: Option<std::path::PathBuf>,
    assertion_audience: Option<String>,
    revoked_grant_errors: Vec<DeadGrant>,
    bearer_token_types: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) allow_insecure_http: bool,
    policy: ExpiryPolicy,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    pub(crate) http: Option<reqwest::ClientBuilder>,
    pub(crate) dpop: Option<DpopChoice>,
    /// The client certificate, or why it could not be read (reported by `build`).
    pub(crate) identity: Option<Result<Identity, Error>>,
    /// `mtls_endpoint_aliases` from discovery.
    pub(crate) mtls_aliases: MtlsAliases,
    /// The client discovery already built from the application's settings.
    pub(crate) discovered_http: Option<reqwest::Client>,
}

impl OAuthConfig {
    /// Starts a configuration for the provider whose token endpoint is `token_url`.
    pub fn builder(token_url: impl Into<String>) -> OAuthConfigBuilder {
        OAuthConfigBuilder {
            token_url: token_url.into(),
            issuer: None,
            iss_parameter_supported: false,
            jwks_url: None,
            authorization_url: None,
            device_authorization_url: None,
            revocation_url: None,
            introspection_url: None,
            oidc_urls: Default::default(),
            client_id: None,
            client_secret: None,
            auth_method: None,
            auth_methods_supported: None,
            auth_signing_algs_supported: None,
            private_key: None,
            assertion_file: None,
            assertion_audience: None,
            revoked_grant_errors: Vec::new(),
            bearer_token_types: Vec::new(),
            timeout: Duration::from_secs(30),
            allow_insecure_http: false,
            policy: ExpiryPolicy::default(),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            http: None,
            dpop: None,
            identity: None,
            mtls_aliases: MtlsAliases::default(),
            discovered_http: None,
        }
    }

    /// The provider's endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.endpoint.client_id()
    }

    /// How the client authenticates to the provider's endpoints.
    pub fn client_auth_method(&self) -> ClientAuthMethod {
        self.inner.endpoint.auth_method()
    }

    /// The expiry policy shared by the sources made from this configuration.
    pub fn expiry_policy(&self) -> ExpiryPolicy {
        self.inner.policy
    }

    /// How requests to the provider are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.endpoint.retry_policy()
    }

    /// The DPoP key every token request of this configuration is signed with, if DPoP is
    /// on ([`OAuthConfigBuilder::dpop`]).
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.endpoint.dpop_key()
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The sign-ins completed through this configuration's authorization code flows.
    pub(crate) fn spent_sign_ins(&self) -> &SpentSignIns {
        &self.inner.spent_sign_ins
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// `danger_allow_insecure_http` was set.
    pub(crate) fn allows_insecure_http(&self) -> bool {
        self.inner.allow_insecure_http
    }
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Parses an endpoint URL and refuses plain HTTP to anything but loopback.
pub(crate) fn endpoint_url(what: &str, raw: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let url = Url::parse(raw).map_err(|e| Error::config(format!("invalid {what}: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(Error::config(format!(
            "{what} must use https (plain http is only accepted for loopback hosts, or with \
             danger_allow_insecure_http)"
        ))),
        other => Err(Error::config(format!(
            "{what} has unsupported scheme {other:?}"
        ))),
    }
}

impl OAuthConfigBuilder {
    /// The client id. Required.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The client secret, for confidential clients.
    pub fn client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(ClientSecret::new(client_secret));
        self
    }

    /// How the client authenticates. Without this setting, the method follows from what the
    /// client has and what the provider lists in `token_endpoint_auth_methods_supported` (its
    /// discovered metadata or its preset):
    ///
    /// - a [`private_key`](Self::private_key): `private_key_jwt`;
    /// - a secret: `client_secret_basic`, else `client_secret_post`, else
    ///   `client_secret_jwt`, the first one listed (Basic when nothing is listed);
    /// - neither: `none` (a public client; providers that accept them seldom list `none`).
    ///
    /// When the provider lists none of the methods the client's credentials allow,
    /// [`build`](Self::build) fails with [`Error::Config`]: it never falls back to a method
    /// the provider did not offer. A method set here is used as set.
    pub fn auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.auth_method = Some(method);
        self
    }

    /// The key the client authenticates with (`private_key_jwt`, RFC 7523 §2.2): every
    /// request to the provider carries a fresh JWT signed with it. Makes `private_key_jwt` the
    /// [`auth_method`](Self::auth_method) unless one is set. A [`SigningKey`](crate::SigningKey)
    /// (with the [`kid`](crate::SigningKey::with_kid) the provider registered), or any
    /// [`JwsSigner`]: a KMS or HSM key signs each assertion there, before the request is sent.
    ///
    /// Each assertion has `iss` and `sub` set to the client id, a random `jti`, `iat`,
    /// `nbf`, and an `exp` 60 seconds later, from the configuration's
    /// [`clock`](Self::clock); its audience is described at
    /// [`client_assertion_audience`](Self::client_assertion_audience). When the provider
    /// lists `token_endpoint_auth_signing_alg_values_supported`, the key's algorithm must be
    /// listed, or another one a `SigningKey` can sign with (PS256 for RS256), else
    /// [`build`](Self::build) fails, as for a signer whose algorithm does not fit its key.
    ///
    /// ```
    /// # fn run() -> Result<(), authed::Error> {
    /// let key = authed::SigningKey::generate(authed::SigningAlgorithm::ES256)?.with_kid("k1"); // or from_pem
    /// let config = authed::OAuthConfig::builder("https://auth.example.com/oauth/token")
    ///     .issuer("https://auth.example.com")
    ///     .client_id("reports-job")
    ///     .private_key(key)
    ///     .build()?;
    /// assert_eq!(config.client_auth_method(), authed::ClientAuthMethod::PrivateKeyJwt);
    /// # Ok(()) }
    /// # run().unwrap();
    /// ```
    pub fn private_key(mut self, key: impl JwsSigner + 'static) -> Self {
        self.private_key = Some(Signer::new(key));
        self
    }

    /// A client assertion signed by someone else, read from `path` at each request and sent
    /// as `private_key_jwt` (`client_assertion_type` jwt-bearer, the file's JWT as
    /// `client_assertion`). This is workload identity federation at Microsoft Entra (a
    /// Kubernetes service account token in `AZURE_FEDERATED_TOKEN_FILE`, or a GitHub Actions
    /// OIDC token saved to a file, registered as a federated credential of the app). Makes
    /// `private_key_jwt` the [`auth_method`](Self::auth_method) unless one is set.
    pub fn client_assertion_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.assertion_file = Some(path.into());
        self
    }

    /// The `aud` of `private_key_jwt` and `client_secret_jwt` assertions.
    ///
    /// Default: the [`issuer`](Self::issuer) when it is known (discovery and presets set it),
    /// else the token endpoint URL. The issuer is what RFC 7523bis and FAPI 2.0 require, and
    /// it stops a rogue endpoint from replaying the assertion elsewhere; oidc-provider,
    /// Keycloak, Auth0 and Duende IdentityServer accept it. Microsoft Entra and Okta want the
    /// token endpoint URL: their presets set it, and so should you for such a provider
    /// configured by hand (`.client_assertion_audience(token_url)`).
    pub fn client_assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.assertion_audience = Some(audience.into());
        self
    }

    /// The provider's `token_endpoint_auth_methods_supported`, from discovery or a preset:
    /// decides the default auth method.
    pub(crate) fn auth_methods_supported<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.auth_methods_supported = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// The provider's `token_endpoint_auth_signing_alg_values_supported`: decides the
    /// algorithm of client assertions.
    pub(crate) fn auth_signing_algs_supported<I, S>(mut self, algs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.auth_signing_algs_supported = Some(algs.into_iter().map(Into::into).collect());
        self
    }

    /// Error codes that mean, at this provider, that the grant is dead (the refresh token or
    /// code was revoked, expired or spent), in addition to the built-in ones (`invalid_grant`
    /// and the codes listed at [`Error::TokenRevoked`]). Each is then reported as
    /// [`Error::TokenRevoked`], and a refresh that fails with one removes the stored login
    /// instead of sending the dead refresh token again. A string is a code; a [`DeadGrant`]
    /// can also require words in the description. Compared ignoring ASCII case; a numeric
    /// code (`{"error": 400}`) is written as its digits. Adds to a preset's codes.
    pub fn revoked_grant_errors<I, S>(mut self, codes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<DeadGrant>,
    {
        self.revoked_grant_errors
            .extend(codes.into_iter().map(Into::into));
        self
    }

    /// `token_type` names this provider gives its bearer tokens (eBay's `User Access Token`
    /// and `Application Access Token`), in addition to `Bearer` (any case) and Slack's `bot`
    /// and `user`. Tokens of these types are kept with their name and sent as
    /// `Authorization: Bearer`; any other type is [`Error::UnsupportedTokenType`] (RFC 6749
    /// §7.1). Compared ignoring ASCII case. Adds to a preset's names.
    pub fn bearer_token_types<I, S>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.bearer_token_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    /// Replaces the token endpoint (to override a preset's or a discovered one).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self.mtls_aliases.token = None;
        self
    }

    /// The issuer identifier, exactly as the provider's metadata spells it (a trailing `/`
    /// counts). RFC 9207 `iss` callback parameters and ID tokens' `iss` must equal it.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Whether the provider always sends RFC 9207 `iss` on authorization responses
    /// (`authorization_response_iss_parameter_supported`; discovery reads it). When `true`,
    /// a callback without `iss` is refused. Default `false`. Named like
    /// [`Endpoints::iss_parameter_supported`], which it sets.
    #[doc(alias = "authorization_response_iss_parameter_supported")]
    pub fn iss_parameter_supported(mut self, supported: bool) -> Self {
        self.iss_parameter_supported = supported;
        self
    }

    /// The provider's JSON Web Key Set URL (`jwks_uri`; discovery reads it), needed to
    /// validate the ID token of an OpenID Connect sign-in.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The authorization endpoint.
    pub fn authorization_url(mut self, url: impl Into<String>) -> Self {
        self.authorization_url = Some(url.into());
        self
    }

    /// The device authorization endpoint.
    pub fn device_authorization_url(mut self, url: impl Into<String>) -> Self {
        self.device_authorization_url = Some(url.into());
        self.mtls_aliases.device_authorization = None;
        self
    }

    /// The revocation endpoint.
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self.mtls_aliases.revocation = None;
        self
    }

    /// The introspection endpoint.
    pub fn introspection_url(mut self, url: impl Into<String>) -> Self {
        self.introspection_url = Some(url.into());
        self.mtls_aliases.introspection = None;
        self
    }

    /// The OpenID Connect UserInfo endpoint (discovery reads `userinfo_endpoint`), for
    /// [`RefreshTokenSource::userinfo`](crate::RefreshTokenSource::userinfo).
    pub fn userinfo_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[0] = Some(url.into());
        self
    }

    /// The RP-Initiated Logout endpoint (discovery reads `end_session_endpoint`), for
    /// [`OAuthConfig::end_session`].
    pub fn end_session_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[1] = Some(url.into());
        self
    }

    /// The dynamic client registration endpoint (discovery reads `registration_endpoint`),
    /// for [`register`](Self::register).
    pub fn registration_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[2] = Some(url.into());
        self
    }

    /// Timeout of each request to the provider. Default 30 seconds.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How requests to the provider are retried after transient failures. Default
    /// [`RetryPolicy::default()`]: 3 attempts within 10 seconds, for the requests that are
    /// safe to send twice; never an authorization code exchange.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Your own HTTP client settings for every request to the provider's endpoints (token,
    /// revocation, introspection, device authorization, JWKS): root certificates of a
    /// private CA, a proxy, a `User-Agent`. A client certificate set with
    /// [`client_certificate`](Self::client_certificate) is added to them. For discovery, pass them to
    /// [`OAuthConfig::discover_with`] instead, which keeps them for the rest.
    ///
    /// The crate still enforces its own rules on top, whatever the builder says: redirects
    /// are never followed, the [`timeout`](Self::timeout) applies, and responses are capped
    /// at 1 MiB. A failed certificate check is [`Error::ServerCertificateRejected`], a client
    /// certificate the server refuses [`Error::ClientCertificateRejected`]; neither is
    /// [retryable](Error::is_retryable).
    ///
    /// ```no_run
    /// # fn run(ca_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// let http = authed::reqwest::Client::builder()
    ///     .add_root_certificate(authed::reqwest::Certificate::from_pem(ca_pem)?)
    ///     .user_agent("my-service/1.0");
    /// let config = authed::OAuthConfig::builder("https://auth.internal/token")
    ///     .client_id("my-service")
    ///     .client_secret("s3cret")
    ///     .http_client(http)
    ///     .build()?;
    /// # let _ = config; Ok(()) }
    /// ```
    pub fn http_client(mut self, builder: reqwest::ClientBuilder) -> Self {
        self.http = Some(builder);
        self
    }

    /// The client certificate and its private key, in PEM, presented in the TLS handshake
    /// with every provider endpoint (mutual TLS, RFC 8705): for
    /// [`ClientAuthMethod::TlsClientAuth`] and [`ClientAuthMethod::SelfSignedTlsClientAuth`],
    /// and for certificate-bound access tokens. Read as [`identity_from_pem`](crate::identity_from_pem)
    /// does (the key as PKCS#8); a certificate that cannot be read is reported by
    /// [`build`](Self::build). Added to your [`http_client`](Self::http_client) settings if
    /// you give any.
    ///
    /// When a certificate is set, the provider's `mtls_endpoint_aliases` (from discovery)
    /// replace the token, revocation, introspection and device authorization endpoints
    /// (RFC 8705 §5), unless you set those URLs yourself after discovery.
    ///
    /// A provider that binds access tokens to the certificate (`cnf.x5t#S256`) accepts them
    /// only over a connection presenting the same certificate: give the API client the same
    /// identity, as shown at [`identity_from_pem`](crate::identity_from_pem).
    #[cfg(any(feature = "default-tls", feature = "native-tls"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "default-tls", feature = "native-tls"))))]
    pub fn client_certificate(
        mut self,
        cert_pem: impl AsRef<[u8]>,
        key_pem: impl AsRef<[u8]>,
    ) -> Self {
        self.identity = Some(crate::mtls::identity_from_pem(
            cert_pem.as_ref(),
            key_pem.as_ref(),
        ));
        self
    }

    /// [`client_certificate`](Self::client_certificate) from an identity you read yourself
    /// (PKCS#12, or for a TLS backend you chose on your own `http_client` settings).
    #[cfg(any(feature = "default-tls", feature = "native-tls"))]
    #[cfg_attr(docsrs, doc(cfg(any(feature = "default-tls", feature = "native-tls"))))]
    pub fn tls_identity(mut self, identity: reqwest::Identity) -> Self {
        self.identity = Some(Ok(identity));
        self
    }

    /// How long before its expiry a token stops being used. Default 60 seconds, clamped to a
    /// quarter of a token's lifetime (see [`ExpiryPolicy`]).
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.policy = ExpiryPolicy::new(margin, self.policy.refresh_ahead());
        self
    }

    /// How long before the margin a replacement is fetched in the background, while callers
    /// keep the current token. Default 5 minutes, clamped like the margin.
    pub fn refresh_ahead(mut self, ahead: Duration) -> Self {
        self.policy = ExpiryPolicy::new(self.policy.expiry_margin(), ahead);
        self
    }

    /// The clock expiry decisions use. Replace it in tests.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Turns on DPoP (RFC 9449) with a key generated by [`build`](Self::build): every token
    /// request, for every grant, carries a proof, and the tokens the provider binds to the
    /// key are sent as `Authorization: DPoP <token>` with a proof per request by
    /// [`AuthedClient`](crate::AuthedClient). One key per configuration (build one
    /// configuration per key you want); a stored login keeps the key it is bound to, and
    /// refreshes with it after a restart.
    ///
    /// The provider must answer `token_type: DPoP`: a Bearer token in reply to a DPoP request
    /// is refused with [`Error::UnsupportedTokenType`], so that a provider that does not bind
    /// tokens is noticed instead of silently downgrading to bearer tokens. Nonces
    /// (`use_dpop_nonce`) are handled: one retry per new nonce, the latest nonce remembered per
    /// origin.
    pub fn dpop(mut self, algorithm: SigningAlgorithm) -> Self {
        self.dpop = Some(DpopChoice::Generate(algorithm));
        self
    }

    /// Turns on DPoP like [`dpop`](Self::dpop), with your own key (kept in a secret store,
    /// shared by configurations, or held by a key service: [`DpopKey::from_signer`]).
    pub fn dpop_key(mut self, key: DpopKey) -> Self {
        self.dpop = Some(DpopChoice::Key(key));
        self
    }

    /// Allows plain-HTTP endpoints on hosts other than loopback. Credentials and tokens then
    /// cross the network in clear: only for closed test networks.
    pub fn danger_allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Checks the settings and builds the configuration.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing client id, an unparsable URL, plain HTTP to a host that
    /// is not loopback, a secret-based auth method without a secret, a TLS client
    /// authentication method without a client certificate (and without your own
    /// `http_client` settings, which may carry one), a client certificate that cannot be read
    /// or was added to a client [`OAuthConfig::discover_with`] built, or an HTTP client that
    /// cannot be built (a bad certificate or proxy setting).
    pub fn build(mut self) -> Result<OAuthConfig, Error> {
        let insecure = self.allow_insecure_http;
        let identity = self.identity.transpose()?;
        let auth_method = match self.auth_method {
            Some(method) => method,
            None => default_auth_method(
                self.private_key.is_some() || self.assertion_file.is_some(),
                self.client_secret.is_some(),
                self.auth_methods_supported.as_deref(),
            )?,
        };
        // RFC 8705 §5: a client presenting a certificate uses the aliases where there are any.
        if identity.is_some() || is_tls_method(auth_method) {
            let a = std::mem::take(&mut self.mtls_aliases);
            self.token_url = a.token.unwrap_or(self.token_url);
            self.revocation_url = a.revocation.or(self.revocation_url);
            self.introspection_url = a.introspection.or(self.introspection_url);
            self.device_authorization_url =
                a.device_authorization.or(self.device_authorization_url);
        }
        let [userinfo, end_session, registration] = self.oidc_urls;
        let optional = |what: &str, raw: Option<String>| {
            raw.map(|r| endpoint_url(what, &r, insecure)).transpose()
        };
        let endpoints = Endpoints {
            token_url: endpoint_url("token URL", &self.token_url, insecure)?,
            issuer: self
                .issuer
                .map(|i| {
                    Url::parse(&i).map_err(|e| Error::config(format!("invalid issuer: {e}")))?;
                    Ok::<_, Error>(i)
                })
                .transpose()?,
            iss_parameter_supported: self.iss_parameter_supported,
            jwks_url: optional("JWKS URL", self.jwks_url)?,
            authorization_url: optional("authorization URL", self.authorization_url)?,
            device_authorization_url: optional(
                "device authorization URL",
                self.device_authorization_url,
            )?,
            revocation_url: optional("revocation URL", self.revocation_url)?,
            introspection_url: optional("introspection URL", self.introspection_url)?,
            userinfo_url: optional("userinfo URL", userinfo)?,
            end_session_url: optional("end session URL", end_session)?,
            registration_url: optional("registration URL", registration)?,
        };
        let client_id = self
            .client_id
            .ok_or_else(|| Error::config("a client id is required"))?;
        let e = &endpoints;
        let insecure_in_use = [
            Some(&e.token_url),
            e.authorization_url.as_ref(),
            e.device_authorization_url.as_ref(),
            e.revocation_url.as_ref(),
            e.introspection_url.as_ref(),
            e.jwks_url.as_ref(),
            e.userinfo_url.as_ref(),
            e.end_session_url.as_ref(),
            e.registration_url.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|u| u.scheme() == "http" && !is_loopback(u));
        if insecure_in_use {
            tracing::warn!(
                "danger_allow_insecure_http: provider endpoints use plain HTTP on a host that \
                 is not loopback; credentials and tokens cross the network in clear"
            );
        }
        let needs_secret = matches!(
            auth_method,
            ClientAuthMethod::ClientSecretBasic
                | ClientAuthMethod::ClientSecretPost
                | ClientAuthMethod::ClientSecretJwt
        );
        if needs_secret && self.client_secret.is_none() {
            return Err(Error::config(format!(
                "{} needs a client secret",
                auth_method.as_str()
            )));
        }
        let algs = self.auth_signing_algs_supported.as_deref();
        let signer = match auth_method {
            ClientAuthMethod::PrivateKeyJwt if self.assertion_file.is_some() => {
                if self.private_key.is_some() {
                    return Err(Error::config(
                        "give either a private key or a client assertion file, not both",
                    ));
                }
                self.assertion_file.map(AssertionSigner::File)
            }
            ClientAuthMethod::PrivateKeyJwt => {
                let key = self.private_key.ok_or_else(|| {
                    Error::config(
                        "private_key_jwt needs a private key (OAuthConfigBuilder::private_key)",
                    )
                })??;
                Some(AssertionSigner::Key(negotiate_key_algorithm(key, algs)?))
            }
            ClientAuthMethod::ClientSecretJwt => {
                Some(AssertionSigner::Secret(hmac_algorithm(algs)?))
            }
            _ => None,
        };
        let assertion = signer.map(|signer| ClientAssertion {
            signer,
            audience: self
                .assertion_audience
                .clone()
                .or_else(|| endpoints.issuer.clone())
                .unwrap_or_else(|| endpoints.token_url.to_string()),
            clock: self.clock.clone(),
        });
        // Your own settings may carry a certificate we cannot see; otherwise one is needed.
        let own_settings = self.http.is_some() || self.discovered_http.is_some();
        if is_tls_method(auth_method) && identity.is_none() && !own_settings {
            return Err(Error::config(format!(
                "{} needs a client certificate (client_certificate or tls_identity)",
                auth_method.as_str()
            )));
        }
        let http = match (self.http, self.discovered_http, identity) {
            (Some(builder), _, identity) => {
                http_client_from(with_identity(builder, identity), self.timeout)?
            }
            (None, Some(_), Some(_)) => {
                return Err(Error::config(
                    "a client certificate cannot be added to the client discover_with built: \
                     put it on the ClientBuilder you pass to discover_with \
                     (ClientBuilder::identity), or pass http_client",
                ));
            }
            (None, Some(client), None) => client,
            (None, None, identity) => http_client_from(
                with_identity(reqwest::ClientBuilder::default(), identity),
                self.timeout,
            )?,
        };
        let endpoint = Endpoint::new(
            client_id,
            self.client_secret,
            auth_method,
            http,
            self.retry,
            self.timeout,
        )
        .with_revoked_grant_errors(self.revoked_grant_errors)
        .with_bearer_token_types(self.bearer_token_types)
        .with_clock(self.clock.clone())
        .with_client_assertion(assertion)
        .with_dpop(match self.dpop {
            None => None,
            Some(DpopChoice::Generate(alg)) => {
                Some(DpopKey::generate(alg)?.with_clock(self.clock.clone())?)
            }
            Some(DpopChoice::Key(key)) => Some(key.with_clock(self.clock.clone())?),
        });
        Ok(OAuthConfig {
            inner: Arc::new(Inner {
                endpoints,
                endpoint,
                policy: self.policy,
                clock: self.clock,
                allow_insecure_http: insecure,
                spent_sign_ins: Arc::default(),
            }),
        })
    }
}

/// How the configuration gets its DPoP key.
#[derive(Debug)]
pub(crate) enum DpopChoice {
    Generate(SigningAlgorithm),
    Key(DpopKey),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(endpoint_url("t", "http://127.0.0.1:8080/token", false).is_ok());
        assert!(endpoint_url("t", "http://[::1]/token", false).is_ok());
        assert!(endpoint_url("t", "http://localhost/token", false).is_ok());
        assert!(matches!(
            endpoint_url("t", "http://auth.example.com/token", false),
            Err(Error::Config(_))
        ));
        assert!(endpoint_url("t", "http://auth.example.com/token", true).is_ok());
        assert!(endpoint_url("t", "ftp://auth.example.com/token", true).is_err());
    }

    #[test]
    fn secret_methods_need_a_secret() {
        let e = OAuthConfig::builder("https://a.example/token")
            .client_id("id")
            .auth_method(ClientAuthMethod::ClientSecretPost)
            .build()
            .unwrap_err();
        assert!(e.is_configuration());
    }
}
