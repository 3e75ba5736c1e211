//! The request rules, one implementation behind every front door ([`AuthedClient`],
//! the reqwest-middleware `AuthMiddleware`, the tower `AuthLayer`, and [`AuthHeaders`] for
//! any other client): the token and its DPoP proof go only to allowed origins, redirects
//! included; a 401 (or gRPC `UNAUTHENTICATED`) that rejects the token sent is reported to
//! the source, which refreshes once, and the request is sent once more if it can be
//! replayed; a DPoP `use_dpop_nonce` is answered once per call.
//!
//! Each sending front door implements [`Exchange`] for its request and response types and
//! calls [`send`] with a [`Door`] (its exchange, origins and source); [`AuthHeaders`] drives
//! the same [`Call`] from outside. Nothing here knows which HTTP stack is underneath.
//!
//! [`AuthedClient`]: crate::AuthedClient
//! [`AuthHeaders`]: crate::AuthHeaders

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use url::Url;

use crate::challenge::bearer_challenge;
use crate::dpop::{self, NonceAnswer};
use crate::error::{Error, Unauthorized};
use crate::origins::{Origins, Target};
use crate::source::TokenSource;
use crate::token::Token;

/// At most this many redirects are followed per request (reqwest's default limit).
const MAX_REDIRECTS: usize = 10;

/// What authorizes one request: made by [`attach`], put on the request with
/// [`apply`](Self::apply). Two steps, so that making it borrows the request's method and URL
/// and applying it borrows only its headers.
#[derive(Debug)]
pub(crate) struct Credentials {
    authorization: HeaderValue,
    /// The DPoP proof of a DPoP-bound token (RFC 9449 §7).
    proof: Option<HeaderValue>,
}

impl Credentials {
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        headers.insert(header::AUTHORIZATION, self.authorization);
        if let Some(proof) = self.proof {
            headers.insert(dpop::DPOP, proof);
        }
    }
}

/// What attaches `token` to a request of `method` to `target`: the one place a token is
/// turned into request headers (a DPoP proof, when there is one, is made here too).
pub(crate) async fn attach(
    method: &Method,
    target: Target<'_>,
    token: &Token,
) -> Result<Credentials, Error> {
    let authorization = authorization(token)?;
    let proof = match token.dpop_key() {
        None => None,
        Some(_) => {
            let url = match target {
                Target::Url(url) => Cow::Borrowed(url),
                Target::Uri(uri) => match absolute_url(target) {
                    Some(url) => Cow::Owned(url),
                    None if uri.authority().is_none() => {
                        return Err(Error::config(
                            "a DPoP proof names the request's absolute URL (htu); this request \
                             has only a path",
                        ));
                    }
                    None => return Err(Error::config("a DPoP proof needs a parsable request URL")),
                },
            };
            // Boxed: the signer may be remote, and the Bearer path's future stays small.
            Box::pin(dpop::proof_for(method, &url, token)).await?
        }
    };
    Ok(Credentials {
        authorization,
        proof,
    })
}

/// The `Authorization` header value of `token`.
fn authorization(token: &Token) -> Result<HeaderValue, Error> {
    token.bearer_header().ok_or_else(|| {
        if token.dpop_key().is_none() && crate::jose::is_dpop_type(token.token_type()) {
            return Error::config(
                "a DPoP token needs its key (Token::with_dpop_key); it is never sent as Bearer",
            );
        }
        Error::malformed(
            200,
            "the access token has characters that cannot be sent in a header",
        )
    })
}

/// The absolute URL of `target`, for a DPoP proof's `htu` and the nonce memory; `None` for
/// a path-only URI.
fn absolute_url(target: Target<'_>) -> Option<Url> {
    match target {
        Target::Url(url) => Some(url.clone()),
        Target::Uri(uri) if uri.authority().is_none() => None,
        Target::Uri(uri) => Url::parse(&uri.to_string()).ok(),
    }
}

/// How a response looks to the rules.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    /// `401`, or a gRPC `UNAUTHENTICATED` in the headers (a trailers-only response).
    pub(crate) unauthorized: bool,
    pub(crate) headers: &'a HeaderMap,
    /// The URL that answered, when the stack can follow redirects on its own (reqwest).
    pub(crate) url: Option<&'a Url>,
    /// A redirect for the rules to follow (see [`redirect_of`]); `None` from a stack whose
    /// redirects are composed outside the rules (tower).
    pub(crate) redirect: Option<(StatusCode, &'a HeaderValue)>,
}

