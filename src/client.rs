//! [`AuthedClient`]: a `reqwest::Client` that attaches a fresh token to every request.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use url::{Host, Origin, Url};

use crate::error::{Error, Unauthorized};
use crate::source::TokenSource;
use crate::token::Token;

/// An HTTP client that sends `Authorization: Bearer <token>` with every request to the
/// origins it is configured for.
///
/// It asks its [`TokenSource`] for a token per request (a cached token costs an atomic load
/// and a clock read). When the API answers `401` with
/// `WWW-Authenticate: Bearer error="invalid_token"`, a bare Bearer challenge, or no challenge
/// at all, it reports the token as rejected, gets a fresh one and sends the request **once**
/// more. Any other 401, or a second one, is [`Error::Unauthorized`]. A 401 from another
/// origin that a redirect led to is [`Error::RedirectedUnauthorized`]: the token was not sent
/// there, so it is neither refreshed nor sent again. Other statuses (403 included) are
/// returned as responses.
///
/// Tokens only go to the configured origins: the base URL's, those added with
/// [`allow_origin`](AuthedClientBuilder::allow_origin), or any HTTPS origin after
/// [`danger_allow_any_https_origin`](AuthedClientBuilder::danger_allow_any_https_origin).
/// A request elsewhere fails with [`Error::UntrustedOrigin`] before anything is sent.
///
/// One client can serve many users: [`RequestBuilder::source`] sends a request on behalf of
/// another token source (a signed-in user's login, e.g. from a
/// [`UserSources`](crate::UserSources) registry) through the same connection pool and the
/// same origin and 401 rules; the 401 refresh then goes to that source.
///
/// Cloning is cheap and shares the connection pool and the token source.
#[derive(Debug, Clone)]
pub struct AuthedClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    source: Arc<dyn TokenSource>,
    base_url: Option<Url>,
    origins: Vec<Origin>,
    any_https_origin: bool,
}

/// Builds an [`AuthedClient`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthedClientBuilder {
    source: Arc<dyn TokenSource>,
    http: Option<reqwest::Client>,
    base_url: Option<String>,
    origins: Vec<String>,
    any_https_origin: bool,
    allow_insecure_http: bool,
}

impl AuthedClient {
    /// Starts a client that takes its tokens from `source`.
    pub fn builder(source: impl TokenSource + 'static) -> AuthedClientBuilder {
        Self::builder_arc(Arc::new(source))
    }

    /// Like [`builder`](Self::builder), for a source that is already shared.
    pub fn builder_arc(source: Arc<dyn TokenSource>) -> AuthedClientBuilder {
        AuthedClientBuilder {
            source,
            http: None,
            base_url: None,
            origins: Vec::new(),
            any_https_origin: false,
            allow_insecure_http: false,
        }
    }

    /// Starts a client without a token source of its own, for an app that sends every
    /// request on behalf of a user with [`RequestBuilder::source`] (one client, one
    /// connection pool for all users). A request sent without a source fails with
    /// [`Error::Config`] before anything is sent.
    pub fn builder_for_users() -> AuthedClientBuilder {
        Self::builder(NoOwnSource)
    }

