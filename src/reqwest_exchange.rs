//! How the request rules send, keep and replay a `reqwest::Request`: the [`Exchange`] of
//! [`AuthedClient`](crate::AuthedClient), of a UserInfo request, and the middleware's
//! redirect hops.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use url::Url;

use crate::authorize::{self, Answer, Exchange};
use crate::error::Error;
use crate::origins::Target;

/// [`AuthedClient`]'s front door to the request rules: a plain `reqwest::Client`. Also how
/// a UserInfo request, sent with a provider endpoint's client, goes through the same rules.
#[derive(Debug, Clone)]
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
        /// `None` when the request has neither headers nor a timeout of its own, as most
        /// have: an empty map still costs calls to make and drop. Boxed, so that a request
        /// without them carries no room for them, and the future that holds this stays
        /// within the 128 bytes the compiler moves without calling `memcpy`.
        extras: Option<Box<Extras>>,
        version: reqwest::Version,
        /// Boxed: only a caller's client needs it.
        url: Option<Box<Url>>,
    },
}

/// The headers and timeout of a kept request without a body.
pub(crate) struct Extras {
    headers: HeaderMap,
    timeout: Option<Duration>,
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
        let (headers, timeout) = (request.headers(), request.timeout());
        Some(Kept::Bodiless {
            method: request.method().clone(),
            extras: (!headers.is_empty() || timeout.is_some()).then(|| {
                Box::new(Extras {
                    headers: headers.clone(),
                    timeout: timeout.copied(),
                })
            }),
            version: request.version(),
            url: self.may_redirect.then(|| Box::new(request.url().clone())),
        })
    }

    fn again(kept: &Kept, sent_to: Option<&Url>) -> Option<reqwest::Request> {
        match kept {
            Kept::Request(request) => request.try_clone(),
            Kept::Bodiless {
                method,
                extras,
                version,
                url,
            } => {
                let url = url.as_deref().or(sent_to)?.clone();
                Some(bodiless(
                    method.clone(),
                    url,
                    extras.as_ref().map(|e| &e.headers),
                    *version,
                    extras.as_ref().and_then(|e| e.timeout),
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
/// the timeout and drops it again, on every request. This crate's requests are made by its
/// request builder (or reqwest's, through `with`), whose only extension is that timeout, set
/// here through its public accessor (only when there is one: setting it makes the map).
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
