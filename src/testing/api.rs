//! The protected APIs behind the in-process provider: everything under `/api/` (any token it
//! issued), and the resource servers under `/rs/<name>/` (only tokens issued for that
//! resource, RFC 8707).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::dpop;
use super::state::ProviderState;

pub(super) async fn api(
    State(state): State<Arc<ProviderState>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    // `/rs/<name>/...` is the resource server `<issuer>/rs/<name>`: it takes only the
    // tokens issued for it (their audience, RFC 8707).
    let audience = match uri.path().strip_prefix("/rs/") {
        Some(rest) => match rest.split_once('/') {
            Some((name, _)) if !name.is_empty() => Some(format!("/rs/{name}")),
            _ => return StatusCode::NOT_FOUND.into_response(),
        },
        None if uri.path().starts_with("/api/") => None,
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    state.api_requests.fetch_add(1, Ordering::SeqCst);
    let presented =
        match dpop::presented_token(&mut state.lock(), &headers, method.as_str(), uri.path()) {
            Ok(presented) => presented,
            Err(resp) => {
                state.api_rejections.fetch_add(1, Ordering::SeqCst);
                return resp;
            }
        };
    let presented = presented.as_deref();
    let (issued, issuer) = {
        let inner = state.lock();
        (
            presented.and_then(|t| inner.access.get(t).cloned()),
            inner.issuer.clone(),
        )
    };
    let audience = audience.map(|path| format!("{issuer}{path}"));
    let for_here = |resource: &Option<String>| audience.is_none() || *resource == audience;
    match issued {
        Some(issued) if issued.expires > Instant::now() && for_here(&issued.resource) => {
            axum::Json(json!({
                "path": uri.path(),
                "client_id": issued.client_id,
                "sub": issued.subject,
                "resource": issued.resource,
                "message": "hello from the protected API",
            }))
            .into_response()
        }
        _ => {
            state.api_rejections.fetch_add(1, Ordering::SeqCst);
            let challenge = if presented.is_some() {
                "Bearer error=\"invalid_token\", error_description=\"the access token is unknown, expired or revoked\""
            } else {
                "Bearer realm=\"api\""
            };
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "unauthorized",
            )
                .into_response()
        }
    }
}
