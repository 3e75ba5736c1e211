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

use crate::authorize::{self, Answer, Exchange, OriginSettings, Origins, Target};
use crate::error::Error;
use crate::source::TokenSource;

/// A [`reqwest_middleware::Middleware`] that attaches a token from a [`TokenSource`] to every
/// request to an allowed origin, with the same rules as [`AuthedClient`](crate::AuthedClient):
/// a request to any other origin fails before it is sent
/// ([`Error::UntrustedOrigin`]); a `401` rejecting the token (`invalid_token`, a bare Bearer
/// challenge, or none) is reported to the source, which refreshes once, and the request is
/// sent **once** more when its body can be cloned; otherwise, or after a second 401, the
/// result is [`Error::Unauthorized`]. A 401 from another origin a redirect led to is
/// [`Error::RedirectedUnauthorized`].
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    source: Arc<dyn TokenSource>,
    origins: Arc<Origins>,
}

/// Builds an [`AuthMiddleware`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthMiddlewareBuilder {
    source: Arc<dyn TokenSource>,
    origins: OriginSettings,
}

impl AuthMiddleware {
    /// Starts a middleware that takes its tokens from `source`: a grant's source, or an
    /// `Arc<dyn TokenSource>` you already share, which is used as it is (not wrapped again).
    pub fn builder(source: impl TokenSource + 'static) -> AuthMiddlewareBuilder {
        AuthMiddlewareBuilder {
            source: crate::source::shared(source),
            origins: OriginSettings::default(),
        }
    }
}

impl AuthMiddlewareBuilder {
    crate::authorize::origin_setters!();

    /// Checks the settings and builds the middleware.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, a plain-HTTP origin that is not loopback,
    /// or no origin at all.
    pub fn build(self) -> Result<AuthMiddleware, Error> {
        Ok(AuthMiddleware {
            source: self.source,
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
        let mut chain = Chain { next, extensions };
        authorize::send(&mut chain, &self.origins, &*self.source, request).await
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

    fn try_clone(request: &Request) -> Option<Request> {
        request.try_clone()
    }

    fn sent_to(request: &Request) -> Option<&Url> {
        Some(request.url())
    }

    fn answer(response: &Response) -> Answer<'_> {
        Answer {
            unauthorized: response.status() == StatusCode::UNAUTHORIZED,
            headers: response.headers(),
            url: Some(response.url()),
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
