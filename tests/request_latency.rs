//! The request rules report how long each request took, from taking the token to the
//! answer, to the token source (`TokenSource::request_latency`): the source's expiry margin
//! grows with it (issue 19 point 5). Paused Tokio time: the inner service "takes" its time
//! without the test waiting for it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authed::tower::AuthLayer;
use authed::{AccessToken, AuthHeaders, Token, TokenFuture, TokenSource};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::Empty;
use tower::{ServiceBuilder, ServiceExt};

/// A fixed token; records every latency reported to it.
#[derive(Debug)]
struct Recording {
    token: Arc<Token>,
    seen: Mutex<Vec<Duration>>,
}

impl Recording {
    fn new() -> Arc<Self> {
        Arc::new(Recording {
            token: Arc::new(Token::new(AccessToken::new("fixed"))),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<Duration> {
        self.seen.lock().unwrap().clone()
    }
}

impl TokenSource for Recording {
    fn token(&self) -> TokenFuture<'_> {
        TokenFuture::ready(Ok(self.token.clone()))
    }

    fn request_latency(&self, took: Duration) {
        self.seen.lock().unwrap().push(took);
    }
}

fn about(took: Duration, want: Duration) -> bool {
    took >= want && took < want + Duration::from_millis(5)
}

#[tokio::test(start_paused = true)]
async fn a_sending_front_door_reports_each_request_from_the_token_to_the_answer() {
    let source = Recording::new();
    let layer = AuthLayer::builder(source.clone())
        .allow_origin("https://api.example")
        .build()
        .unwrap();
    let slow = |delay: u64| {
        ServiceBuilder::new()
            .layer(layer.clone())
            .service(tower::service_fn(
                move |_: http::Request<Empty<Bytes>>| async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    Ok::<_, std::convert::Infallible>(http::Response::new(()))
                },
            ))
    };
    let request = || {
        http::Request::get("https://api.example/items")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let response = slow(700).oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = slow(40).oneshot(request()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let seen = source.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(about(seen[0], Duration::from_millis(700)), "{seen:?}");
    assert!(about(seen[1], Duration::from_millis(40)), "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn auth_headers_report_the_time_to_the_first_answer() {
    let source = Recording::new();
    let auth = AuthHeaders::builder(source.clone())
        .allow_origin("https://api.example")
        .build()
        .unwrap();
    let mut request = auth
        .request(Method::GET, "https://api.example/items")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let done = request
        .after_response(StatusCode::OK, &http::HeaderMap::new())
        .await
        .unwrap();
    assert_eq!(done, authed::AfterResponse::Done);
    // Reported once, for the first answer.
    let _ = request
        .after_response(StatusCode::OK, &http::HeaderMap::new())
        .await;
    let seen = source.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(about(seen[0], Duration::from_millis(250)), "{seen:?}");
}
