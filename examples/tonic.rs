//! authed on a tonic gRPC channel, offline: `AuthLayer` sends the access token as
//! `authorization` metadata, and a gRPC `UNAUTHENTICATED` gets the token refreshed.
//!
//! It starts, in this process on 127.0.0.1, a small OAuth provider (from `authed::testing`)
//! and a gRPC health service (`tonic-health`) whose interceptor lets a call through only with
//! a token the provider issued. Then it calls the service, has the provider revoke the token,
//! and shows that the refused call is reported (a gRPC call's body cannot be replayed, so it
//! is not sent again) and that the next call carries the new token.
//!
//! ```sh
//! cargo run --example tonic --features tower,testing
//! ```

mod support;

use std::process::ExitCode;
use std::sync::Arc;

use authed::testing::TestProvider;
use authed::tower::AuthLayer;
use tonic::Status;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = Arc::new(TestProvider::start().await);
    println!("Started a test provider at {}", provider.base_url());

    // The protected gRPC service: health checks, behind a token check.
    let (_reporter, health) = tonic_health::server::health_reporter();
    let issuer = provider.clone();
    let check = move |request: tonic::Request<()>| {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match token {
            Some(t) if issuer.accepts_access_token(t) => Ok(request),
            _ => Err(Status::unauthenticated("no valid access token")),
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        Server::builder()
            .add_service(tonic::service::interceptor::InterceptedService::new(
                health, check,
            ))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    println!("Started a gRPC health service at {url}");

    // The client: a channel to that one endpoint, with tokens from the client credentials grant.
    let source = provider.config(None).client_credentials().build();
    let channel = Endpoint::from_shared(url)?.connect().await?;
    let channel = ServiceBuilder::new()
        .layer(AuthLayer::builder(source).build()?)
        .service(channel);
    let mut client = HealthClient::new(channel);
    let request = || HealthCheckRequest {
        service: String::new(),
    };

    println!("\n1. A call with a token");
    let status = client.check(request()).await?.into_inner().status();
    println!(
        "   health: {status:?}; token requests: {}",
        provider.token_requests()
    );

    println!("\n2. The provider revokes the token: the server answers UNAUTHENTICATED");
    provider.revoke_access_tokens();
    match client.check(request()).await {
        Ok(_) => println!("   unexpectedly accepted"),
        Err(status) => {
            let cause = std::error::Error::source(&status)
                .and_then(|e| e.downcast_ref::<authed::Error>())
                .map_or_else(|| status.message().to_owned(), ToString::to_string);
            println!("   refused: {cause}");
            println!(
                "   token requests: {} (refreshed)",
                provider.token_requests()
            );
        }
    }

    println!("\n3. The next call carries the new token");
    let status = client.check(request()).await?.into_inner().status();
    println!(
        "   health: {status:?}; token requests: {}",
        provider.token_requests()
    );
    Ok(())
}
