//! [`AuthedClient`]: a `reqwest::Client` that attaches a fresh token to every request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::authorize::{self, Door, InFlight, Replay};
use crate::error::Error;
use crate::origins::{OriginSettings, Origins};
use crate::request_url::RequestUrl;
use crate::reqwest_exchange::Reqwest;
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
    http: Reqwest,
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
        // Each arm builds the whole builder: the request, made inside it, is not copied again
        // (a `Result` made first and moved in costs two more 264-byte copies).
        match url.into().resolve(self.inner.base_url.as_ref()) {
            Ok(url) => RequestBuilder {
                client: self.clone(),
                request: new_request(method, url),
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

/// A new request to `url`, made here rather than by a `reqwest::RequestBuilder`: the client
/// sends it itself, so no handle on reqwest's client is cloned and dropped per request. User
/// info in the URL is removed, never sent: the `Authorization` header is the token's (where
/// reqwest's builder would have made it a Basic header, which the token's replaced anyway).
#[inline]
fn new_request(method: Method, mut url: Url) -> Result<reqwest::Request, Error> {
    if !url.has_host() {
        return Err(Error::config("invalid request URL: it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        strip_user_info(&mut url);
    }
    Ok(reqwest::Request::new(method, url))
}

#[cold]
fn strip_user_info(url: &mut Url) {
    // Both only fail for a URL without a host, refused above.
    let _ = url.set_username("");
    let _ = url.set_password(None);
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
        let may_redirect = self.http.is_some();
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
                http: Reqwest { http, may_redirect },
                source: self.source,
                base_url,
                origins,
            }),
        })
    }
}

/// A request being built; [`send`](Self::send) attaches the token. Mirrors
/// `reqwest::RequestBuilder`; [`with`](Self::with) reaches any method it does not mirror.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: AuthedClient,
    /// The request, or the first error met while building it (reported by `send`).
    request: Result<reqwest::Request, Error>,
    /// Who the request is sent for; `None` is the client's own source.
    source: Option<Arc<dyn TokenSource>>,
}

impl RequestBuilder {
    /// Applies `f` to the request; its error, if any, replaces the request.
    fn edit(mut self, f: impl FnOnce(&mut reqwest::Request) -> Result<(), Error>) -> Self {
        if let Ok(request) = &mut self.request
            && let Err(e) = f(request)
        {
            self.request = Err(e);
        }
        self
    }

    /// Adds a header.
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.edit(|request| {
            let key = HeaderName::try_from(key).map_err(|e| invalid_part(e.into()))?;
            let value = HeaderValue::try_from(value).map_err(|e| invalid_part(e.into()))?;
            request.headers_mut().append(key, value);
            Ok(())
        })
    }

    /// Adds headers: each name in `headers` replaces the values the request had for it.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.edit(|request| {
            let into = request.headers_mut();
            // A name comes first, then `None` for each further value of the same name.
            let mut last = None;
            for (name, value) in headers {
                match (name, &mut last) {
                    (Some(name), _) => {
                        let entry = match into.entry(name) {
                            Entry::Occupied(mut entry) => {
                                entry.insert(value);
                                entry
                            }
                            Entry::Vacant(entry) => entry.insert_entry(value),
                        };
                        last = Some(entry);
                    }
                    (None, Some(entry)) => entry.append(value),
                    (None, None) => {}
                }
            }
            Ok(())
        })
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.edit(|request| {
            *request.body_mut() = Some(body.into());
            Ok(())
        })
    }

    /// Adds query parameters (serialized as `reqwest::RequestBuilder::query` does).
    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.edit(|request| {
            let url = request.url_mut();
            let added = {
                let mut pairs = url.query_pairs_mut();
                let serializer = serde_urlencoded::Serializer::new(&mut pairs);
                query
                    .serialize(serializer)
                    .map(|_| ())
                    .map_err(invalid_part)
            };
            if url.query() == Some("") {
                url.set_query(None);
            }
            added
        })
    }

    /// Sets a form-urlencoded body, and its `Content-Type` unless one is set.
    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        let body = serde_urlencoded::to_string(form).map_err(invalid_part);
        self.with_body(body, "application/x-www-form-urlencoded")
    }

    /// Sets a JSON body, and its `Content-Type` unless one is set.
    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        let body = serde_json::to_vec(json).map_err(invalid_part);
        self.with_body(body, "application/json")
    }

    fn with_body(self, body: Result<impl Into<reqwest::Body>, Error>, kind: &'static str) -> Self {
        self.edit(|request| {
            let body = body?;
            request
                .headers_mut()
                .entry(header::CONTENT_TYPE)
                .or_insert_with(|| HeaderValue::from_static(kind));
            *request.body_mut() = Some(body.into());
            Ok(())
        })
    }

    /// Sets a timeout for this request.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.edit(|request| {
            *request.timeout_mut() = Some(timeout);
            Ok(())
        })
    }

    /// Applies any `reqwest::RequestBuilder` method this type does not mirror (the request
    /// goes through a `reqwest::RequestBuilder` of the client's and back).
    pub fn with(
        mut self,
        f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Self {
        self.request = match self.request {
            Ok(request) => {
                let http = self.client.inner.http.http.clone();
                f(reqwest::RequestBuilder::from_parts(http, request))
                    .build()
                    .map_err(invalid_request)
            }
            Err(e) => Err(e),
        };
        self
    }

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
    /// was led to another origin; [`Error::Transport`] when the request fails; a
    /// [`Error::Config`] this builder met (an invalid URL or header, a body that could not
    /// be serialized).
    pub fn send(self) -> impl Future<Output = Result<reqwest::Response, Error>> + Send {
        let mut request = match self.request {
            Ok(request) => request,
            Err(e) => return Sending::Failed(Some(e)),
        };
        let caller = Caller {
            client: self.client,
            source: self.source,
        };
        let (http, origins, source) = caller.parts();
        let replay = match authorize::prepare(http, origins, &request) {
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
            Some(token) if token.dpop_key().is_none() => InFlight::new(token, replay, &request),
            token => return Sending::rules(caller.door(), request, replay, token),
        };
        if let Err(e) = flight.attach_bearer(&mut request) {
            return Sending::Failed(Some(e));
        }
        let pending = http.http.execute(request);
        Sending::Sent {
            pending,
            caller,
            flight,
        }
    }
}

