//! A synchronous API, for scripts and small command-line programs that do not run Tokio.
//!
//! The types here wrap the async ones and drive them on an internal runtime: a thread
//! running a single-threaded Tokio runtime, as `reqwest::blocking` does. There is one such
//! thread per process, started on first use and kept until the process exits, rather than
//! one per client: a token request in flight (a rotated refresh token on its way to the
//! store) must not be cancelled because the last blocking value was dropped. Nothing is
//! re-implemented: a [`blocking::AuthedClient`](AuthedClient) sends through the
//! [`crate::AuthedClient`] it wraps, with the same origin rules and the same one retry on
//! `invalid_token`, and a [`Source`] asks the same [`TokenSource`] and its cache. Background
//! refreshes ahead of expiry run on the internal thread. [`block_on`] runs any other future
//! of the crate there (a device flow, loading a stored login, a logout).
//!
//! ```
//! # fn main() -> Result<(), authed::Error> {
//! # let provider_runtime = tokio::runtime::Runtime::new().unwrap();
//! # let provider = provider_runtime.block_on(authed::testing::TestProvider::start());
//! # let token_url = provider.token_url();
//! # let api_url = provider.api_url();
//! use authed::{AuthedClient, OAuthConfig};
//!
//! let config = OAuthConfig::builder(token_url)
//!     .client_id("test-client")
//!     .client_secret("test-secret")
//!     .build()?;
//! let client = AuthedClient::builder(config.client_credentials().build())
//!     .base_url(api_url)
//!     .build()?;
//! let client = authed::blocking::AuthedClient::new(client);
//!
//! let response = client.get("items/1").send()?.error_for_status()?;
//! println!("{}", response.text()?);
//! # Ok(()) }
//! ```
//!
//! # Where not to use it
//!
//! Not inside an async runtime: not in an `async fn`, not in a task, and not in
//! `spawn_blocking` either (a Tokio context is detected, not what kind of thread it is). A
//! blocking call there would hold a thread the runtime needs, and on a single-threaded
//! runtime wait forever for work that can never run. Every blocking call checks this first
//! and returns [`Error::Config`] (so [`Error::is_configuration`] is `true`) without doing
//! anything: this is a bug in the program, and a library should not turn it into a crash or
//! a hang. Use [`crate::AuthedClient`] and `.await` there. Creating and dropping the blocking
//! types is allowed anywhere.
//!
//! Timeouts are those of the wrapped client: the provider requests' timeout from
//! [`OAuthConfig`](crate::OAuthConfig), and for API requests the `reqwest::Client` given to
//! [`AuthedClientBuilder::http_client`](crate::AuthedClientBuilder::http_client) or
//! [`RequestBuilder::timeout`]. Give the blocking client an [`crate::AuthedClient`] of its
//! own: reqwest's pooled connections belong to the runtime that opened them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::error::Error;
use crate::source::TokenSource;
use crate::token::Token;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The handle of the internal runtime thread.
#[derive(Debug)]
struct Runtime {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// The process's one internal runtime, started on first use. If the operating system could
/// not create the thread or the runtime's I/O driver, every call gets that error.
fn runtime() -> Result<&'static Runtime, Error> {
    static RUNTIME: std::sync::OnceLock<Result<Runtime, Error>> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(Runtime::start)
        .as_ref()
        .map_err(Clone::clone)
}

impl Runtime {
    fn start() -> Result<Runtime, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::config(format!(
                    "authed::blocking: cannot create the internal Tokio runtime: {e}"
                ))
            })?;
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("authed-blocking".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    // Each call is a task of its own, so calls from several threads run
                    // concurrently and share single-flight refreshes.
                    while let Some(job) = queue.recv().await {
                        tokio::spawn(job);
                    }
                });
            })
            .map_err(|e| {
                Error::config(format!(
                    "authed::blocking: cannot start the internal runtime thread: {e}"
                ))
            })?;
        Ok(Runtime { jobs })
    }

    /// Runs `fut` on the runtime thread and waits for it.
    fn block_on<F>(&self, fut: F) -> Result<F::Output, Error>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::config(
                "authed::blocking was called inside an async runtime, where waiting would \
                 block the runtime's thread; use authed::AuthedClient and .await there",
            ));
        }
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let job = Box::pin(async move {
            // Spawned once more so a panic reaches the caller instead of vanishing.
            let _ = done.send(tokio::spawn(fut).await);
        });
        // The thread never returns: sending fails only if it died.
        let stopped = || Error::config("authed::blocking: the internal runtime thread has stopped");
        if self.jobs.send(job).is_err() {
            return Err(stopped());
        }
        match result.recv() {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            _ => Err(stopped()),
        }
    }
}

