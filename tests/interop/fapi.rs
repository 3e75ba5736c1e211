//! Modern authorization requests against oidc-provider in its FAPI 2.0 profile
//! (interop/fapi.mjs): pushed authorization requests (required), `private_key_jwt` with PS256,
//! DPoP with nonces (at PAR too), rich authorization requests with a `payment_initiation`
//! type, step-up through `acr_values` and a resource that asks for it (RFC 9470), signed
//! request objects and JWT-secured responses (FAPI 2.0 Message Signing), and the negative
//! cases each spec names: a replayed `request_uri`, forged JARM responses, a step-up answer.

use super::*;
use authed::{
    AuthorizationDetail, Callback, CallbackError, Fapi2, FapiDuty, IdTokenError, SigningAlgorithm,
    SigningKey,
};
use serde_json::json;

const FAPI_ID: &str = "authed-fapi";
const REDIRECT: &str = "https://client.authed.example/callback";
const SCOPES: [&str; 3] = ["openid", "offline_access", "api:read"];
const LOA2: &str = "urn:authed:loa:2";

fn start() -> Server {
    Server::start_script("fapi.mjs", &[])
}

fn rsa_key() -> SigningKey {
    SigningKey::from_pem(include_bytes!("../support/keys/rsa_pkcs8.pem"))
        .unwrap()
        .with_kid("authed-fapi-rsa")
}

/// A configuration for `client` by discovery, meeting the FAPI 2.0 client duties.
async fn fapi_config(server: &Server, client: &str, profile: Fapi2) -> OAuthConfig {
    OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(client)
        .private_key(rsa_key())
        .dpop(SigningAlgorithm::ES256)
        .fapi2(profile)
        .build()
        .unwrap()
}

/// What the browser brings back: the redirect's query, or the form it POSTs (form_post
/// modes), encoded as a form.
struct Arrival(String);

impl Arrival {
    fn callback(&self) -> Callback {
        Callback::from_form_post(&self.0)
    }

    fn param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.0.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// Follows the provider's redirects with cookies until the browser is sent to REDIRECT,
/// by a redirect or an auto-submitting form. `Err` with the provider's error page when it
/// refuses the request instead.
async fn browse(authorize_url: &str) -> Result<Arrival, Value> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut next = url::Url::parse(authorize_url).unwrap();
    for _ in 0..10 {
        let response = http.get(next.clone()).send().await.unwrap();
        if let Some(location) = response.headers().get(reqwest::header::LOCATION) {
            next = next.join(location.to_str().unwrap()).unwrap();
            if next.as_str().starts_with(REDIRECT) {
                return Ok(Arrival(next.query().unwrap_or("").to_owned()));
            }
            continue;
        }
        let text = response.text().await.unwrap();
        if text.contains(&format!("action=\"{REDIRECT}\"")) {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for input in text.split("<input").skip(1) {
                let attr = |name: &str| {
                    let start = input.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                    let len = input[start..].find('"').unwrap();
                    input[start..start + len]
                        .replace("&quot;", "\"")
                        .replace("&amp;", "&")
                };
                form.append_pair(&attr("name"), &attr("value"));
            }
            return Ok(Arrival(form.finish()));
        }
        return Err(serde_json::from_str(&text).unwrap_or(Value::String(text)));
    }
    panic!("too many redirects");
}

async fn counts(server: &Server) -> Value {
    server_counts(server).await
}

