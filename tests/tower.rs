//! `authed::tower::AuthLayer` on real clients against real local servers: a tonic channel
//! calling a tonic-health server whose interceptor checks the `authorization` metadata
//! against the provider, and hyper-util's legacy client calling the provider's API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authed::testing::TestProvider;
use authed::tower::AuthLayer;
use authed::{ClientCredentials, Error};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::{Service, ServiceBuilder, ServiceExt};

fn source(provider: &TestProvider) -> ClientCredentials {
    provider.config(None).client_credentials().build()
}

/// A gRPC health server on 127.0.0.1 that refuses, with `UNAUTHENTICATED`, every call whose
/// `authorization` metadata is not a token `provider` accepts. Returns its URL and a count
/// of the calls it let through.
async fn grpc_server(provider: Arc<TestProvider>) -> (String, Arc<AtomicUsize>) {
    let (_reporter, health) = tonic_health::server::health_reporter();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let check = move |request: tonic::Request<()>| {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented.is_some_and(|t| provider.accepts_access_token(t)) {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(request)
        } else {
            Err(Status::unauthenticated("no valid access token"))
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = tonic::service::interceptor::InterceptedService::new(health, check);
    tokio::spawn(
        Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (url, served)
}

#[tokio::test]
async fn a_tonic_channel_sends_the_token_as_metadata_and_unauthenticated_refreshes_for_the_next_call()
 {
    let provider = Arc::new(TestProvider::start().await);
    let (url, served) = grpc_server(provider.clone()).await;
    let channel = Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    let channel = ServiceBuilder::new()
        .layer(AuthLayer::builder(source(&provider)).build().unwrap())
        .service(channel);
    let mut health = HealthClient::new(channel);
    let check = || HealthCheckRequest {
        service: String::new(),
    };

    let ok = health.check(check()).await.unwrap().into_inner();
    assert_eq!(ok.status(), ServingStatus::Serving);
    assert_eq!(served.load(Ordering::SeqCst), 1);
    assert_eq!(provider.token_requests(), 1);

    // The server now refuses the token: UNAUTHENTICATED, reported as a rejection. A gRPC
    // call's body is a stream, so this call is not sent again; it fails with a typed error.
    provider.revoke_access_tokens();
    let status = health.check(check()).await.unwrap_err();
    let authed = std::error::Error::source(&status)
        .and_then(|e| e.downcast_ref::<Error>())
        .unwrap_or_else(|| panic!("authed::Error behind the status: {status:?}"));
    match authed {
        Error::Unauthorized(u) => assert!(!u.replayable && !u.retried),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_ne!(status.code(), Code::Ok);
    assert_eq!(
        provider.token_requests(),
        2,
        "the rejection refreshed the token"
    );

    // The next call carries the new token.
    let ok = health.check(check()).await.unwrap().into_inner();
    assert_eq!(ok.status(), ServingStatus::Serving);
    assert_eq!(served.load(Ordering::SeqCst), 2);
    assert_eq!(provider.token_requests(), 2, "no more token requests");
}

#[tokio::test]
async fn hyper_util_get_is_refreshed_and_resent_once_after_a_401() {
    let provider = TestProvider::start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut service = ServiceBuilder::new()
        .layer(
            AuthLayer::builder(source(&provider))
                .allow_origin(provider.base_url())
                .build()
                .unwrap(),
        )
        .service(client);
    let get = || {
        http::Request::get(format!("{}me", provider.api_url()))
            .body(Empty::<Bytes>::new())
            .unwrap()
    };

    let response = service.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(response.status(), 200);
    provider.revoke_access_tokens();
    let response = service.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(response.status(), 200, "re-sent with the fresh token");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("hello from the protected API"));
    assert_eq!(provider.token_requests(), 2, "one refresh");
    assert_eq!(provider.api_requests(), 3, "one re-send");
    assert_eq!(provider.api_rejections(), 1);
}

#[tokio::test]
async fn hyper_util_a_body_is_not_resent_but_the_next_request_has_the_fresh_token() {
    let provider = TestProvider::start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut service = ServiceBuilder::new()
        .layer(
            AuthLayer::builder(source(&provider))
                .allow_origin(provider.base_url())
                .build()
                .unwrap(),
        )
        .service(client);
    let post = || {
        http::Request::post(format!("{}things", provider.api_url()))
            .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
            .unwrap()
    };
    service.ready().await.unwrap().call(post()).await.unwrap();
    provider.revoke_access_tokens();
    let err = service
        .ready()
        .await
        .unwrap()
        .call(post())
        .await
        .unwrap_err();
    match err.downcast_ref::<Error>() {
        Some(Error::Unauthorized(u)) => assert!(!u.replayable),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(provider.api_requests(), 2, "not sent again");
    assert_eq!(provider.token_requests(), 2, "the rejection was reported");
    let response = service.ready().await.unwrap().call(post()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(provider.token_requests(), 2);
}

#[tokio::test]
async fn an_absolute_uri_to_an_origin_not_allowed_fails_before_anything_is_sent() {
    let provider = TestProvider::start().await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    // No origin allowed: only path-only URIs (a tonic channel's) would get a token.
    let mut service = ServiceBuilder::new()
        .layer(AuthLayer::builder(source(&provider)).build().unwrap())
        .service(client);
    let request = http::Request::get(format!("{}me", provider.api_url()))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let err = service
        .ready()
        .await
        .unwrap()
        .call(request)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<Error>(),
            Some(Error::UntrustedOrigin { .. })
        ),
        "{err:?}"
    );
    assert_eq!(provider.token_requests(), 0);
    assert_eq!(provider.api_requests(), 0);
}
