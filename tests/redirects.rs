//! Issue 18 point 3, as the attacker: an API answers with a redirect to another origin (a
//! second real server on 127.0.0.1). Neither the token nor a DPoP proof may reach that
//! origin, through any front door, and the caller never takes that origin's answer for the
//! API's. Redirects within the allowed origins are followed, each hop with fresh
//! credentials (a DPoP proof names its URL and is used once).

use std::sync::Arc;

use authed::middleware::{AuthMiddleware, authed_error};
use authed::tower::AuthLayer;
use authed::{AccessToken, AuthedClient, DpopKey, Error, SigningAlgorithm, StaticToken, Token};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// A DPoP-bound token (ES256) or a Bearer one, from a source that never refreshes.
fn token(dpop: bool) -> StaticToken {
    let token = Token::new(AccessToken::new("at-redirect-secret"));
    StaticToken::from_token(if dpop {
        token
            .with_token_type("DPoP")
            .with_dpop_key(Some(DpopKey::generate(SigningAlgorithm::ES256).unwrap()))
    } else {
        token
    })
}

/// The API, answering `/api/thing` with a `status` redirect to `location`, and the other
/// origin, answering everything with 200 "elsewhere".
async fn servers(
    status: u16,
    location: impl Fn(&MockServer) -> String,
) -> (MockServer, MockServer) {
    let api = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path("/api/thing"))
        .respond_with(ResponseTemplate::new(status).insert_header("location", location(&elsewhere)))
        .mount(&api)
        .await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_string("elsewhere"))
        .mount(&elsewhere)
        .await;
    (api, elsewhere)
}

fn to_elsewhere(elsewhere: &MockServer) -> String {
    format!("{}/collect", elsewhere.uri())
}

