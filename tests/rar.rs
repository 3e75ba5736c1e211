//! Rich authorization requests (RFC 9396) against the in-process provider: details on the
//! authorization request (in the URL, pushed, or in a request object), what was granted read
//! from the token, on client credentials requests, narrowed on refreshes, and the typed
//! errors for details the provider or the client cannot accept.

use authed::testing::TestProvider;
use authed::{AuthorizationDetail, Error, Token, TokenSource};
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

fn payment() -> AuthorizationDetail {
    AuthorizationDetail::new("payment_initiation")
        .with_actions(["initiate", "status"])
        .with_locations(["https://bank.example.com/payments"])
        .with_field(
            "instructedAmount",
            json!({"currency": "EUR", "amount": "123.50"}),
        )
        .with_field("creditorName", json!("Merchant A"))
}

fn accounts() -> AuthorizationDetail {
    AuthorizationDetail::new("account_information")
        .with_actions(["read"])
        .with_identifier("acc-1")
}

/// The details the token endpoint sent back, through the public accessor.
fn granted(token: &Token) -> Vec<AuthorizationDetail> {
    token.authorization_details().expect("granted details")
}

#[derive(serde::Deserialize, PartialEq, Debug)]
#[serde(rename_all = "camelCase")]
struct Payment {
    #[serde(rename = "type")]
    kind: String,
    instructed_amount: Value,
    creditor_name: String,
}

#[tokio::test]
async fn details_go_out_with_the_sign_in_and_the_granted_ones_come_back_typed() {
    for pushed in [false, true] {
        let provider = TestProvider::start().await;
        provider.set_authorization_details_types(["payment_initiation", "account_information"]);
        let flow = provider
            .config(None)
            .authorization_code(REDIRECT)
            .scopes(["openid"])
            .authorization_details([payment()])
            .authorization_details([accounts()])
            .pushed(pushed)
            .build()
            .unwrap();
        let pending = flow.authorize().await.unwrap();
        let sent: std::collections::HashMap<String, String> = if pushed {
            provider.pushed_requests().remove(0)
        } else {
            url::Url::parse(pending.url())
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect()
        };
        let sent: Value = serde_json::from_str(&sent["authorization_details"]).unwrap();
        assert_eq!(
            sent,
            json!([payment(), accounts()]),
            "one JSON array, in order"
        );
        let callback = provider.browse(pending.url()).await.callback();
        let login = flow.complete(pending, &callback).await.unwrap();
        let token = login.current().unwrap();
        assert_eq!(granted(&token), vec![payment(), accounts()]);
        let typed: Payment = granted(&token)[0].to_typed().unwrap();
        assert_eq!(typed.creditor_name, "Merchant A");
        assert_eq!(typed.instructed_amount["amount"], "123.50");
        assert_eq!(typed.kind, "payment_initiation");
    }
}

#[tokio::test]
async fn your_own_type_goes_in_and_out() {
    #[derive(serde::Serialize)]
    struct Read<'a> {
        r#type: &'a str,
        actions: [&'a str; 1],
        identifier: &'a str,
    }
    let detail = AuthorizationDetail::from_typed(&Read {
        r#type: "account_information",
        actions: ["read"],
        identifier: "acc-1",
    })
    .unwrap();
    assert_eq!(detail, accounts());
    let e = AuthorizationDetail::from_typed(&json!({"actions": ["read"]})).unwrap_err();
    assert!(e.is_configuration(), "{e:?}");
}

#[tokio::test]
async fn client_credentials_ask_for_details_and_they_key_the_cache() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let pay = config
        .client_credentials()
        .authorization_details([payment()])
        .build();
    let read = config
        .client_credentials()
        .authorization_details([accounts()])
        .build();
    assert_eq!(granted(&pay.token().await.unwrap()), vec![payment()]);
    assert_eq!(granted(&read.token().await.unwrap()), vec![accounts()]);
    assert_eq!(provider.token_requests(), 2, "two detail sets, two tokens");
    pay.token().await.unwrap();
    assert_eq!(provider.token_requests(), 2);
    let forms = provider.token_forms();
    let sent: Value = serde_json::from_str(&forms[0]["authorization_details"]).unwrap();
    assert_eq!(sent, json!([payment()]));
}

#[tokio::test]
async fn a_refresh_narrows_to_part_of_what_was_granted() {
    let provider = TestProvider::start().await;
    let config = provider.config(None);
    let flow = config
        .authorization_code(REDIRECT)
        .authorization_details([payment(), accounts()])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let callback = provider.browse(pending.url()).await.callback();
    let login = flow.complete(pending, &callback).await.unwrap();
    let signed_in = login.current().unwrap();

    let narrowed = config
        .refresh_token_source()
        .authorization_details([accounts()])
        .from_token(
            (*signed_in)
                .clone()
                .with_expires_at(Some(std::time::UNIX_EPOCH)),
        )
        .await
        .unwrap();
    let token = narrowed.token().await.unwrap();
    assert_eq!(granted(&token), vec![accounts()]);
    let refresh_form = provider.token_forms().pop().unwrap();
    assert_eq!(refresh_form["grant_type"], "refresh_token");
    let sent: Value = serde_json::from_str(&refresh_form["authorization_details"]).unwrap();
    assert_eq!(sent, json!([accounts()]));

    // Asking a refresh for more than the sign-in granted is the provider's typed error.
    let greedy = config
        .refresh_token_source()
        .authorization_details([AuthorizationDetail::new("wire_transfer")])
        .from_token(Token::clone(&token).with_expires_at(Some(std::time::UNIX_EPOCH)))
        .await
        .unwrap();
    let e = greedy.token().await.unwrap_err();
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("invalid_authorization_details"),
        "{e:?}"
    );
}

#[tokio::test]
async fn details_the_provider_does_not_accept_are_refused_with_its_error() {
    let provider = TestProvider::start().await;
    provider.set_authorization_details_types(["account_information"]);
    // Pushed: the refusal is the pushed request's error, before any browser.
    let flow = provider
        .config(None)
        .authorization_code(REDIRECT)
        .authorization_details([payment()])
        .pushed(true)
        .build()
        .unwrap();
    let e = flow.authorize().await.unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "invalid_authorization_details"),
        "{e:?}"
    );
    let e = provider
        .config(None)
        .client_credentials()
        .authorization_details([payment()])
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::OAuth(o) if o.error == "invalid_authorization_details"),
        "{e:?}"
    );
}

#[tokio::test]
async fn malformed_granted_details_are_a_malformed_response_not_a_token() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    for details in [
        json!({"type": "x"}),
        json!([{"actions": ["read"]}]),
        json!("all"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "access_token": "at",
                "token_type": "Bearer",
                "authorization_details": details,
            })))
            .mount(&server)
            .await;
        let config = authed::OAuthConfig::builder(format!("{}/token", server.uri()))
            .client_id("c")
            .client_secret("s")
            .build()
            .unwrap();
        let e = config
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::MalformedResponse { .. }),
            "{details}: {e:?}"
        );
    }
}
