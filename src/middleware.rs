//! [`AuthMiddleware`]: the crate's request rules for a
//! [`reqwest_middleware::ClientWithMiddleware`], so that tokens compose with the middleware
//! you already run (retries, tracing, caching).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let provider = authed::testing::TestProvider::start().await;
//! # let config = provider.config(None);
//! # let api_url = provider.api_url();
//! use authed::middleware::AuthMiddleware;
//!
//! let source = config.client_credentials().build();
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(AuthMiddleware::builder(source).allow_origin(&api_url).build()?)
//!     .build();
//! let response = client.get(format!("{api_url}me")).send().await?;
//! assert!(response.status().is_success());
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! The middleware's own errors (an origin that may not receive tokens, a token that could not
//! be had, a 401 after a refresh) arrive as `reqwest_middleware::Error::Middleware` wrapping
//! an [`authed::Error`](crate::Error); [`authed_error`] gets it back, also from behind a
//! middleware that wraps it (or use `anyhow::Error::downcast_ref::<authed::Error>()`, or
//! search its `chain()`). A reqwest-retry placed before (outside) this middleware wraps the
//! errors of the middleware after it in `reqwest_retry::RetryError::Error`, which forwards
//! `source()` past them: downcast to `RetryError` first, then call [`authed_error`] on its
//! inner error. Errors of the middleware after it and
//! of reqwest pass through unchanged.
//!
//! # Redirects
//!
//! Build the `reqwest::Client` under the middleware with
//! `.redirect(reqwest::redirect::Policy::none())`. The middleware then follows redirects
//! itself, within the allowed origins, each hop through the rest of the chain with fresh
//! credentials; a redirect to any other origin is returned as the API's answer, so neither
//! the token nor a DPoP proof reaches it. A client that follows redirects on its own sends
//! every header but `Authorization`, `Cookie` and `Proxy-Authorization` wherever a redirect
//! points, a DPoP proof included, below where the middleware can see; an answer from an
//! origin that may not receive tokens is then refused with
//! [`Error::UntrustedRedirect`].
//!
//! # Order
//!
//! Put a retry middleware before or after this one. Before it (outside), each retry attempt
//! asks for a token again. After it (inside), retries resend the same token, and a 401 comes
//! back out to this middleware, which refreshes and sends once more through the retries.

use std::sync::Arc;

use http::Extensions;
use reqwest::header::HeaderMap;
use reqwest::{Method, Request, Response, StatusCode};
use reqwest_middleware::Next;
use url::Url;

use crate::authorize::{self, Answer, Exchange};
use crate::error::Error;
use crate::oauth_error::OAuthError;
use crate::origins::{OriginSettings, Origins, Target};
use crate::source::{RefreshTokenSource, TokenSource, UserSources};

/// A [`reqwest_middleware::Middleware`] that attaches a token from a [`TokenSource`] to every
/// request to an allowed origin, with the same rules as [`AuthedClient`](crate::AuthedClient):
/// a request to any other origin fails before it is sent
/// ([`Error::UntrustedOrigin`]); a `401` rejecting the token (`invalid_token`, a bare Bearer
/// challenge, or none) is reported to the source, which refreshes once, and the request is
/// sent **once** more when its body can be cloned; otherwise, or after a second 401, the
/// result is [`Error::Unauthorized`]. A 401 from another origin a redirect led to is
/// [`Error::RedirectedUnauthorized`].
///
/// A request can choose its token through its extensions, with a [`Login`]: a signed-in
/// user's login from a [`UserSources`] registry, a source of its own, or no token at all.
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    /// `None` for [`builder_for_users`](Self::builder_for_users).
    source: Option<Arc<dyn TokenSource>>,
    users: Option<UserSources>,
    origins: Arc<Origins>,
}

/// Builds an [`AuthMiddleware`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthMiddlewareBuilder {
    source: Option<Arc<dyn TokenSource>>,
    users: Option<UserSources>,
    origins: OriginSettings,
}

