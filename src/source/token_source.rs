//! The [`TokenSource`] trait, its future, and a source of one fixed token.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::Error;
use crate::future::BoxFuture;
use crate::token::Token;

/// Something that hands out valid access tokens.
///
/// Implementations cache and refresh on their own; callers just ask for a token per request.
/// The trait is dyn-compatible: an [`AuthedClient`](crate::AuthedClient) holds an
/// `Arc<dyn TokenSource>`.
///
/// Every grant of this crate is one ([`ClientCredentials`](crate::ClientCredentials), [`RefreshTokenSource`](crate::RefreshTokenSource), ...);
/// concurrent callers share one token request:
///
/// ```
/// use std::sync::Arc;
///
/// use authed::testing::TestProvider;
/// use authed::{OAuthConfig, TokenSource};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), authed::Error> {
/// let provider = TestProvider::start().await;
/// let config = OAuthConfig::builder(provider.token_url())
///     .client_id(TestProvider::CLIENT_ID)
///     .client_secret(TestProvider::CLIENT_SECRET)
///     .build()?;
/// let source: Arc<dyn TokenSource> = Arc::new(config.client_credentials().build());
///
/// let (a, b) = tokio::join!(source.token(), source.token());
/// assert_eq!(a?.access_token().secret(), b?.access_token().secret());
/// assert_eq!(provider.token_requests(), 1);
/// # Ok(()) }
/// ```
///
/// Implement it for tokens that come from elsewhere (a sidecar, a vault agent, another part
/// of your program); [`TokenFuture::ready`] answers without allocating, [`TokenFuture::new`]
/// wraps any future:
///
/// ```
/// use std::sync::Arc;
///
/// use authed::{AccessToken, Error, Token, TokenFuture, TokenSource};
/// use tokio::sync::watch;
///
/// /// The latest token another task received, waiting for the first one.
/// #[derive(Debug)]
/// struct Pushed(watch::Receiver<Option<Arc<Token>>>);
///
/// impl TokenSource for Pushed {
///     fn token(&self) -> TokenFuture<'_> {
///         if let Some(token) = self.0.borrow().clone() {
///             return TokenFuture::ready(Ok(token));
///         }
///         let mut next = self.0.clone();
///         TokenFuture::new(async move {
///             let token = next
///                 .wait_for(Option::is_some)
///                 .await
///                 .map_err(|_| Error::Config("no token will come".to_owned()))?;
///             Ok(token.clone().expect("waited for Some"))
///         })
///     }
/// }
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Error> {
/// let (push, latest) = watch::channel(None);
/// let source = Pushed(latest);
/// push.send_replace(Some(Arc::new(Token::new(AccessToken::new("from-the-agent")))));
/// assert_eq!(source.token().await?.access_token().secret(), "from-the-agent");
/// # Ok(()) }
/// ```
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A token that is valid now, fetched or refreshed if needed.
    ///
    /// Concurrent callers share one token request; a failed request fails all of them.
    ///
    /// # Errors
    ///
    /// Whatever getting a token failed with; see [`Error`].
    fn token(&self) -> TokenFuture<'_>;

    /// Reports that a resource server rejected `rejected` (a 401 with `invalid_token`) and
    /// returns a replacement.
    ///
    /// When many callers report the same token, one refresh serves them all; a caller whose
    /// token was already replaced gets the replacement without another request. The default
    /// returns [`token`](Self::token), for sources that cannot refresh.
    ///
    /// # Errors
    ///
    /// As [`token`](Self::token).
    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        let _ = rejected;
        self.token()
    }

    /// Tells the source that a request sent with one of its tokens took `took`, from taking
    /// the token to the answer. The front doors of this crate report every request they
    /// send, except while a token from the crate's own caches is in the first part of its
    /// life, when no latency could make it expiring (about its first half): those requests
    /// are not timed, which saves two clock reads per request. The crate's own sources count
    /// a token as expiring when it would expire before a request sent now is expected to
    /// arrive (see [`ExpiryPolicy`](crate::ExpiryPolicy)), so that callers wait for the one
    /// refresh instead of sending a token that expires on the way. The default ignores it;
    /// a source that wraps another passes it on.
    fn request_latency(&self, took: Duration) {
        let _ = took;
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn token(&self) -> TokenFuture<'_> {
        (**self).token()
    }

    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        (**self).token_rejected(rejected)
    }

    fn request_latency(&self, took: Duration) {
        (**self).request_latency(took);
    }
}

