//! [`AuthedClient`]: a `reqwest::Client` that attaches a fresh token to every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::authorize::{self, Answer, Door, Exchange, InFlight, Replay};
use crate::error::Error;
use crate::origins::{OriginSettings, Origins, Target};
use crate::request_url::RequestUrl;
use crate::source::TokenSource;
use crate::token::Token;

/// An HTTP client that sends `Authorization: Bearer <token>` with every request to the
/// origins it is configured for.
///
/// It asks its [`TokenSource`] for a token per request (a cached token costs an atomic load
/// and a clock read). When the API answers `401` with
/// `WWW-Authenticate: Bearer error="invalid_token"`, a bare Bearer challenge, or no challenge
/// at all, it reports the token as rejected, gets a fresh one and sends the request **once**
/// more. Any other 401, or a second one, is [`Error::Unauthorized`]; so is a rejection of a
/// request whose body is a stream that cannot be sent twice, after the rejected token was
/// reported (the next request gets the fresh one). A DPoP `use_dpop_nonce` 401 is answered
/// with the server's nonce once per call. Other statuses (403 included) are returned as
/// responses.
///
/// Tokens, and the DPoP proofs of DPoP-bound tokens, only go to the configured origins: the
/// base URL's, those added with [`allow_origin`](AuthedClientBuilder::allow_origin), or any
/// HTTPS origin after
/// [`danger_allow_any_https_origin`](AuthedClientBuilder::danger_allow_any_https_origin).
/// A request elsewhere fails with [`Error::UntrustedOrigin`] before anything is sent.
/// Redirects (301, 302, 303, 307, 308; at most 10) are followed by the client itself within
/// those origins, each hop with fresh credentials; a redirect to any other origin is not
/// followed and is returned as the API's answer, so nothing reaches that origin.
///
/// One client can serve many users: [`RequestBuilder::source`] sends a request on behalf of
/// another token source (a signed-in user's login, e.g. from a
/// [`UserSources`](crate::UserSources) registry) through the same connection pool and the
/// same origin and 401 rules; the 401 refresh then goes to that source.
///
/// Cloning is cheap and shares the connection pool and the token source.
///
/// ```
/// use authed::testing::TestProvider;
/// use authed::{AuthedClient, OAuthConfig};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), authed::Error> {
/// // An OAuth provider and a protected API in this process, standing in for real ones.
/// let provider = TestProvider::start().await;
/// let config = OAuthConfig::builder(provider.token_url())
///     .client_id(TestProvider::CLIENT_ID)
///     .client_secret(TestProvider::CLIENT_SECRET)
///     .build()?;
/// let client = AuthedClient::builder(config.client_credentials().scopes(["api:read"]).build())
///     .base_url(provider.api_url())
///     .build()?;
///
/// for item in ["a", "b"] {
///     let response = client.get(format!("items/{item}")).send().await?;
///     assert_eq!(response.status(), 200);
/// }
/// // One token served both requests.
/// assert_eq!(provider.token_requests(), 1);
///
/// // The API rejects the token: one refresh, one re-send, and the caller sees a 200.
/// provider.revoke_access_tokens();
/// assert_eq!(client.get("items/c").send().await?.status(), 200);
/// assert_eq!(provider.token_requests(), 2);
///
/// // A token never goes to an origin the client was not set up for.
/// let elsewhere = client.get("https://elsewhere.example/").send().await;
/// assert!(matches!(elsewhere, Err(authed::Error::UntrustedOrigin { .. })));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AuthedClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// Whether `http` came from the caller ([`AuthedClientBuilder::http_client`]): it may
    /// follow redirects on its own.
    http_given: bool,
    source: Arc<dyn TokenSource>,
    base_url: Option<Url>,
    origins: Origins,
}

/// Builds an [`AuthedClient`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthedClientBuilder {
    source: Arc<dyn TokenSource>,
    http: Option<reqwest::Client>,
    base_url: Option<String>,
    origins: OriginSettings,
}

