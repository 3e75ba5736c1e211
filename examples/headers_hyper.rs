//! The request rules for an HTTP client authed does not wrap: hyper (hyper-util's client),
//! with `AuthHeaders` giving each request its `Authorization` (and, for a DPoP-bound token,
//! its `DPoP` proof) and deciding what a `401` means.
//!
//! Offline: it starts the in-process test provider and its API (from `authed::testing`),
//! fetches twice with one token, then has the provider revoke the token: the `401` is
//! reported, the source refreshes once, and the request is sent once more.
//!
//! ```sh
//! cargo run --example headers_hyper --features testing
//! ```

use authed::testing::TestProvider;
use authed::{AfterResponse, AuthHeaders, OAuthConfig, SigningAlgorithm};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    println!("Started a test provider at {}", provider.base_url());
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        // DPoP-bound tokens: each request also needs a proof for its method and URL.
        .dpop(SigningAlgorithm::ES256)
        .build()?;
    let auth = AuthHeaders::builder(config.client_credentials().build())
        .allow_origin(provider.api_url())
        .build()?;
    let hyper = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    for round in 1..=3 {
        if round == 3 {
            provider.revoke_access_tokens();
            println!("(the provider revokes the access token)");
        }
        let url = format!("{}items/{round}", provider.api_url());
        let (status, body) = get(&hyper, &auth, &url).await?;
        println!("GET {url}: {status} {body}");
    }
    println!(
        "token requests: {} (the first token, then one refresh after the 401)",
        provider.token_requests()
    );
    Ok(())
}

/// One `GET` under the rules: the headers for this method and URL, then the answer reported,
/// sending once more when the rules say so.
async fn get(
    hyper: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    auth: &AuthHeaders,
    url: &str,
) -> Result<(StatusCode, String), Box<dyn std::error::Error>> {
    let mut credentials = auth.request(Method::GET, url).await?;
    loop {
        let mut request = Request::get(url).body(Empty::new())?;
        credentials.apply(request.headers_mut());
        let response = hyper.request(request).await?;
        match credentials
            .after_response(response.status(), response.headers())
            .await?
        {
            AfterResponse::Done => {
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                return Ok((status, String::from_utf8_lossy(&body).into_owned()));
            }
            AfterResponse::SendAgain => println!("  the API answered 401: sending once more"),
        }
    }
}
