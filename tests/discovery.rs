//! Discovery against local metadata servers: which locations are tried, the issuer check,
//! the auth method choice, and the discovery-based presets.

use authed::{ClientAuthMethod, Error, OAuthConfig, TokenSource, providers};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const OIDC: &str = "/.well-known/openid-configuration";
const RFC8414: &str = "/.well-known/oauth-authorization-server";

fn metadata(issuer: &str, base: &str, auth_methods: &[&str]) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint": format!("{base}/introspect"),
        "token_endpoint_auth_methods_supported": auth_methods,
        "response_types_supported": ["code"],
    })
}

async fn serve(server: &MockServer, at: &str, status: u16, body: Value, times: u64) {
    Mock::given(method("GET"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(times)
        .mount(server)
        .await;
}

#[tokio::test]
async fn discovers_every_endpoint_from_openid_configuration() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let meta = metadata(&uri, &uri, &["client_secret_basic", "client_secret_post"]);
    serve(&server, OIDC, 200, meta, 1).await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"access_token": "t", "token_type": "Bearer", "expires_in": 300}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;

    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .client_secret("secret")
        .build()
        .unwrap();
    let e = config.endpoints();
    assert_eq!(e.issuer.as_deref(), Some(uri.as_str()));
    assert!(!e.iss_parameter_supported);
    assert_eq!(e.token_url.as_str(), format!("{uri}/token"));
    assert_eq!(
        e.authorization_url.as_ref().unwrap().as_str(),
        format!("{uri}/authorize")
    );
    assert_eq!(
        e.device_authorization_url.as_ref().unwrap().as_str(),
        format!("{uri}/device")
    );
    assert_eq!(
        e.revocation_url.as_ref().unwrap().as_str(),
        format!("{uri}/revoke")
    );
    assert_eq!(
        e.introspection_url.as_ref().unwrap().as_str(),
        format!("{uri}/introspect")
    );
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
    // The discovered token endpoint is the one grants use.
    let token = config.client_credentials().build().token().await.unwrap();
    assert_eq!(token.access_token().secret(), "t");
}

#[tokio::test]
async fn falls_back_to_rfc8414_path_insertion_for_an_issuer_with_a_path() {
    let server = MockServer::start().await;
    let issuer = format!("{}/tenants/acme", server.uri());
    serve(&server, &format!("/tenants/acme{OIDC}"), 404, json!({}), 1).await;
    let meta = metadata(&issuer, &issuer, &["client_secret_basic"]);
    serve(&server, &format!("{RFC8414}/tenants/acme"), 200, meta, 1).await;

    let config = OAuthConfig::discover(&issuer)
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{issuer}/token")
    );
    assert_eq!(config.endpoints().issuer.as_deref(), Some(issuer.as_str()));
    // Without a secret the client is public.
    assert_eq!(config.client_auth_method(), ClientAuthMethod::None);
}

#[tokio::test]
async fn falls_back_to_openid_configuration_path_insertion_last() {
    let server = MockServer::start().await;
    let issuer = format!("{}/realm", server.uri());
    serve(
        &server,
        &format!("/realm{OIDC}"),
        404,
        json!({"error": "not_found"}),
        1,
    )
    .await;
    serve(&server, &format!("{RFC8414}/realm"), 404, json!({}), 1).await;
    let meta = metadata(&issuer, &issuer, &[]);
    serve(&server, &format!("{OIDC}/realm"), 200, meta, 1).await;
    let builder = OAuthConfig::discover(&issuer).await.unwrap();
    let config = builder.client_id("svc").build().unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{issuer}/token")
    );
}

#[tokio::test]
async fn issuer_mismatch_is_rejected_rfc8414_section_3_3() {
    let server = MockServer::start().await;
    let uri = server.uri();
    // A document claiming to be another provider, pointing the token endpoint at itself.
    let meta = metadata(
        "https://accounts.example.com",
        &uri,
        &["client_secret_basic"],
    );
    serve(&server, OIDC, 200, meta, 1).await;
    serve(&server, RFC8414, 200, json!({}), 0).await;
    let err = OAuthConfig::discover(&uri).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("names another issuer")),
        "{err:?}"
    );
    assert!(err.is_configuration());
}

#[tokio::test]
async fn provider_supporting_only_post_gets_client_secret_post() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(
        &server,
        OIDC,
        200,
        metadata(&uri, &uri, &["client_secret_post", "private_key_jwt"]),
        1,
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(body_string_contains("client_secret=secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "p"})))
        .expect(1)
        .mount(&server)
        .await;
    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .client_secret("secret")
        .build()
        .unwrap();
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretPost
    );
    config.client_credentials().build().token().await.unwrap();
}

#[tokio::test]
async fn explicit_auth_method_wins_over_metadata() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(
        &server,
        OIDC,
        200,
        metadata(&uri, &uri, &["client_secret_post"]),
        1,
    )
    .await;
    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .client_secret("secret")
        .auth_method(ClientAuthMethod::ClientSecretBasic)
        .build()
        .unwrap();
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretBasic
    );
}

