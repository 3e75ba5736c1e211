//! Configuration from `AUTHED_*` variables, read through `Env::from_fn` so no test touches
//! the process environment (tests run in parallel).

use std::collections::HashMap;

use authed::testing::TestProvider;
use authed::{ClientAuthMethod, Env, Error, OAuthConfig, TokenSource};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env(vars: &[(&str, &str)]) -> Env {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Env::from_fn(move |name| vars.get(name).cloned())
}

fn config_error(result: Result<OAuthConfig, Error>) -> String {
    match result {
        Err(e @ Error::Config(_)) => e.to_string(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_config_from_variables_gets_tokens_with_the_scopes() {
    let provider = TestProvider::start().await;
    let env = env(&[
        ("AUTHED_TOKEN_URL", &provider.token_url()),
        ("AUTHED_REVOCATION_URL", &provider.revocation_url()),
        ("AUTHED_CLIENT_ID", TestProvider::CLIENT_ID),
        ("AUTHED_CLIENT_SECRET", TestProvider::CLIENT_SECRET),
        ("AUTHED_AUTH_METHOD", "client_secret_post"),
        ("AUTHED_SCOPES", "api:read  api:write"),
        ("AUTHED_TIMEOUT", "5s"),
        ("AUTHED_DEVICE_URL", ""), // empty counts as unset
    ]);
    let config = env.config().unwrap();
    assert_eq!(config.client_id(), TestProvider::CLIENT_ID);
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretPost
    );
    assert_eq!(
        config.endpoints().revocation_url.as_ref().unwrap().as_str(),
        provider.revocation_url()
    );
    assert!(config.endpoints().device_authorization_url.is_none());
    assert_eq!(env.scopes(), ["api:read", "api:write"]);

    let source = config.client_credentials().scopes(env.scopes()).build();
    source.token().await.unwrap();
    let form = &provider.token_forms()[0];
    assert_eq!(form["scope"], "api:read api:write");
    // client_secret_post: the secret went in the body.
    assert_eq!(form["client_secret"], TestProvider::CLIENT_SECRET);
}

#[test]
fn a_missing_variable_is_named() {
    let e = config_error(env(&[("AUTHED_TOKEN_URL", "https://a.example/token")]).config());
    assert!(e.contains("AUTHED_CLIENT_ID"), "{e}");

    let e = config_error(env(&[("AUTHED_CLIENT_ID", "id")]).config());
    assert!(e.contains("AUTHED_TOKEN_URL"), "{e}");
}

#[test]
fn without_a_token_url_but_with_an_issuer_the_hint_is_discovery() {
    let e = config_error(
        env(&[
            ("AUTHED_ISSUER", "https://sso.example.com"),
            ("AUTHED_CLIENT_ID", "id"),
        ])
        .config(),
    );
    assert!(e.contains("discover_from_env"), "{e}");
}

#[test]
fn an_invalid_variable_is_named() {
    let base = [("AUTHED_CLIENT_ID", "id")];
    let cases = [
        ("AUTHED_TOKEN_URL", "not a url"),
        ("AUTHED_TOKEN_URL", "http://auth.example.com/token"),
        ("AUTHED_AUTH_URL", "ftp://auth.example.com/authorize"),
        ("AUTHED_REVOCATION_URL", "http://auth.example.com/revoke"),
        ("AUTHED_ISSUER", "http://auth.example.com"),
        ("AUTHED_AUTH_METHOD", "private_key_jwt"),
        ("AUTHED_TIMEOUT", "soon"),
    ];
    for (name, value) in cases {
        let mut vars = base.to_vec();
        if name != "AUTHED_TOKEN_URL" {
            vars.push(("AUTHED_TOKEN_URL", "https://auth.example.com/token"));
        }
        vars.push((name, value));
        let e = config_error(env(&vars).config());
        assert!(e.contains(name), "{name}={value:?}: {e}");
    }
}

#[test]
fn the_secret_is_read_from_a_file_and_never_shown() {
    let dir = std::env::temp_dir().join(format!("authed-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("client_secret");
    std::fs::write(&file, "file-s3cret-value\n").unwrap();
    let file = file.to_str().unwrap().to_owned();

    let config = env(&[
        ("AUTHED_TOKEN_URL", "https://auth.example.com/token"),
        ("AUTHED_CLIENT_ID", "id"),
        ("AUTHED_CLIENT_SECRET_FILE", &file),
    ])
    .config()
    .unwrap();
    // A secret was found: the default method with one is Basic.
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
    assert!(!format!("{config:?}").contains("file-s3cret-value"));

    // Both set: ambiguous, and neither value is shown.
    let e = config_error(
        env(&[
            ("AUTHED_TOKEN_URL", "https://auth.example.com/token"),
            ("AUTHED_CLIENT_ID", "id"),
            ("AUTHED_CLIENT_SECRET", "inline-s3cret-value"),
            ("AUTHED_CLIENT_SECRET_FILE", &file),
        ])
        .config(),
    );
    assert!(e.contains("AUTHED_CLIENT_SECRET_FILE"), "{e}");
    assert!(!e.contains("s3cret-value"), "{e}");

    let missing = dir.join("absent").to_str().unwrap().to_owned();
    let e = config_error(
        env(&[
            ("AUTHED_TOKEN_URL", "https://auth.example.com/token"),
            ("AUTHED_CLIENT_ID", "id"),
            ("AUTHED_CLIENT_SECRET_FILE", &missing),
        ])
        .config(),
    );
    assert!(e.contains("AUTHED_CLIENT_SECRET_FILE"), "{e}");

    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = config_error(
        env(&[
            ("AUTHED_TOKEN_URL", "https://auth.example.com/token"),
            ("AUTHED_CLIENT_ID", "id"),
            ("AUTHED_CLIENT_SECRET_FILE", empty.to_str().unwrap()),
        ])
        .config(),
    );
    assert!(e.contains("empty"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_secret_from_a_file_authenticates() {
    let provider = TestProvider::start().await;
    let file = std::env::temp_dir().join(format!("authed-env-secret-{}", std::process::id()));
    std::fs::write(&file, format!("{}\r\n", TestProvider::CLIENT_SECRET)).unwrap();
    let config = env(&[
        ("AUTHED_TOKEN_URL", &provider.token_url()),
        ("AUTHED_CLIENT_ID", TestProvider::CLIENT_ID),
        ("AUTHED_CLIENT_SECRET_FILE", file.to_str().unwrap()),
    ])
    .config()
    .unwrap();
    std::fs::remove_file(&file).unwrap();
    config.client_credentials().build().token().await.unwrap();
}

#[tokio::test]
async fn discovery_from_the_issuer_with_variables_on_top() {
    let server = MockServer::start().await;
    let base = server.uri();
    Mock::given(method("GET"))
        .and(path("/.well-known/openid-configuration"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "revocation_endpoint": format!("{base}/revoke"),
        })))
        .expect(1)
        .mount(&server)
        .await;
    let env = env(&[
        ("AUTHED_ISSUER", &base),
        ("AUTHED_CLIENT_ID", "native-app"),
        ("AUTHED_REVOCATION_URL", &format!("{base}/other-revoke")),
        ("AUTHED_REDIRECT_URI", "http://127.0.0.1:8765/callback"),
    ]);
    let config = env.discover().await.unwrap();
    let endpoints = config.endpoints();
    assert_eq!(endpoints.token_url.as_str(), format!("{base}/token"));
    assert_eq!(
        endpoints.authorization_url.as_ref().unwrap().as_str(),
        format!("{base}/authorize")
    );
    // The variable overrides the discovered endpoint.
    assert_eq!(
        endpoints.revocation_url.as_ref().unwrap().as_str(),
        format!("{base}/other-revoke")
    );
    assert_eq!(config.client_auth_method(), ClientAuthMethod::None);
    assert_eq!(
        env.redirect_uri().as_deref(),
        Some("http://127.0.0.1:8765/callback")
    );
}

#[tokio::test]
async fn discovery_needs_the_issuer_variable_and_reports_transport_errors_as_such() {
    let e = env(&[("AUTHED_CLIENT_ID", "id")])
        .discover()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("AUTHED_ISSUER"), "{e}");

    // Nothing listens there: a transport error, which is retryable, not a configuration error.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = env(&[
        ("AUTHED_ISSUER", &format!("http://{addr}")),
        ("AUTHED_CLIENT_ID", "id"),
    ])
    .discover()
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Transport(_)), "{e:?}");
    assert!(!e.is_configuration());
}

#[test]
fn debug_shows_no_values() {
    let env = env(&[("AUTHED_CLIENT_SECRET", "inline-s3cret-value")]);
    assert!(!format!("{env:?}").contains("s3cret"));
}
