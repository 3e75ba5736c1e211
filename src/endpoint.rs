//! The one place that talks to a provider's endpoints: client authentication, form encoding,
//! no redirects, a timeout, a response size cap, provider quirks normalised, and RFC 6749 §5.2
//! errors mapped to typed errors. Every grant, revocation and device authorization goes
//! through [`Endpoint::post_form`].
//!
//! We build these requests ourselves rather than through `oauth2`'s `AsyncHttpClient`: its
//! response parsing rejects the quirks real providers have (string `expires_in`,
//! form-encoded bodies, errors sent with HTTP 200) and has no size cap, and its reqwest
//! integration is for reqwest 0.12. `oauth2` still provides PKCE and state generation.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::error::{Error, OAuthError};
use crate::retry::{Gate, RetryPolicy, parse_retry_after};
use crate::token::{AccessToken, ClientSecret, IdToken, RefreshToken, Token};

/// Go's x/oauth2 caps token responses at 1 MiB too; no real token response comes close.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// How the client proves its identity to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). The default for
    /// clients with a secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// Only `client_id` in the body: public clients (native and browser apps).
    None,
}

impl ClientAuthMethod {
    /// The method's name in provider metadata (`token_endpoint_auth_methods_supported`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::None => "none",
        }
    }
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
    retry: RetryPolicy,
    /// Endpoints closed by a `Retry-After`, shared by every clone.
    gate: Arc<Gate>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// The HTTP client for provider endpoints: no redirects, a timeout for the whole exchange.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    http_client_from(reqwest::Client::builder(), timeout)
}