impl AuthedClient {
    /// Starts a client that takes its tokens from `source`: a grant's source, or an
    /// `Arc<dyn TokenSource>` you already share, which is used as it is (not wrapped again).
    pub fn builder(source: impl TokenSource + 'static) -> AuthedClientBuilder {
        AuthedClientBuilder {
            source: crate::source::shared(source),
            http: None,
            base_url: None,
            origins: OriginSettings::default(),
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

    /// Starts a request. `url` is a [`RequestUrl`]: a [`Url`], used as it is, or a string
    /// (`&str`, `String`), absolute or relative to the base URL.
    pub fn request<'u>(&self, method: Method, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        // Each arm builds the whole builder: reqwest's, made inside it, is not copied again
        // (a `Result` made first and moved in costs two more 264-byte copies).
        match url.into().resolve(self.inner.base_url.as_ref()) {
            Ok(url) => RequestBuilder {
                client: self.clone(),
                request: Ok(self.inner.http.request(method, url)),
                source: None,
            },
            Err(e) => RequestBuilder {
                client: self.clone(),
                request: Err(Error::config(format!("invalid request URL: {e}"))),
                source: None,
            },
        }
    }

    /// Starts a `GET` request.
    pub fn get<'u>(&self, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a `POST` request.
    pub fn post<'u>(&self, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a `PUT` request.
    pub fn put<'u>(&self, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a `PATCH` request.
    pub fn patch<'u>(&self, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Starts a `DELETE` request.
    pub fn delete<'u>(&self, url: impl Into<RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }
}

/// [`AuthedClient`]'s front door to the request rules: a plain `reqwest::Client`. Also how
/// a UserInfo request, sent with a provider endpoint's client, goes through the same rules.
pub(crate) struct Reqwest {
    pub(crate) http: reqwest::Client,
    /// Whether the client may follow redirects on its own: one the caller gave, whose
    /// redirect policy is unknown. An answer from a client that follows none comes from
    /// where the request was sent, so a request kept for a replay need not keep its URL.
    pub(crate) may_redirect: bool,
}

/// What [`Reqwest`] keeps of a request to send it again (see [`Exchange::Kept`]).
pub(crate) enum Kept {
    /// A whole copy of a request with a body; boxed, as every request's future holds a
    /// `Kept`, and most have no body.
    Request(Box<reqwest::Request>),
    /// A request without a body (most requests): its parts, not a whole `reqwest::Request`
    /// (assembling one and dropping it costs more than the parts). The URL only for a client
    /// that may follow redirects on its own, to tell where an answer came from; for one that
    /// follows none, the URL it went to is the answer's, and a copy would allocate.
    Bodiless {
        method: Method,
        /// `None` when there were none: an empty map still costs calls to make and drop.
        /// Boxed, so that a request without headers carries no room for them.
        headers: Option<Box<HeaderMap>>,
        version: reqwest::Version,
        timeout: Option<Duration>,
        /// Boxed: only a caller's client needs it.
        url: Option<Box<Url>>,
    },
}

impl Exchange for Reqwest {
    type Request = reqwest::Request;
    type Response = reqwest::Response;
    type Failure = Error;
    type Kept = Kept;

    fn keep(&self, request: &reqwest::Request) -> Option<Kept> {
        if request.body().is_some() {
            return request.try_clone().map(|r| Kept::Request(Box::new(r)));
        }
        let headers = request.headers();
        Some(Kept::Bodiless {
            method: request.method().clone(),
            headers: (!headers.is_empty()).then(|| Box::new(headers.clone())),
            version: request.version(),
            timeout: request.timeout().copied(),
            url: self.may_redirect.then(|| Box::new(request.url().clone())),
        })
    }

    fn again(kept: &Kept, sent_to: Option<&Url>) -> Option<reqwest::Request> {
        match kept {
            Kept::Request(request) => request.try_clone(),
            Kept::Bodiless {
                method,
                headers,
                version,
                timeout,
                url,
            } => {
                let url = url.as_deref().or(sent_to)?.clone();
                Some(bodiless(
                    method.clone(),
                    url,
                    headers.as_deref(),
                    *version,
                    *timeout,
                ))
            }
        }
    }

