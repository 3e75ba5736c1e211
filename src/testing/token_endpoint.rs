//! The in-process provider's token endpoint: client authentication and every grant.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::assertions;
use super::dpop;
use super::dpop_server;
use super::http::{oauth_error, parse_form, random_token};
use super::id_token::id_token;
use super::state::{Inner, Issued, ProviderState, RefreshState, TestProvider};

/// The client id and secret from Basic (form-urlencoded, RFC 6749 §2.3.1) or the body.
pub(super) fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let unescape = |s: &str| -> String {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return Some((unescape(id), unescape(secret)));
    }
    Some((
        form.get("client_id")?.clone(),
        form.get("client_secret")?.clone(),
    ))
}

// A test server answering one request at a time: the size of its error type does not matter.
#[allow(clippy::result_large_err)]
/// The authenticated client's id: a confidential client with its secret or its assertion,
/// the public client with none, or nobody for a grant that needs no client.
pub(super) fn authenticate(
    inner: &mut Inner,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    path: &str,
) -> Result<String, Response> {
    if let Some(result) = assertions::client(inner, form, path) {
        return result;
    }
    let unauthenticated = !headers.contains_key(header::AUTHORIZATION);
    match client_credentials(headers, form) {
        Some((id, secret)) if inner.assertions.secret_matches(&id, &secret) => Ok(id),
        None if unauthenticated
            && form.get("client_id").is_some_and(|id| {
                id == TestProvider::PUBLIC_CLIENT_ID
                    || inner.oidc.registered.get(id).is_some_and(|r| r.public)
            }) =>
        {
            Ok(form.get("client_id").cloned().unwrap_or_default())
        }
        None if unauthenticated && assertions::anonymous_grant(form) => {
            Ok(form.get("client_id").cloned().unwrap_or_default())
        }
        _ => Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )),
    }
}

pub(super) fn invalid_grant(state: &ProviderState, description: &str) -> Response {
    state.invalid_grants.fetch_add(1, Ordering::SeqCst);
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// What a grant's request was found to carry: whether its response carries a refresh
/// token, the user, and the resources the grant covers.
#[derive(Debug, Default)]
pub(super) struct Granted {
    pub(super) refresh: bool,
    pub(super) subject: Option<String>,
    pub(super) resources: Vec<String>,
    /// The one resource the request asked for, checked against `resources`.
    pub(super) resource: Option<String>,
}

#[allow(clippy::result_large_err)] // as `authenticate`
/// Checks one grant's request and says what was granted.
pub(super) fn check_grant(
    state: &ProviderState,
    inner: &mut Inner,
    client_id: &str,
    form: &HashMap<String, String>,
    jkt: Option<&str>,
    asked: &[String],
) -> Result<Granted, Response> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    match field("grant_type") {
        "client_credentials" => Ok(Granted {
            refresh: inner.refresh_tokens_for_client_credentials,
            ..Granted::default()
        }),
        "refresh_token" => {
            let presented = field("refresh_token");
            inner.presented_refresh_tokens.push(presented.to_owned());
            let rotate = inner.rotate_refresh_tokens;
            let spend_first = inner.oidc.invalid_target_spends_refresh_token;
            match inner.refresh.get_mut(presented) {
                Some(rt)
                    if !rt.used
                        && rt.client_id == client_id
                        && rt.jkt.as_deref().is_none_or(|j| Some(j) == jkt) =>
                {
                    if spend_first {
                        rt.used = rotate;
                    }
                    // Checked before the refresh token is spent, unless told otherwise.
                    let resource = target(asked, &rt.resources)?;
                    rt.used = rotate;
                    Ok(Granted {
                        refresh: rotate,
                        subject: rt.subject.clone(),
                        resources: rt.resources.clone(),
                        resource,
                    })
                }
                _ => Err(invalid_grant(
                    state,
                    "refresh token is invalid, expired or already used",
                )),
            }
        }
        "authorization_code" => {
            let Some(grant) = inner.codes.get_mut(field("code")) else {
                return Err(invalid_grant(state, "unknown authorization code"));
            };
            let verifier = oauth2::PkceCodeVerifier::new(field("code_verifier").to_owned());
            let challenge = oauth2::PkceCodeChallenge::from_code_verifier_sha256(&verifier);
            if grant.used
                || grant.dpop_jkt.as_deref().is_some_and(|j| Some(j) != jkt)
                || grant.client_id != client_id
                || grant.redirect_uri != field("redirect_uri")
                || challenge.as_str() != grant.challenge
            {
                return Err(invalid_grant(
                    state,
                    "code spent, or client, redirect_uri or code_verifier do not match",
                ));
            }
            let resource = target(asked, &grant.resources)?;
            grant.used = true;
            Ok(Granted {
                refresh: true,
                subject: Some(grant.subject.clone()),
                resources: grant.resources.clone(),
                resource,
            })
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            inner.device_polls.push(tokio::time::Instant::now());
            match inner.device_codes.get_mut(field("device_code")) {
                Some(used) if !*used => {}
                _ => return Err(invalid_grant(state, "unknown or spent device code")),
            }
            if let Some(error) = inner.device_script.pop_front() {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    &error,
                    "scripted answer",
                ));
            }
            inner
                .device_codes
                .insert(field("device_code").to_owned(), true);
            Ok(Granted {
                refresh: true,
                subject: Some(inner.subject.clone()),
                ..Granted::default()
            })
        }
        _ => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unsupported grant type",
        )),
    }
}