/// Runs any future of this crate on the internal runtime and waits for it: a device flow,
/// [`RefreshTokenSourceBuilder::from_store`](crate::RefreshTokenSourceBuilder::from_store),
/// a [`logout`](crate::RefreshTokenSource::logout). Sources it creates keep their background
/// refreshes on that runtime.
///
/// ```
/// # let provider_runtime = tokio::runtime::Runtime::new().unwrap();
/// # let provider = provider_runtime.block_on(authed::testing::TestProvider::start());
/// let config = provider.config(None);
/// let device = config.device_authorization().build()?;
/// let code = authed::blocking::block_on(async move { device.start().await })??;
/// println!("visit {} and enter {}", code.verification_uri(), code.user_code());
/// # Ok::<(), authed::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when called inside an async runtime (`fut` is then dropped unrun), or
/// when the operating system cannot start the internal thread.
///
/// # Panics
///
/// When `fut` panics: the panic is passed on to the caller.
pub fn block_on<F>(fut: F) -> Result<F::Output, Error>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime()?.block_on(fut)
}

/// A blocking [`TokenSource`]: [`token`](Self::token) waits for a valid token.
///
/// Made from any source ([`new`](Self::new)) or from a client ([`AuthedClient::source`]),
/// and sharing its cache: one token request serves the blocking and the async callers.
/// Cloning is cheap. See the [module](self) for where it must not be used.
#[derive(Clone, Debug)]
pub struct Source {
    source: Arc<dyn TokenSource>,
}

impl Source {
    /// A blocking handle on `source`: a grant's source, or an `Arc<dyn TokenSource>` you
    /// already share, which is used as it is (not wrapped again).
    pub fn new(source: impl TokenSource + 'static) -> Self {
        Source {
            source: crate::source::shared(source),
        }
    }

    /// The async source this wraps.
    pub fn as_async(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }

    /// A token that is valid now, fetched or refreshed if needed: [`TokenSource::token`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when called inside an async runtime; otherwise as
    /// [`TokenSource::token`].
    pub fn token(&self) -> Result<Arc<Token>, Error> {
        let source = self.source.clone();
        block_on(async move { source.token().await })?
    }

    /// Reports that an API rejected `rejected` and waits for a replacement:
    /// [`TokenSource::token_rejected`].
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    pub fn token_rejected(&self, rejected: &Token) -> Result<Arc<Token>, Error> {
        let source = self.source.clone();
        let rejected = rejected.clone();
        block_on(async move { source.token_rejected(&rejected).await })?
    }
}

/// Blocking [`crate::AuthHeaders`]: the auth headers of one request for a blocking HTTP
/// client (ureq, `reqwest::blocking`, ...), under the same rules. `examples/headers_ureq.rs`
/// shows it with ureq.
///
/// Cloning is cheap. See the [module](self) for where it must not be used.
#[derive(Clone, Debug)]
pub struct AuthHeaders {
    headers: crate::AuthHeaders,
}

impl AuthHeaders {
    /// A blocking handle on `headers`.
    pub fn new(headers: crate::AuthHeaders) -> Self {
        AuthHeaders { headers }
    }

    /// The async [`crate::AuthHeaders`] this wraps.
    pub fn as_async(&self) -> &crate::AuthHeaders {
        &self.headers
    }

    /// The credentials of one request: [`crate::AuthHeaders::request`], waited for.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when called inside an async runtime; otherwise as
    /// [`crate::AuthHeaders::request`].
    pub fn request<'u>(
        &self,
        method: Method,
        url: impl Into<crate::RequestUrl<'u>>,
    ) -> Result<RequestAuth, Error> {
        let auth = block_on(self.headers.request(method, url))??;
        Ok(RequestAuth { auth: Some(auth) })
    }
}

/// The credentials of one request, from [`AuthHeaders::request`]: a blocking
/// [`crate::RequestAuth`].
#[derive(Debug)]
pub struct RequestAuth {
    /// Always `Some` between calls: taken to the runtime thread and back.
    auth: Option<crate::RequestAuth>,
}

impl RequestAuth {
    /// The headers to add to the request: [`crate::RequestAuth::headers`].
    pub fn headers(&self) -> HeaderMap {
        self.auth
            .as_ref()
            .map(|a| a.headers().clone())
            .unwrap_or_default()
    }

    /// Tells the rules how the server answered and waits for what to do:
    /// [`crate::RequestAuth::after_response`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when called inside an async runtime; otherwise as
    /// [`crate::RequestAuth::after_response`].
    pub fn after_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<crate::AfterResponse, Error> {
        let mut auth = self
            .auth
            .take()
            .ok_or_else(|| Error::config("authed::blocking: this RequestAuth was lost by an earlier call that failed; ask AuthHeaders::request again"))?;
        let headers = headers.clone();
        let (auth, next) = block_on(async move {
            let next = auth.after_response(status, &headers).await;
            (auth, next)
        })?;
        self.auth = Some(auth);
        next
    }
}

/// A blocking [`crate::AuthedClient`]: the same rules (tokens only to allowed origins, one
/// refresh and one re-send on an `invalid_token` 401), and calls that wait.
///
/// Cloning is cheap. See the [module](self) for an example and for where it must not be
/// used.
#[derive(Clone, Debug)]
pub struct AuthedClient {
    client: crate::AuthedClient,
}

impl AuthedClient {
    /// A blocking client sending through `client`.
    pub fn new(client: crate::AuthedClient) -> Self {
        AuthedClient { client }
    }

