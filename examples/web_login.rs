//! A web application that signs many users in with the authorization code flow and PKCE, and
//! calls an API for each of them: a "Sign in" link, the callback, then a page showing data
//! fetched with the user's token, and "Sign out" (revocation where the provider supports it).
//!
//! It serves every user through ONE `AuthedClient` (one connection pool, one set of origin
//! rules) and a `UserSources` registry: a browser's session cookie names only the user's
//! login key; the registry returns that user's `RefreshTokenSource` (loaded from the store
//! on first use, dropped from memory when idle), and each API request is sent on its behalf
//! with `.source(login)`, so a rejected token refreshes only that user's login. The login's
//! key comes from who signed in: the validated ID token's `sub` for OpenID Connect
//! providers, else an app-chosen key passed to `complete_as`. Logins live in a `MemoryStore`
//! here; a real app would use a database-backed `TokenStore` (or wrap one in `ObservedStore`).
//!
//! Offline (no `AUTHED_CLIENT_ID` or `AUTHED_PROVIDER`), it starts the in-process test
//! provider (from `authed::testing`), serves the app on a free port, signs in two users,
//! `alice` and `bob`, from two scripted browsers, fetches the API for both at once, signs
//! one out and exits; `AUTHED_SERVE=1` keeps it serving for your own browser afterwards.
//!
//! Against a real provider: written for GitHub, Google, Microsoft and any OpenID Connect
//! provider; the environment variables are described in `examples/support/mod.rs`.
//! Register a web client with the redirect URI `http://127.0.0.1:3000/callback`
//! (`AUTHED_PORT` changes the port).
//!
//! ```text
//! cargo run --example web_login --features testing
//!
//! AUTHED_PROVIDER=github AUTHED_CLIENT_ID=... AUTHED_CLIENT_SECRET=... \
//!     cargo run --example web_login --features testing
//! # then open http://127.0.0.1:3000
//! ```

mod support;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use authed::testing::TestProvider;
use authed::{
    AuthedClient, AuthorizationCode, Callback, Error, MemoryStore, PendingAuthorization,
    TokenStore, UserSources,
};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// What a browser's session holds: never a token, only the pending sign-in or the key the
/// user's login is stored under.
enum Session {
    SigningIn(PendingAuthorization),
    SignedIn { key: String, name: String },
}

struct App {
    provider: support::Provider,
    flow: AuthorizationCode,
    /// Every signed-in user's login, by key.
    users: UserSources,
    /// The one client all users' API requests go through.
    client: AuthedClient,
    sessions: Mutex<HashMap<String, Session>>,
}