#[allow(clippy::result_large_err)] // as `authenticate`
/// The token request's RFC 8707 `resource`: at most one (as oidc-provider), and one the grant
/// covers.
fn target(asked: &[String], covered: &[String]) -> Result<Option<String>, Response> {
    let invalid_target = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_target", why);
    match asked {
        [] => Ok(None),
        [one] if !super::http::is_resource(one) => Err(invalid_target(
            "a resource is an absolute URI without a fragment",
        )),
        [one] if covered.contains(one) => Ok(Some(one.clone())),
        [_] => Err(invalid_target("the grant does not cover this resource")),
        _ => Err(invalid_target(
            "only one resource per token request is supported",
        )),
    }
}

pub(super) async fn token_endpoint(
    State(state): State<Arc<ProviderState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.token_requests.fetch_add(1, Ordering::SeqCst);
    let (latency, failure) = {
        let i = state.lock();
        (i.latency, i.failure.clone())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some((status, content_type, body)) = failure {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
            .into_response();
    }
    let form = parse_form(&body);
    state.lock().token_forms.push(form.clone());
    let mut inner = state.lock();
    let client_id = match authenticate(&mut inner, &headers, &form, "/token") {
        Ok(id) => id,
        Err(resp) => return resp,
    };
    let jkt = match dpop::token_request(&mut inner, &headers) {
        Ok(jkt) => jkt,
        Err(resp) => return resp,
    };
    let extra = match assertions::grant(&mut inner, &form).transpose() {
        Ok(extra) => extra,
        Err(resp) => return resp,
    };
    let asked = super::http::all_values(&String::from_utf8_lossy(&body), "resource");
    let granted = match extra {
        Some(_) => Granted::default(),
        None => match check_grant(
            &state,
            &mut inner,
            &client_id,
            &form,
            jkt.as_deref(),
            &asked,
        ) {
            Ok(granted) => granted,
            Err(resp) => return resp,
        },
    };
    let resource = granted.resource.clone();
    let lifetime = inner.lifetime;
    let access = match &extra {
        Some(extra) => assertions::issue(&inner, extra, lifetime),
        None => random_token("at-"),
    };
    inner.access.insert(
        access.clone(),
        Issued {
            client_id: client_id.clone(),
            expires: Instant::now() + lifetime,
            jkt: jkt.clone(),
            scope: form.get("scope").cloned(),
            issued_at: SystemTime::now(),
            subject: granted.subject.clone(),
            resource: resource.clone(),
        },
    );
    let mut response = json!({
        "access_token": access,
        "token_type": dpop_server::token_type(jkt.as_deref()),
        "expires_in": lifetime.as_secs_f64(),
    });
    if let Some(scope) = form.get("scope") {
        response["scope"] = json!(scope);
    }
    let openid_grant = (form.get("grant_type").map(String::as_str) == Some("authorization_code"))
        .then(|| form.get("code").and_then(|c| inner.codes.get(c)).cloned())
        .flatten()
        .filter(|g| g.openid);
    if let Some(id_token) = openid_grant.and_then(|grant| id_token(&inner, &grant)) {
        inner
            .oidc
            .id_tokens
            .insert(id_token.clone(), client_id.clone());
        response["id_token"] = json!(id_token);
    }
    if let Some(extra) = &extra {
        assertions::finish(&inner, extra, &access, &mut response);
    }
    if granted.refresh {
        let rt = random_token("rt-");
        let public = client_id == TestProvider::PUBLIC_CLIENT_ID
            || inner
                .oidc
                .registered
                .get(&client_id)
                .is_some_and(|r| r.public);
        inner.refresh.insert(
            rt.clone(),
            RefreshState {
                jkt: jkt.filter(|_| public),
                client_id,
                used: false,
                subject: granted.subject,
                resources: granted.resources,
            },
        );
        response["refresh_token"] = json!(rt);
    }
    let mut response = axum::Json(response).into_response();
    dpop::add_nonce(&inner, &mut response);
    response
}