#[tokio::test]
async fn no_metadata_at_any_location_is_a_configuration_error() {
    let server = MockServer::start().await;
    serve(&server, OIDC, 404, json!({}), 1).await;
    serve(&server, RFC8414, 404, json!({}), 1).await;
    let err = OAuthConfig::discover(server.uri()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("no OpenID Connect or RFC 8414 metadata"))
    );
}

#[tokio::test]
async fn server_error_is_reported_not_skipped() {
    let server = MockServer::start().await;
    serve(&server, OIDC, 503, json!({}), 1).await;
    serve(&server, RFC8414, 200, json!({}), 0).await;
    let err = OAuthConfig::discover(server.uri()).await.unwrap_err();
    assert!(
        matches!(err, Error::MalformedResponse { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn metadata_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(OIDC))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "https://attacker.example/meta"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = OAuthConfig::discover(server.uri()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("HTTP 302 with a redirect")),
        "{err:?}"
    );
}

#[tokio::test]
async fn metadata_without_token_endpoint_is_malformed() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(
        &server,
        OIDC,
        200,
        json!({"issuer": uri, "authorization_endpoint": "x"}),
        1,
    )
    .await;
    let err = OAuthConfig::discover(&uri).await.unwrap_err();
    assert!(
        matches!(&err, Error::MalformedResponse { reason, .. } if reason.contains("token_endpoint"))
    );

    let server = MockServer::start().await;
    let uri = server.uri();
    serve(
        &server,
        OIDC,
        200,
        json!({"issuer": uri, "token_endpoint": 42}),
        1,
    )
    .await;
    let err = OAuthConfig::discover(&uri).await.unwrap_err();
    assert!(matches!(err, Error::MalformedResponse { .. }), "{err:?}");
}

#[tokio::test]
async fn discovered_plain_http_endpoint_on_a_remote_host_is_refused() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(
        &server,
        OIDC,
        200,
        metadata(&uri, "http://auth.example.com", &[]),
        1,
    )
    .await;
    let err = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn plain_http_issuer_on_a_remote_host_is_refused_before_any_request() {
    let err = OAuthConfig::discover("http://auth.example.com")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let err = OAuthConfig::discover("https://auth.example.com/?tenant=x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

#[tokio::test]
async fn keycloak_preset_discovers_the_realm() {
    let server = MockServer::start().await;
    let issuer = format!("{}/realms/acme", server.uri());
    let base = format!("{issuer}/protocol/openid-connect");
    serve(
        &server,
        &format!("/realms/acme{OIDC}"),
        200,
        metadata(&issuer, &base, &[]),
        1,
    )
    .await;
    let config = providers::keycloak(&server.uri(), "acme")
        .await
        .unwrap()
        .client_id("billing")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{base}/token")
    );
}

#[tokio::test]
async fn okta_preset_uses_the_custom_authorization_server() {
    let server = MockServer::start().await;
    let issuer = format!("{}/oauth2/default", server.uri());
    let base = format!("{issuer}/v1");
    serve(
        &server,
        &format!("/oauth2/default{OIDC}"),
        200,
        metadata(&issuer, &base, &[]),
        1,
    )
    .await;
    let config = providers::okta(&server.uri(), Some("default"))
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{base}/token")
    );
}

#[tokio::test]
async fn auth0_preset_accepts_its_trailing_slash_issuer() {
    let server = MockServer::start().await;
    let issuer = format!("{}/", server.uri());
    let base = format!("{}/oauth", server.uri());
    serve(
        &server,
        OIDC,
        200,
        metadata(
            &issuer,
            &base,
            &["client_secret_basic", "client_secret_post"],
        ),
        1,
    )
    .await;
    let config = providers::auth0(&server.uri())
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{base}/token")
    );
}

#[tokio::test]
async fn oidc_preset_is_discovery() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(&server, OIDC, 200, metadata(&uri, &uri, &[]), 1).await;
    let config = providers::oidc(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{uri}/token")
    );
}

