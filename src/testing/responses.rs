//! How the in-process provider returns an authorization response, by `response_mode`: a
//! redirect with the parameters in the query, a form the browser POSTs (`form_post`), or one
//! signed JWT (JARM: `jwt`, `query.jwt`, `form_post.jwt`), good or forged as tests ask; and
//! [`TestProvider::browse`], which plays the browser.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::id_token::{sign_with, signing_key};
use super::request_state::JarmForgery;
use super::state::{Inner, TestProvider};
use crate::source::Callback;

/// How long a JARM response is valid.
const JARM_LIFETIME: u64 = 60;

/// Where [`TestProvider::browse`] ended: what the browser was sent back with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Browsed {
    /// A redirect to the redirect URI with the response in its query.
    Redirect(String),
    /// A form the browser POSTs to `action` (the redirect URI) with `body`
    /// (`application/x-www-form-urlencoded`): the `form_post` modes.
    FormPost {
        /// The redirect URI.
        action: String,
        /// The form, encoded as the browser sends it.
        body: String,
    },
    /// An error page: the provider did not send the browser back (an unknown or reused
    /// `request_uri`, a bad request object).
    Refused {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code of the page.
        error: String,
    },
}

impl Browsed {
    /// The callback this response makes, as the app's handler would read it.
    ///
    /// # Panics
    ///
    /// For [`Browsed::Refused`]: no callback arrives.
    pub fn callback(&self) -> Callback {
        match self {
            Browsed::Redirect(url) => Callback::from_url(url).expect("a redirect URL"),
            Browsed::FormPost { body, .. } => Callback::from_form_post(body),
            Browsed::Refused { status, error } => {
                panic!("the provider refused the request ({status} {error}); no callback")
            }
        }
    }
}

impl TestProvider {
    /// Forges JWT-secured authorization responses this way from now on; `None` (the
    /// default) signs good ones.
    pub fn set_jarm_forgery(&self, forgery: Option<JarmForgery>) {
        self.with(|i| i.requests.jarm_forgery = forgery);
    }

    /// Plays the user's browser: opens `authorization_url` (a
    /// [`PendingAuthorization::url`](crate::PendingAuthorization::url)), where the
    /// provider's user approves at once, and returns what the browser was sent back with.
    ///
    /// # Panics
    ///
    /// When the provider cannot be reached or answers something else than a redirect, a
    /// form or an OAuth error page.
    pub async fn browse(&self, authorization_url: &str) -> Browsed {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let resp = http
            .get(authorization_url)
            .send()
            .await
            .expect("the provider answers");
        let status = resp.status().as_u16();
        if status == 302 {
            let location = resp.headers()[header::LOCATION].to_str().expect("ASCII");
            return Browsed::Redirect(location.to_owned());
        }
        let text = resp.text().await.expect("a body");
        if status == 200 {
            return read_form_page(&text).expect("an auto-submitting form");
        }
        let error: Value = serde_json::from_str(&text).expect("an OAuth error page");
        Browsed::Refused {
            status,
            error: error["error"].as_str().unwrap_or("").to_owned(),
        }
    }
}

/// The authorization response to `redirect` with `params`, as `mode` says.
pub(super) fn respond(
    inner: &Inner,
    mut redirect: url::Url,
    params: Vec<(String, String)>,
    mode: &str,
    client_id: &str,
) -> Response {
    let params = match mode {
        "jwt" | "query.jwt" | "form_post.jwt" => {
            vec![("response".to_owned(), jarm(inner, &params, client_id))]
        }
        _ => params,
    };
    if mode.starts_with("form_post") {
        return form_page(redirect.as_str(), &params);
    }
    redirect.query_pairs_mut().extend_pairs(params);
    (
        StatusCode::FOUND,
        [(header::LOCATION, redirect.to_string())],
    )
        .into_response()
}

/// The response modes `/authorize` serves.
pub(super) const RESPONSE_MODES: [&str; 5] =
    ["query", "form_post", "jwt", "query.jwt", "form_post.jwt"];

/// The response JWT (JARM §2.1): `iss`, `aud`, `exp` and the response's parameters, signed
/// with the key that signs ID tokens; or forged as told.
fn jarm(inner: &Inner, params: &[(String, String)], client_id: &str) -> String {
    crate::jose::install_crypto_provider();
    let now = inner.assertions.now();
    let mut claims: Map<String, Value> = params
        .iter()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    claims.insert("iss".into(), json!(inner.issuer));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("exp".into(), json!(now + JARM_LIFETIME));
    let forgery = inner.requests.jarm_forgery;
    match forgery {
        Some(JarmForgery::WrongIssuer) => {
            claims.insert("iss".into(), json!(format!("{}/", inner.issuer)));
        }
        Some(JarmForgery::WrongAudience) => {
            claims.insert("aud".into(), json!("another-client"));
        }
        Some(JarmForgery::Expired) => {
            claims.insert("exp".into(), json!(now - 120));
        }
        _ => {}
    }
    let key = signing_key(inner);
    let kid = key.kid().unwrap_or_default().to_owned();
    if forgery == Some(JarmForgery::Encrypted) {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let header = json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": kid});
        return format!(
            "{}.{}.{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(b"key"),
            b64(b"iv"),
            b64(b"ciphertext"),
            b64(b"tag")
        );
    }
    let claims = serde_json::Value::Object(claims);
    if forgery == Some(JarmForgery::BadSignature) {
        // Another key of the same algorithm under the published key's kid.
        let other = crate::SigningKey::generate(key.algorithm())
            .expect("the OS random number generator works")
            .with_kid(kid);
        return sign_with(&other, &claims);
    }
    sign_with(&key, &claims)
}

/// An auto-submitting form that POSTs `params` to `action` (Form Post Response Mode §2).
fn form_page(action: &str, params: &[(String, String)]) -> Response {
    let mut inputs = String::new();
    for (k, v) in params {
        inputs.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(k),
            escape(v)
        ));
    }
    let page = format!(
        "<!DOCTYPE html><html><head><title>Submit This Form</title></head>\
         <body onload=\"document.forms[0].submit()\"><form method=\"post\" \
         action=\"{}\">{inputs}</form></body></html>",
        escape(action)
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The action and encoded fields of a page [`form_page`] made.
fn read_form_page(page: &str) -> Option<Browsed> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let len = tag.get(start..)?.find('"')?;
        tag.get(start..start + len).map(unescape)
    };
    let form_start = page.find("<form")?;
    let form_tag = page.get(form_start..)?.split('>').next()?;
    let action = attr(form_tag, "action")?;
    let mut body = form_urlencoded::Serializer::new(String::new());
    for input in page.split("<input").skip(1) {
        let tag = input.split('>').next()?;
        body.append_pair(&attr(tag, "name")?, &attr(tag, "value")?);
    }
    Some(Browsed::FormPost {
        action,
        body: body.finish(),
    })
}
