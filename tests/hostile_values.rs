//! Issue 18 point 7, played by a hostile provider and a hostile API: every value the crate
//! takes from a response, headers included, is bounded and cleaned before it reaches an
//! error (and so a log line or a terminal), and a header value the crate keeps and sends
//! back (a DPoP nonce) is bounded too. 60 KB values with tabs, the only control character
//! an HTTP header can carry, and control characters in bodies.

use authed::testing::TestProvider;
use authed::{AuthedClient, Error, OAuthConfig, TokenSource};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Longest error text allowed: the provider's code, description and URI at 512 characters
/// each, and the crate's own words.
const MAX_SHOWN: usize = 2048;

/// 60 KB of printable text with tabs.
fn hostile() -> String {
    "evil\t".repeat(12 * 1024)
}

#[track_caller]
fn assert_bounded_and_clean(e: &Error) {
    let shown = e.to_string();
    assert!(
        !shown.chars().any(char::is_control),
        "control characters in {shown:?}"
    );
    // Debug escapes control characters itself; only its length is at stake.
    for shown in [shown, format!("{e:?}")] {
        assert!(shown.len() <= MAX_SHOWN, "{} characters", shown.len());
    }
}

async fn token_error(response: ResponseTemplate) -> (Error, usize) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(response)
        .mount(&server)
        .await;
    let e = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("app")
        .client_secret("secret")
        .retry(authed::RetryPolicy::none())
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    (e, server.received_requests().await.unwrap().len())
}

#[tokio::test]
async fn a_huge_content_type_does_not_reach_the_error_whole() {
    let printable = format!("text/{}", "a".repeat(60 * 1024));
    let with_tabs = format!("text/{}", hostile());
    for (status, content_type) in [(200, &printable), (500, &printable), (502, &with_tabs)] {
        let (e, requests) = token_error(
            ResponseTemplate::new(status)
                .set_body_bytes("<html>nope</html>")
                .insert_header("content-type", content_type.as_str()),
        )
        .await;
        assert!(
            matches!(e, Error::MalformedResponse { status: s, .. } if s == status),
            "{e:?}"
        );
        assert_bounded_and_clean(&e);
        assert_eq!(requests, 1);
    }
}

#[tokio::test]
async fn huge_provider_texts_in_every_shape_are_bounded_and_cleaned() {
    let text = format!("{}\r\n\u{0}\u{1b}[31m", hostile());
    let bodies = [
        serde_json::json!({"error": text, "error_description": text, "error_uri": text}),
        serde_json::json!({"error": {"code": text, "message": text}}),
        serde_json::json!({"errors": [{"code": text, "message": text}]}),
        serde_json::json!({"errcode": 40013, "errmsg": text}),
        serde_json::json!({"access_token": "a", "token_type": text}),
        serde_json::json!({"access_token": "a", "token_type": {"name": text}}),
    ];
    for body in bodies {
        for status in [200, 400, 429] {
            let (e, requests) =
                token_error(ResponseTemplate::new(status).set_body_json(&body)).await;
            assert_bounded_and_clean(&e);
            assert_eq!(requests, 1, "{status}: {e:?}");
        }
    }
}

#[tokio::test]
async fn a_huge_challenge_from_the_api_is_bounded_and_cleaned() {
    let provider = TestProvider::start().await;
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(401).insert_header(
                "www-authenticate",
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    hostile()
                )
                .as_str(),
            ),
        )
        .mount(&api)
        .await;
    let source = provider.config(None).client_credentials().build();
    let client = AuthedClient::builder(source)
        .base_url(format!("{}/", api.uri()))
        .build()
        .unwrap();
    let e = client.get("x").send().await.unwrap_err();
    assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    assert_bounded_and_clean(&e);
    // The request, then its one retry with a fresh token.
    assert_eq!(api.received_requests().await.unwrap().len(), 2);
}

// A DPoP nonce is sent back in every proof (RFC 9449 §8): a 60 KB one would make every
// request 60 KB bigger. One longer than any server sends is ignored, like a malformed one:
// the `use_dpop_nonce` answer is then the error, after one request.
#[tokio::test]
async fn a_huge_dpop_nonce_is_not_kept_or_sent_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": "use_dpop_nonce"}))
                .insert_header("dpop-nonce", "n".repeat(60 * 1024).as_str()),
        )
        .mount(&server)
        .await;
    let e = OAuthConfig::builder(format!("{}/token", server.uri()))
        .client_id("app")
        .client_secret("secret")
        .dpop(authed::SigningAlgorithm::ES256)
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "use_dpop_nonce"),
        "{e:?}"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "a retry carried the nonce");
    assert!(requests[0].headers["dpop"].len() < 2048);
}
