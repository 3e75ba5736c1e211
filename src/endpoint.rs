//! The one place that talks to a provider's endpoints: client authentication, form encoding,
//! no redirects, a timeout, a response size cap, provider quirks normalised, and RFC 6749 §5.2
//! errors mapped to typed errors. Every grant, revocation and device authorization goes
//! through [`Endpoint::attempts`], and every provider call (JWKS and discovery too) through
//! [`observed`], which gives it its `tracing` span and metrics.
//!
//! We build these requests ourselves rather than through `oauth2`'s `AsyncHttpClient`: its
//! response parsing rejects the quirks real providers have (string `expires_in`,
//! form-encoded bodies, errors sent with HTTP 200) and has no size cap, and its reqwest
//! integration is for reqwest 0.12. `oauth2` still provides PKCE and state generation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Map, Value};
use tracing::Instrument as _;

use crate::dpop::DpopKey;
use crate::error::{Error, OAuthError};
use crate::retry::{Gate, RetryPolicy, parse_retry_after};
use crate::signing_key::SigningKey;
use crate::telemetry::{self, Call};
use crate::token::{AccessToken, ClientSecret, Clock, IdToken, RefreshToken, Token};

/// Go's x/oauth2 caps token responses at 1 MiB too; no real token response comes close.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// How the client proves its identity to the provider's endpoints (token, revocation, device
/// authorization, introspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). The default for
    /// clients with a secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// A JWT signed with the client's private key in the body (`client_assertion`, RFC 7523
    /// §2.2, OpenID Connect Core §9). The default for clients with a
    /// [`private_key`](crate::OAuthConfigBuilder::private_key). The secret never leaves the
    /// client, and each assertion is valid for one request.
    PrivateKeyJwt,
    /// A JWT signed with the client secret (HMAC, HS256 unless the provider lists only
    /// HS384 or HS512) in the body: the secret itself is not sent. Chosen by discovery only
    /// when the provider lists neither Basic nor post.
    ClientSecretJwt,
    /// Only `client_id` in the body: public clients (native and browser apps).
    None,
    /// Mutual TLS with a certificate from a CA the provider trusts (RFC 8705 §2.1): the
    /// client certificate set with
    /// [`client_certificate`](crate::OAuthConfigBuilder::client_certificate) authenticates
    /// the client; only `client_id` goes in the body.
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered with the provider (RFC 8705
    /// §2.2); otherwise as [`TlsClientAuth`](Self::TlsClientAuth).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The method's name in provider metadata (`token_endpoint_auth_methods_supported`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::ClientSecretJwt => "client_secret_jwt",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid. Short, because it is built per request: a stolen
/// one is useless a minute later (and providers refuse a second use of its `jti`).
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// What signs the client assertions of `private_key_jwt` and `client_secret_jwt`, and the
/// audience they name.
#[derive(Clone)]
pub(crate) struct ClientAssertion {
    pub(crate) signer: AssertionSigner,
    pub(crate) audience: String,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The key of a client assertion.
#[derive(Clone)]
pub(crate) enum AssertionSigner {
    /// `private_key_jwt`.
    Key(SigningKey),
    /// `client_secret_jwt` with this HMAC algorithm and the client secret.
    Secret(jsonwebtoken::Algorithm),
    /// An assertion someone else signs, read from this file at each request (Entra workload
    /// identity federation: `AZURE_FEDERATED_TOKEN_FILE`).
    File(std::path::PathBuf),
}

impl ClientAssertion {
    /// A fresh assertion: `iss = sub = client_id`, the audience, a random `jti`, `iat`,
    /// `nbf` and `exp` from the configuration's clock.
    async fn build(
        &self,
        client_id: &str,
        secret: Option<&ClientSecret>,
    ) -> Result<secrecy::SecretString, Error> {
        if let AssertionSigner::File(path) = &self.signer {
            return read_assertion_file(path).await;
        }
        let claims = jwt_claims(
            client_id,
            client_id,
            &self.audience,
            self.clock.now(),
            ASSERTION_LIFETIME,
        );
        match &self.signer {
            AssertionSigner::Key(key) => key.sign(key.header(), &claims),
            AssertionSigner::Secret(alg) => {
                crate::id_token::install_crypto_provider();
                let secret = secret
                    .ok_or_else(|| Error::config("client_secret_jwt needs a client secret"))?;
                let key = jsonwebtoken::EncodingKey::from_secret(secret.secret().as_bytes())
                    .map_err(|_| Error::config("client_secret_jwt needs a non-empty secret"))?;
                jsonwebtoken::encode(&jsonwebtoken::Header::new(*alg), &claims, &key)
                    .map(secrecy::SecretString::from)
                    .map_err(|_| Error::config("client_secret_jwt: signing failed"))
            }
            AssertionSigner::File(_) => unreachable!("answered above"),
        }
    }
}

/// A JWT from a file a platform keeps fresh (Kubernetes projected tokens, workload identity
/// token files), trimmed. Read at each use, so a rotated file is always picked up.
pub(crate) async fn read_assertion_file(
    path: &std::path::Path,
) -> Result<secrecy::SecretString, Error> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Error::config(format!(
            "cannot read the token file {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::config(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(secrecy::SecretString::from(token.to_owned()))
}

/// The claims of an assertion (RFC 7523 §3): who issued it, whom it is about, for whom, a
/// unique `jti` (128 random bits), and a validity window of `lifetime` from `now`.
pub(crate) fn jwt_claims(
    iss: &str,
    sub: &str,
    aud: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Map<String, Value> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), iss.into());
    claims.insert("sub".into(), sub.into());
    claims.insert("aud".into(), aud.into());
    claims.insert(
        "jti".into(),
        oauth2::CsrfToken::new_random().secret().as_str().into(),
    );
    claims.insert("iat".into(), now.into());
    // Entra requires `nbf`; every other provider accepts it.
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), (now + lifetime.as_secs()).into());
    claims
}