impl Answer<'_> {
    /// Neither a 401 nor a redirect: the answer goes to the caller as it is.
    fn is_final(&self) -> bool {
        !self.unauthorized && self.redirect.is_none()
    }
}

/// The status and `Location` of a redirect response the rules follow (RFC 9110 §15.4:
/// 301, 302, 303, 307, 308).
pub(crate) fn redirect_of(
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<(StatusCode, &HeaderValue)> {
    match status.as_u16() {
        301 | 302 | 303 | 307 | 308 => headers.get(header::LOCATION).map(|l| (status, l)),
        _ => None,
    }
}

/// Whether a response's status and headers say "unauthorized": HTTP 401, or gRPC status 16
/// (`UNAUTHENTICATED`) in the headers, which is how a trailers-only gRPC error arrives.
pub(crate) fn is_unauthorized(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::UNAUTHORIZED
        || headers
            .get("grpc-status")
            .is_some_and(|v| v.as_bytes() == b"16")
}

/// What the rules need from one front door's HTTP stack.
pub(crate) trait Exchange {
    type Request: Send;
    type Response: Send;
    /// The front door's own error type; authed's errors become one with [`fail`](Self::fail),
    /// the stack's own errors pass through unchanged.
    type Failure;

    fn method(request: &Self::Request) -> &Method;
    fn target(request: &Self::Request) -> Target<'_>;
    fn headers_mut(request: &mut Self::Request) -> &mut HeaderMap;
    /// What is kept of a request before it is sent, to send it once more after a rejected
    /// token and to make a redirect's first hop. Every request keeps one, so it is only what
    /// a replay needs: a stack whose answers tell where the request went need not keep its
    /// URL.
    type Kept: Send;
    /// What to keep of `request`, or `None` when its body cannot be sent twice.
    fn keep(&self, request: &Self::Request) -> Option<Self::Kept>;
    /// The kept request, to send again to `sent_to` (where it went first: its
    /// [`kept_url`](Self::kept_url), or else the first answer's URL). `None` when it cannot
    /// be made.
    fn again(kept: &Self::Kept, sent_to: Option<&Url>) -> Option<Self::Request>;
    /// Where the kept request was sent, when the stack may follow redirects on its own (an
    /// answer's URL then need not be where the request went).
    fn kept_url(kept: &Self::Kept) -> Option<&Url>;
    /// A copy to send once more, or `None` when the body cannot be replayed.
    fn try_clone(request: &Self::Request) -> Option<Self::Request>;
    /// `request` sent to `url` with `method` instead, its body kept only when `keep_body`:
    /// the next hop of a redirect. `None` when the body cannot be copied.
    fn redirect(
        request: &Self::Request,
        method: Method,
        url: Url,
        keep_body: bool,
    ) -> Option<Self::Request>;
    /// The URL the token is sent to, when the stack can follow redirects (reqwest).
    fn sent_to(request: &Self::Request) -> Option<&Url>;
    fn answer(response: &Self::Response) -> Answer<'_>;
    fn fail(e: Error) -> Self::Failure;
    fn send(
        &mut self,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Self::Failure>> + Send;
}

/// What a front door brings to one request: its HTTP stack, the origins its tokens may go
/// to, and the token source. Owned by the rules' future, so that a front door whose parts
/// live behind an `Arc` ([`AuthedClient`](crate::AuthedClient)) needs no future of its own
/// around this one: every request moves this future, and a future around it would keep a
/// second copy of the request.
pub(crate) trait Door {
    type Exchange: Exchange;
    fn parts(&mut self) -> (&mut Self::Exchange, &Origins, &dyn TokenSource);
}

/// A front door whose origins and source are borrowed.
impl<E: Exchange> Door for (E, &Origins, &dyn TokenSource) {
    type Exchange = E;
    fn parts(&mut self) -> (&mut E, &Origins, &dyn TokenSource) {
        (&mut self.0, self.1, self.2)
    }
}

/// The response, or the failure, of a request sent through the door `D`.
type Sent<D> = Result<
    <<D as Door>::Exchange as Exchange>::Response,
    <<D as Door>::Exchange as Exchange>::Failure,
>;

/// What is kept of a request for the rare paths: a copy to send once more (see
/// [`Exchange::keep`]), or, for a body that cannot be copied, only where it went.
pub(crate) type Replay<E> = Result<<E as Exchange>::Kept, Option<Box<Url>>>;

/// The first of the rules, before the token: the request may go where it goes, and what a
/// replay needs is kept. The error is boxed, as a future that holds this result until it
/// is first polled should not grow by a whole [`Error`].
pub(crate) fn prepare<E: Exchange>(
    exchange: &E,
    origins: &Origins,
    request: &E::Request,
) -> Result<Replay<E>, Box<Error>> {
    let target = E::target(request);
    origins.check(target).map_err(Box::new)?;
    tracing::debug!(
        method = %E::method(request),
        path = target.path(),
        "authed request"
    );
    // Kept to send once more after a rejected token, and to make a redirect's next hop. A
    // streaming body cannot be copied: then only the URL is kept, to tell where an answer
    // came from.
    Ok(exchange
        .keep(request)
        .ok_or_else(|| E::sent_to(request).cloned().map(Box::new)))
}

/// A request on its way with `token`: what the rules need at its answer.
pub(crate) struct InFlight<E: Exchange> {
    token: Arc<Token>,
    replay: Replay<E>,
    /// When the token was taken, while a request's latency could make it expiring.
    taken: Option<tokio::time::Instant>,
    /// For a DPoP-bound token on a stack that names no URL (tower): the request's URL, for
    /// the nonce memory. Boxed: the Bearer path's futures stay small.
    target_url: Option<Box<Url>>,
}

impl<E: Exchange> InFlight<E> {
    /// `token`, just taken for `request`.
    #[inline]
    pub(crate) fn new(token: Arc<Token>, replay: Replay<E>, request: &E::Request) -> Self {
        // From taking the token to the answer: how long a token must outlive its taking (the
        // source's expiry margin grows with it; see `TokenSource::request_latency`). Not
        // timed while no latency could make the token expiring, as for most of its life.
        let taken = token.is_timed().then(tokio::time::Instant::now);
        let target_url = match (token.dpop_key(), E::sent_to(request)) {
            (Some(_), None) => absolute_url(E::target(request)).map(Box::new),
            _ => None,
        };
        InFlight {
            token,
            replay,
            taken,
            target_url,
        }
    }

    /// Whether the token is a plain Bearer token, attached by [`attach_bearer`](Self::attach_bearer)
    /// with nothing to await.
    #[inline]
    pub(crate) fn is_bearer(&self) -> bool {
        self.token.dpop_key().is_none()
    }

    /// Puts a Bearer token on `request`.
    #[inline]
    pub(crate) fn attach_bearer(&self, request: &mut E::Request) -> Result<(), Error> {
        let authorization = authorization(&self.token)?;
        E::headers_mut(request).insert(header::AUTHORIZATION, authorization);
        Ok(())
    }

    /// The rules at the answer: `true` when `response` goes to the caller as it is (neither
    /// a 401 nor a redirect to follow), else [`after`](Self::after) takes it.
    #[inline]
    pub(crate) fn is_done(&self, source: &dyn TokenSource, response: &E::Response) -> bool {
        if let Some(taken) = self.taken {
            source.request_latency(taken.elapsed());
        }
        let answer = E::answer(response);
        let sent_to = match &self.replay {
            Ok(kept) => E::kept_url(kept),
            Err(url) => url.as_deref(),
        };
        let done = answer.is_final() && answered_where_sent(sent_to, &answer);
        if done
            && self.token.dpop_key().is_some()
            && let Some(url) = sent_to.or(answer.url).or(self.target_url.as_deref())
        {
            dpop::after_response(&self.token, url, false, answer.headers);
        }
        done
    }

    /// The rare paths (a 401, a redirect), for an answer that is not [`done`](Self::is_done).
    pub(crate) fn after<'a>(
        self,
        exchange: &'a mut E,
        origins: &'a Origins,
        source: &'a dyn TokenSource,
        response: E::Response,
    ) -> impl Future<Output = Result<E::Response, E::Failure>> + Send + 'a
    where
        E: Send + 'a,
    {
        after_answer(
            exchange,
            origins,
            source,
            Call::new(self.token),
            response,
            self.replay,
            self.target_url.map(|url| *url),
        )
    }
}

/// Sends `request` with a token from the door's source, under the rules.
pub(crate) fn send<D>(
    mut door: D,
    request: <D::Exchange as Exchange>::Request,
) -> impl Future<Output = Sent<D>> + Send
where
    D: Door + Send,
    D::Exchange: Send,
{
    let prepared = {
        let (exchange, origins, _) = door.parts();
        prepare(exchange, origins, &request)
    };
    send_prepared(door, request, prepared, None)
}

/// The rules after [`prepare`], for `request` and its `prepared` result, with `taken`, a
/// token already taken from the door's source, or one the source gives. One flat future,
/// with the rare paths (a 401, a redirect) boxed: every request moves this future around,
/// and nested or larger futures are copied each time. Not an `async fn`: that would keep
/// the request twice in the future, once as the argument and once as its local copy.
#[allow(clippy::manual_async_fn)] // see above: the `async fn` this lint asks for is larger
pub(crate) fn send_prepared<D>(
    mut door: D,
    mut request: <D::Exchange as Exchange>::Request,
    prepared: Result<Replay<D::Exchange>, Box<Error>>,
    taken: Option<Arc<Token>>,
) -> impl Future<Output = Sent<D>> + Send
where
    D: Door + Send,
    D::Exchange: Send,
{
    async move {
        let replay = prepared.map_err(|e| D::Exchange::fail(*e))?;
        let (exchange, origins, source) = door.parts();
        let token = match taken {
            Some(token) => token,
            None => match source.token().into_ready() {
                Ok(token) => token,
                Err(waiting) => waiting.await.map_err(D::Exchange::fail)?,
            },
        };
        let flight = InFlight::<D::Exchange>::new(token, replay, &request);
        if flight.is_bearer() {
            // Nothing to await, so no credentials future in this one's state.
            flight
                .attach_bearer(&mut request)
                .map_err(D::Exchange::fail)?;
        } else {
            Box::pin(authorize::<D::Exchange>(&mut request, &flight.token))
                .await
                .map_err(D::Exchange::fail)?;
        }
        // The rare paths, made in a block of their own: the answer is not kept in this
        // future while they run (they own it).
        let rare = {
            let response = exchange.send(request).await?;
            if flight.is_done(source, &response) {
                return Ok(response);
            }
            Box::pin(flight.after(exchange, origins, source, response))
        };
        rare.await
    }
}

/// Whether the answer came from where the request was sent: `false` when the HTTP client
/// followed a redirect on its own.
fn answered_where_sent(sent_to: Option<&Url>, answer: &Answer<'_>) -> bool {
    match (sent_to, answer.url) {
        (Some(sent), Some(answered)) => sent.as_str() == answered.as_str(),
        _ => true,
    }
}

async fn authorize<E: Exchange>(request: &mut E::Request, token: &Token) -> Result<(), Error> {
    attach(E::method(request), E::target(request), token)
        .await?
        .apply(E::headers_mut(request));
    Ok(())
}

/// The rules for an answer that is a redirect or a 401, until one that is neither.
async fn after_answer<E: Exchange + Send>(
    exchange: &mut E,
    origins: &Origins,
    source: &dyn TokenSource,
    mut call: Call,
    mut response: E::Response,
    replay: Result<E::Kept, Option<Box<Url>>>,
    target_url: Option<Url>,
) -> Result<E::Response, E::Failure> {
    let sent_to = match &replay {
        Ok(kept) => E::kept_url(kept),
        Err(url) => url.as_deref(),
    }
    .or(E::answer(&response).url)
    .cloned();
    loop {
        // The first hop of a redirect is made from a copy: a reference to `replay` held
        // across the sending would need the request to be `Sync`, which a tower body is not.
        let first = match (E::answer(&response).redirect, &replay) {
            (Some(_), Ok(kept)) => E::again(kept, sent_to.as_ref()),
            _ => None,
        };
        let (answered, last_sent) =
            follow(exchange, origins, response, first, &sent_to, &call.token).await?;
        response = answered;
        let answer = E::answer(&response);
        if let Some(e) = foreign_answer(origins, last_sent.as_ref(), &answer) {
            return Err(E::fail(e));
        }
        let nonce_url = last_sent
            .as_ref()
            .or(target_url.as_ref())
            .filter(|_| call.token.dpop_key().is_some());
        if !answer.unauthorized {
            if let Some(url) = nonce_url {
                dpop::after_response(&call.token, url, false, answer.headers);
            }
            return Ok(response);
        }
        let again = call
            .after_401(source, answer.headers, nonce_url, replay.is_ok())
            .await
            .map_err(E::fail)?;
        let mut again = match (again, &replay) {
            (Again::Send, Ok(kept)) => E::again(kept, sent_to.as_ref()),
            _ => None,
        }
        .ok_or_else(|| {
            let mut refused = Unauthorized::new(None);
            refused.replayable = false;
            E::fail(Error::Unauthorized(refused))
        })?;
        authorize::<E>(&mut again, &call.token)
            .await
            .map_err(E::fail)?;
        response = exchange.send(again).await?;
    }
}

/// Follows the redirects in `response` that stay within the allowed origins, each hop with
/// fresh credentials (a DPoP proof names its URL). A redirect elsewhere is not followed:
/// the caller gets it as the API's answer, and neither the token nor a proof goes there.
/// Returns the last answer and the URL of the last request sent.
async fn follow<E: Exchange + Send>(
    exchange: &mut E,
    origins: &Origins,
    mut response: E::Response,
    first: Option<E::Request>,
    sent_to: &Option<Url>,
    token: &Token,
) -> Result<(E::Response, Option<Url>), E::Failure> {
    let mut url = sent_to.clone();
    let mut template = first;
    for _ in 0..MAX_REDIRECTS {
        let answer = E::answer(&response);
        let (Some((status, location)), Some(from)) = (answer.redirect, url.as_ref()) else {
            break;
        };
        if !answered_where_sent(Some(from), &answer) {
            break;
        }
        let Some(next_url) = location.to_str().ok().and_then(|l| from.join(l).ok()) else {
            break;
        };
        if !matches!(next_url.scheme(), "http" | "https") || origins.check_url(&next_url).is_err() {
            tracing::debug!(
                status = status.as_u16(),
                "not following a redirect to an origin that may not receive tokens"
            );
            break;
        }
        let Some(previous) = template.as_ref() else {
            break;
        };
        let (method, keep_body) = redirect_method(status, E::method(previous));
        let cross_origin = next_url.origin() != from.origin();
        let Some(mut next) = E::redirect(previous, method, next_url.clone(), keep_body) else {
            break;
        };
        let headers = E::headers_mut(&mut next);
        if !keep_body {
            for name in [
                header::CONTENT_TYPE,
                header::CONTENT_LENGTH,
                header::CONTENT_ENCODING,
                header::TRANSFER_ENCODING,
            ] {
                headers.remove(name);
            }
        }
        if cross_origin {
            // What reqwest drops on a cross-origin redirect; the token and proof are
            // attached anew below, for an origin that may receive them.
            headers.remove(header::COOKIE);
            headers.remove(header::PROXY_AUTHORIZATION);
        }
        template = E::try_clone(&next);
        authorize::<E>(&mut next, token).await.map_err(E::fail)?;
        tracing::debug!(status = status.as_u16(), "following a redirect");
        response = exchange.send(next).await?;
        if token.dpop_key().is_some() {
            dpop::after_response(token, &next_url, false, E::answer(&response).headers);
        }
        url = Some(next_url);
    }
    Ok((response, url))
}

/// The method of a redirect's next hop, and whether the body goes with it (RFC 9110
/// §15.4.2–15.4.4, §15.4.8–15.4.9; a `POST` becomes a `GET` on 301 and 302, as every user
/// agent does).
fn redirect_method(status: StatusCode, method: &Method) -> (Method, bool) {
    match status.as_u16() {
        303 if *method != Method::HEAD => (Method::GET, false),
        301 | 302 if *method == Method::POST => (Method::GET, false),
        _ => (method.clone(), true),
    }
}

/// An answer from another origin than the one the last request went to: the HTTP client
/// followed a redirect on its own. From an origin that may not receive tokens, it is never
/// the API's answer ([`Error::UntrustedRedirect`]: the client must leave redirects to the
/// rules); from an allowed one, a 401 answers a request the client stripped of its
/// `Authorization` (reqwest does, on a cross-origin redirect), so it says nothing about the
/// token: no refresh, no replay.
fn foreign_answer(origins: &Origins, sent_to: Option<&Url>, answer: &Answer<'_>) -> Option<Error> {
    let (sent_to, answered) = (sent_to?, answer.url?);
    let same = answered.scheme() == sent_to.scheme()
        && answered.host_str() == sent_to.host_str()
        && answered.port_or_known_default() == sent_to.port_or_known_default();
    if same {
        return None;
    }
    let origin = answered.origin().ascii_serialization();
    if origins.check_url(answered).is_err() {
        tracing::warn!(
            "the HTTP client followed a redirect to an origin that may not receive tokens; \
             build it with reqwest::redirect::Policy::none() and authed follows redirects \
             within the allowed origins"
        );
        return Some(Error::UntrustedRedirect { origin });
    }
    answer
        .unauthorized
        .then_some(Error::RedirectedUnauthorized { origin })
}

/// What the rules say after a 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Again {
    /// Send the request once more, with [`Call::token`] (fresh, or with a new nonce).
    Send,
}

