//! `RequestBuilder`'s setters against a real local server: what each one puts on the wire,
//! as `reqwest::RequestBuilder`'s would, and the typed error of a part that cannot be made.

use std::time::Duration;

use authed::{AuthedClient, Error, StaticToken};
use reqwest::header::{HeaderMap, HeaderValue};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn start() -> (MockServer, AuthedClient) {
    let api = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let client = AuthedClient::builder(StaticToken::new("the-token"))
        .base_url(format!("{}/api/", api.uri()))
        .build()
        .unwrap();
    (api, client)
}

/// The one request `api` received.
async fn received(api: &MockServer) -> Request {
    let mut requests = api.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    requests.remove(0)
}

fn values<'a>(request: &'a Request, name: &str) -> Vec<&'a str> {
    request
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn header_adds_and_headers_replaces_each_name_it_names() {
    let (api, client) = start().await;
    let mut replacing = HeaderMap::new();
    replacing.insert("x-one", HeaderValue::from_static("new"));
    replacing.append("x-two", HeaderValue::from_static("b"));
    replacing.append("x-two", HeaderValue::from_static("c"));

    client
        .get("thing")
        .header("x-one", "old")
        .header("x-one", "older")
        .header("x-kept", "1")
        .headers(replacing)
        .send()
        .await
        .unwrap();

    let request = received(&api).await;
    assert_eq!(values(&request, "x-one"), ["new"]);
    assert_eq!(values(&request, "x-two"), ["b", "c"]);
    assert_eq!(values(&request, "x-kept"), ["1"]);
    assert_eq!(values(&request, "authorization"), ["Bearer the-token"]);
}

#[tokio::test]
async fn query_adds_to_the_urls_own_and_an_empty_one_leaves_none() {
    let (api, client) = start().await;
    client
        .get("thing?a=1")
        .query(&[("b", "two words"), ("c", "&")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        received(&api).await.url.query(),
        Some("a=1&b=two+words&c=%26")
    );

    let (api, client) = start().await;
    let none: [(&str, &str); 0] = [];
    client.get("thing").query(&none).send().await.unwrap();
    let request = received(&api).await;
    assert_eq!(request.url.query(), None);
    assert!(
        request.url.as_str().ends_with("/api/thing"),
        "{}",
        request.url
    );
}

#[tokio::test]
async fn form_and_json_set_the_body_and_a_content_type_unless_one_is_set() {
    let (api, client) = start().await;
    client
        .post("form")
        .form(&[("grant", "a b")])
        .send()
        .await
        .unwrap();
    let request = received(&api).await;
    assert_eq!(request.body, b"grant=a+b");
    assert_eq!(
        values(&request, "content-type"),
        ["application/x-www-form-urlencoded"]
    );

    let (api, client) = start().await;
    client
        .post("json")
        .header("content-type", "application/merge-patch+json")
        .json(&serde_json::json!({"a": 1}))
        .send()
        .await
        .unwrap();
    let request = received(&api).await;
    assert_eq!(request.body, br#"{"a":1}"#);
    assert_eq!(
        values(&request, "content-type"),
        ["application/merge-patch+json"]
    );

    let (api, client) = start().await;
    client.put("raw").body("bytes").send().await.unwrap();
    assert_eq!(received(&api).await.body, b"bytes");
}

#[tokio::test]
async fn a_part_that_cannot_be_made_is_a_config_error_and_nothing_is_sent() {
    let (api, client) = start().await;
    // A map with non-string keys has no JSON form; a nested map no form encoding.
    let not_json = std::collections::BTreeMap::from([((1, 2), "x")]);
    let not_form = serde_json::json!({"a": {"b": 1}});
    let errors = [
        client.post("j").json(&not_json).send().await.unwrap_err(),
        client.post("f").form(&not_form).send().await.unwrap_err(),
        client.get("q").query(&not_form).send().await.unwrap_err(),
        client
            .get("h")
            .header("bad name", "v")
            .send()
            .await
            .unwrap_err(),
        client
            .get("w")
            .with(|r| r.header("x-bad", "line\nbreak"))
            .send()
            .await
            .unwrap_err(),
        client
            .get("mailto:someone@example.com")
            .send()
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert!(
            matches!(&err, Error::Config(m) if m.starts_with("invalid request")),
            "{err:?}"
        );
    }
    assert!(api.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn with_reaches_reqwests_builder_and_the_token_still_goes() {
    let (api, client) = start().await;
    client
        .get("thing")
        .with(|r| r.header("x-through", "reqwest"))
        .header("x-after", "1")
        .send()
        .await
        .unwrap();
    let request = received(&api).await;
    assert_eq!(values(&request, "x-through"), ["reqwest"]);
    assert_eq!(values(&request, "x-after"), ["1"]);
    assert_eq!(values(&request, "authorization"), ["Bearer the-token"]);
}

/// User info in a request URL is dropped when the request is made: never sent as a Basic
/// header, and not kept in the URL the response reports (reqwest's response names the
/// request's URL).
#[tokio::test]
async fn user_info_in_the_url_is_dropped_for_the_token() {
    let (api, client) = start().await;
    let with_user = api.uri().replacen("://", "://user:secret@", 1);
    let response = client
        .get(format!("{with_user}/api/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.url().username(), "");
    assert_eq!(response.url().password(), None);
    assert_eq!(response.url().path(), "/api/thing");
    let request = received(&api).await;
    assert_eq!(values(&request, "authorization"), ["Bearer the-token"]);
}

/// The timeout covers this request: an answer later than it is a transport error.
#[tokio::test]
async fn timeout_applies_to_the_request() {
    let api = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&api)
        .await;
    let client = AuthedClient::builder(StaticToken::new("t"))
        .base_url(api.uri())
        .build()
        .unwrap();
    let err = client
        .get("slow")
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::Transport(_)), "{err:?}");
}

/// `send()`'s future for a cached Bearer token stays within 128 bytes, which the compiler
/// moves without a call to `memcpy` (BENCHMARKS.md: each caller moves it at least once).
#[tokio::test]
async fn a_bearer_requests_future_fits_128_bytes() {
    let (_api, client) = start().await;
    let sending = client.get("thing").send();
    let size = std::mem::size_of_val(&sending);
    assert!(size <= 128, "{size} bytes");
    sending.await.unwrap();
}