/// Form parameters of one request. Deliberately not `Debug`: values include secrets.
#[derive(Default, Clone)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn new() -> Self {
        Form::default()
    }

    pub(crate) fn grant_type(grant_type: &str) -> Self {
        Form::new().with("grant_type", grant_type)
    }

    pub(crate) fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    pub(crate) fn extend<'a>(
        mut self,
        pairs: impl IntoIterator<Item = &'a (String, String)>,
    ) -> Self {
        self.pairs.extend(pairs.into_iter().cloned());
        self
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }
}

/// A provider's answer: its status and its fields, from JSON or a form-encoded body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) fields: Map<String, Value>,
}

impl Answer {
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// HTTP plumbing shared by every endpoint of one client registration.
#[derive(Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    client_id: String,
    client_secret: Option<ClientSecret>,
    auth: ClientAuthMethod,
    /// The signer of `private_key_jwt` / `client_secret_jwt` assertions.
    assertion: Option<ClientAssertion>,
    /// Provider codes, beyond the built-in table, that mean the grant is dead.
    revoked_grant_errors: std::sync::Arc<[String]>,
    retry: RetryPolicy,
    /// Applied to each request as well as the client, so that a client built before the
    /// timeout was set (by discovery) still obeys it.
    timeout: Duration,
    /// Endpoints closed by a `Retry-After`, shared by every clone.
    gate: Arc<Gate>,
    /// The configuration's DPoP key: every token request carries a proof signed with it.
    dpop: Option<DpopKey>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("dpop", &self.dpop)
            .finish_non_exhaustive()
    }
}

/// The HTTP client for provider endpoints, from the application's own settings (roots,
/// proxy, `User-Agent`) or the defaults, with the rules that keep provider requests safe
/// set last, so that they always win: no redirects, a timeout for the whole exchange.
pub(crate) fn http_client_from(
    builder: reqwest::ClientBuilder,
    timeout: Duration,
) -> Result<reqwest::Client, Error> {
    builder
        // A redirected token request would re-send credentials somewhere else, and a
        // redirected metadata request would let another host name the endpoints.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))
}

/// GETs a JSON document (provider metadata) under the same rules as every other provider
/// request: no redirects, the size cap, and an `error` field read as an OAuth error.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &url::Url,
    timeout: Duration,
) -> Result<Answer, Error> {
    observed(
        Call::Discovery.label(None),
        url,
        answered(fetch_json(http, url, timeout)),
    )
    .await
}

/// One provider call in its `provider_request` span, its outcome (the answer's status and
/// `T`, or the error) recorded there and in the metrics (see [`telemetry`]). A span covers
/// the whole call, every attempt and wait included: its duration is what the caller waited.
async fn observed<T>(
    grant: &'static str,
    url: &url::Url,
    call: impl Future<Output = Result<(u16, T), Error>>,
) -> Result<T, Error> {
    let span = telemetry::provider_request_span(grant, url);
    let started = tokio::time::Instant::now();
    let result = call.instrument(span.clone()).await;
    let status = result.as_ref().map(|(status, _)| *status);
    telemetry::provider_request_done(&span, grant, status, started.elapsed());
    result.map(|(_, value)| value)
}

/// An answer with its status, for [`observed`].
async fn answered(
    answer: impl Future<Output = Result<Answer, Error>>,
) -> Result<(u16, Answer), Error> {
    answer.await.map(|answer| (answer.status, answer))
}

async fn fetch_json(
    http: &reqwest::Client,
    url: &url::Url,
    timeout: Duration,
) -> Result<Answer, Error> {
    tracing::debug!(endpoint = %Redacted(url), "metadata request");
    tracing::Span::current().record("attempts", 1u32);
    let resp = http
        .get(url.clone())
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(Error::transport)?;
    read_answer(resp, &[]).await
}

/// GETs a workload credential endpoint (a cloud metadata server, GitHub's OIDC token
/// endpoint) under the rules of every provider request: no redirects, the size cap, an
/// `error` field read as an OAuth error. `headers` are the ones such endpoints demand;
/// `check` sees the status and headers before the body is read (the GCP metadata server
/// proves itself with a response header).
pub(crate) async fn get_workload(
    http: &reqwest::Client,
    url: &url::Url,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    check: impl FnOnce(u16, &reqwest::header::HeaderMap) -> Result<(), Error>,
) -> Result<Answer, Error> {
    let call = async {
        tracing::debug!(endpoint = %Redacted(url), "workload credential request");
        tracing::Span::current().record("attempts", 1u32);
        let resp = http
            .get(url.clone())
            .timeout(timeout)
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(Error::transport)?;
        check(resp.status().as_u16(), resp.headers())?;
        read_answer(resp, &[]).await
    };
    observed(Call::Workload.label(None), url, answered(call)).await
}