    /// The token source.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.inner.source
    }

    /// Starts a request. `url` is a [`Url`], used as it is, or a string (`&str`, `String`),
    /// absolute or relative to the base URL.
    pub fn request(&self, method: Method, url: impl IntoRequestUrl) -> RequestBuilder {
        let request = url
            .resolve(self.inner.base_url.as_ref())
            .map(|url| self.inner.http.request(method, url))
            .map_err(|e| Error::config(format!("invalid request URL: {e}")));
        RequestBuilder {
            client: self.clone(),
            request,
            source: None,
        }
    }

    /// Starts a `GET` request.
    pub fn get(&self, url: impl IntoRequestUrl) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a `POST` request.
    pub fn post(&self, url: impl IntoRequestUrl) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a `PUT` request.
    pub fn put(&self, url: impl IntoRequestUrl) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a `PATCH` request.
    pub fn patch(&self, url: impl IntoRequestUrl) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Starts a `DELETE` request.
    pub fn delete(&self, url: impl IntoRequestUrl) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    fn check_origin(&self, url: &Url) -> Result<(), Error> {
        // Compared part by part: `Url::origin()` allocates, and this runs on every request.
        let same_origin = |origin: &Origin| match origin {
            Origin::Tuple(scheme, host, port) => {
                scheme == url.scheme()
                    && match (url.host(), host) {
                        (Some(Host::Domain(a)), Host::Domain(b)) => a == b,
                        (Some(Host::Ipv4(a)), Host::Ipv4(b)) => a == *b,
                        (Some(Host::Ipv6(a)), Host::Ipv6(b)) => a == *b,
                        _ => false,
                    }
                    && Some(*port) == url.port_or_known_default()
            }
            Origin::Opaque(_) => false,
        };
        let allowed = self.inner.origins.iter().any(same_origin)
            || (self.inner.any_https_origin && url.scheme() == "https");
        if allowed {
            Ok(())
        } else {
            Err(Error::UntrustedOrigin {
                origin: url.origin().ascii_serialization(),
            })
        }
    }

    async fn execute(
        &self,
        mut request: reqwest::Request,
        token: &Token,
    ) -> Result<reqwest::Response, Error> {
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer(token)?);
        self.inner
            .http
            .execute(request)
            .await
            .map_err(Error::transport)
    }

    /// Sends `request` with a token. One flat future, with the rare 401 path boxed: every
    /// request moves this future around, and nested or larger futures are copied each time.
    /// `source` is the client's own, or the one the request was sent on behalf of.
    async fn send(
        &self,
        mut request: reqwest::Request,
        source: &dyn TokenSource,
    ) -> Result<reqwest::Response, Error> {
        self.check_origin(request.url())?;
        tracing::debug!(method = %request.method(), path = request.url().path(), "authed request");
        // Kept to send once more after a rejected token. A streaming body cannot be copied:
        // then only the URL is kept, to tell where the 401 came from.
        let replay = request.try_clone().ok_or_else(|| request.url().clone());
        let token = source.token().await?;
        request
            .headers_mut()
            .insert(header::AUTHORIZATION, bearer(&token)?);
        let response = self
            .inner
            .http
            .execute(request)
            .await
            .map_err(Error::transport)?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        Box::pin(self.after_401(response, replay, token, source)).await
    }

    /// The rules for a 401 (RFC 6750 §3.1): if it rejects the token that was sent, report
    /// the token as rejected, get a fresh one and send the request once more.
    async fn after_401(
        &self,
        response: reqwest::Response,
        replay: Result<reqwest::Request, Url>,
        token: Arc<Token>,
        source: &dyn TokenSource,
    ) -> Result<reqwest::Response, Error> {
        let sent_to = match &replay {
            Ok(request) => request.url(),
            Err(url) => url,
        };
        if let Some(e) = token_not_sent(sent_to, &response) {
            return Err(e);
        }
        let challenge = bearer_challenge(response.headers());
        let mut refused = Unauthorized::new(challenge.as_ref());
        if !challenge.as_ref().is_none_or(Challenge::asks_for_new_token) {
            return Err(Error::Unauthorized(refused));
        }
        let Ok(replay) = replay else {
            refused.replayable = false;
            return Err(Error::Unauthorized(refused));
        };
        tracing::debug!("the API rejected the token; refreshing and retrying once");
        let fresh = source.token_rejected(&token).await?;
        let sent_to = replay.url().clone();
        let response = self.execute(replay, &fresh).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        if let Some(e) = token_not_sent(&sent_to, &response) {
            return Err(e);
        }
        let mut refused = Unauthorized::new(bearer_challenge(response.headers()).as_ref());
        refused.retried = true;
        Err(Error::Unauthorized(refused))
    }
}

/// The source of a client made with [`AuthedClient::builder_for_users`].
#[derive(Debug)]
struct NoOwnSource;

impl TokenSource for NoOwnSource {
    fn token(&self) -> crate::source::TokenFuture<'_> {
        crate::source::TokenFuture::ready(Err(Error::config(
            "this client has no token source of its own: send the request with .source(login)",
        )))
    }
}