    fn kept_url(kept: &Kept) -> Option<&Url> {
        match kept {
            Kept::Request(request) => Some(request.url()),
            Kept::Bodiless { url, .. } => url.as_deref(),
        }
    }

    fn method(request: &reqwest::Request) -> &Method {
        request.method()
    }

    fn target(request: &reqwest::Request) -> Target<'_> {
        Target::Url(request.url())
    }

    fn headers_mut(request: &mut reqwest::Request) -> &mut HeaderMap {
        request.headers_mut()
    }

    fn try_clone(request: &reqwest::Request) -> Option<reqwest::Request> {
        match request.body() {
            Some(_) => request.try_clone(),
            None => Some(bodiless(
                request.method().clone(),
                request.url().clone(),
                Some(request.headers()),
                request.version(),
                request.timeout().copied(),
            )),
        }
    }

    fn redirect(
        request: &reqwest::Request,
        method: Method,
        url: Url,
        keep_body: bool,
    ) -> Option<reqwest::Request> {
        redirected(request, method, url, keep_body)
    }

    fn sent_to(request: &reqwest::Request) -> Option<&Url> {
        Some(request.url())
    }

    fn answer(response: &reqwest::Response) -> Answer<'_> {
        Answer {
            unauthorized: response.status() == StatusCode::UNAUTHORIZED,
            headers: response.headers(),
            url: Some(response.url()),
            redirect: authorize::redirect_of(response.status(), response.headers()),
        }
    }

    fn fail(e: Error) -> Error {
        e
    }

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Error>> + Send {
        Transported {
            sent: self.http.execute(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// reqwest's future with its error made this crate's: a combinator, not an `async`
    /// block, which would be one more state machine to run and move on every request.
    struct Transported<F> {
        #[pin]
        sent: F,
    }
}

impl<F: Future<Output = Result<reqwest::Response, reqwest::Error>>> Future for Transported<F> {
    type Output = Result<reqwest::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().sent.poll(cx).map_err(Error::transport)
    }
}

/// A request without a body, made by hand: reqwest's `try_clone` makes an extensions map for
/// the timeout and drops it again, on every request. This crate's requests come from
/// reqwest's `RequestBuilder`, whose only extension is that timeout, set here through its
/// public accessor (only when there is one: setting it makes the map).
fn bodiless(
    method: Method,
    url: Url,
    headers: Option<&HeaderMap>,
    version: reqwest::Version,
    timeout: Option<Duration>,
) -> reqwest::Request {
    let mut request = reqwest::Request::new(method, url);
    if let Some(headers) = headers {
        *request.headers_mut() = headers.clone();
    }
    *request.version_mut() = version;
    if timeout.is_some() {
        *request.timeout_mut() = timeout;
    }
    request
}

/// A redirect's next hop for reqwest: `request` to `url` with `method`, its body kept only
/// when `keep_body` (then `None` for a body that cannot be copied). Shared with the
/// middleware.
pub(crate) fn redirected(
    request: &reqwest::Request,
    method: Method,
    url: Url,
    keep_body: bool,
) -> Option<reqwest::Request> {
    let mut next = if keep_body {
        // A full copy keeps what reqwest holds privately with the request (its extensions).
        request.try_clone()?
    } else {
        bodiless(
            method.clone(),
            url.clone(),
            Some(request.headers()),
            request.version(),
            request.timeout().copied(),
        )
    };
    *next.method_mut() = method;
    *next.url_mut() = url;
    Some(next)
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

impl AuthedClientBuilder {
    /// The base URL relative request paths resolve against; its origin receives tokens.
    /// A missing trailing `/` is added, so `https://api.example.com/v1` + `users` is
    /// `https://api.example.com/v1/users`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    crate::origins::origin_setters!();

    /// The `reqwest::Client` to send requests with (for proxies, TLS roots, timeouts, the
    /// client certificate certificate-bound tokens need, see
    /// [`identity_from_pem`](crate::identity_from_pem)). By default a new one.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())`, as the default one is:
    /// the client then follows redirects itself, each hop checked against the allowed
    /// origins and sent with fresh credentials. A client that follows redirects on its own
    /// sends every header but `Authorization`, `Cookie` and `Proxy-Authorization` to any
    /// origin a redirect names, a DPoP proof included, and the rules see only where it ended:
    /// an answer from an origin that may not receive tokens is then refused with
    /// [`Error::UntrustedRedirect`] rather than returned as the API's. Since a given client
    /// may do that, each request keeps a copy of its URL to tell where an answer came from
    /// (one small allocation per request, BENCHMARKS.md); with the default client it need
    /// not.
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
        let insecure = self.origins.insecure;
        let base_url = self
            .base_url
            .map(|raw| {
                let mut url = crate::config::endpoint_url("base URL", &raw, insecure)?;
                if !url.path().ends_with('/') {
                    url.set_path(&format!("{}/", url.path()));
                }
                Ok::<_, Error>(url)
            })
            .transpose()?;
        let origins = self.origins.build(base_url.as_ref(), true)?;
        let http_given = self.http.is_some();
        let http = match self.http {
            Some(http) => http,
            // Redirects are followed by the rules, within the allowed origins.
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(30))
                .build()
                .map_err(Error::transport)?,
        };
        Ok(AuthedClient {
            inner: Arc::new(Inner {
                http,
                http_given,
                source: self.source,
                base_url,
                origins,
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
        self.source = Some(crate::source::shared(source));
        self
    }

    /// Sends the request with a token, retrying once with a fresh token on an
    /// `invalid_token` 401.
    ///
    /// Like `reqwest::RequestBuilder::send`, this makes the request at once and sends
    /// nothing until the future is polled. A token at hand is taken then: a future kept
    /// unpolled for longer than its token lives meets a 401, which is answered like any
    /// other (one refresh, one more send).
    ///
    /// # Errors
    ///
    /// [`Error::UntrustedOrigin`] before anything is sent to an origin the client is not
    /// configured for; any error of the token source; [`Error::Unauthorized`] when the API
    /// refuses the token after a refresh, or refuses it and the body cannot be replayed;
    /// [`Error::UntrustedRedirect`] or [`Error::RedirectedUnauthorized`] when a
    /// [`http_client`](AuthedClientBuilder::http_client) that follows redirects on its own
    /// was led to another origin; [`Error::Transport`] when the request fails.
    pub fn send(self) -> impl Future<Output = Result<reqwest::Response, Error>> + Send {
        // The reqwest client the builder holds is the door's: no second clone of it.
        let (http, mut built) = match self.request {
            Ok(builder) => builder.build_split(),
            Err(e) => return Sending::Failed(Some(e)),
        };
        // Used in place, and moved once, into reqwest: the request is 264 bytes.
        let request = match &mut built {
            Ok(request) => request,
            Err(_) => return Sending::Failed(Some(invalid_request(built))),
        };
        let mut door = ClientDoor {
            http: Reqwest {
                http,
                may_redirect: self.client.inner.http_given,
            },
            client: self.client,
            source: self.source,
        };
        let (exchange, origins, source) = door.parts();
        let replay = match authorize::prepare(exchange, origins, request) {
            Ok(replay) => replay,
            Err(e) => return Sending::Failed(Some(*e)),
        };
        // A cached Bearer token is attached now and reqwest's request made (it sends nothing
        // until polled): the future then holds reqwest's boxed future, not the request, and
        // every move of it is cheap. Anything else goes through the rules' own future. A
        // token that is not at hand is asked for again there, and awaited (a cache counts a
        // miss only when the caller waits).
        let token = source.token().into_ready().ok();
        let flight = match token {
            Some(token) if token.dpop_key().is_none() => InFlight::new(token, replay, request),
            // `built` is `Ok` in the arms below: its error returned above. Matched again, not
            // bound once, so that the request is moved only into reqwest.
            token => {
                return match built {
                    Ok(request) => Sending::rules(door, request, replay, token),
                    Err(_) => Sending::Failed(Some(invalid_request(built))),
                };
            }
        };
        if let Err(e) = flight.attach_bearer(request) {
            return Sending::Failed(Some(e));
        }
        let pending = match built {
            Ok(request) => exchange.http.execute(request),
            Err(_) => return Sending::Failed(Some(invalid_request(built))),
        };
        Sending::Sent {
            pending,
            door,
            flight,
        }
    }
}

/// [`AuthedClient`]'s part in one request (see [`authorize::Door`]): its reqwest client,
/// and its origins and token source, or the source the request was given.
struct ClientDoor {
    http: Reqwest,
    client: AuthedClient,
    source: Option<Arc<dyn TokenSource>>,
}

impl authorize::Door for ClientDoor {
    type Exchange = Reqwest;

    fn parts(&mut self) -> (&mut Reqwest, &Origins, &dyn TokenSource) {
        let inner = &*self.client.inner;
        let source = match &self.source {
            Some(source) => &**source,
            None => &*inner.source,
        };
        (&mut self.http, &inner.origins, source)
    }
}

/// [`RequestBuilder::send`]'s future.
enum Sending<F> {
    /// A cached Bearer token's request, sent by reqwest (`F`: `reqwest::Client::execute`'s
    /// future, boxed inside); the rules take its answer.
    Sent {
        pending: F,
        door: ClientDoor,
        flight: InFlight<Reqwest>,
    },
    /// The rules' own future: a token to wait for, a DPoP proof to sign, or an answer that
    /// is a 401 or a redirect. Boxed, as these are rare or dear anyway.
    Rules(Pin<Box<dyn Future<Output = Result<reqwest::Response, Error>> + Send>>),
    /// A request that could not be built or may not go where it goes.
    Failed(Option<Error>),
}

impl<F> Sending<F> {
    fn rules(
        door: ClientDoor,
        request: reqwest::Request,
        replay: Replay<Reqwest>,
        token: Option<Arc<Token>>,
    ) -> Self {
        let rules = authorize::send_prepared(door, request, Ok(replay), token);
        Sending::Rules(Box::pin(rules))
    }
}

impl<F> Future for Sending<F>
where
    F: Future<Output = Result<reqwest::Response, reqwest::Error>> + Unpin,
{
    type Output = Result<reqwest::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every variant is `Unpin`: reqwest's future is boxed, and so is the rules'.
        let this = self.get_mut();
        if let Sending::Sent {
            pending,
            door,
            flight,
        } = this
        {
            let answered = ready!(Pin::new(pending).poll(cx));
            let (_, _, source) = door.parts();
            if answered
                .as_ref()
                .is_ok_and(|response| !flight.is_done(source, response))
            {
                // A 401 or a redirect: the rules' rare paths take the answer, owning the door.
                if let (Sending::Sent { door, flight, .. }, Ok(response)) =
                    (std::mem::replace(this, Sending::Failed(None)), answered)
                {
                    *this = Sending::Rules(Box::pin(after_owned(door, flight, response)));
                }
            } else {
                // Done: what it held is dropped now, and a poll after this one is an error.
                *this = Sending::Failed(None);
                return Poll::Ready(answered.map_err(Error::transport));
            }
        }
        match this {
            Sending::Rules(rules) => rules.as_mut().poll(cx),
            Sending::Failed(error) => {
                Poll::Ready(Err(error.take().unwrap_or_else(polled_after_completion)))
            }
            // Left only by returning above.
            Sending::Sent { .. } => Poll::Ready(Err(polled_after_completion())),
        }
    }
}

/// The rules' rare paths for `response`, owning the door whose parts they borrow.
async fn after_owned(
    mut door: ClientDoor,
    flight: InFlight<Reqwest>,
    response: reqwest::Response,
) -> Result<reqwest::Response, Error> {
    let (exchange, origins, source) = door.parts();
    flight.after(exchange, origins, source, response).await
}

/// The error of a request reqwest could not build (a bad header, say), without its URL.
fn invalid_request(built: Result<reqwest::Request, reqwest::Error>) -> Error {
    match built {
        Err(e) => Error::config(format!("invalid request: {}", e.without_url())),
        Ok(_) => Error::config("invalid request"),
    }
}

/// Polled again after it completed, against `Future`'s contract: an error, as this crate
/// does not panic.
fn polled_after_completion() -> Error {
    Error::config("a request's future was polled after it completed")
}
