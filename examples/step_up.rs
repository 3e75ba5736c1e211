//! Step-up authentication in a web app (RFC 9470): the user signs in normally; when the
//! payments API answers `401` with `error="insufficient_user_authentication"`, the app gets
//! `Error::StepUpRequired` (never a refresh, never a second request), sends the user to sign in
//! again with the `acr_values` and `max_age` the API named (`AuthorizationCodeBuilder::step_up`),
//! checks that the new ID token's `acr` and `auth_time` meet them, and tries the API again.
//!
//! The responses come back as a form the browser POSTs (`ResponseMode::FormPost`: nothing in
//! the URL, history or `Referer`), read with `Callback::from_form_post` by the same strict
//! parser as a query. The browser's POST comes from the provider's site, so the session cookie
//! is `SameSite=None; Secure; HttpOnly`.
//!
//! Offline only: the in-process provider (`authed::testing`) plays the provider and the
//! payments API (which wants `acr` `urn:authed:loa:2`), and a scripted browser (reqwest with a
//! cookie jar) plays the user.
//!
//! ```sh
//! cargo run --example step_up --features testing
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authed::testing::{Browsed, TestProvider};
use authed::{
    AuthedClient, AuthorizationCode, Callback, Error, OAuthConfig, PendingAuthorization,
    RefreshTokenSource, ResponseMode, StepUp,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

const GOLD: &str = "urn:authed:loa:2";

/// A sign-in in progress: its flow (which knows what it asked for), the pending
/// authorization, and where to go afterwards.
struct SigningIn {
    flow: AuthorizationCode,
    pending: PendingAuthorization,
    then: &'static str,
}

/// A browser's session: a sign-in in progress, and the user's login.
#[derive(Default)]
struct Session {
    signing_in: Option<SigningIn>,
    login: Option<Arc<RefreshTokenSource>>,
}

struct App {
    config: OAuthConfig,
    redirect_uri: String,
    api: String,
    sessions: Mutex<HashMap<String, Session>>,
}

impl App {
    /// A sign-in flow and its first step; a step-up one asks for what the API named.
    async fn start(
        &self,
        step_up: Option<&StepUp>,
    ) -> Result<(AuthorizationCode, PendingAuthorization), Error> {
        let mut flow = self
            .config
            .authorization_code(&self.redirect_uri)
            .scopes(["openid"])
            .response_mode(ResponseMode::FormPost);
        if let Some(step_up) = step_up {
            flow = flow.step_up(step_up);
        }
        let flow = flow.build()?;
        let pending = flow.authorize().await?;
        Ok((flow, pending))
    }
}

fn sid(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("sid=").map(str::to_owned))
}