/// [`http_client`] from the application's own settings (roots, proxy, `User-Agent`), with
/// the rules that keep provider requests safe set last, so that they always win.
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
pub(crate) async fn get_json(http: &reqwest::Client, url: &url::Url) -> Result<Answer, Error> {
    tracing::debug!(endpoint = %Redacted(url), "metadata request");
    let resp = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(Error::transport)?;
    read_answer(resp).await
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
    ) -> Self {
        Endpoint {
            http,
            client_id,
            client_secret,
            auth,
            retry,
            gate: Arc::default(),
        }
    }

    /// The HTTP client for every request to the provider (token, revocation, device, JWKS).
    #[allow(dead_code)] // for the provider requests that are not forms (JWKS)
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn auth_method(&self) -> ClientAuthMethod {
        self.auth
    }

    /// Adds client authentication to a request and its form.
    fn authenticate(
        &self,
        req: reqwest::RequestBuilder,
        form: Form,
    ) -> (reqwest::RequestBuilder, Form) {
        match (self.auth, &self.client_secret) {
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
            _ => (req, form.with("client_id", self.client_id.clone())),
        }
    }

    /// POSTs an authenticated form and reads the answer, capped and parsed. An OAuth error in
    /// the answer, whatever its status, becomes the matching typed error. Retried under the
    /// retry policy when the grant type is one that is safe to send twice.
    pub(crate) async fn post_form(&self, url: &url::Url, form: Form) -> Result<Answer, Error> {
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        self.send(url, form, replay).await
    }

    /// [`post_form`](Self::post_form) for a request without a grant type that is safe to
    /// send twice (the device authorization request), retried under the retry policy.
    pub(crate) async fn post_form_retrying(
        &self,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        self.send(url, form, Replay::Safe).await
    }

    /// One call: attempts, backoff between them, and the endpoint's `Retry-After` wait.
    async fn send(&self, url: &url::Url, form: Form, replay: Replay) -> Result<Answer, Error> {
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
            let result = self.send_once(url, form.clone(), &gate_key).await;
            match result {
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

    async fn send_once(&self, url: &url::Url, form: Form, gate_key: &str) -> Result<Answer, Error> {
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
            .header(reqwest::header::ACCEPT, "application/json");
        let (req, form) = self.authenticate(req, form);
        let resp = req
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.encode())
            .send()
            .await
            .map_err(Error::transport)?;
        if let Some(e) = self.rate_limited(&resp, gate_key) {
            tracing::debug!(error = %e, "oauth request rate limited");
            return Err(e);
        }
        read_answer(resp).await
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
    pub(crate) async fn token(
        &self,
        url: &url::Url,
        form: Form,
        now: SystemTime,
    ) -> Result<Token, Error> {
        let answer = self.post_form(url, form).await?;
        token_from_answer(answer, now)
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
/// provider sends.
async fn read_answer(resp: reqwest::Response) -> Result<Answer, Error> {
    let answer = read_answer_inner(resp).await;
    match &answer {
        Ok(a) => tracing::debug!(status = a.status, "oauth response"),
        Err(e) => tracing::debug!(error = %e, "oauth request failed"),
    }
    answer
}

async fn read_answer_inner(mut resp: reqwest::Response) -> Result<Answer, Error> {
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
    // RFC 7009 revocation answers 200 with an empty body; as a token response, an empty body
    // still fails below for lack of an `access_token`.
    if body.is_empty() && (200..300).contains(&status) {
        return Ok(Answer {
            status,
            fields: Map::new(),
        });
    }
    let fields = parse_fields(&content_type, &body).ok_or_else(|| {
        let shown = content_type.split(';').next().unwrap_or("").trim();
        let shown = if shown.is_empty() {
            "no content type"
        } else {
            shown
        };
        Error::malformed(
            status,
            format!(
                "expected a JSON object, got a body of {} bytes ({shown})",
                body.len()
            ),
        )
    })?;
    let answer = Answer { status, fields };
    if let Some(code) = answer.str("error") {
        // Some providers (GitHub) send errors with HTTP 200: the `error` field decides.
        return Err(Error::from_oauth(
            OAuthError::new(code)
                .with_description(answer.str("error_description"))
                .with_uri(answer.str("error_uri"))
                .with_status(Some(status))
                .with_interval(
                    answer
                        .fields
                        .get("interval")
                        .and_then(seconds)
                        .and_then(Result::ok),
                ),
        ));
    }
    if !(200..300).contains(&status) {
        return Err(Error::malformed(
            status,
            "error status without an OAuth error code",
        ));
    }
    Ok(answer)
}

/// JSON object, or form-encoded when the provider says so (GitHub without `Accept`), or
/// either for `text/plain` (Facebook's legacy endpoint sent form bodies as text; Go's
/// x/oauth2 reads them the same way).
fn parse_fields(content_type: &str, body: &[u8]) -> Option<Map<String, Value>> {
    let form = || {
        let fields = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect::<Map<_, _>>();
        (!fields.is_empty()).then_some(fields)
    };
    let json = || match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        form()
    } else if content_type.starts_with("text/plain") {
        // A text body that is neither JSON nor names an access token or error is not a form.
        json().or_else(|| {
            form().filter(|f| f.contains_key("access_token") || f.contains_key("error"))
        })
    } else {
        json()
    }
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

/// Applies the token response rules (RFC 6749 §5.1) with the quirks real providers have.
pub(crate) fn token_from_answer(answer: Answer, now: SystemTime) -> Result<Token, Error> {
    let Answer { status, mut fields } = answer;
    let access_token = take_string(&mut fields, "access_token")
        .ok_or_else(|| Error::malformed(status, "no access_token in the token response"))?;
    let token_type = match take_string(&mut fields, "token_type") {
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(t) => t,
        None => "Bearer".to_owned(),
    };
    // `expires` is Facebook's older name for `expires_in`.
    let lifetime = ["expires_in", "expires"]
        .iter()
        .find_map(|key| fields.remove(*key).as_ref().and_then(seconds));
    let lifetime = match lifetime {
        Some(Ok(d)) => Some(d),
        Some(Err(())) => {
            return Err(Error::malformed(
                status,
                "expires_in is not a number of seconds",
            ));
        }
        None => None,
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
        .with_extra(fields);
    // Like Go's x/oauth2, `expires_in: 0` means the provider gives no expiry.
    Ok(match lifetime {
        Some(d) if !d.is_zero() => token.with_lifetime(now, d),
        _ => token.with_expires_at(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        let f = parse_fields(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"access_token=x&scope=repo%2Cgist&token_type=bearer",
        )
        .unwrap();
        assert_eq!(f["scope"], "repo,gist");
    }

    proptest::proptest! {
        #[test]
        fn no_body_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                          json in proptest::bool::ANY) {
            let ct = if json { "application/json" } else { "application/x-www-form-urlencoded" };
            if let Some(fields) = parse_fields(ct, &body) {
                let _ = token_from_answer(Answer { status: 200, fields }, SystemTime::now());
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
