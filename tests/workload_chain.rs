//! The default credential chain (environment → workload → user login), each link against a
//! local stand-in of its endpoint (tests/support/cloud.rs), the environment given to the
//! chain rather than set in the process.

use std::net::TcpListener;
use std::sync::Arc;

use authed::testing::TestProvider;
use authed::{
    AccessToken, DefaultCredentials, Error, MemoryStore, OAuthConfig, RefreshToken, Token,
    TokenSource, TokenStore,
};

#[path = "support/cloud.rs"]
mod cloud;
use cloud::{AzureImds, GcpMetadataServer, GitHubOidc, env, host, serve};

/// A loopback address nothing listens on: a probe there fails at once.
fn closed() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    address.to_string()
}

/// A chain whose probes go nowhere (no metadata server on this machine), for the links
/// under test to decide.
fn chain() -> authed::DefaultCredentialsBuilder {
    DefaultCredentials::builder()
        .gcp_metadata_host(closed())
        .azure_imds_endpoint(format!(
            "http://{}/metadata/identity/oauth2/token",
            closed()
        ))
}

#[tokio::test]
async fn the_environment_comes_first() {
    let provider = TestProvider::start().await;
    let gcp = serve(GcpMetadataServer {
        accounts: vec![],
        unavailable: false,
    })
    .await;
    let credentials = DefaultCredentials::builder()
        .env_lookup(env(&[
            ("AUTHED_TOKEN_URL", provider.token_url()),
            ("AUTHED_CLIENT_ID", TestProvider::CLIENT_ID.into()),
            ("AUTHED_CLIENT_SECRET", TestProvider::CLIENT_SECRET.into()),
            ("GCE_METADATA_HOST", host(&gcp)),
        ]))
        .scopes(["reports:read"])
        .build()
        .await
        .unwrap();
    assert_eq!(credentials.chosen(), "environment");
    let token = credentials.token().await.unwrap();
    assert_eq!(token.scopes(), Some(&["reports:read".to_owned()][..]));
    assert_eq!(provider.token_requests(), 1);
    assert!(gcp.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_misconfigured_environment_stops_the_chain() {
    let gcp = serve(GcpMetadataServer {
        accounts: vec![],
        unavailable: false,
    })
    .await;
    // A client id without a token URL or issuer: fix it, rather than fall through to the
    // machine's identity.
    let err = DefaultCredentials::builder()
        .env_lookup(env(&[
            ("AUTHED_CLIENT_ID", "reports-job".into()),
            ("GCE_METADATA_HOST", host(&gcp)),
        ]))
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("AUTHED_TOKEN_URL")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_github_actions_job_uses_its_oidc_token() {
    let server = serve(GitHubOidc {
        request_token: "req",
    })
    .await;
    let credentials = chain()
        .env_lookup(env(&[
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/idtoken?api-version=2.0", server.uri()),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "req".into()),
        ]))
        .audience("https://api.example.com")
        .build()
        .await
        .unwrap();
    assert_eq!(credentials.chosen(), "github-actions");
    credentials.token().await.unwrap();
}

#[tokio::test]
async fn gce_metadata_host_selects_the_gcp_metadata_server() {
    let server = serve(GcpMetadataServer {
        accounts: vec![],
        unavailable: false,
    })
    .await;
    let credentials = DefaultCredentials::builder()
        .azure_imds_endpoint(format!(
            "http://{}/metadata/identity/oauth2/token",
            closed()
        ))
        .env_lookup(env(&[("GCE_METADATA_HOST", host(&server))]))
        .scopes(["https://www.googleapis.com/auth/cloud-platform"])
        .build()
        .await
        .unwrap();
    assert_eq!(credentials.chosen(), "gcp-metadata");
    let token = credentials.token().await.unwrap();
    assert!(
        token
            .access_token()
            .secret()
            .starts_with("ya29.gcp-default-")
    );
}

#[tokio::test]
async fn azure_imds_is_used_when_it_answers_the_probe() {
    let server = serve(AzureImds { client_ids: vec![] }).await;
    let credentials = DefaultCredentials::builder()
        .gcp_metadata_host(closed())
        .env_lookup(env(&[]))
        .azure_imds_endpoint(format!("{}/metadata/identity/oauth2/token", server.uri()))
        .azure_resource("https://management.azure.com/")
        .build()
        .await
        .unwrap();
    assert_eq!(credentials.chosen(), "azure-imds");
    assert_eq!(
        credentials.token().await.unwrap().access_token().secret(),
        "imds-system"
    );
}

#[tokio::test]
async fn a_stored_user_login_is_the_last_link() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .build()
        .unwrap();
    let store = Arc::new(MemoryStore::new());
    let login = Token::new(AccessToken::new("user-access-token"))
        .with_refresh_token(Some(RefreshToken::new("user-refresh-token")));
    store.save("me", &login).await.unwrap();
    let credentials = chain()
        .env_lookup(env(&[]))
        .user_login(config.refresh_token_source().store(store).key("me"))
        .build()
        .await
        .unwrap();
    assert_eq!(credentials.chosen(), "user-login");
    assert_eq!(
        credentials.token().await.unwrap().access_token().secret(),
        "user-access-token"
    );
}

#[tokio::test]
async fn with_nothing_found_the_error_says_what_each_link_tried() {
    let provider = TestProvider::start().await;
    let config = OAuthConfig::builder(provider.token_url())
        .client_id(TestProvider::CLIENT_ID)
        .build()
        .unwrap();
    let err = chain()
        .env_lookup(env(&[]))
        .azure_resource("https://management.azure.com/")
        .user_login(
            config
                .refresh_token_source()
                .store(Arc::new(MemoryStore::new())),
        )
        .build()
        .await
        .unwrap_err();
    let Error::Config(message) = &err else {
        panic!("expected Config, got {err:?}");
    };
    for tried in [
        "environment: AUTHED_CLIENT_ID is not set",
        "GitHub Actions: ACTIONS_ID_TOKEN_REQUEST_URL is not set",
        "Azure App Service: IDENTITY_ENDPOINT and IDENTITY_HEADER are not set",
        "GCP metadata server: ",
        "Azure IMDS: could not be reached",
        "Kubernetes: KUBERNETES_SERVICE_HOST is not set",
        "user login: no login is stored",
    ] {
        assert!(message.contains(tried), "{tried:?} missing from: {message}");
    }
}

#[tokio::test]
async fn another_clouds_metadata_service_at_the_imds_address_is_not_azure() {
    // AWS's instance metadata service listens on the same 169.254.169.254 and answers 404
    // (IMDSv1) or 401 (IMDSv2) for Azure's path; only IMDS's 400 counts.
    let aws = cloud::serve(wiremock::ResponseTemplate::new(404)).await;
    let err = DefaultCredentials::builder()
        .gcp_metadata_host(closed())
        .env_lookup(env(&[]))
        .azure_imds_endpoint(format!("{}/metadata/identity/oauth2/token", aws.uri()))
        .azure_resource("https://management.azure.com/")
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("answered HTTP 404, not IMDS's 400")),
        "{err:?}"
    );
}