/// Who a request is sent for, through which client: what a request holds while reqwest
/// sends it.
struct Caller {
    client: AuthedClient,
    /// The source the request was given, or `None` for the client's own.
    source: Option<Arc<dyn TokenSource>>,
}

impl Caller {
    fn parts(&self) -> (&Reqwest, &Origins, &dyn TokenSource) {
        let inner = &*self.client.inner;
        let source = match &self.source {
            Some(source) => &**source,
            None => &*inner.source,
        };
        (&inner.http, &inner.origins, source)
    }

    /// The door the rules' own future goes through (a handle on reqwest's client of its own,
    /// as the rules send through `&mut`).
    fn door(self) -> ClientDoor {
        ClientDoor {
            http: self.client.inner.http.clone(),
            caller: self,
        }
    }
}

/// [`AuthedClient`]'s part in one request (see [`authorize::Door`]).
struct ClientDoor {
    http: Reqwest,
    caller: Caller,
}

impl authorize::Door for ClientDoor {
    type Exchange = Reqwest;

    fn parts(&mut self) -> (&mut Reqwest, &Origins, &dyn TokenSource) {
        let (_, origins, source) = self.caller.parts();
        (&mut self.http, origins, source)
    }
}

/// [`RequestBuilder::send`]'s future.
enum Sending<F> {
    /// A cached Bearer token's request, sent by reqwest (`F`: `reqwest::Client::execute`'s
    /// future, boxed inside); the rules take its answer.
    Sent {
        pending: F,
        caller: Caller,
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
            caller,
            flight,
        } = this
        {
            let answered = ready!(Pin::new(pending).poll(cx));
            let (_, _, source) = caller.parts();
            if answered
                .as_ref()
                .is_ok_and(|response| !flight.is_done(source, response))
            {
                // A 401 or a redirect: the rules' rare paths take the answer, owning the door.
                if let (Sending::Sent { caller, flight, .. }, Ok(response)) =
                    (std::mem::replace(this, Sending::Failed(None)), answered)
                {
                    *this = Sending::Rules(Box::pin(after_owned(caller.door(), flight, response)));
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

/// The error of a request reqwest's builder could not build (a bad header, say), without
/// its URL.
fn invalid_request(e: reqwest::Error) -> Error {
    invalid_part(e.without_url())
}

/// A part of a request that could not be made: a header, a query, a body.
fn invalid_part(e: impl std::fmt::Display) -> Error {
    Error::config(format!("invalid request: {e}"))
}

/// Polled again after it completed, against `Future`'s contract: an error, as this crate
/// does not panic.
fn polled_after_completion() -> Error {
    Error::config("a request's future was polled after it completed")
}