/// Starts a sign-in for this browser and sends it to the provider.
async fn sign_in(
    app: &App,
    headers: &HeaderMap,
    step_up: Option<StepUp>,
    then: &'static str,
) -> Response {
    let (flow, pending) = match app.start(step_up.as_ref()).await {
        Ok(started) => started,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let url = pending.url().to_owned();
    let sid = sid(headers).unwrap_or_else(|| oauth2::CsrfToken::new_random().secret().clone());
    app.sessions
        .lock()
        .unwrap()
        .entry(sid.clone())
        .or_default()
        .signing_in = Some(SigningIn {
        flow,
        pending,
        then,
    });
    (
        [(
            header::SET_COOKIE,
            format!("sid={sid}; HttpOnly; Secure; SameSite=None; Path=/"),
        )],
        Redirect::to(&url),
    )
        .into_response()
}

async fn login(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    sign_in(&app, &headers, None, "/").await
}

/// The provider's form POST: this browser's pending sign-in, completed from the body.
async fn callback(State(app): State<Arc<App>>, headers: HeaderMap, body: String) -> Response {
    let Some(sid) = sid(&headers) else {
        return (StatusCode::BAD_REQUEST, "no session").into_response();
    };
    // Taken out of the session: a sign-in completes at most once.
    let signing_in = app
        .sessions
        .lock()
        .unwrap()
        .get_mut(&sid)
        .and_then(|s| s.signing_in.take());
    let Some(SigningIn {
        flow,
        pending,
        then,
    }) = signing_in
    else {
        return (StatusCode::BAD_REQUEST, "no sign-in in progress").into_response();
    };
    // Checks state, iss, the ID token, and (for a step-up) its acr and auth_time.
    match flow
        .complete(pending, &Callback::from_form_post(&body))
        .await
    {
        Ok(login) => {
            let acr = login
                .id_token_claims()
                .and_then(|c| c.get("acr"))
                .and_then(|a| a.as_str())
                .unwrap_or("(none)")
                .to_owned();
            println!("app: signed in, acr {acr}");
            app.sessions.lock().unwrap().entry(sid).or_default().login = Some(Arc::new(login));
            Redirect::to(then).into_response()
        }
        Err(e) => (StatusCode::FORBIDDEN, format!("sign-in failed: {e}")).into_response(),
    }
}

/// Calls the payments API for the signed-in user; a step-up challenge sends the user to sign
/// in again with what the API asked for, and back here afterwards.
async fn payments(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let login = sid(&headers).and_then(|sid| {
        app.sessions
            .lock()
            .unwrap()
            .get(&sid)
            .and_then(|s| s.login.clone())
    });
    let Some(login) = login else {
        return Redirect::to("/login").into_response();
    };
    let client = match AuthedClient::builder(login).base_url(&app.api).build() {
        Ok(client) => client,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    match client.get("payments").send().await {
        Ok(response) => {
            let body = response.text().await.unwrap_or_default();
            (StatusCode::OK, format!("payments: {body}")).into_response()
        }
        Err(Error::StepUpRequired(step_up)) => {
            println!("app: the API asks for a step-up: {step_up}");
            sign_in(&app, &headers, Some(step_up), "/payments").await
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// The user's browser: follows redirects with a cookie jar, and POSTs the provider's form
/// back to the app.
struct Browser {
    http: reqwest::Client,
    app: String,
}

impl Browser {
    /// Opens `path` on the app and follows wherever it leads, through the provider and back.
    async fn open(&self, provider: &TestProvider, path: &str) -> (u16, String) {
        let mut response = self
            .http
            .get(format!("{}{path}", self.app))
            .send()
            .await
            .unwrap();
        loop {
            let status = response.status().as_u16();
            if status != 303 && status != 302 && status != 307 {
                return (status, response.text().await.unwrap());
            }
            let location = response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            if !location.starts_with(&provider.base_url()) {
                let url = format!("{}{location}", self.app);
                response = self.http.get(url).send().await.unwrap();
                continue;
            }
            // At the provider: it approves and answers with a form for the app.
            let Browsed::FormPost { action, body } = provider.browse(&location).await else {
                panic!("expected the provider's form");
            };
            response = self
                .http
                .post(action)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
        }
    }
}

mod support;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TestProvider::start().await;
    provider.set_api_required_acr(Some(GOLD), Some(Duration::from_secs(300)));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = Arc::new(App {
        config: provider.config(None),
        redirect_uri: format!("{base}/callback"),
        api: provider.api_url(),
        sessions: Mutex::default(),
    });
    let router = Router::new()
        .route("/login", axum::routing::get(login))
        .route("/callback", axum::routing::post(callback))
        .route("/payments", axum::routing::get(payments))
        .route("/", axum::routing::get(|| async { "home" }))
        .with_state(app);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let browser = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        app: base,
    };
    let (status, _) = browser.open(&provider, "/login").await;
    assert_eq!(status, 200, "signed in and home");
    let (status, body) = browser.open(&provider, "/payments").await;
    println!("browser: GET /payments -> {status} {body}");
    assert_eq!(status, 200);
    assert!(body.starts_with("payments:"), "{body}");
    // The first try was refused once, the step-up sign-in's token accepted.
    assert_eq!(provider.api_requests(), 2);
    assert_eq!(provider.api_rejections(), 1);
    let sent = provider.authorize_requests().pop().unwrap();
    assert_eq!(sent["acr_values"], GOLD);
    assert_eq!(sent["max_age"], "300");
    println!("done: one step-up, no refresh, the API answered");
    Ok(())
}