fn form_encode_component(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Endpoint {
    pub(crate) fn new(
        client_id: String,
        client_secret: Option<ClientSecret>,
        auth: ClientAuthMethod,
        http: reqwest::Client,
        retry: RetryPolicy,
        timeout: Duration,
    ) -> Self {
        Endpoint {
            http,
            client_id,
            client_secret,
            auth,
            assertion: None,
            revoked_grant_errors: std::sync::Arc::from([]),
            retry,
            timeout,
            gate: Arc::default(),
            dpop: None,
        }
    }

    /// Signs a DPoP proof for every token request with `key`.
    pub(crate) fn with_dpop(mut self, key: Option<DpopKey>) -> Self {
        self.dpop = key;
        self
    }

    /// The configuration's DPoP key.
    pub(crate) fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop.as_ref()
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Adds provider codes that map to [`Error::TokenRevoked`] (a preset's or the user's).
    pub(crate) fn with_revoked_grant_errors(mut self, codes: Vec<String>) -> Self {
        self.revoked_grant_errors = codes.into();
        self
    }

    /// Signs client assertions with `assertion` (`private_key_jwt`, `client_secret_jwt`).
    pub(crate) fn with_client_assertion(mut self, assertion: Option<ClientAssertion>) -> Self {
        self.assertion = assertion;
        self
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// [`get_json`] with this registration's HTTP client (the provider's JWKS).
    pub(crate) async fn get_json(&self, url: &url::Url) -> Result<Answer, Error> {
        let jwks = answered(fetch_json(&self.http, url, self.timeout));
        observed(Call::Jwks.label(None), url, jwks).await
    }

    pub(crate) fn auth_method(&self) -> ClientAuthMethod {
        self.auth
    }

    /// Adds client authentication to a request and its form. Assertions are built here,
    /// once per request sent, so that a retried request carries a fresh `jti`.
    async fn authenticate(
        &self,
        req: reqwest::RequestBuilder,
        form: Form,
    ) -> Result<(reqwest::RequestBuilder, Form), Error> {
        Ok(match (self.auth, &self.client_secret) {
            (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
                // RFC 6749 §2.3.1: form-urlencode id and secret before base64.
                let credentials = format!(
                    "{}:{}",
                    form_encode_component(&self.client_id),
                    form_encode_component(secret.secret())
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {encoded}"))
                    .expect("base64 is a valid header value");
                value.set_sensitive(true);
                (req.header(reqwest::header::AUTHORIZATION, value), form)
            }
            (ClientAuthMethod::ClientSecretPost, Some(secret)) => (
                req,
                form.with("client_id", self.client_id.clone())
                    .with("client_secret", secret.secret()),
            ),
            // RFC 8705 §2: the TLS handshake already presented the certificate; the body
            // names the client, and no secret is sent even if one is configured.
            (ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth, _) => {
                (req, form.with("client_id", self.client_id.clone()))
            }
            (ClientAuthMethod::PrivateKeyJwt | ClientAuthMethod::ClientSecretJwt, secret) => {
                use secrecy::ExposeSecret as _;
                let assertion = self
                    .assertion
                    .as_ref()
                    .ok_or_else(|| Error::config("no client assertion signer is configured"))?
                    .build(&self.client_id, secret.as_ref())
                    .await?;
                // `client_id` is optional next to an assertion (RFC 7521 §4.2) but Entra
                // requires it, and no provider refuses it.
                (
                    req,
                    form.with("client_id", self.client_id.clone())
                        .with("client_assertion_type", JWT_BEARER_ASSERTION_TYPE)
                        .with("client_assertion", assertion.expose_secret()),
                )
            }
            // An empty client id (a service account's grant, which authenticates by its
            // assertion alone) sends nothing.
            _ if self.client_id.is_empty() => (req, form),
            _ => (req, form.with("client_id", self.client_id.clone())),
        })
    }

    /// POSTs an authenticated form and reads the answer, capped and parsed. An OAuth error in
    /// the answer, whatever its status, becomes the matching typed error. Retried under the
    /// retry policy when the grant type is one that is safe to send twice. `call` names the
    /// request in its span and metrics.
    pub(crate) async fn post_form(
        &self,
        call: Call,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        self.send(call, url, form, replay, None).await
    }

    /// [`post_form`](Self::post_form) for a token request whose answer a grant reads itself:
    /// with the configuration's DPoP key, if any, it carries a proof. Read the answer with
    /// [`token_from_answer_bound`] and [`dpop_key`](Self::dpop_key).
    pub(crate) async fn post_token_form(
        &self,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        self.send(Call::Token, url, form, replay, self.dpop.as_ref())
            .await
    }

    /// [`post_form`](Self::post_form) for a request without a grant type that is safe to
    /// send twice (the device authorization request), retried under the retry policy.
    pub(crate) async fn post_form_retrying(
        &self,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        self.send(Call::DeviceAuthorization, url, form, Replay::Safe, None)
            .await
    }

    /// One call in its span: see [`observed`].
    async fn send(
        &self,
        call: Call,
        url: &url::Url,
        form: Form,
        replay: Replay,
        dpop: Option<&DpopKey>,
    ) -> Result<Answer, Error> {
        let grant = call.label(form.value("grant_type"));
        observed(grant, url, answered(self.attempts(url, form, replay, dpop))).await
    }

    /// One call: [`retrying`](Self::retrying), and how many requests it sent recorded on the
    /// call's span.
    async fn attempts(
        &self,
        url: &url::Url,
        form: Form,
        replay: Replay,
        dpop: Option<&DpopKey>,
    ) -> Result<Answer, Error> {
        let mut sent = 0u32;
        let result = self.retrying(url, form, replay, dpop, &mut sent).await;
        tracing::Span::current().record("attempts", sent);
        result
    }

    /// Attempts, backoff between them, and the endpoint's `Retry-After` wait. With a DPoP
    /// key, each attempt carries a new proof, and a `use_dpop_nonce` answer with a new nonce
    /// is answered by one more request carrying it (RFC 9449 §8).
    async fn retrying(
        &self,
        url: &url::Url,
        form: Form,
        replay: Replay,
        dpop: Option<&DpopKey>,
        sent: &mut u32,
    ) -> Result<Answer, Error> {
        let retry = replay != Replay::Never;
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let started = tokio::time::Instant::now();
        let within_budget =
            |wait: Duration| retry && started.elapsed() + wait <= policy.get_max_elapsed();
        let gate_key = Redacted(url).to_string();
        let mut attempt = 1;
        let mut nonce_retried = false;
        loop {
            if let Some((wait, status)) = self.gate.closed_for(&gate_key) {
                if !within_budget(wait) {
                    tracing::debug!(endpoint = %Redacted(url), wait_ms = wait.as_millis() as u64, "endpoint rate limited; not sending");
                    return Err(Error::RateLimited {
                        status,
                        retry_after: Some(wait),
                    });
                }
                // Every caller sleeps until the same instant: they share the one wait.
                tokio::time::sleep(wait).await;
                continue;
            }
            *sent += 1;
            let mut got_nonce = false;
            let result = self
                .send_once(url, form.clone(), &gate_key, dpop, &mut got_nonce)
                .await;
            match result {
                // The server refused the request before acting on it (RFC 9449 §8): safe to
                // send again for any grant, an authorization code included. Once per call,
                // even if the nonce was known already (a concurrent request's answer).
                Err(e)
                    if got_nonce
                        && !nonce_retried
                        && e.oauth_error().is_some_and(|o| o.error == "use_dpop_nonce") =>
                {
                    tracing::debug!(
                        "the token endpoint asks for a DPoP nonce; sending once more with it"
                    );
                    nonce_retried = true;
                }
                Err(e)
                    if e.is_retryable()
                        && attempt < policy.get_attempts()
                        && (replay == Replay::Safe || !may_have_been_processed(&e)) =>
                {
                    // After a `Retry-After`, the closed gate above decides the wait.
                    if e.retry_after().is_none_or(|d| d.is_zero()) {
                        let delay = policy.delay(attempt);
                        if !within_budget(delay) {
                            return Err(e);
                        }
                        tracing::debug!(error = %e, attempt, delay_ms = delay.as_millis() as u64, "transient failure; retrying");
                        tokio::time::sleep(delay).await;
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once(
        &self,
        url: &url::Url,
        form: Form,
        gate_key: &str,
        dpop: Option<&DpopKey>,
        got_nonce: &mut bool,
    ) -> Result<Answer, Error> {
        let grant_type = form.value("grant_type").unwrap_or("-").to_owned();
        tracing::debug!(
            endpoint = %Redacted(url),
            grant_type = %grant_type,
            client_id = %self.client_id,
            "oauth request"
        );
        let req = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        let (mut req, form) = self.authenticate(req, form).await?;
        if let Some(key) = dpop {
            req = req.header(crate::dpop::DPOP, key.proof("POST", url, None)?);
        }
        let resp = req
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.encode())
            .send()
            .await
            .map_err(Error::transport)?;
        if let Some(key) = dpop {
            *got_nonce = key.remember_nonce(url, resp.headers()).is_some();
        }
        if let Some(e) = self.rate_limited(&resp, gate_key) {
            tracing::debug!(error = %e, "oauth request rate limited");
            return Err(e);
        }
        read_answer(resp, &self.revoked_grant_errors).await
    }

    /// A 429, or a 503 with `Retry-After`, as [`Error::RateLimited`]; the delay it names
    /// (capped) closes the endpoint for every caller.
    fn rate_limited(&self, resp: &reqwest::Response, gate_key: &str) -> Option<Error> {
        let status = resp.status().as_u16();
        if status != 429 && status != 503 {
            return None;
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
            .map(|d| self.retry.cap(d));
        if status == 503 && retry_after.is_none() {
            return None;
        }
        if let Some(wait) = retry_after.filter(|d| !d.is_zero()) {
            self.gate.close(gate_key, wait, status);
        }
        Some(Error::RateLimited {
            status,
            retry_after,
        })
    }

    /// Requests a token: [`post_form`](Self::post_form), then the token response rules.
    /// With the configuration's DPoP key, if any, the token request carries a proof.
    pub(crate) async fn token(
        &self,
        url: &url::Url,
        form: Form,
        now: SystemTime,
    ) -> Result<Token, Error> {
        self.token_with(url, form, now, self.dpop.as_ref()).await
    }

    /// [`token`](Self::token) with proofs signed by `dpop`: a refresh uses the key its login
    /// is bound to.
    pub(crate) async fn token_with(
        &self,
        url: &url::Url,
        form: Form,
        now: SystemTime,
        dpop: Option<&DpopKey>,
    ) -> Result<Token, Error> {
        // The token response rules run inside the span: a response they refuse is a failed
        // token request.
        let grant = Call::Token.label(form.value("grant_type"));
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        let request = async {
            let answer = self.attempts(url, form, replay, dpop).await?;
            let status = answer.status;
            token_from_answer_bound(answer, now, dpop).map(|token| (status, token))
        };
        observed(grant, url, request).await
    }
}

/// Whether a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// A second request asks for the same thing again (client credentials, device
    /// authorization).
    Safe,
    /// Only when the provider surely did not act on the first: a refresh whose answer was
    /// lost may have rotated the refresh token, and sending the old one again would look
    /// like token theft to a provider with reuse detection (RFC 9700 §4.14.2), which then
    /// revokes the whole login.
    IfUnprocessed,
    /// Never (an authorization code above all: single-use, RFC 6749 §10.5).
    Never,
}

fn replay_of(grant_type: &str) -> Replay {
    match grant_type {
        "client_credentials" => Replay::Safe,
        "refresh_token" => Replay::IfUnprocessed,
        _ => Replay::Never,
    }
}

/// `true` when the provider may have acted on a request that failed: it was sent, but the
/// answer was cut off or never came. A refused connection, or an answer saying "not now"
/// (5xx, 429), is not such a failure.
fn may_have_been_processed(e: &Error) -> bool {
    match e {
        Error::Transport(cause) => !cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_connect),
        _ => false,
    }
}

/// Shows a URL without its query and fragment, which can carry secrets.
struct Redacted<'a>(&'a url::Url);

impl std::fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            self.0.origin().ascii_serialization(),
            self.0.path()
        )
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] and parses the body. Never panics on what a
/// provider sends. `revoked` extends the table of codes that mean a dead grant.
async fn read_answer(resp: reqwest::Response, revoked: &[String]) -> Result<Answer, Error> {
    let answer = read_answer_inner(resp, revoked).await;
    match &answer {
        Ok(a) => tracing::debug!(status = a.status, "oauth response"),
        Err(e) => tracing::debug!(error = %e, "oauth request failed"),
    }
    answer
}

async fn read_answer_inner(
    mut resp: reqwest::Response,
    revoked: &[String],
) -> Result<Answer, Error> {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        return Err(Error::malformed(
            status,
            "the endpoint answered with a redirect, which is not followed",
        ));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Error::malformed(status, "response body larger than 1 MiB"));
    }
    // Only shown in errors: the body decides how it is read. A form body labelled
    // `application/json` exists in the wild, as does JSON labelled `text/plain`.
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Error::malformed(status, "response body larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    answer_from_body(status, &content_type, &body, revoked)
}

/// Everything after the bytes have arrived: the body's format, the provider's error in
/// whatever shape it comes, and the status. Separate from the I/O so it is unit-tested.
fn answer_from_body(
    status: u16,
    content_type: &str,
    body: &[u8],
    revoked: &[String],
) -> Result<Answer, Error> {
    let success = (200..300).contains(&status);
    // RFC 7009 revocation answers 200 with an empty body; as a token response, an empty body
    // still fails later for lack of an `access_token`.
    if body.iter().all(u8::is_ascii_whitespace) && success {
        return Ok(Answer {
            status,
            fields: Map::new(),
        });
    }
    let fields = parse_fields(body).ok_or_else(|| {
        let shown = content_type.split(';').next().unwrap_or("").trim();
        let shown = if shown.is_empty() {
            "no content type"
        } else {
            shown
        };
        Error::malformed(
            status,
            format!(
                "expected a JSON object or a form, got {} of {} bytes ({shown})",
                body_kind(body),
                body.len()
            ),
        )
    })?;
    if let Some(e) = provider_error(success, &fields) {
        // Some providers (GitHub, Slack) send errors with HTTP 200: the body decides.
        let interval = fields
            .get("interval")
            .and_then(seconds)
            .and_then(Result::ok);
        return Err(Error::from_oauth_with(
            e.with_status(Some(status)).with_interval(interval),
            revoked,
        ));
    }
    if !success {
        return Err(Error::malformed(
            status,
            "error status without an OAuth error code",
        ));
    }
    if says_failed(&fields) {
        return Err(Error::malformed(
            status,
            "the provider reported a failure without an error code",
        ));
    }
    Ok(Answer { status, fields })
}

/// What an unreadable body looks like, for the error message (never the body itself).
fn body_kind(body: &[u8]) -> &'static str {
    let start = body.trim_ascii_start();
    if start.first() == Some(&b'<') {
        "an HTML or XML page"
    } else if start
        .first()
        .is_some_and(|b| matches!(b, b'{' | b'[' | b'"'))
    {
        "invalid JSON or a JSON value that is not an object"
    } else if std::str::from_utf8(body).is_err() {
        "a binary body"
    } else {
        "a text body"
    }
}

/// Reads the body by what it is, whatever its `Content-Type` says: a JSON object, or a
/// form (`a=b&c=d`: GitHub without `Accept`, Facebook's legacy endpoint labelled
/// `text/plain`). Anything else, an HTML error page or plain text, is `None`.
fn parse_fields(body: &[u8]) -> Option<Map<String, Value>> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let trimmed = body.trim_ascii();
    match trimmed.first()? {
        b'{' => match serde_json::from_slice::<Value>(trimmed) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        },
        _ if is_form(trimmed) => Some(
            form_urlencoded::parse(trimmed)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        ),
        _ => None,
    }
}