fn api(server: &Server, source: Arc<dyn TokenSource>) -> AuthedClient {
    AuthedClient::builder(source)
        .base_url(server.url("/api/"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_fapi_sign_in_is_pushed_with_private_key_jwt_and_dpop_and_its_tokens_work() {
    let server = start();
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    assert!(config.endpoints().require_pushed_authorization_requests);
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let front: Vec<String> = url::Url::parse(pending.url())
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(front, ["client_id", "request_uri"]);
    assert!(pending.request_expires_at().is_some());
    let arrival = browse(pending.url()).await.unwrap();
    assert_eq!(
        arrival.param("iss").as_deref(),
        Some(server.issuer.as_str())
    );
    let login = Arc::new(flow.complete(pending, &arrival.callback()).await.unwrap());
    let token = login.current().unwrap();
    assert_eq!(token.token_type(), "DPoP");
    assert_eq!(login.id_token_claims().unwrap().sub(), "alice");
    // The server demands a DPoP nonce at PAR too: one use_dpop_nonce, one retry with it.
    assert_eq!(counts(&server).await["par"], 2);

    let client = api(&server, login.clone());
    let body: Value = client
        .get("resource")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["client_id"], FAPI_ID);

    // A refresh, through the same private_key_jwt and DPoP key.
    let fresh = login.token_rejected(&token).await.unwrap();
    assert_ne!(fresh.access_token().secret(), token.access_token().secret());
    let body: Value = client
        .get("resource")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sub"], "alice");
}

#[tokio::test]
async fn a_replayed_request_uri_is_refused_and_the_sign_in_completes_once() {
    let server = start();
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let copy: authed::PendingAuthorization =
        serde_json::from_value(serde_json::to_value(&pending).unwrap()).unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    let replay = browse(pending.url()).await.err().expect("a refusal");
    assert_eq!(replay["error"], "invalid_request_uri", "{replay}");
    flow.complete(pending, &arrival.callback()).await.unwrap();
    let tokens = counts(&server).await["token"].clone();
    let e = flow.complete(copy, &arrival.callback()).await.unwrap_err();
    assert!(
        matches!(e, Error::Callback(CallbackError::AlreadyCompleted)),
        "{e:?}"
    );
    assert_eq!(counts(&server).await["token"], tokens);
}

#[tokio::test]
async fn the_fapi_duties_are_checked_before_anything_is_sent() {
    let server = start();
    let bearer = OAuthConfig::discover(&server.issuer)
        .await
        .unwrap()
        .client_id(FAPI_ID)
        .private_key(rsa_key())
        .fapi2(Fapi2::SecurityProfile)
        .build();
    assert!(matches!(
        bearer,
        Err(Error::Fapi(FapiDuty::SenderConstrainedTokens))
    ));
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    let e = config
        .authorization_code("http://127.0.0.1:9/callback")
        .build()
        .unwrap_err();
    assert!(
        matches!(e, Error::Fapi(FapiDuty::HttpsRedirectUri)),
        "{e:?}"
    );
    assert_eq!(counts(&server).await["par"], 0);
}

fn payment(amount: &str) -> AuthorizationDetail {
    AuthorizationDetail::new("payment_initiation")
        .with_actions(["initiate"])
        .with_locations(["https://api.authed.example/"])
        .with_field(
            "instructedAmount",
            json!({"currency": "EUR", "amount": amount}),
        )
        .with_field("creditorName", json!("Merchant A"))
}

#[tokio::test]
async fn rich_authorization_details_are_pushed_granted_read_back_and_narrowed_on_refresh() {
    let server = start();
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .authorization_details([payment("123.50")])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    let login = Arc::new(flow.complete(pending, &arrival.callback()).await.unwrap());
    let token = login.current().unwrap();
    let granted = token.authorization_details().unwrap();
    assert_eq!(granted, vec![payment("123.50")]);
    let body: Value = api(&server, login.clone())
        .get("resource")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["authorization_details"][0]["instructedAmount"]["amount"],
        "123.50"
    );

    // A refresh asking for a detail of a granted type gets it; another type is refused.
    let narrowed = config
        .refresh_token_source()
        .authorization_details([payment("10.00")])
        .from_token((*token).clone())
        .await
        .unwrap();
    let fresh = narrowed.token_rejected(&token).await.unwrap();
    assert_eq!(
        fresh.authorization_details().unwrap(),
        vec![payment("10.00")]
    );
    let other = config
        .refresh_token_source()
        .authorization_details([AuthorizationDetail::new("account_information")])
        .from_token((*fresh).clone())
        .await
        .unwrap();
    let e = other.token_rejected(&fresh).await.unwrap_err();
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("invalid_authorization_details"),
        "{e:?}"
    );

    // A detail the server's type rejects is refused at PAR: nothing reaches a browser.
    let bad = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .authorization_details([AuthorizationDetail::new("payment_initiation")])
        .build()
        .unwrap();
    let e = bad.authorize().await.unwrap_err();
    assert_eq!(
        e.oauth_error().map(|o| o.error.as_str()),
        Some("invalid_authorization_details"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_step_up_answer_is_a_typed_error_and_the_new_sign_in_reaches_the_level_asked() {
    let server = start();
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    let login = Arc::new(flow.complete(pending, &arrival.callback()).await.unwrap());
    let counting = Counting::new(login.clone());
    let client = api(&server, counting.clone());
    let tokens = counts(&server).await["token"].clone();

    let e = client.get("stepup").send().await.unwrap_err();
    let Error::StepUpRequired(step_up) = &e else {
        panic!("expected StepUpRequired, got {e:?}");
    };
    assert_eq!(step_up.acr_values(), [LOA2]);
    assert_eq!(step_up.max_age(), Some(Duration::from_secs(300)));
    assert_eq!(counting.rejected(), 0, "not reported as a rejected token");
    assert_eq!(counts(&server).await["token"], tokens, "no refresh");
    assert_eq!(counts(&server).await["step_up"], 1, "not sent again");

    let stepped = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .step_up(step_up)
        .build()
        .unwrap();
    let pending = stepped.authorize().await.unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    let login = Arc::new(
        stepped
            .complete(pending, &arrival.callback())
            .await
            .unwrap(),
    );
    assert_eq!(login.id_token_claims().unwrap().get("acr").unwrap(), LOA2);
    let body: Value = api(&server, login)
        .get("stepup")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["acr"], LOA2);

    // A user whose authentication is older than max_age: the ID token's auth_time says so.
    reqwest::Client::new()
        .post(server.url("/test/login-age?seconds=900"))
        .send()
        .await
        .unwrap();
    let pending = stepped.authorize().await.unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    let e = stepped
        .complete(pending, &arrival.callback())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::IdToken(IdTokenError::AuthTime)), "{e:?}");
}

#[tokio::test]
async fn a_form_post_response_is_read_from_the_posted_form() {
    let server = start();
    let config = fapi_config(&server, FAPI_ID, Fapi2::SecurityProfile).await;
    let flow = config
        .authorization_code(REDIRECT)
        .scopes(SCOPES)
        .response_mode(authed::ResponseMode::FormPost)
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let copy: authed::PendingAuthorization =
        serde_json::from_value(serde_json::to_value(&pending).unwrap()).unwrap();
    let arrival = browse(pending.url()).await.unwrap();
    assert!(arrival.param("code").is_some() && arrival.param("iss").is_some());
    // The strict parser: a second code in the form is refused before any request.
    let injected = Callback::from_form_post(format!("{}&code=injected", arrival.0));
    let e = flow.complete(copy, &injected).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Callback(CallbackError::DuplicateParameter("code"))
        ),
        "{e:?}"
    );
    let login = flow.complete(pending, &arrival.callback()).await.unwrap();
    assert_eq!(login.id_token_claims().unwrap().sub(), "alice");
}