/// One call under the rules: the token it is sent with and what has been tried, so that a
/// call refreshes at most once and answers a DPoP nonce challenge at most once. Driven by
/// [`send`] for the sending front doors and by `AuthHeaders` for any other client.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) token: Arc<Token>,
    refreshed: bool,
    nonce_retried: bool,
}

impl Call {
    pub(crate) fn new(token: Arc<Token>) -> Self {
        Call {
            token,
            refreshed: false,
            nonce_retried: false,
        }
    }

    /// The rules for a 401 with `headers` (RFC 6750 §3.1, RFC 9449 §9), answering a request
    /// sent with [`token`](Self::token) (to `nonce_url`, for a DPoP-bound token). `Ok` when
    /// the request is to be sent once more with `token`, now fresh or with the server's new
    /// nonce; otherwise the final error. `replayable`: whether the request can be sent
    /// again; a rejected token is reported even when it cannot, so that the next request
    /// gets a fresh one.
    pub(crate) async fn after_401(
        &mut self,
        source: &dyn TokenSource,
        headers: &HeaderMap,
        nonce_url: Option<&Url>,
        replayable: bool,
    ) -> Result<Again, Error> {
        let asks_nonce = nonce_url.is_some_and(|url| {
            dpop::after_response(&self.token, url, true, headers) != NonceAnswer::Other
        });
        let challenge = bearer_challenge(headers);
        let mut refused = Unauthorized::new(challenge.as_ref());
        refused.retried = self.refreshed;
        if asks_nonce {
            // The server wants its new nonce in the proof; the token is fine. Once per call:
            // a server that asks every time is not answered forever.
            if self.nonce_retried || !replayable {
                refused.replayable = replayable;
                return Err(Error::Unauthorized(refused));
            }
            tracing::debug!("the API asks for a DPoP nonce; sending once more with it");
            self.nonce_retried = true;
            return Ok(Again::Send);
        }
        // RFC 9470: the token is fine, the user's authentication is not; a refresh cannot help.
        if let Some(step_up) = challenge.as_ref().and_then(|c| c.step_up()) {
            return Err(Error::StepUpRequired(step_up));
        }
        if self.refreshed || !challenge.as_ref().is_none_or(|c| c.asks_for_new_token()) {
            return Err(Error::Unauthorized(refused));
        }
        tracing::debug!("the API rejected the token; refreshing");
        crate::telemetry::unauthorized_retry();
        let fresh = source.token_rejected(&self.token).await?;
        if Arc::ptr_eq(&fresh, &self.token) {
            // The very token just rejected (a static token, or a source that cannot
            // refresh): sending it again cannot help.
            refused.refreshable = false;
            return Err(Error::Unauthorized(refused));
        }
        self.token = fresh;
        self.refreshed = true;
        if !replayable {
            // The next request gets the fresh token; this one cannot be sent again.
            refused.replayable = false;
            return Err(Error::Unauthorized(refused));
        }
        Ok(Again::Send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_unauthenticated_counts_as_unauthorized() {
        let mut h = HeaderMap::new();
        assert!(is_unauthorized(StatusCode::UNAUTHORIZED, &h));
        assert!(!is_unauthorized(StatusCode::OK, &h));
        h.insert("grpc-status", HeaderValue::from_static("16"));
        assert!(is_unauthorized(StatusCode::OK, &h));
        h.insert("grpc-status", HeaderValue::from_static("7"));
        assert!(!is_unauthorized(StatusCode::OK, &h));
    }

    #[test]
    fn redirect_methods_follow_rfc_9110() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        assert_eq!(redirect_method(s(303), &Method::PUT), (Method::GET, false));
        assert_eq!(redirect_method(s(303), &Method::HEAD), (Method::HEAD, true));
        assert_eq!(redirect_method(s(302), &Method::POST), (Method::GET, false));
        assert_eq!(redirect_method(s(301), &Method::PUT), (Method::PUT, true));
        assert_eq!(redirect_method(s(307), &Method::POST), (Method::POST, true));
        assert_eq!(redirect_method(s(308), &Method::POST), (Method::POST, true));
    }
}
