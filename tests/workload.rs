//! Workload credentials against local servers that answer as the real endpoints are
//! documented to (tests/support/cloud.rs cites each): the GCP metadata server, Azure IMDS
//! and the App Service identity endpoint, GitHub Actions' OIDC endpoint, and a Kubernetes
//! projected token file.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use authed::testing::ManualClock;
use authed::{
    AzureManagedIdentity, Error, GcpMetadata, GitHubActionsOidc, KubernetesServiceAccount,
    TokenSource,
};
use serde_json::json;
use wiremock::MockServer;

#[path = "support/cloud.rs"]
mod cloud;
use cloud::{AppService, AzureImds, GcpMetadataServer, GitHubOidc, env, host, jwt, serve};

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

fn gcp() -> GcpMetadataServer {
    GcpMetadataServer {
        accounts: vec!["reports@acme.iam.gserviceaccount.com"],
        unavailable: false,
    }
}

#[tokio::test]
async fn gcp_metadata_token_with_the_flavor_header_both_ways() {
    let server = serve(gcp()).await;
    // The stand-in is as strict as the real server: no header, no token.
    let bare = reqwest::get(format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/token",
        server.uri()
    ))
    .await
    .unwrap();
    assert_eq!(bare.status(), 403);

    let source = GcpMetadata::builder()
        .env_lookup(env(&[("GCE_METADATA_HOST", host(&server))]))
        .scopes(["https://www.googleapis.com/auth/cloud-platform", "openid"])
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(
        token.access_token().secret(),
        "ya29.gcp-default-https://www.googleapis.com/auth/cloud-platform,openid"
    );
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
    let seen = requests(&server).await;
    let last = seen.last().unwrap();
    assert_eq!(last.headers["metadata-flavor"], "Google");
    assert!(last.headers.get("x-forwarded-for").is_none());
}

#[tokio::test]
async fn gcp_metadata_named_service_account_and_a_missing_one() {
    let server = serve(gcp()).await;
    let source = |account: &str| {
        GcpMetadata::builder()
            .host(host(&server))
            .service_account(account)
            .build()
            .unwrap()
    };
    let token = source("reports@acme.iam.gserviceaccount.com")
        .token()
        .await
        .unwrap();
    assert!(
        token
            .access_token()
            .secret()
            .starts_with("ya29.gcp-reports@")
    );
    let err = source("nobody@acme.iam.gserviceaccount.com")
        .token()
        .await
        .unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert!(
        err.to_string().contains("no service account nobody@"),
        "{err}"
    );
}

#[tokio::test]
async fn an_answer_without_metadata_flavor_is_not_from_a_metadata_server() {
    // Something else answers at the name (a captive portal, a hijacked DNS entry), with a
    // body that looks like a token: it is not used.
    let impostor = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
            json!({"access_token": "stolen", "expires_in": 3599, "token_type": "Bearer"}),
        ))
        .mount(&impostor)
        .await;
    let source = GcpMetadata::builder()
        .host(host(&impostor))
        .build()
        .unwrap();
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("Metadata-Flavor")),
        "{err:?}"
    );
}