/// `name=value` pairs joined by `&`, with parameter-like names: so that `Bad Gateway` or
/// `upstream connect error` are not read as a form with one empty field.
fn is_form(body: &[u8]) -> bool {
    let name_char =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']');
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .all(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => eq > 0 && pair[..eq].iter().all(name_char),
            None => false,
        })
        && body.contains(&b'=')
}

/// A code sent as a string or a number, as text. Empty strings are no code.
fn code_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` that holds a string or a number.
fn first_code(fields: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| code_of(fields.get(*k)))
}

fn first_text<'a>(fields: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

/// `"ok": false` (Slack) or `"success": false` (Fitbit).
fn says_failed(fields: &Map<String, Value>) -> bool {
    ["ok", "success"]
        .iter()
        .any(|k| fields.get(*k) == Some(&Value::Bool(false)))
}

/// The provider's error, in every shape real providers send, read in this one place:
///
/// | shape | code | description | seen at |
/// |---|---|---|---|
/// | `error` string (RFC 6749 §5.2) | `error` | `error_description`, `message`, `reason` | most; Slack with `"ok": false`; Zoom with `reason` |
/// | `error` number | the number | `message`, `error_description` | Reddit (`{"error": 401, "message": ...}`) |
/// | `error` object | `type`, else `code` | `message` | Facebook Graph (`OAuthException`) |
/// | `errors` array | first item's `errorType`, `error`, `code` or `type` | its `message` | Fitbit |
/// | legacy `status` | `status` (string or number) | `message`, `reason` | HubSpot, Twitch |
/// | `error_type` | `error_type` | `error_message` | Instagram |
/// | `reason` alone | `reason` | - | |
///
/// `status`, `error_type` and `reason` are read as codes only when the answer failed (an
/// error status, or `"ok"`/`"success"` false), since a token response may carry them.
fn provider_error(success: bool, fields: &Map<String, Value>) -> Option<OAuthError> {
    let description_keys = ["error_description", "message", "error_message", "reason"];
    let (code, description) = match fields.get("error") {
        Some(Value::Object(obj)) => (
            first_code(obj, &["type", "code", "error"]),
            first_text(obj, &["message", "error_description", "description"]),
        ),
        error => (code_of(error), first_text(fields, &description_keys)),
    };
    let (code, description) = match code {
        Some(code) => (Some(code), description),
        None => match fields
            .get("errors")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            Some(Value::Object(item)) => (
                first_code(item, &["errorType", "error", "code", "type"]),
                first_text(item, &["message", "error_description", "detail"]),
            ),
            _ if !success || says_failed(fields) => (
                first_code(fields, &["error_type", "status", "reason"]),
                first_text(fields, &description_keys),
            ),
            _ => (None, None),
        },
    };
    let code = code?;
    // A code that is also the only text (`reason` alone) is not repeated as description.
    let description = description.filter(|d| *d != code);
    Some(
        OAuthError::new(&code)
            .with_description(description)
            .with_uri(first_text(fields, &["error_uri"])),
    )
}

/// A duration in seconds sent as a number or a numeric string (Microsoft v1, PayPal).
pub(crate) fn seconds(value: &Value) -> Option<Result<Duration, ()>> {
    let secs = match value {
        Value::Null => return None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Some(match secs {
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
        }
        _ => Err(()),
    })
}

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Option<String> {
    match fields.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The longest lifetime a token is given: 2^31 - 1 seconds (68 years), the largest value
/// providers send for "never expires". Larger values saturate here, so expiry and refresh
/// times stay far from the limits of `SystemTime` and Tokio's timers.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(i32::MAX as u64);

/// What a token response's `expires_in` says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    /// Missing, `null`, an empty string or `0`: the provider gives no expiry.
    Unknown,
    /// Negative: the token is already expired.
    Expired,
    /// Expires this long after it was received, at most [`MAX_TOKEN_LIFETIME`].
    After(Duration),
}

/// The `expires_in` rules, one place:
/// - missing, `null` or an empty string: no expiry known (Salesforce sends none);
/// - `0`: no expiry, like Go's x/oauth2 reads it;
/// - a number or a numeric string (Microsoft v1, PayPal), fractions kept;
/// - negative: already expired. The response is kept, not rejected: the token is handed to
///   the caller that asked for it, and the next call asks for a new one;
/// - larger than [`MAX_TOKEN_LIFETIME`] (68 years), `inf` included: saturates there;
/// - anything else (`"soon"`, `NaN`, `true`): a malformed response.
fn expiry(value: &Value) -> Result<Expiry, ()> {
    let secs = match value {
        Value::Null => return Ok(Expiry::Unknown),
        Value::Number(n) => n.as_f64().ok_or(())?,
        Value::String(s) if s.trim().is_empty() => return Ok(Expiry::Unknown),
        Value::String(s) => s.trim().parse::<f64>().map_err(drop)?,
        _ => return Err(()),
    };
    if secs.is_nan() {
        Err(())
    } else if secs < 0.0 {
        Ok(Expiry::Expired)
    } else if secs == 0.0 {
        Ok(Expiry::Unknown)
    } else {
        let d = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        Ok(Expiry::After(d.min(MAX_TOKEN_LIFETIME)))
    }
}

/// RFC 6749 Appendix A.12: `access-token = 1*VSCHAR` (`%x20-7E`). Anything else (CR, LF,
/// NUL, other controls, DEL, non-ASCII) could split or forge a header, or fail on every API
/// call; it is refused here instead of being cached and handed out.
fn is_valid_access_token(token: &str) -> bool {
    token.bytes().all(|b| (0x20..=0x7e).contains(&b)) && !token.trim().is_empty()
}

/// Slack's oauth.v2.access names its bearer tokens by who they act for (`"token_type":
/// "bot"` or `"user"`, https://api.slack.com/methods/oauth.v2.access); they are sent as
/// `Authorization: Bearer`, and kept with the name Slack gave them.
const SLACK_BEARER_TYPES: &[&str] = &["bot", "user"];

