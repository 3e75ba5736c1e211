//! A web application that signs users in with the authorization code flow and PKCE: a
//! "Sign in" link, the callback, then a page showing data fetched from an API with the
//! user's token, and "Sign out" (revocation where the provider supports it).
//!
//! Per-browser state is kept on the server, keyed by a random session cookie: the pending
//! authorization (PKCE verifier, state) between the redirect and the callback, then the
//! user's login. Logins live in a `MemoryStore` here; a real app would use a database-backed
//! `TokenStore` (or wrap one in `ObservedStore`).
//!
//! Written for GitHub, Google, Microsoft and any OpenID Connect provider; the environment
//! variables are described in `examples/support/mod.rs`. Register a web client with the
//! redirect URI `http://127.0.0.1:3000/callback` (`AUTHED_PORT` changes the port).
//!
//! ```text
//! AUTHED_PROVIDER=github AUTHED_CLIENT_ID=... AUTHED_CLIENT_SECRET=... \
//!     cargo run --example web_login --features loopback
//! # then open http://127.0.0.1:3000
//! ```

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authed::{
    AuthedClient, AuthorizationCode, Callback, Error, MemoryStore, PendingAuthorization, TokenStore,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

enum Session {
    SigningIn(PendingAuthorization),
    SignedIn {
        login: authed::RefreshTokenSource,
        client: AuthedClient,
    },
}

struct App {
    provider: support::Provider,
    redirect_uri: String,
    store: Arc<dyn TokenStore>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl App {
    /// The flow for one session: its login is stored under the session's key.
    fn flow(&self, sid: &str) -> Result<AuthorizationCode, Error> {
        let mut b = self
            .provider
            .config
            .authorization_code(&self.redirect_uri)
            .scopes(self.provider.scopes.clone())
            .store(self.store.clone())
            .key(format!("session:{sid}"));
        for (k, v) in &self.provider.params {
            b = b.param(k, v);
        }
        b.build()
    }
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("sid=").map(str::to_owned))
}

fn page(body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>authed web_login</title><body style=\"font-family:sans-serif;margin:3em\">{body}</body>"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn error_page(e: &Error) -> Response {
    let status = if e.requires_reauthorization() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::BAD_GATEWAY
    };
    (
        status,
        page(&format!(
            "<p>{}</p><p><a href=\"/login\">Sign in again</a></p>",
            escape(&e.to_string())
        )),
    )
        .into_response()
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let signed_in = session_id(&headers).is_some_and(|sid| {
        matches!(
            app.sessions.lock().unwrap().get(&sid),
            Some(Session::SignedIn { .. })
        )
    });
    if signed_in {
        return Redirect::to("/me").into_response();
    }
    page(&format!(
        "<h1>Hello</h1><p><a href=\"/login\">Sign in with {}</a></p>",
        escape(&app.provider.name)
    ))
    .into_response()
}

async fn login(State(app): State<Arc<App>>) -> Response {
    let sid = oauth2::CsrfToken::new_random().secret().clone();
    let flow = match app.flow(&sid) {
        Ok(flow) => flow,
        Err(e) => return error_page(&e),
    };
    let pending = flow.authorize();
    let url = pending.url().to_owned();
    app.sessions
        .lock()
        .unwrap()
        .insert(sid.clone(), Session::SigningIn(pending));
    (
        [(
            header::SET_COOKIE,
            format!("sid={sid}; HttpOnly; SameSite=Lax; Path=/"),
        )],
        Redirect::to(&url),
    )
        .into_response()
}

async fn callback(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(sid) = session_id(&headers) else {
        return (
            StatusCode::BAD_REQUEST,
            page("<p>No session. <a href=\"/login\">Sign in</a></p>"),
        )
            .into_response();
    };
    // The pending authorization is used once, whatever the outcome.
    let pending = match app.sessions.lock().unwrap().remove(&sid) {
        Some(Session::SigningIn(pending)) => pending,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                page("<p>No sign-in in progress. <a href=\"/login\">Sign in</a></p>"),
            )
                .into_response();
        }
    };
    let result = match app.flow(&sid) {
        Ok(flow) => {
            flow.complete(pending, &Callback::from_query(uri.query().unwrap_or("")))
                .await
        }
        Err(e) => Err(e),
    };
    let login = match result {
        Ok(login) => login,
        Err(e) => return error_page(&e),
    };
    let client = match app.provider.client(login.clone()) {
        Ok(client) => client,
        Err(e) => return error_page(&e),
    };
    app.sessions
        .lock()
        .unwrap()
        .insert(sid, Session::SignedIn { login, client });
    Redirect::to("/me").into_response()
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let client =
        session_id(&headers).and_then(|sid| match app.sessions.lock().unwrap().get(&sid) {
            Some(Session::SignedIn { client, .. }) => Some(client.clone()),
            _ => None,
        });
    let Some(client) = client else {
        return Redirect::to("/").into_response();
    };
    // The token is refreshed as needed, through the shared cache.
    let response = match client.get(&app.provider.api_url).send().await {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    page(&format!(
        "<h1>Signed in</h1><p>GET {} &rarr; {status}</p><pre>{}</pre><form method=post action=/logout><button>Sign out</button></form>",
        escape(&app.provider.api_url),
        escape(&body.chars().take(4000).collect::<String>())
    ))
    .into_response()
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let session = session_id(&headers).and_then(|sid| app.sessions.lock().unwrap().remove(&sid));
    if let Some(Session::SignedIn { login, .. }) = session
        && let Err(e) = login.logout().await
    {
        eprintln!("revocation failed (signed out locally): {e}");
    }
    Redirect::to("/").into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = support::Provider::from_env().await?;
    let port: u16 = std::env::var("AUTHED_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let app = Arc::new(App {
        provider,
        redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        store: Arc::new(MemoryStore::new()),
        sessions: Mutex::new(HashMap::new()),
    });
    let router = Router::new()
        .route("/", axum::routing::get(home))
        .route("/login", axum::routing::get(login))
        .route("/callback", axum::routing::get(callback))
        .route("/me", axum::routing::get(me))
        .route("/logout", axum::routing::post(logout))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("Open http://127.0.0.1:{port}");
    axum::serve(listener, router).await?;
    Ok(())
}