/// Nothing at all reached the other origin, so no token and no proof either.
async fn assert_untouched(elsewhere: &MockServer) {
    let seen = elsewhere.received_requests().await.unwrap();
    for r in &seen {
        assert!(r.headers.get("authorization").is_none(), "token leaked");
        assert!(r.headers.get("dpop").is_none(), "DPoP proof leaked");
    }
    assert_eq!(seen.len(), 0, "the other origin received a request");
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn authed_client_returns_a_redirect_elsewhere_unfollowed() {
    for dpop in [true, false] {
        for status in [301, 302, 303, 307, 308] {
            let (api, elsewhere) = servers(status, to_elsewhere).await;
            let client = AuthedClient::builder(token(dpop))
                .base_url(format!("{}/api/", api.uri()))
                .build()
                .unwrap();
            let resp = client.get("thing").send().await.unwrap();
            // The caller gets the API's own answer: the redirect, naming where it points.
            assert_eq!(resp.status(), status);
            assert_eq!(
                resp.headers()["location"],
                to_elsewhere(&elsewhere).as_str()
            );
            assert_eq!(resp.url().as_str(), format!("{}/api/thing", api.uri()));
            assert_untouched(&elsewhere).await;
            let sent = api.received_requests().await.unwrap();
            assert_eq!(sent.len(), 1);
            assert_eq!(sent[0].headers.get("dpop").is_some(), dpop);
        }
    }
}

#[tokio::test]
async fn a_user_supplied_client_without_redirects_keeps_the_same_rule() {
    let (api, elsewhere) = servers(307, to_elsewhere).await;
    let client = AuthedClient::builder(token(true))
        .base_url(format!("{}/api/", api.uri()))
        .http_client(no_redirects())
        .build()
        .unwrap();
    let resp = client.post("thing").body("payload").send().await.unwrap();
    assert_eq!(resp.status(), 307);
    assert_untouched(&elsewhere).await;
}

/// A `reqwest::Client` that follows redirects on its own (reqwest's default) forwards the
/// DPoP header, which the rules cannot stop once the client has the request (the docs of
/// `http_client` and `AuthMiddleware` say so, and ask for `Policy::none()`). What the rules
/// do guarantee: the other origin's answer is never handed out as the API's, and the token
/// itself did not go (reqwest drops `Authorization`).
#[tokio::test]
async fn a_client_that_follows_redirects_itself_never_yields_the_other_origins_answer() {
    let (api, elsewhere) = servers(307, to_elsewhere).await;
    let client = AuthedClient::builder(token(false))
        .base_url(format!("{}/api/", api.uri()))
        .http_client(reqwest::Client::new())
        .build()
        .unwrap();
    let err = client.get("thing").send().await.unwrap_err();
    assert!(
        matches!(&err, Error::UntrustedRedirect { origin } if *origin == elsewhere.uri()),
        "{err:?}"
    );
    assert!(err.is_configuration());
    let seen = elsewhere.received_requests().await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].headers.get("authorization").is_none());

    let chain = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            AuthMiddleware::builder(token(false))
                .allow_origin(api.uri())
                .build()
                .unwrap(),
        )
        .build();
    let err = chain
        .get(format!("{}/api/thing", api.uri()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(authed_error(&err), Some(Error::UntrustedRedirect { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_middleware_returns_a_redirect_elsewhere_unfollowed() {
    for dpop in [true, false] {
        let (api, elsewhere) = servers(307, to_elsewhere).await;
        let chain = reqwest_middleware::ClientBuilder::new(no_redirects())
            .with(
                AuthMiddleware::builder(token(dpop))
                    .allow_origin(api.uri())
                    .build()
                    .unwrap(),
            )
            .build();
        let resp = chain
            .get(format!("{}/api/thing", api.uri()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 307);
        assert_untouched(&elsewhere).await;
        assert_eq!(api.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn the_tower_layer_never_sends_a_redirect_hop_elsewhere() {
    for dpop in [true, false] {
        let (api, elsewhere) = servers(307, to_elsewhere).await;
        let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let layer = AuthLayer::builder(token(dpop))
            .allow_origin(api.uri())
            .build()
            .unwrap();
        let request = || {
            http::Request::get(format!("{}/api/thing", api.uri()))
                .body(Empty::<Bytes>::new())
                .unwrap()
        };
        // hyper-util's client follows no redirect: the caller gets the API's 307.
        let service = ServiceBuilder::new()
            .layer(layer.clone())
            .service(hyper.clone());
        let resp = service.oneshot(request()).await.unwrap();
        assert_eq!(resp.status(), 307);
        assert_untouched(&elsewhere).await;

        // tower-http's FollowRedirect composed outside the layer: every hop passes the origin
        // rule, and the hop to the other origin is refused before it is sent.
        let service = ServiceBuilder::new()
            .layer(tower_http::follow_redirect::FollowRedirectLayer::new())
            .layer(layer)
            .service(hyper);
        let err = service.oneshot(request()).await.unwrap_err();
        let err = err.downcast_ref::<Error>();
        assert!(
            matches!(err, Some(Error::UntrustedOrigin { origin }) if *origin == elsewhere.uri()),
            "{err:?}"
        );
        assert_untouched(&elsewhere).await;
        assert_eq!(api.received_requests().await.unwrap().len(), 2);
    }
}

/// The claims of a request's DPoP proof.
fn proof_claims(r: &Request) -> serde_json::Value {
    let proof = r.headers["dpop"].to_str().unwrap();
    let claims = proof.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(claims).unwrap()).unwrap()
}

#[tokio::test]
async fn a_redirect_within_the_allowed_origins_is_followed_with_a_fresh_proof() {
    // The API moves the thing within its origin, then to a second allowed origin.
    let (api, second) = servers(307, |_| "/api/moved".to_owned()).await;
    Mock::given(path("/api/moved"))
        .respond_with(
            ResponseTemplate::new(308).insert_header("location", format!("{}/there", second.uri())),
        )
        .mount(&api)
        .await;
    let client = AuthedClient::builder(token(true))
        .base_url(format!("{}/api/", api.uri()))
        .allow_origin(second.uri())
        .build()
        .unwrap();
    let resp = client.put("thing").body("payload").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "elsewhere");

    let mut hops = api.received_requests().await.unwrap();
    hops.extend(second.received_requests().await.unwrap());
    assert_eq!(hops.len(), 3);
    let mut jtis = Vec::new();
    for (hop, url) in hops.iter().zip([
        format!("{}/api/thing", api.uri()),
        format!("{}/api/moved", api.uri()),
        format!("{}/there", second.uri()),
    ]) {
        assert_eq!(hop.method.as_str(), "PUT", "307 and 308 keep the method");
        assert_eq!(hop.body, b"payload", "and the body");
        assert_eq!(hop.headers["authorization"], "DPoP at-redirect-secret");
        let claims = proof_claims(hop);
        assert_eq!(
            claims["htu"],
            url.as_str(),
            "each hop's proof names its own URL"
        );
        assert_eq!(claims["htm"], "PUT");
        jtis.push(claims["jti"].as_str().unwrap().to_owned());
    }
    jtis.dedup();
    assert_eq!(jtis.len(), 3, "a fresh proof per hop");
}

#[tokio::test]
async fn see_other_turns_a_post_into_a_get_without_its_body() {
    let api = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/form"))
        .respond_with(ResponseTemplate::new(303).insert_header("location", "/api/result"))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/result"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let client = AuthedClient::builder(token(false))
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    let resp = client
        .post("form")
        .json(&serde_json::json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = api.received_requests().await.unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].body.is_empty());
    assert!(seen[1].headers.get("content-type").is_none());
    assert!(seen[1].headers.get("authorization").is_some());
}

#[tokio::test]
async fn a_redirect_loop_ends_after_ten_hops() {
    let api = MockServer::start().await;
    Mock::given(path("/api/loop"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/api/loop"))
        .mount(&api)
        .await;
    let client = AuthedClient::builder(token(false))
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    let resp = client.get("loop").send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(api.received_requests().await.unwrap().len(), 11);
}

/// Sharing one `Arc<dyn TokenSource>` across the front doors changes nothing.
#[tokio::test]
async fn a_shared_source_keeps_the_rule() {
    let (api, elsewhere) = servers(302, to_elsewhere).await;
    let shared: Arc<dyn authed::TokenSource> = Arc::new(token(true));
    let client = AuthedClient::builder(shared)
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    assert_eq!(client.get("thing").send().await.unwrap().status(), 302);
    assert_untouched(&elsewhere).await;
}