    /// The async client this wraps.
    pub fn as_async(&self) -> &crate::AuthedClient {
        &self.client
    }

    /// The client's token source, blocking.
    pub fn source(&self) -> Source {
        Source::new(self.client.source().clone())
    }

    /// Starts a request. `url` is absolute, or relative to the base URL.
    pub fn request<'u>(
        &self,
        method: Method,
        url: impl Into<crate::RequestUrl<'u>>,
    ) -> RequestBuilder {
        RequestBuilder {
            request: self.client.request(method, url),
        }
    }

    /// Starts a `GET` request.
    pub fn get<'u>(&self, url: impl Into<crate::RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a `POST` request.
    pub fn post<'u>(&self, url: impl Into<crate::RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a `PUT` request.
    pub fn put<'u>(&self, url: impl Into<crate::RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a `PATCH` request.
    pub fn patch<'u>(&self, url: impl Into<crate::RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::PATCH, url)
    }

    /// Starts a `DELETE` request.
    pub fn delete<'u>(&self, url: impl Into<crate::RequestUrl<'u>>) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }
}

/// A request being built by a blocking [`AuthedClient`]; [`send`](Self::send) waits for the
/// response.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    request: crate::RequestBuilder,
}

impl RequestBuilder {
    fn map(self, f: impl FnOnce(crate::RequestBuilder) -> crate::RequestBuilder) -> Self {
        RequestBuilder {
            request: f(self.request),
        }
    }

    /// Applies any `reqwest::RequestBuilder` method this type does not mirror.
    pub fn with(self, f: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.map(|r| r.with(f))
    }

    /// Adds a header.
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        reqwest::header::HeaderName: TryFrom<K>,
        <reqwest::header::HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        reqwest::header::HeaderValue: TryFrom<V>,
        <reqwest::header::HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|r| r.header(key, value))
    }

    /// Adds headers: each name in `headers` replaces the values the request had for it.
    pub fn headers(self, headers: reqwest::header::HeaderMap) -> Self {
        self.map(|r| r.headers(headers))
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|r| r.body(body))
    }

    /// Adds query parameters.
    pub fn query<T: serde::Serialize + ?Sized>(self, query: &T) -> Self {
        self.map(|r| r.query(query))
    }

    /// Sets a form-urlencoded body, and its `Content-Type` unless one is set.
    pub fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.map(|r| r.form(form))
    }

    /// Sets a JSON body, and its `Content-Type` unless one is set.
    pub fn json<T: serde::Serialize + ?Sized>(self, json: &T) -> Self {
        self.map(|r| r.json(json))
    }

    /// Sets a timeout for this request.
    pub fn timeout(self, timeout: std::time::Duration) -> Self {
        self.map(|r| r.timeout(timeout))
    }

    /// Sends the request and waits for the response's headers; as
    /// [`crate::RequestBuilder::send`].
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when called inside an async runtime; otherwise as
    /// [`crate::RequestBuilder::send`].
    pub fn send(self) -> Result<Response, Error> {
        let response = block_on(self.request.send())??;
        Ok(Response { response })
    }
}

/// A response to a blocking request. Its body is read by the methods that consume it.
#[derive(Debug)]
pub struct Response {
    response: reqwest::Response,
}

impl Response {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.response.headers()
    }

    /// The final URL of the response.
    pub fn url(&self) -> &Url {
        self.response.url()
    }

    /// The `Content-Length`, when the server sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.response.content_length()
    }

    /// The response, or an error for a 4xx or 5xx status.
    ///
    /// # Errors
    ///
    /// [`Error::HttpStatus`] with the status, retryable only for 5xx and 429.
    pub fn error_for_status(self) -> Result<Self, Error> {
        Ok(Response {
            response: self.response.error_for_status()?,
        })
    }

    /// Reads the body as text, decoded by its `charset`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when called inside an async runtime; [`Error::Transport`] when
    /// reading fails.
    pub fn text(self) -> Result<String, Error> {
        Ok(block_on(self.response.text())??)
    }

    /// Reads the body.
    ///
    /// # Errors
    ///
    /// As [`text`](Self::text).
    pub fn bytes(self) -> Result<Vec<u8>, Error> {
        Ok(block_on(self.response.bytes())??.to_vec())
    }

    /// Reads the body as JSON.
    ///
    /// # Errors
    ///
    /// As [`text`](Self::text); [`Error::Transport`] also when the body is not valid JSON
    /// for `T`.
    pub fn json<T: serde::de::DeserializeOwned + Send + 'static>(self) -> Result<T, Error> {
        Ok(block_on(self.response.json::<T>())??)
    }

    /// The async response, to read the body as a stream on a runtime of your own.
    pub fn into_async(self) -> reqwest::Response {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<AuthedClient>();
        check::<Source>();
        check::<RequestBuilder>();
        check::<Response>();
    }

    #[test]
    fn a_panic_reaches_the_caller() {
        let caught = std::panic::catch_unwind(|| block_on(async { panic!("boom") }));
        let payload = caught.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
        // The runtime thread survives it.
        assert_eq!(block_on(async { 7 }).unwrap(), 7);
    }
}
