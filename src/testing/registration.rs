//! The in-process provider's dynamic client registration endpoint (RFC 7591): clients
//! registered here sign in, get tokens and log out like the built-in ones.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::http::{oauth_error, random_token};
use super::state::{ProviderState, Registered, TestProvider};

const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
];
const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
];

impl TestProvider {
    /// The registration endpoint (`registration_endpoint` in the metadata, RFC 7591). It
    /// checks what a strict provider checks: `redirect_uris` present for the
    /// `authorization_code` grant, each an absolute `https` URL, loopback `http`, or a
    /// private-use scheme, without a fragment (else `invalid_redirect_uri`);
    /// `token_endpoint_auth_method`, `grant_types` and `post_logout_redirect_uris` known and
    /// well-formed, `jwks` given for `private_key_jwt` (else `invalid_client_metadata`). It
    /// answers `201` with a new `client_id`, a `client_secret` for the secret-based methods
    /// (`client_secret_expires_at: 0`), a `registration_access_token` and
    /// `registration_client_uri` (RFC 7592), and the metadata with its defaults filled in.
    pub fn registration_url(&self) -> String {
        format!("{}/register", self.base_url())
    }

    /// Requires this initial access token (RFC 7591 §3) as a Bearer token on registration
    /// requests; `None` (the default) lets anyone register.
    pub fn set_registration_token(&self, token: Option<&str>) {
        self.with(|i| i.oidc.registration_token = token.map(str::to_owned));
    }

    /// The JSON body of every registration request received, in order.
    pub fn registrations(&self) -> Vec<Value> {
        self.with(|i| i.oidc.registrations.clone())
    }
}

fn uri_ok(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    url.fragment().is_none()
        && match url.scheme() {
            "https" => true,
            "http" => loopback,
            scheme => scheme.contains('.'),
        }
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}

pub(super) async fn registration_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.oidc.registrations.push(request.clone());
    if let Some(expected) = &inner.oidc.registration_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(expected.as_str()) {
            let mut resp = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "a valid initial access token is required",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            return resp;
        }
    }
    let Value::Object(mut meta) = request else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the request is not a JSON object",
        );
    };
    let invalid = |code: &str, why: &str| oauth_error(StatusCode::BAD_REQUEST, code, why);
    let grant_types = match meta.get("grant_types") {
        None => vec!["authorization_code".to_owned()],
        value => match strings(value) {
            Some(g) if g.iter().all(|g| GRANT_TYPES.contains(&g.as_str())) => g,
            _ => {
                return invalid(
                    "invalid_client_metadata",
                    "grant_types has an unknown value",
                );
            }
        },
    };
    let redirect_uris = match meta.get("redirect_uris") {
        None => Vec::new(),
        value => match strings(value) {
            Some(uris) if uris.iter().all(|u| uri_ok(u)) => uris,
            _ => return invalid("invalid_redirect_uri", "a redirect URI is not acceptable"),
        },
    };
    if redirect_uris.is_empty() && grant_types.iter().any(|g| g == "authorization_code") {
        return invalid(
            "invalid_redirect_uri",
            "redirect_uris is required for authorization_code",
        );
    }
    let post_logout = match meta.get("post_logout_redirect_uris") {
        None => Vec::new(),
        value => match strings(value) {
            Some(uris) if uris.iter().all(|u| uri_ok(u)) => uris,
            _ => {
                return invalid(
                    "invalid_client_metadata",
                    "post_logout_redirect_uris has an unacceptable URI",
                );
            }
        },
    };
    let method = match meta.get("token_endpoint_auth_method") {
        None => "client_secret_basic".to_owned(),
        Some(Value::String(m)) if AUTH_METHODS.contains(&m.as_str()) => m.clone(),
        Some(_) => {
            return invalid(
                "invalid_client_metadata",
                "token_endpoint_auth_method is not supported",
            );
        }
    };
    let jwks = meta.get("jwks").cloned();
    if method == "private_key_jwt" && !matches!(jwks, Some(Value::Object(_))) {
        return invalid("invalid_client_metadata", "private_key_jwt needs jwks");
    }
    let client_id = random_token("dyn-");
    let secret = matches!(
        method.as_str(),
        "client_secret_basic" | "client_secret_post" | "client_secret_jwt"
    )
    .then(|| random_token("dyn-secret-"));
    match (&secret, jwks) {
        (Some(secret), _) => inner.assertions.register_secret(&client_id, secret),
        (None, Some(jwks)) if method == "private_key_jwt" => {
            inner.assertions.register_key(&client_id, jwks);
        }
        _ => {}
    }
    inner.oidc.registered.insert(
        client_id.clone(),
        Registered {
            redirect_uris: redirect_uris.clone(),
            post_logout_redirect_uris: post_logout,
            public: method == "none",
        },
    );
    let mut answer = Map::new();
    answer.append(&mut meta);
    answer.insert("client_id".into(), json!(client_id));
    answer.insert("client_id_issued_at".into(), json!(1_700_000_000));
    if let Some(secret) = secret {
        answer.insert("client_secret".into(), json!(secret));
        answer.insert("client_secret_expires_at".into(), json!(0));
    }
    answer.insert("token_endpoint_auth_method".into(), json!(method));
    answer.insert("grant_types".into(), json!(grant_types));
    answer.insert("redirect_uris".into(), json!(redirect_uris));
    answer.insert(
        "registration_access_token".into(),
        json!(random_token("reg-")),
    );
    answer.insert(
        "registration_client_uri".into(),
        json!(format!("{}/register/{client_id}", inner.issuer)),
    );
    (StatusCode::CREATED, axum::Json(Value::Object(answer))).into_response()
}
