//! How the in-process provider takes authorization requests beyond the plain query: pushed
//! (PAR, RFC 9126, at `/par`), as signed request objects (JAR, RFC 9101, by value or
//! pushed), with rich authorization details (RFC 9396) and `acr_values` / `max_age`; and the
//! switches tests set for them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::dpop;
use super::http::{parse_form, random_token};
use super::request_state::{Pushed, bad_request};
use super::state::{Inner, ProviderState, TestProvider};
use super::token_endpoint::authenticate;

/// The parameters a client may not push: client authentication's, and a `request_uri`.
const NOT_REQUEST_PARAMETERS: [&str; 4] = [
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "request_uri",
];

impl TestProvider {
    /// The pushed authorization request endpoint (RFC 9126, `/par`): authenticates the
    /// client as the token endpoint does (a DPoP proof binds the code to its key), takes
    /// the parameters or a signed `request` object, and answers `201` with a single-use
    /// `request_uri` that `/authorize` accepts once, within its `expires_in` (60 seconds by
    /// default, on the provider's [clock](Self::set_clock)).
    pub fn par_url(&self) -> String {
        format!("{}/par", self.base_url())
    }

    /// Makes `/authorize` refuse requests that were not pushed (and the metadata say
    /// `require_pushed_authorization_requests`). Default off.
    pub fn set_require_pushed_authorization_requests(&self, on: bool) {
        self.with(|i| i.requests.require_par = on);
    }

    /// The `expires_in` of pushed requests. Default 60 seconds.
    pub fn set_request_uri_lifetime(&self, lifetime: Duration) {
        self.with(|i| i.requests.request_uri_lifetime = lifetime);
    }

    /// The parameters of every pushed authorization request (from a request object's claims
    /// when it carried one), in order.
    pub fn pushed_requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| i.requests.pushed_requests.clone())
    }

    /// The header and claims of every request object (JAR) the provider accepted, in order.
    /// Request objects are verified with the keys registered by
    /// [`register_client_key`](Self::register_client_key): `typ` `oauth-authz-req+jwt`,
    /// `iss` the client, `aud` the issuer, `exp` and a fresh `jti`.
    pub fn request_objects(&self) -> Vec<(Map<String, Value>, Map<String, Value>)> {
        self.with(|i| i.requests.request_objects.clone())
    }

    /// The `authorization_details` types the provider accepts (RFC 9396 §5: others are
    /// `invalid_authorization_details`). Default: any type.
    pub fn set_authorization_details_types<I, S>(&self, types: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let types = types.into_iter().map(Into::into).collect();
        self.with(|i| i.requests.detail_types = Some(types));
    }

    /// The authentication context class the user reaches at the next sign-ins (the ID
    /// token's `acr`). Default `None`: the first of the `acr_values` asked for, and no `acr`
    /// when none were.
    pub fn set_user_acr(&self, acr: Option<&str>) {
        self.with(|i| i.requests.acr = acr.map(str::to_owned));
    }

    /// How long ago the user authenticated at the next sign-ins (the ID token's
    /// `auth_time`). Default: just now.
    pub fn set_user_authenticated_ago(&self, age: Duration) {
        self.with(|i| i.requests.auth_age = age);
    }

    /// Makes the protected API ask for a step-up (RFC 9470): a token from a sign-in whose
    /// `acr` is not `acr` gets `401` with `WWW-Authenticate: Bearer
    /// error="insufficient_user_authentication", acr_values="<acr>"` (and `max_age` when
    /// given). `None` (the default) turns it off.
    pub fn set_api_required_acr(&self, acr: Option<&str>, max_age: Option<Duration>) {
        let rule = acr.map(|a| (a.to_owned(), max_age.map(|m| m.as_secs())));
        self.with(|i| i.requests.api_acr = rule);
    }
}

pub(super) async fn par_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    let client_id = match authenticate(&mut inner, &headers, &form, "/par") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let jkt = match dpop::endpoint_request(&mut inner, &headers, "/par") {
        Ok(jkt) => jkt,
        Err(resp) => return resp,
    };
    if form.contains_key("request_uri") {
        return bad_request(
            "invalid_request",
            "request_uri is not allowed at the PAR endpoint",
        );
    }
    let mut params = match form.get("request") {
        Some(jwt) => match request_object(&mut inner, jwt, &client_id) {
            Ok(params) => params,
            Err(resp) => return resp,
        },
        None => form
            .into_iter()
            .filter(|(k, _)| !NOT_REQUEST_PARAMETERS.contains(&k.as_str()))
            .collect(),
    };
    if params.get("client_id").is_some_and(|id| *id != client_id) {
        return bad_request(
            "invalid_request",
            "client_id is not the authenticated client",
        );
    }
    params.insert("client_id".to_owned(), client_id.clone());
    // RFC 9449 §10.1: the proof binds the code, as dpop_jkt would; both must agree.
    if let Some(jkt) = jkt {
        if params.get("dpop_jkt").is_some_and(|j| *j != jkt) {
            return bad_request("invalid_request", "dpop_jkt is not the proof's key");
        }
        params.insert("dpop_jkt".to_owned(), jkt);
    }
    if let Err(resp) = inner
        .requests
        .check_details(params.get("authorization_details"))
    {
        return resp;
    }
    let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token(""));
    let lifetime = inner.requests.request_uri_lifetime;
    let expires = inner.assertions.now() + lifetime.as_secs();
    inner.requests.pushed_requests.push(params.clone());
    inner.requests.pushed.insert(
        request_uri.clone(),
        Pushed {
            client_id,
            params,
            expires,
        },
    );
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(json!({"request_uri": request_uri, "expires_in": lifetime.as_secs()})),
    )
        .into_response();
    dpop::add_nonce(&inner, &mut resp);
    resp
}