/// Issue 8 point 2: RFC 8414 §3.3 asks for an identical issuer. A document whose issuer is
/// the asked one plus `/`, or the same URL in other case, is another identity.
#[tokio::test]
async fn an_issuer_that_is_only_equivalent_is_refused() {
    for claimed in ["{uri}/", "HTTP://{host}"] {
        let server = MockServer::start().await;
        let uri = server.uri();
        let host = uri.trim_start_matches("http://").to_owned();
        let claimed = claimed.replace("{uri}", &uri).replace("{host}", &host);
        serve(&server, OIDC, 200, metadata(&claimed, &uri, &[]), 1).await;
        serve(&server, RFC8414, 200, json!({}), 0).await;
        let err = OAuthConfig::discover(&uri).await.unwrap_err();
        assert!(matches!(&err, Error::Config(_)), "{claimed}: {err:?}");
        // Nothing received is quoted back.
        assert!(!err.to_string().contains(&claimed), "{err}");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

/// Issue 8 point 2: discovery reads RFC 9207's flag and the JWKS location.
#[tokio::test]
async fn discovery_reads_the_iss_parameter_flag_and_jwks_uri() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let mut meta = metadata(&uri, &uri, &[]);
    meta["authorization_response_iss_parameter_supported"] = json!(true);
    meta["jwks_uri"] = json!(format!("{uri}/jwks"));
    serve(&server, OIDC, 200, meta, 1).await;
    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("app")
        .build()
        .unwrap();
    assert!(config.endpoints().iss_parameter_supported);
    assert_eq!(
        config.endpoints().jwks_url.as_ref().unwrap().as_str(),
        format!("{uri}/jwks")
    );
}

/// Some providers name endpoints in only one of their documents (django-oauth-toolkit names
/// revocation and introspection only in its RFC 8414 one): both are read and merged.
#[tokio::test]
async fn both_documents_are_read_and_what_each_names_is_merged() {
    let server = MockServer::start().await;
    let uri = server.uri();
    let openid = json!({
        "issuer": uri,
        "authorization_endpoint": format!("{uri}/authorize"),
        "token_endpoint": format!("{uri}/token"),
        "jwks_uri": format!("{uri}/jwks"),
        "token_endpoint_auth_methods_supported": ["client_secret_post"],
    });
    let rfc8414 = json!({
        "issuer": uri,
        // Named in both documents: the OpenID document's value is kept.
        "token_endpoint": format!("{uri}/other-token"),
        "revocation_endpoint": format!("{uri}/revoke"),
        "introspection_endpoint": format!("{uri}/introspect"),
        "authorization_response_iss_parameter_supported": true,
    });
    serve(&server, OIDC, 200, openid, 1).await;
    serve(&server, RFC8414, 200, rfc8414, 1).await;
    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .client_secret("secret")
        .build()
        .unwrap();
    let e = config.endpoints();
    let url = |p: &str| Some(url::Url::parse(&format!("{uri}{p}")).unwrap());
    assert_eq!(Some(e.token_url.clone()), url("/token"));
    assert_eq!(e.authorization_url, url("/authorize"));
    assert_eq!(e.jwks_url, url("/jwks"));
    assert_eq!(e.revocation_url, url("/revoke"));
    assert_eq!(e.introspection_url, url("/introspect"));
    assert!(e.iss_parameter_supported);
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::ClientSecretPost
    );
}

#[tokio::test]
async fn the_second_document_must_name_the_same_issuer() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(&server, OIDC, 200, metadata(&uri, &uri, &[]), 1).await;
    // Another provider's identity, with a revocation endpoint of its own.
    let other = metadata("https://accounts.example.com", &uri, &[]);
    serve(&server, RFC8414, 200, other, 1).await;
    let err = OAuthConfig::discover(&uri).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("names another issuer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_server_error_at_the_second_document_fails_discovery() {
    // A configuration made from half the metadata could silently lack an endpoint.
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(&server, OIDC, 200, metadata(&uri, &uri, &[]), 1).await;
    serve(&server, RFC8414, 503, json!({}), 1).await;
    let err = OAuthConfig::discover(&uri).await.unwrap_err();
    assert!(
        matches!(err, Error::MalformedResponse { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_issuer_with_a_path_finds_the_rfc8414_document_appended_to_it() {
    // django-oauth-toolkit mounted under /o serves its RFC 8414 document at
    // /o/.well-known/oauth-authorization-server unless also mounted at the root.
    let server = MockServer::start().await;
    let issuer = format!("{}/o", server.uri());
    let openid = json!({"issuer": issuer, "token_endpoint": format!("{issuer}/token/")});
    serve(&server, &format!("/o{OIDC}"), 200, openid, 1).await;
    serve(&server, &format!("{RFC8414}/o"), 404, json!({}), 1).await;
    let rfc8414 = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/token/"),
        "revocation_endpoint": format!("{issuer}/revoke_token/"),
    });
    serve(&server, &format!("/o{RFC8414}"), 200, rfc8414, 1).await;
    let config = OAuthConfig::discover(&issuer)
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config
            .endpoints()
            .revocation_url
            .as_ref()
            .map(url::Url::as_str),
        Some(format!("{issuer}/revoke_token/").as_str())
    );
}

/// A web app that serves its page for every path answers the RFC 8414 location with 200 and
/// HTML: not a metadata document, so it is skipped, not an error.
#[tokio::test]
async fn a_page_where_a_document_should_be_is_skipped() {
    let server = MockServer::start().await;
    let uri = server.uri();
    serve(&server, OIDC, 200, metadata(&uri, &uri, &[]), 1).await;
    Mock::given(method("GET"))
        .and(path(RFC8414))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw("<!doctype html><div id=app>", "text/html"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let config = OAuthConfig::discover(&uri)
        .await
        .unwrap()
        .client_id("svc")
        .build()
        .unwrap();
    assert_eq!(
        config.endpoints().token_url.as_str(),
        format!("{uri}/token")
    );
    // With nothing else found, what was wrong with the page is the error.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token_endpoint": "x"})))
        .mount(&server)
        .await;
    let err = OAuthConfig::discover(server.uri()).await.unwrap_err();
    assert!(
        matches!(&err, Error::MalformedResponse { reason, .. } if reason.contains("without issuer")),
        "{err:?}"
    );
}
