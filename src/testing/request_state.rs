//! The data behind the in-process provider's pushed and signed requests, response modes and
//! the authentication its user reaches: below `state`, which holds it.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::http::oauth_error;

/// How long a pushed request's `request_uri` lives by default (oidc-provider's default).
const REQUEST_URI_LIFETIME: Duration = Duration::from_secs(60);

/// The provider's state for requests, responses and the authentication achieved.
#[derive(Debug)]
pub(super) struct RequestState {
    /// Pushed requests by `request_uri`: removed on first use.
    pub(super) pushed: HashMap<String, Pushed>,
    pub(super) require_par: bool,
    pub(super) request_uri_lifetime: Duration,
    /// The effective parameters of every pushed request, in order.
    pub(super) pushed_requests: Vec<HashMap<String, String>>,
    /// The claims and header of every request object accepted.
    pub(super) request_objects: Vec<(Map<String, Value>, Map<String, Value>)>,
    /// The `authorization_details` types accepted; `None`: any.
    pub(super) detail_types: Option<Vec<String>>,
    /// The `acr` the user reaches; `None`: the first of `acr_values` asked for, if any.
    pub(super) acr: Option<String>,
    /// How long ago the user authenticated, for `auth_time`.
    pub(super) auth_age: Duration,
    /// The API's step-up rule: the `acr` it wants, and the `max_age` it names.
    pub(super) api_acr: Option<(String, Option<u64>)>,
    pub(super) jarm_forgery: Option<JarmForgery>,
}

impl Default for RequestState {
    fn default() -> Self {
        RequestState {
            pushed: HashMap::new(),
            require_par: false,
            request_uri_lifetime: REQUEST_URI_LIFETIME,
            pushed_requests: Vec::new(),
            request_objects: Vec::new(),
            detail_types: None,
            acr: None,
            auth_age: Duration::ZERO,
            api_acr: None,
            jarm_forgery: None,
        }
    }
}

#[derive(Debug)]
pub(super) struct Pushed {
    pub(super) client_id: String,
    pub(super) params: HashMap<String, String>,
    /// In the seconds of the provider's clock (`TestProvider::set_clock`).
    pub(super) expires: u64,
}

impl RequestState {
    /// RFC 9396 §5: an array of objects, each with a `type` the provider accepts.
    #[allow(clippy::result_large_err)] // a test server: the error is the response
    pub(super) fn check_details(&self, details: Option<&String>) -> Result<(), Response> {
        let Some(details) = details else {
            return Ok(());
        };
        let refuse = |why: &str| Err(bad_request("invalid_authorization_details", why));
        let Ok(Value::Array(entries)) = serde_json::from_str::<Value>(details) else {
            return refuse("authorization_details is not a JSON array");
        };
        for entry in &entries {
            let Some(kind) = entry.get("type").and_then(Value::as_str) else {
                return refuse("an authorization detail has no type");
            };
            if self
                .detail_types
                .as_ref()
                .is_some_and(|types| !types.iter().any(|t| t == kind))
            {
                return refuse("unsupported authorization details type");
            }
        }
        Ok(())
    }

    /// The details a token request gets (RFC 9396 §6, §7): those it asks for, when each of their
    /// types was granted; else all granted.
    #[allow(clippy::result_large_err)] // a test server: the error is the response
    pub(super) fn granted_details(
        &self,
        granted: Option<&Value>,
        asked: Option<&String>,
    ) -> Result<Option<Value>, Response> {
        let Some(asked) = asked else {
            return Ok(granted.cloned());
        };
        self.check_details(Some(asked))?;
        let asked: Value = serde_json::from_str(asked).unwrap_or(Value::Null);
        let types = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|d| d.get("type").and_then(Value::as_str).map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        // Without a grant (client credentials), what is asked is what the client may have.
        if let Some(granted) = granted {
            let allowed = types(Some(granted));
            if types(Some(&asked)).iter().any(|t| !allowed.contains(t)) {
                return Err(bad_request(
                    "invalid_authorization_details",
                    "authorization_details asks for more than was granted",
                ));
            }
        }
        Ok(Some(asked))
    }

    /// The accepted `authorization_details` types, for the metadata (empty: any).
    pub(super) fn detail_types(&self) -> Vec<String> {
        self.detail_types.clone().unwrap_or_default()
    }
}

/// A way for `TestProvider` to forge its JWT-secured authorization responses (JARM), to
/// test that they are refused (`TestProvider::set_jarm_forgery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JarmForgery {
    /// Signed by another key, under the published key's `kid`.
    BadSignature,
    /// `iss` is another issuer (the real one plus `/`).
    WrongIssuer,
    /// `aud` is another client.
    WrongAudience,
    /// `exp` two minutes ago (beyond the 60 s skew).
    Expired,
    /// A five-part compact JWE, as an encrypted response is.
    Encrypted,
}

/// An OAuth error page with status 400.
pub(super) fn bad_request(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}