/// A 401 from another origin than the one the token was sent to: the request was
/// redirected, and reqwest drops `Authorization` when a redirect changes scheme, host or
/// port (the rule below is reqwest's). That 401 answers a request without a token, so it
/// says nothing about the token: no refresh, no replay.
fn token_not_sent(sent_to: &Url, response: &reqwest::Response) -> Option<Error> {
    let answered = response.url();
    let same = answered.scheme() == sent_to.scheme()
        && answered.host_str() == sent_to.host_str()
        && answered.port_or_known_default() == sent_to.port_or_known_default();
    (!same).then(|| Error::RedirectedUnauthorized {
        origin: answered.origin().ascii_serialization(),
    })
}

/// A request URL: a [`Url`], used as it is, or a string (`&str`, `String`, `&String`),
/// absolute or relative to the client's base URL. A `Url` is not parsed again.
pub trait IntoRequestUrl: sealed::Resolve {}

impl<T: sealed::Resolve> IntoRequestUrl for T {}

mod sealed {
    use url::{ParseError, Url};

    /// How each kind of request URL becomes a `Url`. Sealed: only the crate implements it.
    pub trait Resolve {
        fn resolve(self, base: Option<&Url>) -> Result<Url, ParseError>;
    }

    impl Resolve for Url {
        fn resolve(self, _base: Option<&Url>) -> Result<Url, ParseError> {
            Ok(self)
        }
    }

    impl Resolve for &Url {
        fn resolve(self, _base: Option<&Url>) -> Result<Url, ParseError> {
            Ok(self.clone())
        }
    }

    impl Resolve for &str {
        fn resolve(self, base: Option<&Url>) -> Result<Url, ParseError> {
            match base {
                Some(base) => base.join(self),
                None => Url::parse(self),
            }
        }
    }

    impl Resolve for String {
        fn resolve(self, base: Option<&Url>) -> Result<Url, ParseError> {
            self.as_str().resolve(base)
        }
    }

    impl Resolve for &String {
        fn resolve(self, base: Option<&Url>) -> Result<Url, ParseError> {
            self.as_str().resolve(base)
        }
    }
}

fn bearer(token: &Token) -> Result<HeaderValue, Error> {
    token.bearer_header().ok_or_else(|| {
        Error::malformed(
            200,
            "the access token has characters that cannot be sent in a header",
        )
    })
}

impl AuthedClientBuilder {
    /// The base URL relative request paths resolve against; its origin receives tokens.
    /// A missing trailing `/` is added, so `https://api.example.com/v1` + `users` is
    /// `https://api.example.com/v1/users`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Another origin (`https://host[:port]`) that receives tokens.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Sends tokens to any HTTPS origin. Use only when every host the client can reach is
    /// meant to see the token: a URL built from user input would leak it.
    pub fn danger_allow_any_https_origin(mut self) -> Self {
        self.any_https_origin = true;
        self
    }

    /// Allows plain-HTTP origins that are not loopback. Tokens then cross the network in
    /// clear.
    pub fn danger_allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// The `reqwest::Client` to send requests with (for proxies, TLS roots, timeouts, the
    /// client certificate certificate-bound tokens need, see
    /// [`identity_from_pem`](crate::identity_from_pem)). By default a new one. Its redirect policy applies: reqwest's default drops the
    /// `Authorization` header when a redirect leaves the host.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable base URL or origin, a plain-HTTP origin that is
    /// not loopback, or no origin at all.
    pub fn build(self) -> Result<AuthedClient, Error> {
        let insecure = self.allow_insecure_http;
        let check = |what: &str, raw: &str| crate::config::endpoint_url(what, raw, insecure);
        let base_url = self
            .base_url
            .map(|raw| {
                let mut url = check("base URL", &raw)?;
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                Ok::<_, Error>(url)
            })
            .transpose()?;
        let mut origins = Vec::new();
        if let Some(base) = &base_url {
            origins.push(base.origin());
        }
        for raw in &self.origins {
            origins.push(check("origin", raw)?.origin());
        }
        if origins.is_empty() && !self.any_https_origin {
            return Err(Error::config(
                "name where tokens may go: base_url, allow_origin or danger_allow_any_https_origin",
            ));
        }
        if self.any_https_origin {
            tracing::warn!("danger_allow_any_https_origin: tokens go to any HTTPS origin");
        }
        let plain = |o: &url::Origin| {
            matches!(o, url::Origin::Tuple(scheme, host, _) if scheme == "http"
                && !matches!(host, url::Host::Ipv4(ip) if ip.is_loopback())
                && !matches!(host, url::Host::Ipv6(ip) if ip.is_loopback())
                && !matches!(host, url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost")))
        };
        if insecure && origins.iter().any(plain) {
            tracing::warn!(
                "danger_allow_insecure_http: tokens go to a plain-HTTP origin that is not \
                 loopback, in clear"
            );
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(30))
                .build()
                .map_err(Error::transport)?,
        };
        Ok(AuthedClient {
            inner: Arc::new(Inner {
                http,
                source: self.source,
                base_url,
                origins,
                any_https_origin: self.any_https_origin,
            }),
        })
    }
}

/// A request being built; [`send`](Self::send) attaches the token. Mirrors
/// `reqwest::RequestBuilder`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: AuthedClient,
    request: Result<reqwest::RequestBuilder, Error>,
    /// Who the request is sent for; `None` is the client's own source.
    source: Option<Arc<dyn TokenSource>>,
}