#[tokio::test]
async fn gcp_metadata_unavailable_is_retryable() {
    let server = serve(GcpMetadataServer {
        accounts: vec![],
        unavailable: true,
    })
    .await;
    let source = GcpMetadata::builder().host(host(&server)).build().unwrap();
    let err = source.token().await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

#[tokio::test]
async fn gcp_tokens_are_cached_and_renewed_before_they_expire() {
    let server = serve(gcp()).await;
    let clock = ManualClock::new(SystemTime::now());
    let source = Arc::new(
        GcpMetadata::builder()
            .host(host(&server))
            .clock(clock.clone())
            .build()
            .unwrap(),
    );
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.token().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        requests(&server).await.len(),
        1,
        "one request for 20 callers"
    );
    // Within the 60 s expiry margin of its 3599 s: a new one before use.
    clock.advance(Duration::from_secs(3599 - 30));
    source.token().await.unwrap();
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn azure_imds_token_with_the_metadata_header_and_string_expiry() {
    let server = serve(AzureImds { client_ids: vec![] }).await;
    // Without `Metadata: true`, IMDS refuses: the stand-in does too.
    let bare = reqwest::get(format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
        server.uri()
    ))
    .await
    .unwrap();
    assert_eq!(bare.status(), 400);

    let source = AzureManagedIdentity::builder("https://vault.azure.net")
        .imds_endpoint(format!("{}/metadata/identity/oauth2/token", server.uri()))
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(token.access_token().secret(), "imds-system");
    // `expires_in: "3599"` (a string) decides, not `expires_on`.
    assert_eq!(token.lifetime(), Some(Duration::from_secs(3599)));
    let seen = requests(&server).await;
    let last = seen.last().unwrap();
    assert_eq!(last.headers["metadata"], "true");
    let query: Vec<(String, String)> = last.url.query_pairs().into_owned().collect();
    assert!(query.contains(&("api-version".into(), "2018-02-01".into())));
    assert!(query.contains(&("resource".into(), "https://vault.azure.net".into())));
}

#[tokio::test]
async fn azure_imds_user_assigned_identity_and_one_that_is_not_there() {
    let server = serve(AzureImds {
        client_ids: vec!["11111111-2222-3333-4444-555555555555"],
    })
    .await;
    let url = format!("{}/metadata/identity/oauth2/token", server.uri());
    let source = |id: &str| {
        AzureManagedIdentity::builder("https://management.azure.com/")
            .imds_endpoint(url.clone())
            .client_id(id)
            .build()
            .unwrap()
    };
    let token = source("11111111-2222-3333-4444-555555555555")
        .token()
        .await
        .unwrap();
    assert_eq!(
        token.access_token().secret(),
        "imds-11111111-2222-3333-4444-555555555555"
    );
    let err = source("99999999-0000-0000-0000-000000000000")
        .token()
        .await
        .unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert!(err.to_string().contains("Identity not found"), "{err}");
}

/// A token from an App Service stand-in of `protocol`, found through `vars` (each protocol's
/// two variables), and how long it has left.
async fn app_service_token(
    v2017: bool,
    secret: &'static str,
    vars: impl Fn(&MockServer) -> Vec<(&'static str, String)>,
) -> (MockServer, authed::Token, Duration) {
    let server = serve(AppService { secret, v2017 }).await;
    let source = AzureManagedIdentity::builder("https://vault.azure.net")
        .env_lookup(env(&vars(&server)))
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    // The secret header is not in any Debug output.
    assert!(!format!("{source:?}").contains(secret));
    let left = token
        .expires_at()
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(3590) && left <= Duration::from_secs(3600),
        "{left:?}"
    );
    (server, (*token).clone(), left)
}

#[tokio::test]
async fn azure_app_service_expires_on_epoch_seconds() {
    let (server, token, _) = app_service_token(false, "rotated-by-the-platform", |server| {
        vec![
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", server.uri())),
            ("IDENTITY_HEADER", "rotated-by-the-platform".into()),
        ]
    })
    .await;
    assert_eq!(token.access_token().secret(), "app-service-2019-08-01");
    let seen = requests(&server).await;
    assert_eq!(
        seen.last().unwrap().headers["x-identity-header"],
        "rotated-by-the-platform"
    );
}

#[tokio::test]
async fn azure_app_service_2017_expires_on_as_a_date() {
    let (server, token, _) = app_service_token(true, "msi-secret", |server| {
        vec![
            ("MSI_ENDPOINT", format!("{}/MSI/token/", server.uri())),
            ("MSI_SECRET", "msi-secret".into()),
        ]
    })
    .await;
    assert_eq!(token.access_token().secret(), "app-service-2017-09-01");
    assert_eq!(
        requests(&server).await.last().unwrap().headers["secret"],
        "msi-secret"
    );
}