impl App {
    fn new(
        provider: support::Provider,
        redirect_uri: &str,
        store: Arc<dyn TokenStore>,
    ) -> Result<App, Error> {
        let mut b = provider
            .config
            .authorization_code(redirect_uri)
            .scopes(provider.scopes.clone())
            .store(store.clone());
        for (k, v) in &provider.params {
            b = b.param(k, v);
        }
        let flow = b.build()?;
        let users = UserSources::builder(provider.config.clone(), store).build();
        // GitHub refuses requests without a User-Agent.
        let http = authed::reqwest::Client::builder()
            .user_agent("authed-example")
            .build()?;
        let client = AuthedClient::builder_for_users()
            .allow_origin(provider.api_origin())
            .http_client(http)
            .build()?;
        Ok(App {
            provider,
            flow,
            users,
            client,
            sessions: Mutex::new(HashMap::new()),
        })
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

/// The signed-in user of this browser: login key and display name.
fn signed_in(app: &App, headers: &HeaderMap) -> Option<(String, String)> {
    let sid = session_id(headers)?;
    match app.sessions.lock().unwrap().get(&sid) {
        Some(Session::SignedIn { key, name }) => Some((key.clone(), name.clone())),
        _ => None,
    }
}

async fn home(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if signed_in(&app, &headers).is_some() {
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
    let pending = app.flow.authorize();
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
    let callback = Callback::from_query(uri.query().unwrap_or(""));
    // With OpenID Connect the login is keyed by the validated ID token's `sub`. Without an
    // ID token (GitHub) nothing says who signed in before an API call, so the app names the
    // login itself; a real app would key it by its own user id.
    let result = if app.provider.scopes.iter().any(|s| s == "openid") {
        app.flow.complete(pending, &callback).await
    } else {
        app.flow
            .complete_as(pending, &callback, format!("session:{sid}"))
            .await
    };
    let login = match result {
        Ok(login) => login,
        Err(e) => return error_page(&e),
    };
    let name = login
        .id_token_claims()
        .map_or_else(|| "you".to_owned(), |c| c.sub().to_owned());
    let key = login.key().to_owned();
    app.users.insert(login);
    app.sessions
        .lock()
        .unwrap()
        .insert(sid, Session::SignedIn { key, name });
    Redirect::to("/me").into_response()
}

async fn me(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some((key, name)) = signed_in(&app, &headers) else {
        return Redirect::to("/").into_response();
    };
    // The user's login: in memory, or loaded again from the store after it was idle.
    let login = match app.users.get(&key).await {
        Ok(Some(login)) => login,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return error_page(&e),
    };
    // The shared client, on this user's behalf; the token is refreshed as needed.
    let response = match app
        .client
        .get(&app.provider.api_url)
        .source(login)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e),
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    page(&format!(
        "<h1>Signed in as {}</h1><p>GET {} &rarr; {status}</p><pre>{}</pre><form method=post action=/logout><button>Sign out</button></form>",
        escape(&name),
        escape(&app.provider.api_url),
        escape(&body.chars().take(4000).collect::<String>())
    ))
    .into_response()
}

async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let session = session_id(&headers).and_then(|sid| app.sessions.lock().unwrap().remove(&sid));
    if let Some(Session::SignedIn { key, .. }) = session {
        // Loaded again if it was idle: signing out must reach the stored login too.
        let login = app.users.get(&key).await.ok().flatten();
        app.users.remove(&key);
        if let Some(login) = login {
            match login.logout().await {
                Ok(authed::Logout::NotRevoked) => {
                    eprintln!("signed out here; the provider has no revocation endpoint");
                }
                Ok(_) => {}
                Err(e) => eprintln!("revocation failed (signed out locally): {e}"),
            }
        }
    }
    Redirect::to("/").into_response()
}

/// A browser with its own cookie jar, for the offline run.
fn browser() -> Result<authed::reqwest::Client, authed::reqwest::Error> {
    authed::reqwest::Client::builder()
        .cookie_store(true)
        .build()
}

/// The offline run: two users signed in from two browsers, served at once.
async fn demo(
    app: &App,
    base: &str,
    test: &TestProvider,
) -> Result<(), Box<dyn std::error::Error>> {
    let (alice, bob) = (browser()?, browser()?);
    // One sign-in at a time: the test provider approves as whoever `set_subject` names.
    for (name, browser) in [("alice", &alice), ("bob", &bob)] {
        test.set_subject(name);
        let page = browser.get(format!("{base}/login")).send().await?;
        println!("{name} signed in: {}", page.status());
    }
    let fetch = |browser: &authed::reqwest::Client| {
        let url = format!("{base}/me");
        let browser = browser.clone();
        async move { browser.get(url).send().await?.text().await }
    };
    let (a, b) = tokio::join!(fetch(&alice), fetch(&bob));
    for page in [a?, b?] {
        let title = page
            .split("<h1>")
            .nth(1)
            .and_then(|s| s.split("</h1>").next());
        let shown = page
            .split("&rarr; ")
            .nth(1)
            .and_then(|s| s.split("</p>").next());
        println!("{} -> API {}", title.unwrap_or("?"), shown.unwrap_or("?"));
    }
    println!(
        "{} users in the registry, one client; {} API requests, {} token requests",
        app.users.len(),
        test.api_requests(),
        test.token_requests()
    );
    alice.post(format!("{base}/logout")).send().await?;
    let after = bob.get(format!("{base}/me")).send().await?;
    println!(
        "alice signed out; bob still gets {}; {} user(s) in the registry",
        after.status(),
        app.users.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let offline = std::env::var_os("AUTHED_CLIENT_ID").is_none()
        && std::env::var_os("AUTHED_PROVIDER").is_none();
    let test = if offline {
        Some(TestProvider::start().await)
    } else {
        None
    };
    let provider = match &test {
        Some(test) => support::Provider {
            name: "the in-process test provider".to_owned(),
            config: test.config(None),
            scopes: vec!["openid".to_owned()],
            params: Vec::new(),
            api_url: format!("{}me", test.api_url()),
        },
        None => support::Provider::from_env().await?,
    };
    let port: u16 = match std::env::var("AUTHED_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        Some(port) => port,
        None if offline => 0,
        None => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
    let app = Arc::new(App::new(
        provider,
        &format!("{base}/callback"),
        Arc::new(MemoryStore::new()),
    )?);
    let router = Router::new()
        .route("/", axum::routing::get(home))
        .route("/login", axum::routing::get(login))
        .route("/callback", axum::routing::get(callback))
        .route("/me", axum::routing::get(me))
        .route("/logout", axum::routing::post(logout))
        .with_state(app.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    if let Some(test) = &test {
        demo(&app, &base, test).await?;
        if std::env::var_os("AUTHED_SERVE").is_none() {
            return Ok(());
        }
    }
    eprintln!("Open {base}");
    server.await??;
    Ok(())
}
