//! A client's registration at a provider: endpoints, credentials and shared settings.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::clock::{Clock, SystemClock};
use crate::endpoint::{
    AssertionSigner, ClientAssertion, ClientAuthMethod, Endpoint, default_auth_method,
    hmac_algorithm, http_client_from, negotiate_key_algorithm,
};
pub use crate::endpoints::Endpoints;
pub(crate) use crate::endpoints::{endpoint_url, is_loopback};
use crate::error::Error;
use crate::fapi::{self, Fapi2};
use crate::jose::jws::Signer;
use crate::jose::{DpopKey, JwsSigner, SigningAlgorithm};
use crate::login::LostRefresh;
use crate::mtls::{Identity, MtlsAliases, is_tls_method, with_identity};
use crate::provider_codes::DeadGrant;
use crate::retry::RetryPolicy;
use crate::spent_sign_ins::SpentSignIns;
use crate::token::{ClientSecret, ExpiryPolicy};

mod timing;
mod urls;

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
    timeout: Duration,
    lost_refresh: LostRefresh,
    /// The sign-ins completed through every authorization code flow of this configuration.
    spent_sign_ins: Arc<SpentSignIns>,
    fapi: Option<Fapi2>,
    /// Signs request objects (JAR): `request_signing_key`, else the client's private key.
    request_signer: Option<Signer>,
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
    par_url: Option<String>,
    require_par: bool,
    fapi: Option<Fapi2>,
    request_signing_key: Option<Result<Signer, Error>>, // Err: reported by build()
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
    lost_refresh: LostRefresh,
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
            par_url: None,
            require_par: false,
            fapi: None,
            request_signing_key: None,
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
            lost_refresh: LostRefresh::default(),
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

    /// How long a call waits for the provider, retries included.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// What happens after a refresh's answer was lost.
    pub(crate) fn lost_refresh(&self) -> LostRefresh {
        self.inner.lost_refresh
    }

    /// The sign-ins completed through this configuration's authorization code flows.
    pub(crate) fn spent_sign_ins(&self) -> &SpentSignIns {
        &self.inner.spent_sign_ins
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The FAPI 2.0 profile this configuration follows ([`OAuthConfigBuilder::fapi2`]).
    pub fn fapi2(&self) -> Option<Fapi2> {
        self.inner.fapi
    }

    /// The key request objects (JAR) are signed with.
    pub(crate) fn request_signer(&self) -> Option<&Signer> {
        self.inner.request_signer.as_ref()
    }

    /// `danger_allow_insecure_http` was set.
    pub(crate) fn allows_insecure_http(&self) -> bool {
        self.inner.allow_insecure_http
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
        let mut a_par_alias = None;
        if identity.is_some() || is_tls_method(auth_method) {
            let a = std::mem::take(&mut self.mtls_aliases);
            a_par_alias = a.pushed_authorization_request;
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
            par_url: optional(
                "pushed authorization request URL",
                a_par_alias.or(self.par_url),
            )?,
            require_pushed_authorization_requests: self.require_par,
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
        let request_signer = match self
            .request_signing_key
            .or_else(|| self.private_key.clone())
            .transpose()?
        {
            Some(key) if self.fapi.is_some() => Some(fapi_key(key, algs)?),
            other => other,
        };
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
                // FAPI 2.0 §5.4: only PS256, ES256 and EdDSA, whatever else is listed.
                let key = match self.fapi {
                    Some(_) => fapi_key(key, algs)?,
                    None => negotiate_key_algorithm(key, algs)?,
                };
                Some(AssertionSigner::Key(key))
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
        let identity_present = identity.is_some();
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
        let dpop = match self.dpop {
            None => None,
            Some(DpopChoice::Generate(alg)) => {
                Some(DpopKey::generate(alg)?.with_clock(self.clock.clone())?)
            }
            Some(DpopChoice::Key(key)) => Some(key.with_clock(self.clock.clone())?),
        };
        if self.fapi.is_some() {
            fapi::check_client(&fapi::ClientSettings {
                auth_method: auth_method.as_str(),
                dpop_alg: dpop.as_ref().map(|k| k.algorithm().as_str()),
                mtls: identity_present || is_tls_method(auth_method),
                signing_alg: request_signer.as_ref().map(|k| k.algorithm().as_str()),
                issuer_known: endpoints.issuer.is_some(),
            })
            .map_err(Error::Fapi)?;
        }
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
        .with_dpop(dpop);
        Ok(OAuthConfig {
            inner: Arc::new(Inner {
                endpoints,
                endpoint,
                policy: self.policy,
                clock: self.clock,
                allow_insecure_http: insecure,
                timeout: self.timeout,
                lost_refresh: self.lost_refresh,
                spent_sign_ins: Arc::default(),
                fapi: self.fapi,
                request_signer,
            }),
        })
    }
}

/// `key` set to sign with an algorithm FAPI 2.0 allows that the provider lists (an RSA key
/// with PS256), or the duty a provider listing none of them leaves unmet.
fn fapi_key(key: Signer, provider: Option<&[String]>) -> Result<Signer, Error> {
    let allowed = fapi::allowed_of(provider);
    if allowed.is_empty() {
        let refused = provider
            .and_then(|p| p.iter().find_map(|a| fapi::refused_algorithm(a)))
            .unwrap_or("every algorithm the provider lists");
        return Err(Error::Fapi(fapi::FapiDuty::AllowedAlgorithms(refused)));
    }
    negotiate_key_algorithm(key, Some(&allowed))
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
    fn secret_methods_need_a_secret() {
        let e = OAuthConfig::builder("https://a.example/token")
            .client_id("id")
            .auth_method(ClientAuthMethod::ClientSecretPost)
            .build()
            .unwrap_err();
        assert!(e.is_configuration());
    }
}
