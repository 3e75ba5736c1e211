//! A Google service account key file, as Google Cloud hands it out: access tokens for scopes,
//! the same acting for a Workspace user (domain-wide delegation), and an ID token for a Cloud
//! Run service (Google answers those with `id_token` only), through the JWT bearer grant.
//!
//! Offline: the example makes a new RSA key and writes a key file with it for an in-process
//! provider (from `authed::testing`) that knows the account's public key and verifies each
//! assertion. With a real key, set `GOOGLE_APPLICATION_CREDENTIALS` and use
//! `GoogleServiceAccount::from_env(&Env::process())`.
//!
//! ```sh
//! cargo run --example service_account --features testing
//! ```

mod support;

use std::process::ExitCode;

use authed::providers::GoogleServiceAccount;
use authed::testing::{TestProvider, new_private_key_pem};
use authed::{AuthedClient, SigningAlgorithm, SigningKey, TokenSource};

const EMAIL: &str = "reports@my-project.iam.gserviceaccount.com";

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    // Google's service account keys are RSA keys.
    let pem = new_private_key_pem(SigningAlgorithm::RS256);
    let public = SigningKey::from_pem(pem.as_bytes())?
        .with_kid("8a1b")
        .public_jwk()
        .clone();
    provider.register_client_key(EMAIL, public);
    let dir = std::env::temp_dir().join(format!("authed-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("service-account.json");
    std::fs::write(
        &path,
        serde_json::json!({
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "8a1b",
            "private_key": pem,
            "client_email": EMAIL,
            "token_uri": provider.token_url(),
        })
        .to_string(),
    )?;

    let account = GoogleServiceAccount::from_file(&path)?;
    println!("loaded the key file of {EMAIL}");
    let config = account.config().build()?;

    let storage = account
        .access_tokens(
            &config,
            ["https://www.googleapis.com/auth/devstorage.read_only"],
        )
        .build();
    let client = AuthedClient::builder(storage)
        .base_url(provider.api_url())
        .build()?;
    println!(
        "GET /api/buckets: {}",
        client.get("buckets").send().await?.status()
    );

    let as_user = account
        .access_tokens(&config, ["https://www.googleapis.com/auth/gmail.readonly"])
        .subject("someone@example.com")
        .build();
    as_user.token().await?;
    let run = account
        .id_tokens(&config, "https://reports-abc123-uc.a.run.app")
        .build();
    let id_token = run.token().await?;
    println!(
        "an ID token for Cloud Run, valid for {} s",
        id_token.lifetime().unwrap_or_default().as_secs()
    );
    for claims in provider.accepted_assertions() {
        let claim = |name: &str| claims.get(name).cloned().unwrap_or_default();
        println!(
            "assertion: sub={} scope={} target_audience={}",
            claim("sub"),
            claim("scope"),
            claim("target_audience")
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
