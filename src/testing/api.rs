//! The protected API behind the in-process provider: everything under `/api/`.

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
    if !uri.path().starts_with("/api/") {
        return StatusCode::NOT_FOUND.into_response();
    }
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
    let issued = presented.and_then(|t| state.lock().access.get(t).cloned());
    match issued {
        Some(issued) if issued.expires > Instant::now() => axum::Json(json!({
            "path": uri.path(),
            "client_id": issued.client_id,
            "message": "hello from the protected API",
        }))
        .into_response(),
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
