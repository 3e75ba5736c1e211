//! The request rules, one implementation behind every front door ([`AuthedClient`],
//! the reqwest-middleware `AuthMiddleware`, the tower `AuthLayer`): the token goes only to
//! allowed origins; a 401 (or gRPC `UNAUTHENTICATED`) that rejects the token sent is reported
//! to the source, which refreshes once, and the request is sent once more if it can be
//! replayed.
//!
//! Each front door implements [`Exchange`] for its request and response types and calls
//! [`send`]; nothing here knows which HTTP stack is underneath.
//!
//! [`AuthedClient`]: crate::AuthedClient

use std::future::Future;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use url::{Host, Origin, Url};

use crate::challenge::{Challenge, bearer_challenge};
use crate::dpop::{self, NonceAnswer};
use crate::error::{Error, Unauthorized};
use crate::source::TokenSource;
use crate::token::Token;

/// Where a request goes, as its front door names it.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))] // `Uri` is the tower front door's
pub(crate) enum Target<'a> {
    /// An absolute URL (reqwest).
    Url(&'a Url),
    /// An `http::Uri`: absolute (hyper-util's client), or only a path when the inner service
    /// has one fixed destination (a tonic `Channel`).
    Uri(&'a http::Uri),
}

impl Target<'_> {
    fn path(&self) -> &str {
        match self {
            Target::Url(url) => url.path(),
            Target::Uri(uri) => uri.path(),
        }
    }
}

/// The origins a token may be sent to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    pub(crate) origins: Vec<Origin>,
    pub(crate) any_https: bool,
}

/// The origin settings of every front door's builder, checked by [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginSettings {
    pub(crate) origins: Vec<String>,
    pub(crate) any_https: bool,
    pub(crate) insecure: bool,
}

/// The `allow_origin`, `danger_allow_any_https_origin` and `danger_allow_insecure_http`
/// setters of every front door's builder (field `origins: OriginSettings`).
macro_rules! origin_setters {
    () => {
        /// Another origin (`https://host[:port]`) that receives tokens. May be called more
        /// than once.
        pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
            self.origins.origins.push(origin.into());
            self
        }

        /// Sends tokens to any HTTPS origin. Use only when every host that can be reached is
        /// meant to see the token: a URL built from user input would leak it.
        pub fn danger_allow_any_https_origin(mut self) -> Self {
            self.origins.any_https = true;
            self
        }

        /// Allows plain-HTTP origins that are not loopback. Tokens then cross the network in
        /// clear.
        pub fn danger_allow_insecure_http(mut self) -> Self {
            self.origins.insecure = true;
            self
        }
    };
}
pub(crate) use origin_setters;

impl OriginSettings {
    /// The allowed origins: `base`'s, if any, and each added one. `require_one`: a front
    /// door whose every request names its origin must be told at least one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, a plain-HTTP one that is not loopback, or
    /// none at all when one is required.
    pub(crate) fn build(&self, base: Option<&Url>, require_one: bool) -> Result<Origins, Error> {
        let mut origins = Vec::new();
        if let Some(base) = base {
            origins.push(base.origin());
        }
        for raw in &self.origins {
            origins.push(crate::config::endpoint_url("origin", raw, self.insecure)?.origin());
        }
        if require_one && origins.is_empty() && !self.any_https {
            return Err(Error::config(
                "name where tokens may go: base_url, allow_origin or danger_allow_any_https_origin",
            ));
        }
        if self.any_https {
            tracing::warn!("danger_allow_any_https_origin: tokens go to any HTTPS origin");
        }
        let plain = |o: &Origin| {
            matches!(o, Origin::Tuple(scheme, host, _) if scheme == "http"
                && !matches!(host, Host::Ipv4(ip) if ip.is_loopback())
                && !matches!(host, Host::Ipv6(ip) if ip.is_loopback())
                && !matches!(host, Host::Domain(d) if d.eq_ignore_ascii_case("localhost")))
        };
        if self.insecure && origins.iter().any(plain) {
            tracing::warn!(
                "danger_allow_insecure_http: tokens go to a plain-HTTP origin that is not \
                 loopback, in clear"
            );
        }
        Ok(Origins {
            origins,
            any_https: self.any_https,
        })
    }
}

impl Origins {
    /// `Ok` when a token may go to `target`; [`Error::UntrustedOrigin`] otherwise. A URI
    /// without an authority goes to the inner service's own destination, which the
    /// application chose when it wrapped that service: allowed.
    pub(crate) fn check(&self, target: Target<'_>) -> Result<(), Error> {
        match target {
            Target::Url(url) => self.check_url(url),
            Target::Uri(uri) if uri.authority().is_none() => Ok(()),
            Target::Uri(uri) => match Url::parse(&uri.to_string()) {
                Ok(url) => self.check_url(&url),
                Err(_) => Err(Error::UntrustedOrigin {
                    origin: "(unparsable URI)".to_owned(),
                }),
            },
        }
    }

