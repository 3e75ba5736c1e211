//! Sending: the [`Endpoint`] of one client registration, and every provider request it
//! makes — no redirects, a timeout, retries with backoff under the retry policy, the
//! `Retry-After` gate shared by every caller, a DPoP proof per attempt, and each call in its
//! `provider_request` span ([`observed`]).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use tracing::Instrument as _;

use super::answer::{
    Answer, AnswerRules, parse_fields, rate_limit_error, read_answer, read_raw, seconds,
};
use super::client_auth::{ClientAssertion, ClientAuth, ClientAuthMethod};
use super::form::Form;
use super::token_answer::token_from_answer_bound;
use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::jose::DpopKey;
use crate::provider_codes::DeadGrant;
use crate::retry::{Flight, Gate, RetryPolicy, may_have_been_processed, parse_retry_after};
use crate::telemetry::{self, Call, UrlForLogs as Redacted};
use crate::token::{ClientSecret, Token};

/// HTTP plumbing shared by every endpoint of one client registration.
#[derive(Clone)]
pub(crate) struct Endpoint {
    http: reqwest::Client,
    /// Who the client is and how it authenticates.
    client: ClientAuth,
    /// The configuration's additions to the answer rules (dead grants, bearer token types).
    rules: AnswerRules,
    /// The configuration's clock, for the dates in `Retry-After` and rate-limit headers.
    clock: Arc<dyn Clock>,
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
            .field("client_id", &self.client.client_id)
            .field("auth", &self.client.method)
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
/// For calls whose sending is done elsewhere (a UserInfo request goes through the request
/// rules), this is how they are observed like the others.
pub(crate) async fn observed<T>(
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

/// POSTs a JSON document (an RFC 7591 registration request), with `bearer` as the
/// `Authorization` (an initial access token) when given, under the rules of every provider
/// request. Never retried: a second request could register a second client.
pub(crate) async fn post_json(
    http: &reqwest::Client,
    url: &url::Url,
    body: &serde_json::Value,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Answer, Error> {
    let call = async {
        tracing::debug!(endpoint = %Redacted(url), "registration request");
        tracing::Span::current().record("attempts", 1u32);
        let mut req = http
            .post(url.clone())
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body);
        if let Some(bearer) = bearer {
            let mut value = http::HeaderValue::try_from(format!("Bearer {bearer}"))
                .map_err(|_| Error::config("the initial access token is not a header value"))?;
            value.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, value);
        }
        let resp = req.send().await.map_err(Error::transport)?;
        read_answer(resp, &[]).await
    };
    observed(Call::Registration.label(None), url, answered(call)).await
}

async fn fetch_json(
    http: &reqwest::Client,
    url: &url::Url,
    timeout: Duration,
) -> Result<Answer, Error> {
    fetch(http, url, timeout, HeaderMap::new(), |_| Ok(())).await
}

/// GETs a workload credential endpoint (a cloud metadata server, GitHub's OIDC token
/// endpoint) under the rules of every provider request: no redirects, the size cap, an
/// `error` field read as an OAuth error. `headers` are the ones such endpoints demand;
/// `check` sees the answer's headers before its body is read (the GCP metadata server
/// proves itself with one).
pub(crate) async fn get_workload(
    http: &reqwest::Client,
    url: &url::Url,
    headers: HeaderMap,
    timeout: Duration,
    check: impl FnOnce(&HeaderMap) -> Result<(), Error>,
) -> Result<Answer, Error> {
    let call = fetch(http, url, timeout, headers, check);
    observed(Call::Workload.label(None), url, answered(call)).await
}

async fn fetch(
    http: &reqwest::Client,
    url: &url::Url,
    timeout: Duration,
    headers: HeaderMap,
    check: impl FnOnce(&HeaderMap) -> Result<(), Error>,
) -> Result<Answer, Error> {
    tracing::debug!(endpoint = %Redacted(url), "GET request");
    tracing::Span::current().record("attempts", 1u32);
    let request = async {
        let resp = http
            .get(url.clone())
            .timeout(timeout)
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(Error::transport)?;
        check(resp.headers())?;
        read_answer(resp, &[]).await
    };
    telemetry::Attempt::get(url)
        .run(request, |answer| answer.status)
        .await
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
            client: ClientAuth {
                client_id,
                client_secret,
                method: auth,
                assertion: None,
            },
            rules: AnswerRules::default(),
            clock: Arc::new(SystemClock),
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
    pub(crate) fn with_revoked_grant_errors(mut self, codes: Vec<DeadGrant>) -> Self {
        self.rules.dead_grants = codes.into();
        self
    }

    /// Accepts these provider names for bearer tokens (a preset's or the user's).
    pub(crate) fn with_bearer_token_types(mut self, types: Vec<String>) -> Self {
        self.rules.bearer_token_types = types.into();
        self
    }

    /// Reads dates in rate-limit answers with `clock`.
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The token response rules ([`token_from_answer_bound`]) with this configuration's
    /// accepted bearer token types: for grants that read their answer themselves.
    pub(crate) fn token_from_answer(
        &self,
        answer: Answer,
        now: SystemTime,
        dpop: Option<&DpopKey>,
    ) -> Result<Token, Error> {
        token_from_answer_bound(answer, now, dpop, &self.rules.bearer_token_types)
    }

    /// Signs client assertions with `assertion` (`private_key_jwt`, `client_secret_jwt`).
    pub(crate) fn with_client_assertion(mut self, assertion: Option<ClientAssertion>) -> Self {
        self.client.assertion = assertion;
        self
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client.client_id
    }

    /// This registration's HTTP client (no redirects, the timeout; a client certificate if
    /// one was given), for a request whose sending is done by the request rules (UserInfo).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The timeout of each request.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// [`get_json`] with this registration's HTTP client (the provider's JWKS).
    pub(crate) async fn get_json(&self, url: &url::Url) -> Result<Answer, Error> {
        let jwks = answered(fetch_json(&self.http, url, self.timeout));
        observed(Call::Jwks.label(None), url, jwks).await
    }

    pub(crate) fn auth_method(&self) -> ClientAuthMethod {
        self.client.method
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
        self.send(call, url, form, replay, None, &Flight::default())
            .await
    }

    /// [`post_form`](Self::post_form) for a token request whose answer a grant reads itself:
    /// with the configuration's DPoP key, if any, it carries a proof. Read the answer with
    /// [`token_from_answer_bound`] and [`dpop_key`](Self::dpop_key). `flight` says what the
    /// request may do for callers who may have left.
    pub(crate) async fn post_token_form(
        &self,
        url: &url::Url,
        form: Form,
        flight: &Flight,
    ) -> Result<Answer, Error> {
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        self.send(Call::Token, url, form, replay, self.dpop.as_ref(), flight)
            .await
    }

    /// [`post_form`](Self::post_form) for a request without a grant type that is safe to
    /// send twice (device authorization, introspection), retried under the retry policy.
    pub(crate) async fn post_form_retrying(
        &self,
        call: Call,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        self.send(call, url, form, Replay::Safe, None, &Flight::default())
            .await
    }

    /// A pushed authorization request (RFC 9126 §2.1): authenticated like a token request,
    /// with a DPoP proof when the configuration has a key (RFC 9449 §10.1: the code is then
    /// bound to it). Safe to send again: each request makes a new `request_uri`, and an
    /// unused one expires.
    pub(crate) async fn post_pushed_authorization(
        &self,
        url: &url::Url,
        form: Form,
    ) -> Result<Answer, Error> {
        self.send(
            Call::PushedAuthorization,
            url,
            form,
            Replay::Safe,
            self.dpop.as_ref(),
            &Flight::default(),
        )
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
        flight: &Flight,
    ) -> Result<Answer, Error> {
        let grant = call.label(form.value("grant_type"));
        let call = self.attempts(url, form, replay, dpop, flight);
        observed(grant, url, answered(call)).await
    }

    /// One call: [`retrying`](Self::retrying), and how many requests it sent recorded on the
    /// call's span.
    async fn attempts(
        &self,
        url: &url::Url,
        form: Form,
        replay: Replay,
        dpop: Option<&DpopKey>,
        flight: &Flight,
    ) -> Result<Answer, Error> {
        let mut sent = 0u32;
        let result = self
            .retrying(url, form, replay, dpop, flight, &mut sent)
            .await;
        tracing::Span::current().record("attempts", sent);
        result
    }

    /// Attempts, backoff between them, and the endpoint's `Retry-After` wait. With a DPoP
    /// key, each attempt carries a new proof, and a `use_dpop_nonce` answer with a new nonce
    /// is answered by one more request carrying it (RFC 9449 §8).
    ///
    /// The call as a whole, retries and their waits included, ends within the
    /// configuration's timeout: each attempt gets what is left of it. A refresh sent by a
    /// cache is read for its in-flight bound instead (longer: its answer is kept even when
    /// the callers have left), and is not sent after its `send_by`. A retry is sent only
    /// while someone waits for the answer ([`Flight::wanted`]), within the retry budget.
    async fn retrying(
        &self,
        url: &url::Url,
        form: Form,
        replay: Replay,
        dpop: Option<&DpopKey>,
        flight: &Flight,
        sent: &mut u32,
    ) -> Result<Answer, Error> {
        let retry = replay != Replay::Never;
        let policy = if retry {
            self.retry
        } else {
            RetryPolicy::none()
        };
        let started = tokio::time::Instant::now();
        let deadline = started + flight.answer_bound.unwrap_or(self.timeout);
        let budget = policy.max_elapsed().min(self.timeout);
        let within_budget =
            |wait: Duration| retry && flight.wanted() && started.elapsed() + wait <= budget;
        let gate_key = Redacted(url).to_string();
        let mut attempt = 1;
        let mut nonce_retried = false;
        loop {
            if let Some((wait, status)) = self.gate.closed_for(&gate_key) {
                if !within_budget(wait) {
                    tracing::debug!(endpoint = %Redacted(url), wait_ms = millis(wait), "endpoint rate limited; not sending");
                    return Err(Error::RateLimited {
                        status,
                        retry_after: Some(wait),
                        error: None,
                    });
                }
                // Every caller sleeps until the same instant: they share the one wait.
                tokio::time::sleep(wait).await;
                continue;
            }
            let now = tokio::time::Instant::now();
            if flight.send_by.is_some_and(|by| now > by) || now >= deadline {
                // A process stopped since it recorded this refresh as in flight, or a call
                // out of time: nothing is sent.
                tracing::debug!("not sending: the request's time is over");
                return Err(Error::Timeout {
                    waited: started.elapsed(),
                });
            }
            *sent += 1;
            let mut got_nonce = false;
            let result = telemetry::Attempt::post(url, *sent - 1)
                .run(
                    self.send_once(
                        url,
                        form.clone(),
                        &gate_key,
                        dpop,
                        deadline - now,
                        &mut got_nonce,
                    ),
                    |answer| answer.status,
                )
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
                        && attempt < policy.attempts()
                        && (replay == Replay::Safe || !may_have_been_processed(&e)) =>
                {
                    // After a `Retry-After`, the closed gate above decides the wait.
                    if e.retry_after().is_none_or(|d| d.is_zero()) {
                        let delay = policy.delay(attempt);
                        if !within_budget(delay) {
                            return Err(e);
                        }
                        tracing::debug!(error = %e, attempt, delay_ms = millis(delay), "transient failure; retrying");
                        tokio::time::sleep(delay).await;
                        if !flight.wanted() {
                            // Everyone who waited for it left: no new request for nobody.
                            return Err(e);
                        }
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
        timeout: Duration,
        got_nonce: &mut bool,
    ) -> Result<Answer, Error> {
        let grant_type = form.value("grant_type").unwrap_or("-").to_owned();
        tracing::debug!(
            endpoint = %Redacted(url),
            grant_type = %grant_type,
            client_id = %self.client.client_id,
            "oauth request"
        );
        let req = self
            .http
            .post(url.clone())
            .timeout(timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        let (mut req, form) = self.client.apply(req, form).await?;
        if let Some(key) = dpop {
            req = req.header(crate::dpop::DPOP, key.proof("POST", url, None).await?);
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
        let status = resp.status().as_u16();
        let wait = wait_named_by(resp.headers(), self.clock.now());
        if status == 429 || (status == 503 && wait.is_some()) {
            let e = self.rate_limited(resp, status, wait, gate_key).await;
            tracing::debug!(error = %e, "oauth request rate limited");
            return Err(e);
        }
        read_answer(resp, &self.rules.dead_grants).await
    }

    /// A 429, or a 503 with a delay, as [`Error::RateLimited`] with the provider's own code
    /// and text from the body (a body with text but no code gets the status as its code);
    /// the delay (capped) closes the endpoint for every caller.
    async fn rate_limited(
        &self,
        resp: reqwest::Response,
        status: u16,
        wait: Option<Duration>,
        gate_key: &str,
    ) -> Error {
        // The body only adds words: when it cannot be read, the rate limit stands alone.
        let fields = read_raw(resp)
            .await
            .ok()
            .and_then(|raw| parse_fields(&raw.body));
        let error = fields.as_ref().and_then(|f| rate_limit_error(status, f));
        // Discord repeats its delay in the body, in seconds.
        let from_body = || fields.as_ref()?.get("retry_after").and_then(seconds)?.ok();
        let retry_after = wait.or_else(from_body).map(|d| self.retry.cap(d));
        if let Some(wait) = retry_after.filter(|d| !d.is_zero()) {
            self.gate.close(gate_key, wait, status);
        }
        Error::RateLimited {
            status,
            retry_after,
            error,
        }
    }

    /// Requests a token: [`post_form`](Self::post_form), then the token response rules.
    /// With the configuration's DPoP key, if any, the token request carries a proof.
    pub(crate) async fn token(
        &self,
        url: &url::Url,
        form: Form,
        now: SystemTime,
    ) -> Result<Token, Error> {
        self.token_with(url, form, now, self.dpop.as_ref(), &Flight::default())
            .await
    }

    /// [`token`](Self::token) with proofs signed by `dpop` (a refresh uses the key its login
    /// is bound to), sent for a cache's `flight`.
    pub(crate) async fn token_with(
        &self,
        url: &url::Url,
        form: Form,
        now: SystemTime,
        dpop: Option<&DpopKey>,
        flight: &Flight,
    ) -> Result<Token, Error> {
        // The token response rules run inside the span: a response they refuse is a failed
        // token request.
        let grant = Call::Token.label(form.value("grant_type"));
        let replay = form.value("grant_type").map_or(Replay::Never, replay_of);
        let request = async {
            let answer = self.attempts(url, form, replay, dpop, flight).await?;
            let status = answer.status;
            self.token_from_answer(answer, now, dpop)
                .map(|token| (status, token))
        };
        observed(grant, url, request).await
    }
}

/// Epoch seconds from this value on; below it, a rate-limit reset counts seconds from now.
/// (2001-09-09: no reset is that far in the past, and no window that long.)
const EPOCH_FROM: f64 = 1_000_000_000.0;

/// How long the answer's headers ask the client to wait, read at `now`: `Retry-After`
/// (seconds or an HTTP date, RFC 9110 §10.2.3); else the rate-limit headers providers send
/// instead: `X-RateLimit-Reset-After` (seconds, Discord), `X-Rate-Limit-Reset` (Okta) and
/// `X-RateLimit-Reset` (GitHub, Discord, Reddit), which are epoch seconds at Okta, GitHub
/// and Discord and seconds from now at Reddit: a value before 2001 is read as the latter.
pub(crate) fn wait_named_by(headers: &http::HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = header("retry-after").and_then(|v| parse_retry_after(v, now)) {
        return Some(wait);
    }
    let number = |name: &str| {
        header(name)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    let secs = |n: f64| Duration::try_from_secs_f64(n).unwrap_or(Duration::MAX);
    if let Some(after) = number("x-ratelimit-reset-after") {
        return Some(secs(after));
    }
    let reset = number("x-rate-limit-reset").or_else(|| number("x-ratelimit-reset"))?;
    if reset < EPOCH_FROM {
        return Some(secs(reset));
    }
    let at = SystemTime::UNIX_EPOCH.checked_add(secs(reset))?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
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

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
