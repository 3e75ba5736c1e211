//! DPoP (RFC 9449) against oidc-provider with its `dPoP` feature on and nonces required
//! (interop/server.mjs): a public client whose tokens must be DPoP-bound signs in, refreshes
//! and calls a resource that checks the proof (`htm`, `htu`, `ath`, `jti` replay, its own
//! nonce, the key thumbprint against the token's `cnf.jkt`); every nonce dance is counted.

use super::*;
use authed::{FileStore, SigningAlgorithm};

const DPOP_ID: &str = "authed-dpop";
const REDIRECT_URI: &str = "http://127.0.0.1:49152/callback";
const SCOPES: [&str; 3] = ["openid", "offline_access", "api:read"];

async fn dpop_config(server: &Server) -> OAuthConfig {
    OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(DPOP_ID)
        .dpop(SigningAlgorithm::ES256)
        .build()
        .unwrap()
}

async fn counts(server: &Server) -> (u64, u64, u64) {
    let c = server_counts(server).await;
    let n = |k: &str| c[k].as_u64().unwrap();
    (n("token"), n("dpop_nonce"), n("resource_nonce"))
}

#[tokio::test]
async fn a_public_client_signs_in_with_dpop_refreshes_and_calls_a_resource_that_checks_the_proof() {
    let server = Server::start_with(&[("ACCESS_TOKEN_TTL", "600")]);
    let config = dpop_config(&server).await;
    let thumbprint = config.dpop_key().unwrap().thumbprint().to_owned();
    // A file, so that the restart below reads the key back from its serialized form.
    let dir = std::env::temp_dir().join(format!("authed-interop-dpop-{}", std::process::id()));
    let path = dir.join("tokens.json");
    let store: Arc<dyn authed::TokenStore> = Arc::new(FileStore::new(&path));
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(SCOPES)
        .store(store.clone())
        .key("alice")
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    assert!(
        pending.url().contains(&format!("dpop_jkt={thumbprint}")),
        "the code is bound to the key (RFC 9449 §10)"
    );
    let callback = super::signin::headless_login(pending.url(), REDIRECT_URI).await;
    let login = Arc::new(flow.complete_url(pending, &callback).await.unwrap());
    let first = login.current().unwrap();
    assert_eq!(first.token_type(), "DPoP");
    // The code exchange: one use_dpop_nonce, one retry with the nonce.
    assert_eq!(counts(&server).await, (2, 1, 0));

    // The resource, on another origin (localhost) with its own nonce: one dance, then none.
    let port = url::Url::parse(&server.issuer).unwrap().port().unwrap();
    let client = AuthedClient::builder(login.clone())
        .base_url(format!("http://localhost:{port}/api/"))
        .build()
        .unwrap();
    let call = || async {
        let response = client.get("dpop").send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()
    };
    let body = call().await;
    assert_eq!(body["jkt"].as_str(), Some(thumbprint.as_str()));
    assert_eq!(body["cnf_jkt"].as_str(), Some(thumbprint.as_str()));
    assert_eq!(body["sub"].as_str(), Some("alice"));
    call().await;
    assert_eq!(counts(&server).await, (2, 1, 1));
    reqwest::Client::new()
        .post(server.url("/test/dpop/rotate-nonce"))
        .send()
        .await
        .unwrap();
    call().await;
    call().await;
    assert_eq!(counts(&server).await, (2, 1, 2), "one dance per new nonce");

    // A replayed proof, and the bound token as a bearer token: refused.
    let proof: Value = reqwest::get(server.url("/test/dpop/last-proof"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api = format!("http://localhost:{port}/api/dpop");
    let replayed = reqwest::Client::new()
        .get(&api)
        .header(
            "authorization",
            format!("DPoP {}", first.access_token().secret()),
        )
        .header("dpop", proof["proof"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 401);
    let body: Value = replayed.json().await.unwrap();
    assert_eq!(body["error_description"], "jti replayed");
    let (status, _) = raw_resource_status(&server, &first).await;
    assert_eq!(status, 401, "a DPoP-bound token is not a bearer token");

    // Refresh: with a proof and the token endpoint's remembered nonce, so no dance.
    let second = login.token_rejected(&first).await.unwrap();
    assert_ne!(second.access_token(), first.access_token());
    assert_eq!(second.token_type(), "DPoP");
    assert_eq!(counts(&server).await, (3, 1, 2));
    call().await;

    // Introspection shows the binding (as the client itself; RFC 7662).
    let introspection: Value = reqwest::Client::new()
        .post(config.endpoints().introspection_url.clone().unwrap())
        .form(&[
            ("client_id", DPOP_ID),
            ("token", second.access_token().secret()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true, "{introspection}");
    assert_eq!(
        introspection["cnf"]["jkt"].as_str(),
        Some(thumbprint.as_str()),
        "{introspection}"
    );

    // A restart: a new configuration (a new key) resumes the stored login and refreshes its
    // bound refresh token with the stored key. The stored key's nonce memory starts empty:
    // one dance.
    drop(client);
    let restarted = dpop_config(&server).await;
    assert_ne!(restarted.dpop_key().unwrap().thumbprint(), thumbprint);
    let resumed = restarted
        .refresh_token_source()
        .store(Arc::new(FileStore::new(&path)))
        .key("alice")
        .from_store()
        .await
        .unwrap()
        .unwrap();
    let current = resumed.current().unwrap();
    let third = resumed.token_rejected(&current).await.unwrap();
    assert_eq!(third.dpop_key().unwrap().thumbprint(), thumbprint);
    assert_eq!(counts(&server).await, (5, 2, 2));
    let _ = std::fs::remove_dir_all(&dir);
}
