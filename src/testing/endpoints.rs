//! The in-process provider's other endpoints: authorization (a user who approves at once),
//! discovery metadata, device authorization and revocation (RFC 7009).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_registry;
use super::http::{all_values, is_resource, parse_form, random_token};
use super::state::{CodeGrant, ProviderState, TestProvider};
use super::token_endpoint::authenticate;

/// Plays the user: approves at once (or refuses when told to) and redirects back.
pub(super) async fn authorize_endpoint(
    State(state): State<Arc<ProviderState>>,
    uri: Uri,
) -> Response {
    let query: HashMap<String, String> = parse_form(uri.query().unwrap_or("").as_bytes());
    let mut inner = state.lock();
    inner.authorize_requests.push(query.clone());
    let field = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
    let registered = inner.oidc.registered.get(field("client_id"));
    let known_client = registered.is_some()
        || [TestProvider::CLIENT_ID, TestProvider::PUBLIC_CLIENT_ID].contains(&field("client_id"));
    let Ok(mut redirect) = url::Url::parse(field("redirect_uri")) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    if !known_client {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    if registered.is_some_and(|r| !r.redirect_uris.iter().any(|u| u == field("redirect_uri"))) {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not registered").into_response();
    }
    // RFC 8707 §2: each `resource` an absolute URI without a fragment.
    let resources = all_values(uri.query().unwrap_or(""), "resource");
    let error = if field("response_type") != "code" {
        Some((
            "unsupported_response_type".to_owned(),
            "only code".to_owned(),
        ))
    } else if field("code_challenge_method") != "S256" || field("code_challenge").is_empty() {
        Some((
            "invalid_request".to_owned(),
            "PKCE with S256 is required".to_owned(),
        ))
    } else if let Some(bad) = resources.iter().find(|r| !is_resource(r)) {
        Some((
            "invalid_target".to_owned(),
            format!("{bad:?} is not an absolute URI without a fragment"),
        ))
    } else {
        inner.authorize_error.clone()
    };
    {
        let mut q = redirect.query_pairs_mut();
        match error {
            Some((error, description)) => {
                q.append_pair("error", &error)
                    .append_pair("error_description", &description);
            }
            None => {
                let code = random_token("code-");
                let subject = inner.subject.clone();
                inner.codes.insert(
                    code.clone(),
                    CodeGrant {
                        client_id: field("client_id").to_owned(),
                        redirect_uri: field("redirect_uri").to_owned(),
                        challenge: field("code_challenge").to_owned(),
                        used: false,
                        nonce: query.get("nonce").cloned(),
                        openid: field("scope").split(' ').any(|s| s == "openid"),
                        subject,
                        dpop_jkt: query.get("dpop_jkt").cloned(),
                        resources: resources.clone(),
                    },
                );
                q.append_pair("code", &code);
            }
        }
        if let Some(s) = query.get("state") {
            q.append_pair("state", s);
        }
        if inner.iss_parameter {
            q.append_pair("iss", &inner.issuer);
        }
    }
    (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response()
}

pub(super) async fn metadata_endpoint(State(state): State<Arc<ProviderState>>) -> Response {
    let inner = state.lock();
    let base = inner.issuer.clone();
    axum::Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "device_authorization_endpoint": format!("{base}/device_authorization"),
        "revocation_endpoint": format!("{base}/revoke"),
        "introspection_endpoint": format!("{base}/introspect"),
        "jwks_uri": format!("{base}/jwks"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "end_session_endpoint": format!("{base}/end_session"),
        "registration_endpoint": format!("{base}/register"),
        "authorization_response_iss_parameter_supported": inner.iss_parameter,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256", "EdDSA", "HS256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", client_registry::JWT_BEARER, client_registry::TOKEN_EXCHANGE],
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256", "RS256", "PS256"],
    }))
    .into_response()
}

pub(super) async fn device_authorization_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    if let Err(resp) = authenticate(&mut inner, &headers, &form, "/device_authorization") {
        return resp;
    }
    let device_code = random_token("dc-");
    let user_code = format!("U{}", &random_token("")[..7]).to_uppercase();
    inner.device_codes.insert(device_code.clone(), false);
    let verification_uri = format!("{}/device", inner.issuer);
    let mut response = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "expires_in": inner.device_expires_in,
    });
    if let Some(interval) = inner.device_interval {
        response["interval"] = json!(interval);
    }
    axum::Json(response).into_response()
}

pub(super) async fn revocation_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    if let Err(resp) = authenticate(&mut inner, &headers, &form, "/revoke") {
        return resp;
    }
    let token = form.get("token").cloned().unwrap_or_default();
    inner
        .revocations
        .push((token.clone(), form.get("token_type_hint").cloned()));
    inner.access.remove(&token);
    inner.refresh.remove(&token);
    StatusCode::OK.into_response()
}