/// The future returned by [`TokenSource`] methods.
///
/// A cached token is returned through [`TokenFuture::ready`] without allocating; anything
/// that has to wait is boxed with [`TokenFuture::new`].
///
/// # Panics
///
/// When polled again after it returned `Ready`, as the compiler's own `async` futures do.
#[must_use = "futures do nothing unless polled"]
pub struct TokenFuture<'a>(Inner<'a>);

// `Ready` holds only the `Arc`, not a whole `Result`: an `Error` is ~80 bytes, and moving
// that through every cached `token()` call made it several times slower (BENCHMARKS.md).
enum Inner<'a> {
    Ready(Option<Arc<Token>>),
    Pending(BoxFuture<'a, Result<Arc<Token>, Error>>),
}

impl<'a> TokenFuture<'a> {
    /// A future that resolves at once. Only an error is boxed.
    pub fn ready(result: Result<Arc<Token>, Error>) -> Self {
        match result {
            Ok(token) => TokenFuture(Inner::Ready(Some(token))),
            Err(e) => TokenFuture::new(std::future::ready(Err(e))),
        }
    }

    /// Wraps any future.
    pub fn new(fut: impl Future<Output = Result<Arc<Token>, Error>> + Send + 'a) -> Self {
        TokenFuture(Inner::Pending(Box::pin(fut)))
    }

    /// The token when it is at hand (a cached one), or the future to await: the request
    /// rules then await nothing for a cached token, and their state machine skips a
    /// suspension point on every request.
    #[inline]
    pub(crate) fn into_ready(self) -> Result<Arc<Token>, Self> {
        match self.0 {
            Inner::Ready(Some(token)) => Ok(token),
            other => Err(TokenFuture(other)),
        }
    }
}

impl Future for TokenFuture<'_> {
    type Output = Result<Arc<Token>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            // Polling a future after it completed breaks `Future`'s contract; like the
            // compiler's own `async` futures, this one panics then (see `# Panics` on the type).
            #[allow(clippy::expect_used)]
            Inner::Ready(token) => Poll::Ready(Ok(token
                .take()
                .expect("TokenFuture polled after it completed"))),
            Inner::Pending(fut) => fut.as_mut().poll(cx),
        }
    }
}

impl std::fmt::Debug for TokenFuture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenFuture")
    }
}

/// A source that always returns the same token: for tests, and for APIs with long-lived
/// tokens issued out of band (a personal access token, an API key sent as a Bearer token).
///
/// ```
/// use authed::{AccessToken, StaticToken, Token};
///
/// let source = StaticToken::new("a-personal-access-token");
/// // Or a whole token: an expiry, a DPoP key, ...
/// let source = StaticToken::from_token(Token::new(AccessToken::new("a-personal-access-token")));
/// ```
#[derive(Debug, Clone)]
pub struct StaticToken(Arc<Token>);

impl StaticToken {
    /// A source for the access token `access_token`, sent as a Bearer token, never expiring.
    pub fn new(access_token: impl Into<String>) -> Self {
        StaticToken::from_token(Token::new(crate::token::AccessToken::new(access_token)))
    }

    /// A source for `token`, as it is.
    pub fn from_token(token: Token) -> Self {
        StaticToken(Arc::new(token))
    }
}

impl From<Token> for StaticToken {
    fn from(token: Token) -> Self {
        StaticToken::from_token(token)
    }
}

impl TokenSource for StaticToken {
    fn token(&self) -> TokenFuture<'_> {
        TokenFuture::ready(Ok(self.0.clone()))
    }
}

/// `source` as the `Arc<dyn TokenSource>` every front door holds. An `Arc<dyn TokenSource>`
/// (a source already shared) is used as it is: wrapped again, every `token()` would go
/// through a second pointer and a second dynamic call.
pub(crate) fn shared(source: impl TokenSource + 'static) -> Arc<dyn TokenSource> {
    let any: &dyn Any = &source;
    match any.downcast_ref::<Arc<dyn TokenSource>>() {
        Some(shared) => shared.clone(),
        None => Arc::new(source),
    }
}