/// Which token one request through [`AuthMiddleware`] carries, put in its extensions, the way
/// reqwest-retry and reqwest-tracing take per-request settings. A request without one gets
/// the middleware's own source's token.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let provider = authed::testing::TestProvider::start().await;
/// # let config = provider.config(None);
/// # let api_url = provider.api_url();
/// use std::sync::Arc;
///
/// use authed::middleware::{AuthMiddleware, Login};
/// use authed::{MemoryStore, UserSources};
///
/// let users = UserSources::builder(config.clone(), Arc::new(MemoryStore::new())).build();
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(
///         AuthMiddleware::builder(config.client_credentials().build())
///             .users(users)
///             .allow_origin(&api_url)
///             .build()?,
///     )
///     .build();
/// // The app's own token:
/// client.get(format!("{api_url}me")).send().await?;
/// // A public endpoint, no token at all:
/// client.get(format!("{api_url}me")).with_extension(Login::Anonymous).send().await?;
/// // The login of the user signed in under "user:42" (none here: a typed error).
/// let as_user = client
///     .get(format!("{api_url}me"))
///     .with_extension(Login::user("user:42"))
///     .send()
///     .await;
/// let e = authed::middleware::authed_error(as_user.as_ref().unwrap_err()).unwrap();
/// assert!(e.requires_reauthorization());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Login {
    /// The login stored under this key in the middleware's [`UserSources`]
    /// ([`AuthMiddlewareBuilder::users`]); a 401 refreshes only that login. No login under
    /// the key is [`Error::TokenRevoked`] with the code `login_required`: sign the user in.
    User(String),
    /// This source's token (a login you already hold); a 401 refreshes this source.
    Source(Arc<dyn TokenSource>),
    /// No token: the request goes through the rest of the chain as it is, with no origin
    /// check and no 401 handling (a public endpoint, a health check).
    Anonymous,
}

impl Login {
    /// [`Login::User`] for `key`.
    pub fn user(key: impl Into<String>) -> Self {
        Login::User(key.into())
    }

    /// [`Login::Source`] for `source`: a grant's source, or an `Arc<dyn TokenSource>` you
    /// already share, which is used as it is.
    pub fn source(source: impl TokenSource + 'static) -> Self {
        Login::Source(crate::source::shared(source))
    }
}

impl AuthMiddleware {
    /// Starts a middleware that takes its tokens from `source`: a grant's source, or an
    /// `Arc<dyn TokenSource>` you already share, which is used as it is (not wrapped again).
    pub fn builder(source: impl TokenSource + 'static) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder {
            source: Some(crate::source::shared(source)),
            users: None,
            origins: OriginSettings::default(),
        }
    }

    /// Starts a middleware without a token source of its own, for an app that sends every
    /// request on behalf of a user of `users`: each request names its [`Login`] in its
    /// extensions. A request that names none fails with [`Error::Config`] before it is sent.
    pub fn builder_for_users(users: UserSources) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder {
            source: None,
            users: Some(users),
            origins: OriginSettings::default(),
        }
    }
}

impl AuthMiddlewareBuilder {
    crate::origins::origin_setters!();

    /// The registry whose logins requests name with [`Login::User`].
    pub fn users(mut self, users: UserSources) -> Self {
        self.users = Some(users);
        self
    }

    /// Checks the settings and builds the middleware.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, a plain-HTTP origin that is not loopback,
    /// or no origin at all.
    pub fn build(self) -> Result<AuthMiddleware, Error> {
        Ok(AuthMiddleware {
            source: self.source,
            users: self.users,
            origins: Arc::new(self.origins.build(None, true)?),
        })
    }
}