/// Applies the token response rules (RFC 6749 §5.1, §7.1) with the quirks real providers
/// have.
#[cfg(test)]
pub(crate) fn token_from_answer(answer: Answer, now: SystemTime) -> Result<Token, Error> {
    token_from_answer_bound(answer, now, None)
}

/// [`token_from_answer`] for a request that carried a proof by `dpop`, if any.
///
/// `token_type` decides the scheme (RFC 9449 §5): `DPoP` is accepted only when a proof was
/// sent, and the token is bound to its key. A DPoP request answered with a Bearer token is
/// refused ([`Error::UnsupportedTokenType`]): the application asked for sender-constrained
/// tokens, and silently accepting a bearer token instead would hide a provider that does
/// not (or no longer) bind tokens.
pub(crate) fn token_from_answer_bound(
    answer: Answer,
    now: SystemTime,
    dpop: Option<&DpopKey>,
) -> Result<Token, Error> {
    let Answer { status, mut fields } = answer;
    let access_token = take_string(&mut fields, "access_token")
        .ok_or_else(|| Error::malformed(status, "no access_token in the token response"))?;
    if !is_valid_access_token(&access_token) {
        return Err(Error::malformed(
            status,
            "the access token has characters an HTTP header cannot carry",
        ));
    }
    // RFC 6749 §7.1: a client must not use a token whose type it does not understand.
    // Bearer always; DPoP only when the request carried a proof (the token needs the key's
    // proofs, RFC 9449 §5). A missing token_type is read as Bearer, a quirk of several
    // providers (Facebook, older Salesforce answers).
    let token_type = match fields.remove("token_type") {
        Some(Value::String(t)) if dpop.is_some() && crate::dpop::is_dpop_type(&t) => {
            "DPoP".to_owned()
        }
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(t)) if t.trim().eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(Value::String(t)) if t.is_empty() => "Bearer".to_owned(),
        Some(Value::String(t)) if SLACK_BEARER_TYPES.contains(&t.as_str()) => t,
        Some(other) => {
            let shown = match &other {
                Value::String(t) => crate::error::clean(t),
                v => crate::error::clean(&v.to_string()),
            };
            return Err(Error::UnsupportedTokenType { token_type: shown });
        }
    };
    if dpop.is_some() && token_type != "DPoP" {
        return Err(Error::UnsupportedTokenType { token_type });
    }
    // `expires` is Facebook's older name for `expires_in`.
    let expiry = match ["expires_in", "expires"]
        .iter()
        .find_map(|key| fields.remove(*key).filter(|v| !v.is_null()))
    {
        Some(v) => expiry(&v)
            .map_err(|()| Error::malformed(status, "expires_in is not a number of seconds"))?,
        None => Expiry::Unknown,
    };
    let scopes = match fields.remove("scope") {
        // Comma-separated by GitHub, Slack and Facebook; a comma in a scope name is legal
        // but unseen in practice, so it is read as a separator too.
        Some(Value::String(s)) => Some(
            s.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    };
    let refresh_token = take_string(&mut fields, "refresh_token").map(RefreshToken::new);
    let id_token = take_string(&mut fields, "id_token").map(IdToken::new);

    let token = Token::new(AccessToken::new(access_token))
        .with_token_type(token_type)
        .with_refresh_token(refresh_token)
        .with_id_token(id_token)
        .with_scopes(scopes)
        .with_extra(fields)
        .with_dpop_key(dpop.cloned());
    Ok(match expiry {
        Expiry::After(d) => token.with_lifetime(now, d),
        Expiry::Expired => token.with_lifetime(now, Duration::ZERO),
        Expiry::Unknown => token.with_expires_at(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `Answer` has no `Debug` (its fields hold tokens), so no `unwrap_err`.
    fn failed(r: Result<Answer, Error>) -> Error {
        match r {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        }
    }

    fn answer(status: u16, v: Value) -> Answer {
        Answer {
            status,
            fields: v.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        assert_eq!(form_encode_component("a:b@c% d"), "a%3Ab%40c%25+d");
    }

    #[test]
    fn string_expires_in_and_lowercase_bearer() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = token_from_answer(
            answer(
                200,
                json!({"access_token": "a", "token_type": "bearer", "expires_in": "3600"}),
            ),
            now,
        )
        .unwrap();
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(t.expires_at(), Some(now + Duration::from_secs(3600)));
    }

    #[test]
    fn missing_fields_get_defaults() {
        let t = token_from_answer(answer(201, json!({"access_token": "a"})), SystemTime::now())
            .unwrap();
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(t.expires_at(), None);
    }

    #[test]
    fn garbage_expires_in_is_a_typed_error() {
        let e = token_from_answer(
            answer(200, json!({"access_token": "a", "expires_in": "soon"})),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::MalformedResponse { status: 200, .. }));
    }

    #[test]
    fn form_bodies_parse() {
        let f = parse_fields(b"access_token=x&scope=repo%2Cgist&token_type=bearer").unwrap();
        assert_eq!(f["scope"], "repo,gist");
    }

    #[test]
    fn the_body_decides_not_the_content_type() {
        let form = b"access_token=x&token_type=bearer";
        let json = br#"{"access_token":"x"}"#;
        for ct in ["application/json", "text/plain", "text/html", ""] {
            let a = answer_from_body(200, ct, form, &[]).unwrap();
            assert_eq!(a.str("access_token"), Some("x"), "form labelled {ct}");
            let a = answer_from_body(200, ct, json, &[]).unwrap();
            assert_eq!(a.str("access_token"), Some("x"), "JSON labelled {ct}");
        }
        // A UTF-8 BOM and surrounding whitespace do not matter.
        assert!(parse_fields(b"\xef\xbb\xbf {\"a\": 1}\n").is_some());
        // Not a form: plain text, HTML labelled JSON, JSON that is not an object.
        for body in [
            &b"Bad Gateway"[..],
            b"upstream connect error or disconnect/reset before headers",
            b"<html><body>a=b</body></html>",
            b"[1, 2]",
            b"{\"access_token\": ",
            b"=x",
            b"&&",
        ] {
            assert!(
                parse_fields(body).is_none(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let e = failed(answer_from_body(
            502,
            "application/json",
            b"<html>502</html>",
            &[],
        ));
        assert!(
            e.to_string()
                .contains("an HTML or XML page of 16 bytes (application/json)"),
            "{e}"
        );
    }

    fn provider_error_of(status: u16, v: Value) -> Error {
        let body = serde_json::to_vec(&v).unwrap();
        match answer_from_body(status, "application/json", &body, &[]) {
            Err(e) => e,
            Ok(_) => panic!("{v} was read as a success"),
        }
    }

    #[track_caller]
    fn assert_oauth(e: &Error, code: &str, description: Option<&str>, status: u16) {
        let o = e
            .oauth_error()
            .unwrap_or_else(|| panic!("not an OAuth error: {e:?}"));
        assert_eq!(
            (o.error.as_str(), o.description.as_deref(), o.status),
            (code, description, Some(status))
        );
    }

    #[test]
    fn every_error_shape_keeps_the_providers_code_and_description() {
        // RFC 6749 with Zoom's `reason`.
        let e = provider_error_of(
            400,
            json!({"reason": "Invalid Token!", "error": "invalid_request"}),
        );
        assert_oauth(&e, "invalid_request", Some("Invalid Token!"), 400);
        // A number (Reddit).
        let e = provider_error_of(401, json!({"message": "Unauthorized", "error": 401}));
        assert_oauth(&e, "401", Some("Unauthorized"), 401);
        // An object (Facebook Graph).
        let e = provider_error_of(
            400,
            json!({"error": {"message": "Error validating access token: Session has expired.",
                             "type": "OAuthException", "code": 190, "error_subcode": 463}}),
        );
        assert_oauth(
            &e,
            "OAuthException",
            Some("Error validating access token: Session has expired."),
            400,
        );
        let e = provider_error_of(400, json!({"error": {"code": 190}}));
        assert_oauth(&e, "190", None, 400);
        // An `errors` array (Fitbit).
        let e = provider_error_of(
            400,
            json!({"errors": [{"errorType": "invalid_grant", "message": "Refresh token invalid: x."}],
                   "success": false}),
        );
        assert!(e.is_revoked());
        assert_oauth(&e, "invalid_grant", Some("Refresh token invalid: x."), 400);
        // Legacy `status` / `message`, as a string (HubSpot) and a number (Twitch).
        let e = provider_error_of(
            400,
            json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}),
        );
        assert!(e.is_revoked());
        assert_oauth(
            &e,
            "BAD_REFRESH_TOKEN",
            Some("missing or unknown refresh token"),
            400,
        );
        let e = provider_error_of(
            400,
            json!({"status": 400, "message": "Invalid refresh token"}),
        );
        assert_oauth(&e, "400", Some("Invalid refresh token"), 400);
        // Instagram's `error_type`, and `reason` alone.
        let e = provider_error_of(
            400,
            json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid refresh token"}),
        );
        assert_oauth(&e, "OAuthException", Some("Invalid refresh token"), 400);
        let e = provider_error_of(403, json!({"reason": "forbidden"}));
        assert_oauth(&e, "forbidden", None, 403);
        // 2xx with `"ok": false` (Slack), and control characters replaced by a space.
        let e = provider_error_of(200, json!({"ok": false, "error": "invalid_refresh_token"}));
        assert!(e.is_revoked());
        let e = provider_error_of(
            200,
            json!({"ok": false, "error": "bad\r\nthing", "message": "line one\nline two"}),
        );
        assert_oauth(&e, "bad  thing", Some("line one line two"), 200);
        let e = provider_error_of(200, json!({"ok": false}));
        assert!(
            matches!(e, Error::MalformedResponse { status: 200, .. }),
            "{e:?}"
        );
        // Form-encoded errors are read the same way.
        let e = failed(answer_from_body(200, "text/plain", b"error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.", &[]));
        assert!(e.is_revoked());
        assert_oauth(
            &e,
            "bad_refresh_token",
            Some("The refresh token passed is incorrect or expired."),
            200,
        );
    }

    #[test]
    fn a_successful_token_response_is_not_an_error_for_its_extra_fields() {
        for v in [
            json!({"access_token": "a", "status": "active", "message": "welcome", "reason": "x"}),
            json!({"access_token": "a", "error": null, "errors": [], "ok": true}),
            json!({"access_token": "a", "error": ""}),
        ] {
            let body = serde_json::to_vec(&v).unwrap();
            assert!(
                answer_from_body(200, "application/json", &body, &[]).is_ok(),
                "{v}"
            );
        }
    }

    #[test]
    fn a_presets_codes_extend_the_revoked_table() {
        let body = br#"{"error": "interaction_required"}"#;
        let plain = failed(answer_from_body(400, "application/json", body, &[]));
        assert!(matches!(plain, Error::OAuth(_)));
        let extended = failed(answer_from_body(
            400,
            "application/json",
            body,
            &["INTERACTION_REQUIRED".to_owned()],
        ));
        assert!(extended.is_revoked());
    }

    #[test]
    fn expires_in_rules() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = |v: Value| {
            token_from_answer(
                answer(200, json!({"access_token": "a", "expires_in": v})),
                now,
            )
        };
        for none in [json!(null), json!(0), json!("0"), json!(""), json!(" ")] {
            assert_eq!(token(none.clone()).unwrap().expires_at(), None, "{none}");
        }
        // Negative: kept, and already expired.
        for negative in [json!(-1), json!("-3600"), json!(-1e300), json!("-inf")] {
            let t = token(negative.clone()).unwrap();
            assert_eq!(t.expires_at(), Some(now), "{negative}");
            assert!(!t.is_valid_at(now, &crate::ExpiryPolicy::default()));
        }
        // Absurdly large: saturates at 68 years.
        for huge in [
            json!(u64::MAX),
            json!(1e300),
            json!("1e400"),
            json!("inf"),
            json!(i32::MAX),
        ] {
            let t = token(huge.clone()).unwrap();
            assert_eq!(t.lifetime(), Some(MAX_TOKEN_LIFETIME), "{huge}");
        }
        assert_eq!(
            token(json!(1.5)).unwrap().lifetime(),
            Some(Duration::from_millis(1500))
        );
        for bad in [json!("soon"), json!("NaN"), json!(true), json!([1])] {
            assert!(token(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_type_must_be_usable() {
        let now = SystemTime::now();
        for ok in [
            json!("bearer"),
            json!("BEARER"),
            json!(" Bearer "),
            json!(null),
            json!(""),
        ] {
            let t = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": ok})),
                now,
            );
            assert_eq!(t.unwrap().token_type(), "Bearer", "{ok}");
        }
        // Slack's bearer tokens keep their name.
        for slack in ["bot", "user"] {
            let t = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": slack})),
                now,
            );
            assert_eq!(t.unwrap().token_type(), slack);
        }
        for bad in [
            json!("mac"),
            json!("N_A"),
            json!("DPoP"),
            json!("app"),
            json!("Bot"),
            json!("bearer2"),
            json!(1),
            json!("Bearer\r\nX-Evil: 1"),
        ] {
            let e = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": bad})),
                now,
            )
            .unwrap_err();
            assert!(
                matches!(&e, Error::UnsupportedTokenType { token_type } if !token_type.contains('\n')),
                "{bad}: {e:?}"
            );
            assert!(e.is_configuration());
        }
    }

    #[test]
    fn access_tokens_that_are_not_header_values_are_refused() {
        for bad in [
            "a\r\nX-Injected: 1",
            "a\nb",
            "a\0b",
            "a\tb",
            "a\u{7f}",
            "tök",
            " ",
        ] {
            let e = token_from_answer(answer(200, json!({"access_token": bad})), SystemTime::now())
                .unwrap_err();
            assert!(
                matches!(e, Error::MalformedResponse { status: 200, .. }),
                "{bad:?}"
            );
            assert!(
                bad.trim().is_empty() || !e.to_string().contains(bad.trim()),
                "{e}"
            );
        }
        // Salesforce's `!` and JWTs' dots are fine.
        for ok in ["00Dxx0000001gPL!AR8AQJXg", "eyJ.eyJ.sig-_", "a~b+c/d="] {
            assert!(
                token_from_answer(answer(200, json!({"access_token": ok})), SystemTime::now())
                    .is_ok()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn no_body_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                          status in 100u16..600) {
            if let Ok(answer) = answer_from_body(status, "application/json", &body, &[]) {
                let _ = token_from_answer(answer, SystemTime::now());
            }
        }

        #[test]
        fn no_json_error_shape_panics(v in proptest::arbitrary::any::<(Option<i64>, Option<String>, bool)>(),
                                      status in 100u16..600) {
            let (n, s, flag) = v;
            for body in [
                json!({"error": n, "message": s, "ok": flag}),
                json!({"error": {"type": s, "code": n}}),
                json!({"errors": [{"errorType": s, "code": n}], "success": flag}),
                json!({"status": n, "reason": s, "access_token": s}),
            ] {
                let bytes = serde_json::to_vec(&body).unwrap();
                let _ = answer_from_body(status, "", &bytes, &[]);
            }
        }

        #[test]
        fn no_expires_in_panics(v in proptest::prelude::any::<f64>(), s in ".*") {
            let _ = seconds(&json!(v));
            let _ = seconds(&json!(s));
            let _ = token_from_answer(
                answer(200, json!({"access_token": "a", "expires_in": v})),
                SystemTime::now(),
            );
        }
    }
}