/// The `reqwest::RequestBuilder` setters a request builder mirrors, each through the
/// builder's own `with`: one list for the async and the blocking client.
macro_rules! mirror_request_setters {
    () => {
        /// Adds a header.
        pub fn header<K, V>(self, key: K, value: V) -> Self
        where
            reqwest::header::HeaderName: TryFrom<K>,
            <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
            reqwest::header::HeaderValue: TryFrom<V>,
            <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
        {
            self.with(|r| r.header(key, value))
        }

        /// Adds headers.
        pub fn headers(self, headers: reqwest::header::HeaderMap) -> Self {
            self.with(|r| r.headers(headers))
        }

        /// Sets the body.
        pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
            self.with(|r| r.body(body))
        }

        /// Adds query parameters.
        pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
            self.with(|r| r.query(query))
        }

        /// Sets a form-urlencoded body.
        pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
            self.with(|r| r.form(form))
        }

        /// Sets a JSON body.
        pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
            self.with(|r| r.json(json))
        }

        /// Sets a timeout for this request.
        pub fn timeout(self, timeout: std::time::Duration) -> Self {
            self.with(|r| r.timeout(timeout))
        }
    };
}
#[cfg_attr(not(feature = "blocking"), allow(unused_imports))] // used by blocking.rs
pub(crate) use mirror_request_setters;

impl RequestBuilder {
    /// Applies any `reqwest::RequestBuilder` method this type does not mirror.
    pub fn with(
        mut self,
        f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Self {
        self.request = self.request.map(f);
        self
    }

    mirror_request_setters!();

    /// Sends this request on behalf of `source` instead of the client's own token source:
    /// for a web app that serves many signed-in users through one client (one connection
    /// pool). The token comes from `source`, and a rejected token (`401 invalid_token`) is
    /// reported to `source`, so only that user's login is refreshed; the origins a token may
    /// go to stay the client's.
    ///
    /// ```no_run
    /// # async fn run(client: authed::AuthedClient, users: authed::UserSources) -> Result<(), authed::Error> {
    /// if let Some(login) = users.get("user:42").await? {
    ///     let me = client.get("me").source(login).send().await?;
    ///     # let _ = me;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn source(mut self, source: impl TokenSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Sends the request with a token, retrying once with a fresh token on an
    /// `invalid_token` 401.
    ///
    /// # Errors
    ///
    /// [`Error::UntrustedOrigin`] before anything is sent to an origin the client is not
    /// configured for; any error of the token source; [`Error::Unauthorized`] when the API
    /// refuses the token after a refresh, or refuses it and the body cannot be replayed;
    /// [`Error::RedirectedUnauthorized`] when a redirect to another origin ended in a 401;
    /// [`Error::Transport`] when the request fails.
    pub fn send(self) -> impl Future<Output = Result<reqwest::Response, Error>> + Send {
        let request = self.request.and_then(|r| {
            r.build()
                .map_err(|e| Error::config(format!("invalid request: {}", e.without_url())))
        });
        // Not an `async fn`: that would be one more future around `AuthedClient::send`'s.
        async move {
            let source = match &self.source {
                Some(source) => &**source,
                None => &*self.client.inner.source,
            };
            self.client.send(request?, source).await
        }
    }
}

/// A `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Challenge {
    pub(crate) error: Option<String>,
    pub(crate) description: Option<String>,
}

