//! Issue 18 point 18, played by a newcomer: the API answers with an error status, and the
//! code that everyone writes (`resp.error_for_status()?` into `authed::Error`) must say what
//! happened: the status, as a typed error, retryable only when the status says "later"
//! (5xx, 429). Not a transport failure: the request got an answer.

use authed::testing::TestProvider;
use authed::{AuthedClient, Error, OAuthConfig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// What an application's handler does with a response.
async fn fetch(client: &AuthedClient, path: &str) -> Result<String, Error> {
    let response = client.get(path).send().await?;
    let response = response.error_for_status()?;
    Ok(response.text().await?)
}

#[tokio::test]
async fn an_api_error_status_is_a_typed_error_carrying_the_status() {
    let provider = TestProvider::start().await;
    let api = MockServer::start().await;
    for (status, _) in STATUSES {
        Mock::given(method("GET"))
            .and(path(format!("/api/{status}")))
            .respond_with(ResponseTemplate::new(*status).set_body_string("no"))
            .mount(&api)
            .await;
    }
    let source = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()
        .unwrap()
        .client_credentials()
        .build();
    let client = AuthedClient::builder(source)
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    for (n, (status, retryable)) in STATUSES.iter().enumerate() {
        let e = fetch(&client, &status.to_string()).await.unwrap_err();
        assert!(
            matches!(e, Error::HttpStatus { status: s } if s == *status),
            "{status}: {e:?}"
        );
        assert_eq!(e.is_retryable(), *retryable, "{status}");
        assert_eq!(e.kind(), "http_status");
        assert!(!e.is_timeout() && !e.is_configuration(), "{status}");
        assert!(e.to_string().contains(&status.to_string()), "{e}");
        // One request each: the client neither retried nor refreshed.
        assert_eq!(api.received_requests().await.unwrap().len(), n + 1);
    }
    assert_eq!(provider.token_requests(), 1);
}

/// Status, and whether the same call may succeed later.
const STATUSES: &[(u16, bool)] = &[
    (400, false),
    (403, false),
    (404, false),
    (409, false),
    (429, true),
    (500, true),
    (502, true),
    (503, true),
];
