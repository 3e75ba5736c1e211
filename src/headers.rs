//! [`AuthHeaders`]: the request rules for an HTTP client this crate does not wrap (hyper,
//! ureq, isahc, a client of your own): the headers for one request, and what to do after its
//! answer.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use url::Url;

use crate::authorize::{self, Again, Call};
use crate::error::Error;
use crate::origins::{OriginSettings, Origins, Target};
use crate::request_url::RequestUrl;
use crate::source::TokenSource;

/// The auth headers of one request for any HTTP client, under the same rules as
/// [`AuthedClient`](crate::AuthedClient): `Authorization` (`Bearer`, or `DPoP` with a proof
/// in the `DPoP` header for that method and URL) only for the allowed origins, and after a
/// `401` rejecting the token, one refresh and one more attempt.
///
/// [`request`](Self::request) checks the URL's origin and returns a [`RequestAuth`] whose
/// [`headers`](RequestAuth::headers) go on the request. Tell it the answer's status and
/// headers with [`after_response`](RequestAuth::after_response): it remembers a DPoP nonce,
/// and for a 401 that rejects the token it reports the rejection to the source (which
/// refreshes once) and answers [`AfterResponse::SendAgain`] with new headers, or a typed error when
/// sending again cannot help. The model is google-cloud-auth's `headers()`, with the 401
/// reported back.
///
/// Redirects are yours to follow: have the client stop at them, and ask for each hop's
/// headers with `request` (a DPoP proof names its URL, and a hop to an origin that may not
/// receive tokens is refused). A client that follows redirects itself forwards every header
/// it does not know to be a credential, a DPoP proof included.
///
/// ```
/// use authed::testing::TestProvider;
/// use authed::{AuthHeaders, AfterResponse};
/// use http::{Method, StatusCode};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = TestProvider::start().await;
/// let auth = AuthHeaders::builder(provider.config(None).client_credentials().build())
///     .allow_origin(provider.api_url())
///     .build()?;
/// let url = format!("{}me", provider.api_url());
///
/// let mut request = auth.request(Method::GET, &url).await?;
/// let status = loop {
///     // Any client: here reqwest, with the headers added by hand.
///     let response = reqwest::Client::new()
///         .get(&url)
///         .headers(request.headers().clone())
///         .send()
///         .await?;
///     match request.after_response(response.status(), response.headers()).await? {
///         AfterResponse::Done => break response.status(),
///         AfterResponse::SendAgain => continue,
///     }
/// };
/// assert_eq!(status, StatusCode::OK);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AuthHeaders {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    source: Arc<dyn TokenSource>,
    origins: Origins,
}

/// Builds [`AuthHeaders`]. Setters never fail; [`build`](Self::build) reports problems.
#[derive(Debug)]
#[must_use]
pub struct AuthHeadersBuilder {
    source: Arc<dyn TokenSource>,
    origins: OriginSettings,
}

impl AuthHeaders {
    /// Starts auth headers that take their tokens from `source`: a grant's source, or an
    /// `Arc<dyn TokenSource>` you already share, which is used as it is (not wrapped again).
    pub fn builder(source: impl TokenSource + 'static) -> AuthHeadersBuilder {
        AuthHeadersBuilder {
            source: crate::source::shared(source),
            origins: OriginSettings::default(),
        }
    }