/// The [`authed::Error`](crate::Error) inside a `reqwest_middleware::Error` returned through
/// [`AuthMiddleware`], if it is one: the error itself, or the first in its chain of causes
/// (reqwest-retry, for one, wraps the errors of the middleware after it).
pub fn authed_error(e: &reqwest_middleware::Error) -> Option<&Error> {
    match e {
        reqwest_middleware::Error::Middleware(e) => {
            e.chain().find_map(|cause| cause.downcast_ref::<Error>())
        }
        reqwest_middleware::Error::Reqwest(_) => None,
    }
}

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for AuthMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // Cloned only when a request names its login (an `Arc` or a key).
        let (chosen, user) = match extensions.get::<Login>().cloned() {
            None => (None, None),
            Some(Login::Anonymous) => return next.run(request, extensions).await,
            Some(Login::Source(source)) => (Some(source), None),
            Some(Login::User(key)) => (None, Some(self.user(&key).await?)),
        };
        let source: &dyn TokenSource = match (&user, &chosen, &self.source) {
            (Some(user), _, _) => user,
            (None, Some(source), _) | (None, None, Some(source)) => &**source,
            (None, None, None) => {
                return Err(Chain::fail(Error::config(
                    "this middleware has no token source of its own: name the request's login \
                     with .with_extension(authed::middleware::Login::user(key))",
                )));
            }
        };
        let chain = Chain { next, extensions };
        authorize::send((chain, &*self.origins, source), request).await
    }
}

impl AuthMiddleware {
    /// The login of the user stored under `key` in the registry.
    async fn user(&self, key: &str) -> reqwest_middleware::Result<RefreshTokenSource> {
        let users = self.users.as_ref().ok_or_else(|| {
            Chain::fail(Error::config(
                "a request names a user's login, but the middleware has no UserSources \
                 (AuthMiddlewareBuilder::users)",
            ))
        })?;
        match users.get(key).await.map_err(Chain::fail)? {
            Some(login) => Ok(login),
            None => Err(Chain::fail(Error::TokenRevoked(
                OAuthError::new("login_required")
                    .with_description(Some("no login is stored for this user; sign them in")),
            ))),
        }
    }
}

/// The middleware's front door to the request rules: the rest of the chain.
struct Chain<'a, 'e> {
    next: Next<'a>,
    extensions: &'e mut Extensions,
}

impl Exchange for Chain<'_, '_> {
    type Request = Request;
    type Response = Response;
    type Failure = reqwest_middleware::Error;

    fn method(request: &Request) -> &Method {
        request.method()
    }

    fn target(request: &Request) -> Target<'_> {
        Target::Url(request.url())
    }

    fn headers_mut(request: &mut Request) -> &mut HeaderMap {
        request.headers_mut()
    }

    // The chain may end in a client that follows redirects: the whole request is kept.
    type Kept = Request;

    fn keep(&self, request: &Request) -> Option<Request> {
        request.try_clone()
    }

    fn again(kept: &Request, _: Option<&Url>) -> Option<Request> {
        kept.try_clone()
    }

    fn kept_url(kept: &Request) -> Option<&Url> {
        Some(kept.url())
    }

    fn try_clone(request: &Request) -> Option<Request> {
        request.try_clone()
    }

    fn redirect(request: &Request, method: Method, url: Url, keep_body: bool) -> Option<Request> {
        crate::reqwest_exchange::redirected(request, method, url, keep_body)
    }

    fn sent_to(request: &Request) -> Option<&Url> {
        Some(request.url())
    }

    fn answer(response: &Response) -> Answer<'_> {
        Answer {
            unauthorized: response.status() == StatusCode::UNAUTHORIZED,
            headers: response.headers(),
            url: Some(response.url()),
            redirect: authorize::redirect_of(response.status(), response.headers()),
        }
    }

    fn fail(e: Error) -> reqwest_middleware::Error {
        reqwest_middleware::Error::middleware(e)
    }

    fn send(
        &mut self,
        request: Request,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send {
        self.next.clone().run(request, self.extensions)
    }
}
