//! The test provider's introspection endpoint (RFC 7662).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::http::{oauth_error, parse_form};
use super::state::{ProviderState, TestProvider};
use super::token_endpoint::authenticate;

/// Answers for the tokens this provider issued: active with their claims while they are
/// live, `{"active": false}` once expired, revoked, rotated or never issued. RFC 7662 §2.1
/// requires the caller to be authorized: only the confidential client is.
pub(super) async fn introspection_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    let mut inner = state.lock();
    match authenticate(&mut inner, &headers, &form, "/introspect") {
        Ok(id) if id == TestProvider::CLIENT_ID => {}
        Ok(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "a public client may not introspect",
            );
        }
        Err(resp) => return resp,
    }
    let token = form.get("token").map(String::as_str).unwrap_or("");
    let seconds = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    if let Some(issued) = inner.access.get(token)
        && let Some(left) = issued
            .expires
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    {
        let mut answer = json!({
            "active": true,
            "client_id": issued.client_id,
            "token_type": super::dpop_server::token_type(issued.jkt.as_deref()),
            "iss": inner.issuer,
            "iat": seconds(issued.issued_at),
            "exp": seconds(SystemTime::now() + left),
        });
        if let Some(scope) = &issued.scope {
            answer["scope"] = json!(scope);
        }
        if let Some(jkt) = &issued.jkt {
            // RFC 9449 §6.2: a DPoP-bound token names its key's thumbprint.
            answer["cnf"] = json!({ "jkt": jkt });
        }
        return axum::Json(answer).into_response();
    }
    if let Some(refresh) = inner.refresh.get(token).filter(|r| !r.used) {
        return axum::Json(json!({
            "active": true,
            "client_id": refresh.client_id,
            "iss": inner.issuer,
        }))
        .into_response();
    }
    axum::Json(json!({"active": false})).into_response()
}