impl Challenge {
    /// `invalid_token`, or a bare challenge (the token was missing, expired or revoked).
    fn asks_for_new_token(&self) -> bool {
        self.error.as_deref().is_none_or(|e| e == "invalid_token")
    }
}

/// The first Bearer challenge of the response. `None` when there is no `WWW-Authenticate`
/// header at all; a challenge with an error of `"-"` stands for one that is not Bearer, so
/// that a 401 asking for Basic credentials is not answered with a token refresh.
fn bearer_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut saw_other = false;
    for value in headers.get_all(header::WWW_AUTHENTICATE) {
        let Ok(value) = value.to_str() else {
            saw_other = true;
            continue;
        };
        for (scheme, params) in parse_challenges(value) {
            if scheme.eq_ignore_ascii_case("bearer") {
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                return Some(Challenge {
                    error: get("error"),
                    description: get("error_description"),
                });
            }
            saw_other = true;
        }
    }
    saw_other.then(|| Challenge {
        error: Some("-".to_owned()),
        description: None,
    })
}

type Params = Vec<(String, String)>;

/// Splits a `WWW-Authenticate` value into challenges (RFC 9110 §11.6.1): scheme, then
/// `name=value` or `name="quoted"` parameters. Lenient, never panics.
fn parse_challenges(value: &str) -> Vec<(String, Params)> {
    let chars: Vec<char> = value.chars().collect();
    let mut i = 0;
    let mut out: Vec<(String, Params)> = Vec::new();
    let is_delim = |c: char| c.is_whitespace() || c == ',' || c == '=' || c == '"';
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && !is_delim(chars[i]) {
            i += 1;
        }
        if start == i {
            // A stray `=` or `"`: skip it.
            i += 1;
            continue;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j].is_whitespace() {
            j += 1;
        }
        let is_param = j < chars.len() && chars[j] == '=' && !out.is_empty();
        if !is_param {
            out.push((word, Vec::new()));
            continue;
        }
        i = j + 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut val = String::new();
        if i < chars.len() && chars[i] == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                val.push(chars[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < chars.len() && chars[i] != ',' && !chars[i].is_whitespace() {
                val.push(chars[i]);
                i += 1;
            }
        }
        if let Some((_, params)) = out.last_mut() {
            params.push((word, val));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_bearer_parameters() {
        let c = bearer_challenge(&headers(&[
            r#"Bearer realm="api", error="invalid_token", error_description="The access token expired""#,
        ]))
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.description.as_deref(), Some("The access token expired"));
        assert!(c.asks_for_new_token());
    }

    #[test]
    fn finds_bearer_among_several_challenges() {
        let c = bearer_challenge(&headers(&[
            r#"Basic realm="x", Bearer error=invalid_token"#,
        ]))
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        let c = bearer_challenge(&headers(&["Basic realm=x", "Bearer"])).unwrap();
        assert!(c.asks_for_new_token());
    }

    #[test]
    fn other_errors_and_schemes_do_not_ask_for_a_token() {
        let scope = bearer_challenge(&headers(&[r#"Bearer error="insufficient_scope""#])).unwrap();
        assert!(!scope.asks_for_new_token());
        let basic = bearer_challenge(&headers(&[r#"Basic realm="x""#])).unwrap();
        assert!(!basic.asks_for_new_token());
        assert_eq!(bearer_challenge(&HeaderMap::new()), None);
    }

    #[test]
    fn quoted_strings_unescape() {
        let c = parse_challenges(r#"Bearer error_description="say \"hi\", ok""#);
        assert_eq!(c[0].1[0].1, r#"say "hi", ok"#);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = parse_challenges(&s);
        }
    }
}
