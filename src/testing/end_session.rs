//! The in-process provider's RP-Initiated Logout endpoint (OpenID Connect RP-Initiated
//! Logout 1.0), and the browser a test plays to get through `/authorize`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::http::parse_form;
use super::state::{ProviderState, TestProvider};

impl TestProvider {
    /// The end-session endpoint (`end_session_endpoint` in the metadata). It checks what RP-
    /// Initiated Logout 1.0 §2–§4 ask of a provider: an `id_token_hint` must be an ID token
    /// it issued; a `client_id` next to it must be the one the ID token was issued to; a
    /// `post_logout_redirect_uri` must be registered for the client (named by the hint or
    /// `client_id`; see [`set_post_logout_redirect_uris`](Self::set_post_logout_redirect_uris))
    /// and is then where the browser is sent, with `state`. Anything else is a `400` page;
    /// without a redirect URI, a `200` "signed out" page.
    pub fn end_session_url(&self) -> String {
        format!("{}/end_session", self.base_url())
    }

    /// The `post_logout_redirect_uris` registered for [`CLIENT_ID`](Self::CLIENT_ID) and
    /// [`PUBLIC_CLIENT_ID`](Self::PUBLIC_CLIENT_ID). Default none. Dynamically registered
    /// clients have their own, from their metadata.
    pub fn set_post_logout_redirect_uris(&self, uris: &[&str]) {
        self.with(|i| {
            i.oidc.post_logout_redirect_uris = uris.iter().map(|u| (*u).to_owned()).collect();
        });
    }

    /// The query parameters of every request the end-session endpoint received.
    pub fn end_session_requests(&self) -> Vec<HashMap<String, String>> {
        self.with(|i| i.oidc.end_sessions.clone())
    }

    /// Plays the user's browser at `authorization_url` (a
    /// [`PendingAuthorization::url`](crate::PendingAuthorization::url)): the provider's
    /// `/authorize` approves at once (as [`set_subject`](Self::set_subject)'s user) and
    /// redirects; returns the callback URL it redirected to, for
    /// [`AuthorizationCode::complete_url`](crate::AuthorizationCode::complete_url).
    ///
    /// # Panics
    ///
    /// When the provider cannot be reached or does not redirect.
    pub async fn approve(&self, authorization_url: &str) -> String {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        let response = browser
            .get(authorization_url)
            .send()
            .await
            .expect("the test provider answers");
        assert_eq!(response.status(), 302, "/authorize redirects back");
        response.headers()[header::LOCATION]
            .to_str()
            .expect("a Location header")
            .to_owned()
    }
}

pub(super) async fn end_session_endpoint(
    State(state): State<Arc<ProviderState>>,
    uri: Uri,
) -> Response {
    let query = parse_form(uri.query().unwrap_or("").as_bytes());
    let mut inner = state.lock();
    inner.oidc.end_sessions.push(query.clone());
    let bad =
        |why: &str| (StatusCode::BAD_REQUEST, format!("invalid_request: {why}")).into_response();
    let hinted = match query.get("id_token_hint") {
        Some(hint) => match inner.oidc.id_tokens.get(hint) {
            Some(client) => Some(client.clone()),
            None => return bad("id_token_hint is not an ID token issued here"),
        },
        None => None,
    };
    let client = match (hinted, query.get("client_id")) {
        (Some(hinted), Some(named)) if &hinted != named => {
            return bad("client_id is not the client the ID token was issued to");
        }
        (Some(client), _) => Some(client),
        (None, named) => named.cloned(),
    };
    let Some(redirect) = query.get("post_logout_redirect_uri") else {
        return (StatusCode::OK, "signed out").into_response();
    };
    let Some(client) = client else {
        return bad("post_logout_redirect_uri needs id_token_hint or client_id");
    };
    let registered = match inner.oidc.registered.get(&client) {
        Some(r) => &r.post_logout_redirect_uris,
        None => &inner.oidc.post_logout_redirect_uris,
    };
    if !registered.contains(redirect) {
        return bad("post_logout_redirect_uri is not registered for the client");
    }
    let Ok(mut to) = url::Url::parse(redirect) else {
        return bad("post_logout_redirect_uri is not a URL");
    };
    if let Some(state) = query.get("state") {
        to.query_pairs_mut().append_pair("state", state);
    }
    (StatusCode::FOUND, [(header::LOCATION, to.to_string())]).into_response()
}