#[tokio::test]
async fn azure_app_service_with_a_stale_header_is_a_configuration_error() {
    let server = serve(AppService {
        secret: "current",
        v2017: false,
    })
    .await;
    let source = AzureManagedIdentity::builder("https://vault.azure.net")
        .env_lookup(env(&[
            ("IDENTITY_ENDPOINT", format!("{}/msi/token", server.uri())),
            ("IDENTITY_HEADER", "stale".into()),
        ]))
        .build()
        .unwrap();
    let err = source.token().await.unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
    assert!(!err.to_string().contains("stale"), "{err}");
}

#[tokio::test]
async fn github_actions_oidc_token_for_an_audience() {
    let server = serve(GitHubOidc {
        request_token: "job-request-token",
    })
    .await;
    let url = format!(
        "{}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0",
        server.uri()
    );
    let source = GitHubActionsOidc::builder()
        .audience("api://AzureADTokenExchange")
        .env_lookup(env(&[
            ("ACTIONS_ID_TOKEN_REQUEST_URL", url),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "job-request-token".into()),
        ]))
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    // The JWT's own `exp` (5 minutes) is the expiry.
    let lifetime = token.lifetime().unwrap();
    assert!(
        lifetime > Duration::from_secs(290) && lifetime <= Duration::from_secs(300),
        "{lifetime:?}"
    );
    let seen = requests(&server).await;
    let query: Vec<(String, String)> = seen[0].url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        [
            ("api-version".to_owned(), "2.0".to_owned()),
            (
                "audience".to_owned(),
                "api://AzureADTokenExchange".to_owned()
            )
        ]
    );
    assert!(!format!("{source:?}").contains("job-request-token"));
}

#[tokio::test]
async fn github_actions_without_id_token_permission_says_so() {
    let err = GitHubActionsOidc::builder()
        .env_lookup(env(&[]))
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("ACTIONS_ID_TOKEN_REQUEST_URL") && m.contains("id-token: write")),
        "{err:?}"
    );
    let server = serve(GitHubOidc {
        request_token: "right",
    })
    .await;
    let source = GitHubActionsOidc::builder()
        .env_lookup(env(&[
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                format!("{}/idtoken?api-version=2.0", server.uri()),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong".into()),
        ]))
        .build()
        .unwrap();
    let err = source.token().await.unwrap_err();
    assert!(err.is_configuration(), "{err:?}");
}

#[tokio::test]
async fn kubernetes_token_file_is_read_again_after_the_kubelet_rotates_it() {
    let dir = std::env::temp_dir().join(format!("authed-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    let first = jwt(
        json!({"aud": ["vault"], "sub": "system:serviceaccount:ns:app"}),
        Duration::from_secs(3600),
    );
    std::fs::write(&path, format!("{first}\n")).unwrap();
    let clock = ManualClock::new(SystemTime::now());
    let source = KubernetesServiceAccount::builder()
        .path(&path)
        .clock(clock.clone())
        .build();
    let token = source.token().await.unwrap();
    assert_eq!(
        token.access_token().secret(),
        first,
        "trailing newline trimmed"
    );
    // Read again at least every 5 minutes, as Kubernetes advises, though `exp` is an hour away.
    assert_eq!(token.lifetime(), Some(Duration::from_secs(300)));

    let second = jwt(json!({"aud": ["vault"]}), Duration::from_secs(3600));
    std::fs::write(&path, &second).unwrap();
    assert_eq!(source.token().await.unwrap().access_token().secret(), first);
    clock.advance(Duration::from_secs(300));
    assert_eq!(
        source.token().await.unwrap().access_token().secret(),
        second
    );

    std::fs::remove_file(&path).unwrap();
    clock.advance(Duration::from_secs(300));
    let err = source.token().await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains(&path.display().to_string())),
        "{err:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
