//! A FAPI 2.0 sign-in (open banking, e-health, e-government): one switch,
//! `OAuthConfigBuilder::fapi2`, and the configuration refuses to build unless the client meets
//! the profile's duties (a confidential client with `private_key_jwt` or mTLS, DPoP- or
//! mTLS-bound tokens, a known issuer, PS256 / ES256 / EdDSA only, an https redirect URI, a
//! pushed authorization request endpoint), each refusal an `Error::Fapi` naming the duty.
//! Every sign-in is then pushed (PAR), carries a payment's rich authorization details
//! (RFC 9396), and its callback must name the issuer (RFC 9207).
//!
//! Offline: the in-process provider (`authed::testing`) knows the client's public key, demands
//! DPoP nonces, and plays the user; the key is a test fixture from tests/support/keys. With a
//! real provider: `OAuthConfig::discover(issuer)`, your registered key
//! (`SigningKey::from_pem(&std::fs::read("client.key")?)`), and the user's browser instead of
//! `browse`.
//!
//! ```sh
//! cargo run --example fapi_sign_in --features testing
//! ```

use authed::testing::TestProvider;
use authed::{
    AuthedClient, AuthorizationDetail, Error, Fapi2, FapiDuty, OAuthConfig, SigningAlgorithm,
    SigningKey, TokenSource,
};
use serde_json::json;

const REDIRECT_URI: &str = "https://client.example.com/callback";

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let key = SigningKey::from_pem(
        authed::testing::new_private_key_pem(authed::SigningAlgorithm::ES256).as_bytes(),
    )?
    .with_kid("payments-2026");
    let provider = TestProvider::start().await;
    provider.register_client_key("payments-app", key.public_jwk());
    provider.set_dpop_nonce_required(true);

    // A client secret does not meet FAPI 2.0: the error names the duty.
    let refused = OAuthConfig::discover(provider.issuer())
        .await?
        .client_id("payments-app")
        .client_secret("s3cret")
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build();
    match refused {
        Err(Error::Fapi(duty @ FapiDuty::ClientAuthentication(_))) => println!("refused: {duty}"),
        other => panic!("expected a FAPI refusal, got {other:?}"),
    }

    let config = OAuthConfig::discover(provider.issuer())
        .await?
        .client_id("payments-app")
        .private_key(key)
        .dpop(SigningAlgorithm::ES256)
        .fapi2(Fapi2::SecurityProfile)
        .build()?;
    let payment = AuthorizationDetail::new("payment_initiation")
        .with_actions(["initiate", "status"])
        .with_field(
            "instructedAmount",
            json!({"currency": "EUR", "amount": "123.50"}),
        )
        .with_field("creditorName", json!("Merchant A"));
    let flow = config
        .authorization_code(REDIRECT_URI)
        .scopes(["openid"])
        .authorization_details([payment])
        .build()?;

    // Pushed with private_key_jwt and a DPoP proof; the browser gets client_id and request_uri.
    let pending = flow.authorize().await?;
    println!("send the browser to {}", redact(pending.url()));
    let callback = provider.browse(pending.url()).await.callback();
    let login = flow.complete(pending, &callback).await?;
    let token = login.token().await?;
    println!(
        "signed in as {}: a {} token, granted {:?}",
        login.id_token_claims().map_or("?", |c| c.sub()),
        token.token_type(),
        token
            .authorization_details()
            .unwrap_or_default()
            .iter()
            .map(|d| d.detail_type().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(token.token_type(), "DPoP");

    let client = AuthedClient::builder(login)
        .base_url(provider.api_url())
        .build()?;
    let status = client.get("payments").send().await?.status();
    println!("GET /api/payments with the DPoP-bound token: {status}");
    assert_eq!(status, 200);
    Ok(())
}

/// The URL without its query: the `request_uri` is single-use, but still not for logs.
fn redact(url: &str) -> String {
    url.split('?').next().unwrap_or("").to_owned() + "?client_id=..&request_uri=.."
}