    /// The token source.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.shared.source
    }

    /// The credentials of one request of `method` to `url` (absolute: a [`Url`] or a
    /// string). The future owns what it needs (`'static`), so it can be handed to
    /// [`blocking::block_on`](crate::blocking) or spawned.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL that is not absolute; [`Error::UntrustedOrigin`] for an
    /// origin that may not receive tokens (nothing is asked of the source); any error of the
    /// token source.
    pub fn request<'u>(
        &self,
        method: Method,
        url: impl Into<RequestUrl<'u>>,
    ) -> impl Future<Output = Result<RequestAuth, Error>> + Send + 'static {
        let shared = self.shared.clone();
        let url = url
            .into()
            .resolve(None)
            .map_err(|e| Error::config(format!("invalid request URL: {e}")));
        async move {
            let url = url?;
            shared.origins.check(Target::Url(&url))?;
            let token = shared.source.token().await?;
            let mut headers = HeaderMap::new();
            authorize::attach(&method, Target::Url(&url), &token)
                .await?
                .apply(&mut headers);
            Ok(RequestAuth {
                shared,
                method,
                url,
                headers,
                taken: token.is_timed().then(tokio::time::Instant::now),
                call: Call::new(token),
            })
        }
    }
}

impl AuthHeadersBuilder {
    crate::origins::origin_setters!();

    /// Checks the settings and builds.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, a plain-HTTP origin that is not loopback,
    /// or no origin at all.
    pub fn build(self) -> Result<AuthHeaders, Error> {
        Ok(AuthHeaders {
            shared: Arc::new(Shared {
                source: self.source,
                origins: self.origins.build(None, true)?,
            }),
        })
    }
}

/// The credentials of one request, from [`AuthHeaders::request`], and the rules for its
/// answers. `Debug` shows no header value.
pub struct RequestAuth {
    shared: Arc<Shared>,
    method: Method,
    url: Url,
    headers: HeaderMap,
    call: Call,
    /// When the token was taken, until the first answer reports the request's latency to the
    /// source (as the sending front doors do).
    taken: Option<tokio::time::Instant>,
}

/// What to do after an answer, from [`RequestAuth::after_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum AfterResponse {
    /// The answer is the API's: use it.
    Done,
    /// Send the request once more, with the new [`headers`](RequestAuth::headers): the token
    /// was refreshed, or the server asked for a new DPoP nonce.
    SendAgain,
}

impl RequestAuth {
    /// The headers to add to the request: `Authorization`, and `DPoP` for a DPoP-bound token.
    /// Their values are marked sensitive (`HeaderValue::is_sensitive`).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Adds [`headers`](Self::headers) to `headers`, replacing any of the same name.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.insert(name, value.clone());
        }
    }

    /// Tells the rules how the server answered (its status and headers). A 401, or a gRPC
    /// `UNAUTHENTICATED` (`grpc-status: 16` in the headers), is handled as every front door
    /// does: a DPoP `use_dpop_nonce` is answered once with the server's nonce; a rejected
    /// token (`invalid_token`, a bare challenge, or none) is reported to the source, which
    /// refreshes, once. [`AfterResponse::SendAgain`] then means: send the request again with the new
    /// headers. Any other answer is [`AfterResponse::Done`].
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`] when sending again cannot help: another challenge (say,
    /// `insufficient_scope`), a second rejection after a refresh, a source that has no other
    /// token, or a second nonce challenge. Any error of the token source while refreshing.
    pub async fn after_response(
        &mut self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Result<AfterResponse, Error> {
        if let Some(taken) = self.taken.take() {
            self.shared.source.request_latency(taken.elapsed());
        }
        let dpop_url = self.call.token.dpop_key().is_some().then_some(&self.url);
        if !authorize::is_unauthorized(status, headers) {
            if let Some(url) = dpop_url {
                crate::dpop::after_response(&self.call.token, url, false, headers);
            }
            return Ok(AfterResponse::Done);
        }
        match self
            .call
            .after_401(&*self.shared.source, headers, dpop_url, true)
            .await?
        {
            Again::Send => {
                let mut fresh = HeaderMap::new();
                authorize::attach(&self.method, Target::Url(&self.url), &self.call.token)
                    .await?
                    .apply(&mut fresh);
                self.headers = fresh;
                Ok(AfterResponse::SendAgain)
            }
        }
    }
}

impl std::fmt::Debug for RequestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestAuth")
            .field("method", &self.method)
            .field("origin", &self.url.origin().ascii_serialization())
            .finish_non_exhaustive()
    }
}