    fn check_url(&self, url: &Url) -> Result<(), Error> {
        // Compared part by part: `Url::origin()` allocates, and this runs on every request.
        let same_origin = |origin: &Origin| match origin {
            Origin::Tuple(scheme, host, port) => {
                scheme == url.scheme()
                    && match (url.host(), host) {
                        (Some(Host::Domain(a)), Host::Domain(b)) => a == b,
                        (Some(Host::Ipv4(a)), Host::Ipv4(b)) => a == *b,
                        (Some(Host::Ipv6(a)), Host::Ipv6(b)) => a == *b,
                        _ => false,
                    }
                    && Some(*port) == url.port_or_known_default()
            }
            Origin::Opaque(_) => false,
        };
        if self.origins.iter().any(same_origin) || (self.any_https && url.scheme() == "https") {
            Ok(())
        } else {
            Err(Error::UntrustedOrigin {
                origin: url.origin().ascii_serialization(),
            })
        }
    }
}

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
    let authorization = token.bearer_header().ok_or_else(|| {
        if token.dpop_key().is_none() && crate::jose::is_dpop_type(token.token_type()) {
            return Error::config(
                "a DPoP token needs its key (Token::with_dpop_key); it is never sent as Bearer",
            );
        }
        Error::malformed(
            200,
            "the access token has characters that cannot be sent in a header",
        )
    })?;
    let proof = match token.dpop_key() {
        None => None,
        Some(_) => {
            let url = absolute_url(target).ok_or_else(|| {
                Error::config(
                    "a DPoP proof names the request's absolute URL (htu); this request has \
                     only a path",
                )
            })?;
            // Boxed: the signer may be remote, and the Bearer path's future stays small.
            Box::pin(dpop::proof_for(method, &url, token)).await?
        }
    };
    Ok(Credentials {
        authorization,
        proof,
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

/// The URL whose DPoP nonce a response to `target` updates: only for a DPoP-bound token.
fn nonce_url(target: Target<'_>, token: &Token) -> Option<Url> {
    token.dpop_key().and_then(|_| absolute_url(target))
}

/// How a response looks to the rules.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    /// `401`, or a gRPC `UNAUTHENTICATED` in the headers (a trailers-only response).
    pub(crate) unauthorized: bool,
    pub(crate) headers: &'a HeaderMap,
    /// The URL that answered, when the stack follows redirects (reqwest).
    pub(crate) url: Option<&'a Url>,
}

/// Whether a response's status and headers say "unauthorized": HTTP 401, or gRPC status 16
/// (`UNAUTHENTICATED`) in the headers, which is how a trailers-only gRPC error arrives.
#[cfg_attr(not(feature = "tower"), allow(dead_code))] // reqwest's front doors speak no gRPC
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
    /// A copy to send once more, or `None` when the body cannot be replayed.
    fn try_clone(request: &Self::Request) -> Option<Self::Request>;
    /// The URL the token is sent to, when the stack can follow redirects (reqwest).
    fn sent_to(request: &Self::Request) -> Option<&Url>;
    fn answer(response: &Self::Response) -> Answer<'_>;
    fn fail(e: Error) -> Self::Failure;
    fn send(
        &mut self,
        request: Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Self::Failure>> + Send;
}

/// Sends `request` with a token from `source`, under the rules. One flat future, with the
/// rare 401 path boxed: every request moves this future around, and nested or larger
/// futures are copied each time.
pub(crate) async fn send<E: Exchange + Send>(
    exchange: &mut E,
    origins: &Origins,
    source: &dyn TokenSource,
    mut request: E::Request,
) -> Result<E::Response, E::Failure> {
    let target = E::target(&request);
    origins.check(target).map_err(E::fail)?;
    tracing::debug!(method = %E::method(&request), path = target.path(), "authed request");
    // Kept to send once more after a rejected token. A streaming body cannot be copied:
    // then only the URL is kept, to tell where a 401 came from.
    let replay = E::try_clone(&request).ok_or_else(|| E::sent_to(&request).cloned());
    let token = source.token().await.map_err(E::fail)?;
    let nonce_url = nonce_url(E::target(&request), &token);
    authorize::<E>(&mut request, &token)
        .await
        .map_err(E::fail)?;
    let response = exchange.send(request).await?;
    let answer = E::answer(&response);
    if !answer.unauthorized {
        if let Some(url) = &nonce_url {
            dpop::after_response(&token, url, false, answer.headers);
        }
        return Ok(response);
    }
    Box::pin(after_401(
        exchange, response, replay, nonce_url, &token, source,
    ))
    .await
}

async fn authorize<E: Exchange>(request: &mut E::Request, token: &Token) -> Result<(), Error> {
    attach(E::method(request), E::target(request), token)
        .await?
        .apply(E::headers_mut(request));
    Ok(())
}

/// The rules for a 401 (RFC 6750 §3.1): if it rejects the token that was sent, report the
/// token as rejected and get a fresh one; send the request once more if it can be replayed.
async fn after_401<E: Exchange + Send>(
    exchange: &mut E,
    response: E::Response,
    replay: Result<E::Request, Option<Url>>,
    nonce_url: Option<Url>,
    token: &Token,
    source: &dyn TokenSource,
) -> Result<E::Response, E::Failure> {
    let sent_to = match &replay {
        Ok(request) => E::sent_to(request),
        Err(url) => url.as_ref(),
    };
    let answer = E::answer(&response);
    if let Some(e) = token_not_sent(sent_to, answer.url) {
        return Err(E::fail(e));
    }
    let asks_nonce = nonce_url.as_ref().is_some_and(|url| {
        dpop::after_response(token, url, true, answer.headers) != NonceAnswer::Other
    });
    if asks_nonce {
        // RFC 9449 §9: the server wants its new nonce in the proof; the token is fine.
        let Ok(replay) = replay else {
            let mut refused = Unauthorized::new(bearer_challenge(answer.headers).as_ref());
            refused.replayable = false;
            return Err(E::fail(Error::Unauthorized(refused)));
        };
        tracing::debug!("the API asks for a DPoP nonce; sending once more with it");
        return resend(exchange, replay, token, false, true).await;
    }
    let challenge = bearer_challenge(answer.headers);
    let mut refused = Unauthorized::new(challenge.as_ref());
    if !challenge.as_ref().is_none_or(Challenge::asks_for_new_token) {
        return Err(E::fail(Error::Unauthorized(refused)));
    }
    tracing::debug!("the API rejected the token; refreshing");
    crate::telemetry::unauthorized_retry();
    let fresh = source.token_rejected(token).await.map_err(E::fail)?;
    let Ok(replay) = replay else {
        // The next request gets the fresh token; this one cannot be sent again.
        refused.replayable = false;
        return Err(E::fail(Error::Unauthorized(refused)));
    };
    resend(exchange, replay, &fresh, true, true).await
}

/// Sends a request once more with `token` (`refreshed`: a fresh one). A 401 is final,
/// except, when `nonce_retry`, a DPoP `use_dpop_nonce` naming a nonce newer than the
/// proof's, answered once more: a request in flight when the server changed its nonce.
async fn resend<E: Exchange + Send>(
    exchange: &mut E,
    mut replay: E::Request,
    token: &Token,
    refreshed: bool,
    nonce_retry: bool,
) -> Result<E::Response, E::Failure> {
    let sent_to = E::sent_to(&replay).cloned();
    let nonce_url = nonce_url(E::target(&replay), token);
    let again = nonce_url
        .as_ref()
        .filter(|_| nonce_retry)
        .and_then(|_| E::try_clone(&replay));
    authorize::<E>(&mut replay, token).await.map_err(E::fail)?;
    let response = exchange.send(replay).await?;
    let answer = E::answer(&response);
    let nonce = nonce_url
        .as_ref()
        .map(|url| dpop::after_response(token, url, answer.unauthorized, answer.headers));
    if !answer.unauthorized {
        return Ok(response);
    }
    if let Some(e) = token_not_sent(sent_to.as_ref(), answer.url) {
        return Err(E::fail(e));
    }
    if nonce == Some(NonceAnswer::Asks { new: true })
        && let Some(again) = again
    {
        return Box::pin(resend(exchange, again, token, refreshed, false)).await;
    }
    let mut refused = Unauthorized::new(bearer_challenge(answer.headers).as_ref());
    refused.retried = refreshed;
    Err(E::fail(Error::Unauthorized(refused)))
}

/// A 401 from another origin than the one the token was sent to: the request was
/// redirected, and reqwest drops `Authorization` when a redirect changes scheme, host or
/// port (the rule below is reqwest's). That 401 answers a request without a token, so it
/// says nothing about the token: no refresh, no replay.
fn token_not_sent(sent_to: Option<&Url>, answered: Option<&Url>) -> Option<Error> {
    let (sent_to, answered) = (sent_to?, answered?);
    let same = answered.scheme() == sent_to.scheme()
        && answered.host_str() == sent_to.host_str()
        && answered.port_or_known_default() == sent_to.port_or_known_default();
    (!same).then(|| Error::RedirectedUnauthorized {
        origin: answered.origin().ascii_serialization(),
    })
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
    fn a_path_only_uri_goes_to_the_services_own_destination() {
        let none = Origins::default();
        let path: http::Uri = "/grpc.health.v1.Health/Check".parse().unwrap();
        assert!(none.check(Target::Uri(&path)).is_ok());
        let abs: http::Uri = "http://127.0.0.1:1/x".parse().unwrap();
        assert!(matches!(
            none.check(Target::Uri(&abs)),
            Err(Error::UntrustedOrigin { .. })
        ));
        let allowed = Origins {
            origins: vec![Url::parse("http://127.0.0.1:1").unwrap().origin()],
            any_https: false,
        };
        assert!(allowed.check(Target::Uri(&abs)).is_ok());
    }
}
