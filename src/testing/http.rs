//! How the in-process provider answers over HTTP: OAuth errors, forms, random tokens.

use std::collections::HashMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", oauth2::CsrfToken::new_random().secret())
}

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"token\""),
        );
    }
    resp
}

pub(super) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

/// Every value of parameter `name` in a query or form (RFC 8707 repeats `resource`).
pub(super) fn all_values(query: &str, name: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// An RFC 8707 resource indicator: an absolute URI without a fragment.
pub(super) fn is_resource(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| u.fragment().is_none())
}