/// The parameters `/authorize` acts on: a pushed request's (once, unexpired), a request
/// object's, or the query's. A refusal is an error page, not a redirect: the redirect URI
/// is not known to be the client's.
#[allow(clippy::result_large_err)] // a test server: the error is the response
pub(super) fn resolve(
    inner: &mut Inner,
    query: HashMap<String, String>,
) -> Result<HashMap<String, String>, Response> {
    let client_id = query.get("client_id").cloned().unwrap_or_default();
    if let Some(uri) = query.get("request_uri") {
        let now = inner.assertions.now();
        return match inner.requests.pushed.remove(uri) {
            Some(p) if p.expires > now && p.client_id == client_id => Ok(p.params),
            _ => Err(bad_request(
                "invalid_request_uri",
                "the request_uri is unknown, used, expired or another client's",
            )),
        };
    }
    if inner.requests.require_par {
        return Err(bad_request(
            "invalid_request",
            "pushed authorization requests are required",
        ));
    }
    let params = match query.get("request") {
        Some(jwt) => {
            let mut params = request_object(inner, jwt, &client_id)?;
            params.insert("client_id".to_owned(), client_id);
            params
        }
        None => query,
    };
    inner
        .requests
        .check_details(params.get("authorization_details"))?;
    Ok(params)
}

/// A request object's claims as parameters, once verified (RFC 9101 §6): signed by a key of
/// `client_id`, `typ` `oauth-authz-req+jwt`, `iss` the client, `aud` the issuer, unexpired,
/// a fresh `jti`, and no `request` or `request_uri` inside.
#[allow(clippy::result_large_err)] // as `resolve`
fn request_object(
    inner: &mut Inner,
    jwt: &str,
    client_id: &str,
) -> Result<HashMap<String, String>, Response> {
    use base64::Engine as _;
    let refuse = |why: &str| Err(bad_request("invalid_request_object", why));
    let header: Map<String, Value> = jwt
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if header.get("typ").and_then(Value::as_str) != Some("oauth-authz-req+jwt") {
        return refuse("typ is not oauth-authz-req+jwt");
    }
    let issuer = inner.issuer.clone();
    let claims = match inner.assertions.check(jwt, &[issuer]) {
        Ok(claims) => claims,
        Err(why) => return refuse(&why),
    };
    if claims.get("iss").and_then(Value::as_str) != Some(client_id)
        || claims.get("client_id").and_then(Value::as_str) != Some(client_id)
    {
        return refuse("iss and client_id are not the client");
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return refuse("a request object holds no request or request_uri");
    }
    inner
        .requests
        .request_objects
        .push((header, claims.clone()));
    const REGISTERED: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];
    Ok(claims
        .into_iter()
        .filter(|(k, _)| !REGISTERED.contains(&k.as_str()))
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// The `acr` and `auth_time` of a sign-in that asked for `acr_values` (if any).
pub(super) fn authentication(inner: &Inner, acr_values: Option<&String>) -> (Option<String>, u64) {
    let acr = inner.requests.acr.clone().or_else(|| {
        acr_values
            .and_then(|v| v.split(' ').find(|a| !a.is_empty()))
            .map(str::to_owned)
    });
    let auth_time = inner
        .assertions
        .now()
        .saturating_sub(inner.requests.auth_age.as_secs());
    (acr, auth_time)
}

/// The API's step-up challenge for a token whose sign-in reached `acr`, when the API's rule
/// wants another.
pub(super) fn step_up_challenge(inner: &Inner, acr: Option<&str>) -> Option<String> {
    let (wanted, max_age) = inner.requests.api_acr.as_ref()?;
    if acr == Some(wanted.as_str()) {
        return None;
    }
    let mut challenge = format!(
        "Bearer error=\"insufficient_user_authentication\", error_description=\"a stronger \
         authentication is required\", acr_values=\"{wanted}\""
    );
    if let Some(max_age) = max_age {
        challenge.push_str(&format!(", max_age=\"{max_age}\""));
    }
    Some(challenge)
}
