//! The request rules for a blocking HTTP client authed does not wrap: ureq, with
//! `authed::blocking::AuthHeaders` giving each request its `Authorization` header and
//! deciding what a `401` means. No `async` in this program.
//!
//! Offline: it starts the in-process test provider and its API (from `authed::testing`, on a
//! runtime of its own), fetches with one token, then has the provider revoke the token: the
//! `401` is reported, the source refreshes once, and the request is sent once more.
//!
//! ```sh
//! cargo run --example headers_ureq --features testing,blocking
//! ```

use authed::testing::TestProvider;
use authed::{AfterResponse, AuthHeaders, OAuthConfig, blocking};
use http::Method;

mod support;

fn main() -> std::process::ExitCode {
    support::exit_code(run())
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The test provider is an async server: it gets a runtime of its own.
    let provider_runtime = tokio::runtime::Runtime::new()?;
    let provider = provider_runtime.block_on(TestProvider::start());
    println!("Started a test provider at {}", provider.base_url());

    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .client_secret(TestProvider::CLIENT_SECRET)
        .build()?;
    let auth = blocking::AuthHeaders::new(
        AuthHeaders::builder(config.client_credentials().build())
            .allow_origin(provider.api_url())
            .build()?,
    );
    // ureq follows redirects by default, and would send the headers along: the rules want
    // each hop asked for (see `AuthHeaders`), so this agent stops at redirects. A 4xx is an
    // answer here, not an error: the rules need to see a 401.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .build()
        .into();

    for round in 1..=2 {
        if round == 2 {
            provider.revoke_access_tokens();
            println!("(the provider revokes the access token)");
        }
        let url = format!("{}items/{round}", provider.api_url());
        let mut credentials = auth.request(Method::GET, &url)?;
        let body = loop {
            let mut request = agent.get(&url);
            for (name, value) in &credentials.headers() {
                request = request.header(name, value);
            }
            let mut response = request.call()?;
            match credentials.after_response(response.status(), response.headers())? {
                AfterResponse::Done => break response.body_mut().read_to_string()?,
                AfterResponse::SendAgain => println!("  the API answered 401: sending once more"),
            }
        };
        println!("GET {url}: {body}");
    }
    println!(
        "token requests: {} (the first token, then one refresh after the 401)",
        provider.token_requests()
    );
    Ok(())
}
