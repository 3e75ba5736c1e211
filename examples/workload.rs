//! One program, credentials wherever it runs: `DefaultCredentials` picks the environment's
//! client credentials (`AUTHED_*`), else the workload's identity (GitHub Actions, Azure, GCP,
//! a Kubernetes token file), else the user's stored login.
//!
//! Offline: the program is shown four places to run, each an environment given to the chain
//! with `env_lookup` (a real program leaves that out and the process environment is read):
//! a laptop with a stored login, a Kubernetes pod with a projected token file, a service with
//! `AUTHED_*` variables for an in-process provider (from `authed::testing`), and a machine
//! with none of these, where the error says what each link looked for.
//!
//! ```sh
//! cargo run --example workload --features testing
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::TestProvider;
use authed::{
    AccessToken, DefaultCredentials, DefaultCredentialsBuilder, Error, MemoryStore, OAuthConfig,
    RefreshToken, Token, TokenSource, TokenStore,
};

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Error> {
    let provider = TestProvider::start().await;
    let user = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .build()?;
    let store = Arc::new(MemoryStore::new());

    // A laptop: nothing in the environment, but the user signed in earlier.
    let login = Token::new(AccessToken::new("user-access-token"))
        .with_lifetime(SystemTime::now(), Duration::from_secs(3600))
        .with_refresh_token(Some(RefreshToken::new("user-refresh-token")));
    store.save("me", &login).await?;
    let laptop = chain(&[]).user_login(user.refresh_token_source().store(store.clone()).key("me"));
    show("laptop", laptop).await?;

    // A Kubernetes pod: the kubelet's projected token file.
    let dir = std::env::temp_dir().join(format!("authed-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(Error::store)?;
    let token_file = dir.join("token");
    std::fs::write(&token_file, pod_token()).map_err(Error::store)?;
    let pod = chain(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1".into())])
        .kubernetes_token_file(&token_file)
        .user_login(user.refresh_token_source().store(store.clone()).key("me"));
    show("pod", pod).await?;

    // A service with its own client registration in the environment: that comes first.
    let service = chain(&[
        ("AUTHED_TOKEN_URL", provider.token_url()),
        ("AUTHED_CLIENT_ID", TestProvider::CLIENT_ID.into()),
        ("AUTHED_CLIENT_SECRET", TestProvider::CLIENT_SECRET.into()),
        ("AUTHED_SCOPES", "reports:read".into()),
        ("KUBERNETES_SERVICE_HOST", "10.0.0.1".into()),
    ])
    .kubernetes_token_file(&token_file);
    show("service", service).await?;

    // Nowhere: nothing applies, and the error lists what each link looked for.
    match chain(&[]).build().await {
        Ok(found) => println!("nowhere: unexpectedly found {}", found.chosen()),
        Err(e) => println!("nowhere: {e}"),
    }
    std::fs::remove_dir_all(&dir).map_err(Error::store)?;
    Ok(())
}

/// The chain as a program builds it, in an environment of `vars` only. The metadata server
/// probes are pointed at a closed local port, so this example never waits for them.
fn chain(vars: &[(&str, String)]) -> DefaultCredentialsBuilder {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    let closed = closed_port();
    DefaultCredentials::builder()
        .env_lookup(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .gcp_metadata_host(closed.clone())
        .azure_imds_endpoint(format!("http://{closed}/metadata/identity/oauth2/token"))
        .probe_timeout(Duration::from_millis(200))
}

async fn show(place: &str, chain: DefaultCredentialsBuilder) -> Result<(), Error> {
    let credentials = chain.build().await?;
    let token = credentials.token().await?;
    let secret = token.access_token().secret();
    let expires = token
        .expires_at()
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .map_or("no known expiry".to_owned(), |left| {
            format!("expires in {} s", left.as_secs())
        });
    let shown: String = secret.chars().take(8).collect();
    println!(
        "{place}: {} gave a token {shown}... ({expires})",
        credentials.chosen()
    );
    Ok(())
}

/// A service account token as the kubelet writes it: a JWT whose `exp` is an hour away.
fn pod_token() -> String {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        + 3600;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(serde_json::json!({"alg": "RS256", "kid": "k8s"})),
        b64(
            serde_json::json!({"aud": ["reports"], "sub": "system:serviceaccount:reports:api", "exp": exp})
        )
    )
}

/// A local port nothing listens on.
fn closed_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or_else(|_| "127.0.0.1:9".to_owned(), |a| a.to_string())
}
