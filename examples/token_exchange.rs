//! Workload identity federation: a token the platform writes to a file (a Kubernetes
//! projected service account token, a GitHub Actions OIDC token) exchanged for an API token
//! with RFC 8693 token exchange, as GCP STS (`providers::google_sts`) and Keycloak do. The file
//! is read again at each exchange, so a rotated token is always used.
//!
//! Offline, against an in-process provider (from `authed::testing`) standing in for the STS.
//!
//! ```sh
//! cargo run --example token_exchange --features testing
//! ```

mod support;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::{ManualClock, TestProvider};
use authed::{OAuthConfig, SubjectToken, TokenSource, token_types};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    let dir = std::env::temp_dir().join(format!("authed-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, "platform-token-1")?;

    // An STS takes no client authentication: an empty client id sends none.
    let clock = ManualClock::new(SystemTime::now());
    let sts = OAuthConfig::builder(provider.token_url())
        .client_id("")
        .clock(clock.clone())
        .build()?;
    let source = Arc::new(
        sts.token_exchange(SubjectToken::file(&token_file))
            .audience("//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/k8s")
            .requested_token_type(token_types::ACCESS_TOKEN)
            .scopes(["https://www.googleapis.com/auth/cloud-platform"])
            .build(),
    );
    let first = source.token().await?;
    println!(
        "exchanged: a {} token for {}, valid for {} s (its value is never printed)",
        first.token_type(),
        first.scopes().unwrap_or_default().join(" "),
        first.lifetime().unwrap_or_default().as_secs()
    );

    // The platform rotates its token; an hour later the exchanged token is due again.
    std::fs::write(&token_file, "platform-token-2")?;
    clock.advance(Duration::from_secs(3600));
    source.token().await?;
    let subjects: Vec<_> = provider
        .token_forms()
        .iter()
        .map(|f| f["subject_token"].clone())
        .collect();
    println!("subject tokens the STS saw: {subjects:?}");
    assert_eq!(subjects, ["platform-token-1", "platform-token-2"]);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
