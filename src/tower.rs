//! [`AuthLayer`]: the crate's request rules for any [tower](https://docs.rs/tower) HTTP
//! client: hyper-util's legacy `Client`, a tonic `Channel`, or anything else that is a
//! `Service<http::Request<B>>`.
//!
//! ```no_run
//! # async fn run(source: authed::ClientCredentials) -> Result<(), Box<dyn std::error::Error>> {
//! use authed::tower::AuthLayer;
//! use tower::ServiceBuilder;
//!
//! let channel = tonic::transport::Endpoint::from_static("https://grpc.example.com")
//!     .connect()
//!     .await?;
//! let channel = ServiceBuilder::new()
//!     .layer(AuthLayer::builder(source).build()?)
//!     .service(channel);
//! // let client = MyServiceClient::new(channel);
//! # let _ = channel;
//! # Ok(()) }
//! ```
//!
//! # Rules
//!
//! - The token is sent as `authorization: Bearer ...`, which is also gRPC's `authorization`
//!   metadata.
//! - A request whose URI names no origin (only a path: what a tonic client sends into its
//!   `Channel`, which adds its one endpoint's origin below this layer) gets the token: the
//!   application chose that destination when it wrapped the service. A request with an
//!   absolute URI (hyper-util's client) gets it only for an origin allowed with
//!   [`allow_origin`](AuthLayerBuilder::allow_origin); any other fails with
//!   [`Error::UntrustedOrigin`] before it is sent.
//! - An HTTP `401` that rejects the token, or a gRPC `UNAUTHENTICATED` (`grpc-status: 16` in
//!   the response headers: a trailers-only response, which is how a server refusing a call
//!   before running it answers), is reported to the token source, which refreshes once.
//! - The request is then sent **once** more only if its body is empty (a `GET`, say): a tower
//!   body is a stream that cannot be copied in general. A gRPC call always has a body, so it
//!   is not sent again: the call fails with [`Error::Unauthorized`] (`replayable: false`)
//!   and **the next call uses the new token**. Retry the call yourself if it is idempotent.
//!
//! - Redirects: the layer follows none (hyper-util's client does not either; a redirect is
//!   the caller's answer). To follow them, put tower-http's `FollowRedirectLayer` **outside**
//!   this layer: every hop then passes the origin rule and gets fresh credentials (a DPoP
//!   proof names its URL), and a hop to an origin that may not receive tokens fails with
//!   [`Error::UntrustedOrigin`] before it is sent. Inside it, tower-http would forward the
//!   DPoP proof to any origin (it strips only `Authorization`, `Cookie` and
//!   `Proxy-Authorization`).
//!
//! # Errors
//!
//! The service's error type is `Box<dyn std::error::Error + Send + Sync>` (tower's
//! `BoxError`, which tonic and hyper-util accept): either the inner service's own error, or
//! an [`authed::Error`](crate::Error), found with `downcast_ref::<authed::Error>()`. Through
//! tonic it arrives as a `tonic::Status` whose `source()` is that error.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::HeaderMap;
use http::{Method, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use url::Url;

use crate::authorize::{self, Answer, Exchange};
use crate::error::Error;
use crate::future::BoxFuture;
use crate::origins::{OriginSettings, Origins, Target};
use crate::source::TokenSource;

/// The error type of [`AuthService`]: the inner service's error, or an
/// [`authed::Error`](crate::Error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A [`tower_layer::Layer`] that wraps a service in an [`AuthService`]. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    source: Arc<dyn TokenSource>,
    origins: Origins,
}

/// Builds an [`AuthLayer`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthLayerBuilder {
    source: Arc<dyn TokenSource>,
    origins: OriginSettings,
}

impl AuthLayer {
    /// Starts a layer that takes its tokens from `source`: a grant's source, or an
    /// `Arc<dyn TokenSource>` you already share, which is used as it is (not wrapped again).
    pub fn builder(source: impl TokenSource + 'static) -> AuthLayerBuilder {
        AuthLayerBuilder {
            source: crate::source::shared(source),
            origins: OriginSettings::default(),
        }
    }
}

impl AuthLayerBuilder {
    crate::origins::origin_setters!();

    /// Checks the settings and builds the layer. Without any origin, only requests that name
    /// no origin (a tonic `Channel`'s) get a token.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, or a plain-HTTP origin that is not loopback.
    pub fn build(self) -> Result<AuthLayer, Error> {
        Ok(AuthLayer {
            shared: Arc::new(Shared {
                source: self.source,
                origins: self.origins.build(None, false)?,
            }),
        })
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// A service that authorizes each `http::Request` before the inner service sends it; see the
/// [module docs](self) for the rules. Made by [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: http_body::Body + Default + Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<ResBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this call; the clone left behind waits for
        // its own `poll_ready` (tower's usual pattern).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let exchange = Tower {
                inner,
                ready: true,
                body: PhantomData,
            };
            authorize::send((exchange, &shared.origins, &*shared.source), request).await
        })
    }
}

/// The tower front door to the request rules: the inner service, and whether it was polled
/// ready for the next call.
struct Tower<S, B> {
    inner: S,
    ready: bool,
    body: PhantomData<fn() -> B>,
}

impl<S, ReqBody, ResBody> Exchange for Tower<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Send,
    S::Future: Send,
    S::Error: Into<BoxError>,
    ReqBody: http_body::Body + Default + Send,
    ResBody: Send,
{
    type Request = Request<ReqBody>;
    type Response = Response<ResBody>;
    type Failure = BoxError;

    fn method(request: &Request<ReqBody>) -> &Method {
        request.method()
    }

    fn target(request: &Request<ReqBody>) -> Target<'_> {
        Target::Uri(request.uri())
    }

    fn headers_mut(request: &mut Request<ReqBody>) -> &mut HeaderMap {
        request.headers_mut()
    }

    type Kept = Request<ReqBody>;

    fn keep(&self, request: &Request<ReqBody>) -> Option<Request<ReqBody>> {
        Self::try_clone(request)
    }

    fn again(kept: &Request<ReqBody>, _: Option<&Url>) -> Option<Request<ReqBody>> {
        Self::try_clone(kept)
    }

    fn kept_url(_: &Request<ReqBody>) -> Option<&Url> {
        // A tower stack names no URL; it does not follow redirects on its own.
        None
    }

    fn try_clone(request: &Request<ReqBody>) -> Option<Request<ReqBody>> {
        // Only an empty body can be made again; any other is a stream read once.
        if !request.body().is_end_stream() {
            return None;
        }
        let mut copy = Request::new(ReqBody::default());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }

    fn redirect(_: &Request<ReqBody>, _: Method, _: Url, _: bool) -> Option<Request<ReqBody>> {
        // Never asked: a tower stack composes redirects outside this layer (see the module
        // docs), so its answers name no redirect to follow.
        None
    }

    fn sent_to(_: &Request<ReqBody>) -> Option<&Url> {
        // A tower client does not follow redirects on its own.
        None
    }

    fn answer(response: &Response<ResBody>) -> Answer<'_> {
        Answer {
            unauthorized: authorize::is_unauthorized(response.status(), response.headers()),
            headers: response.headers(),
            url: None,
            redirect: None,
        }
    }

    fn fail(e: Error) -> BoxError {
        Box::new(e)
    }

    async fn send(&mut self, request: Request<ReqBody>) -> Result<Response<ResBody>, BoxError> {
        if !self.ready {
            std::future::poll_fn(|cx| self.inner.poll_ready(cx))
                .await
                .map_err(Into::into)?;
        }
        self.ready = false;
        self.inner.call(request).await.map_err(Into::into)
    }
}
