//! Issue 18 point 2, played by the provider: no key a provider publishes can panic the crate.
//! Every JWK is checked (type, curve, sizes, `kty`/`alg` agreement, `use`, `key_ops`) before
//! any crypto library sees it; a key that fails is skipped, as a key of an unknown type is, and
//! a sign-in whose token only such a key could verify ends in `IdTokenError::UnknownKey`.

use authed::testing::TestProvider;
use authed::{AuthorizationCode, Callback, Error, IdTokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn flow(provider: &TestProvider) -> AuthorizationCode {
    provider
        .config(None)
        .authorization_code(REDIRECT)
        .scopes(["openid"])
        .build()
        .unwrap()
}

/// A full sign-in: the browser at the provider, then `complete()`.
async fn sign_in(provider: &TestProvider) -> Result<authed::RefreshTokenSource, Error> {
    thread_local! {
        // Building a client loads the platform's roots: once per test thread, not per sign-in.
        static BROWSER: reqwest::Client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
    }
    let flow = flow(provider);
    let pending = flow.authorize().await.unwrap();
    let resp = BROWSER
        .with(Clone::clone)
        .get(pending.url())
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let callback = Callback::new(param("code"), param("state")).iss(provider.issuer());
    flow.complete(pending, &callback).await
}

/// The provider's own public JWK (the key that signs its ID tokens).
async fn provider_jwk(provider: &TestProvider) -> Value {
    let jwks: Value = reqwest::get(provider.jwks_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"][0].clone()
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[tokio::test]
async fn an_ed25519_key_shorter_than_32_bytes_is_skipped_not_a_panic() {
    // jsonwebtoken 12 (rust_crypto backend) slices `x[..32]` when it verifies EdDSA: a
    // 3-byte `x` under the token's own `kid` panicked inside `complete()`.
    let provider = TestProvider::start().await;
    let kid = provider_jwk(&provider).await["kid"].clone();
    provider.set_jwks(Some(json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": kid, "use": "sig", "alg": "EdDSA"}
    ]})));
    let e = sign_in(&provider).await.unwrap_err();
    assert!(
        matches!(e, Error::IdToken(IdTokenError::UnknownKey)),
        "{e:?}"
    );
    assert_eq!(provider.token_requests(), 1);
}

/// Keys that must never reach a crypto library, each under the token's `kid`.
fn hostile_keys(good: &Value) -> Vec<(&'static str, Value)> {
    let kid = good["kid"].clone();
    let with = |changes: Value| {
        let mut key = good.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                key.as_object_mut().unwrap().remove(k);
            } else {
                key[k] = v.clone();
            }
        }
        key
    };
    vec![
        ("Ed25519 x of 31 bytes", with(json!({"x": b64(&[7; 31])}))),
        ("Ed25519 x of 33 bytes", with(json!({"x": b64(&[7; 33])}))),
        ("Ed25519 x empty", with(json!({"x": ""}))),
        ("Ed25519 x not base64url", with(json!({"x": "not base64!"}))),
        ("Ed25519 x missing", with(json!({"x": null}))),
        ("x is a number", with(json!({"x": 12}))),
        ("OKP on X25519", with(json!({"crv": "X25519"}))),
        (
            "OKP on Ed448",
            with(json!({"crv": "Ed448", "x": b64(&[7; 57])})),
        ),
        ("alg names RSA", with(json!({"alg": "RS256"}))),
        ("alg names HMAC", with(json!({"alg": "HS256"}))),
        ("use enc", with(json!({"use": "enc"}))),
        (
            "key_ops without verify",
            with(json!({"key_ops": ["encrypt"]})),
        ),
        ("key_ops not a list", with(json!({"key_ops": "verify"}))),
        ("kty EC with an OKP key", with(json!({"kty": "EC"}))),
        (
            "EC key off the curve",
            json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 32]), "y": b64(&[2; 32])}),
        ),
        (
            "EC x of 31 bytes",
            json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&[1; 31]), "y": b64(&[2; 32])}),
        ),
        (
            "EC on P-384",
            json!({"kty": "EC", "crv": "P-384", "kid": kid, "x": b64(&[1; 48]), "y": b64(&[2; 48])}),
        ),
        (
            "RSA of 512 bits",
            json!({"kty": "RSA", "kid": kid, "n": b64(&[0xc1; 64]), "e": "AQAB"}),
        ),
        (
            "RSA of 16,384 bits",
            json!({"kty": "RSA", "kid": kid, "n": b64(&[0xc1; 2048]), "e": "AQAB"}),
        ),
        (
            "RSA e = 0",
            json!({"kty": "RSA", "kid": kid, "n": b64(&[0xc1; 256]), "e": "AA"}),
        ),
        (
            "RSA e even",
            json!({"kty": "RSA", "kid": kid, "n": b64(&[0xc1; 256]), "e": "AQAA"}),
        ),
        (
            "RSA e of 64 bytes",
            json!({"kty": "RSA", "kid": kid, "n": b64(&[0xc1; 256]), "e": b64(&[0xff; 64])}),
        ),
        (
            "symmetric key",
            json!({"kty": "oct", "kid": kid, "k": b64(b"secret")}),
        ),
        ("not an object", json!("a string")),
        ("kty missing", json!({"kid": kid, "x": good["x"]})),
    ]
}

#[tokio::test]
async fn every_malformed_or_mismatched_key_is_skipped_and_the_sign_in_refused() {
    let provider = TestProvider::start().await;
    let good = provider_jwk(&provider).await;
    for (i, (what, key)) in hostile_keys(&good).into_iter().enumerate() {
        provider.set_jwks(Some(json!({ "keys": [key] })));
        let e = sign_in(&provider).await.unwrap_err();
        assert!(
            matches!(e, Error::IdToken(IdTokenError::UnknownKey)),
            "{what}: {e:?}"
        );
        assert_eq!(provider.token_requests(), i + 1, "{what}");
    }
}

#[tokio::test]
async fn a_bad_key_under_the_same_kid_does_not_hide_the_good_one() {
    let provider = TestProvider::start().await;
    let good = provider_jwk(&provider).await;
    let mut keys: Vec<Value> = hostile_keys(&good).into_iter().map(|(_, k)| k).collect();
    keys.push(good);
    provider.set_jwks(Some(json!({ "keys": keys })));
    let login = sign_in(&provider).await.unwrap();
    assert_eq!(login.id_token_claims().unwrap().sub(), "user-1");
}

#[tokio::test]
async fn a_jwks_that_is_not_a_key_set_is_a_jwks_error() {
    let provider = TestProvider::start().await;
    for doc in [
        json!([]),
        json!({"keys": {}}),
        json!({"keys": "x"}),
        json!(null),
    ] {
        provider.set_jwks(Some(doc.clone()));
        let e = sign_in(&provider).await.unwrap_err();
        assert!(
            matches!(e, Error::IdToken(IdTokenError::Jwks)),
            "{doc}: {e:?}"
        );
    }
}
