//! The loopback redirect receiver for native apps (RFC 8252 §7.3).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::source::{AuthorizationCode, Callback, PendingAuthorization, RefreshTokenSource};

/// Receives the authorization callback of a native app on `http://127.0.0.1:<port>/<path>`
/// (RFC 8252 §7.3), with a small HTTP server that runs only while signing in.
///
/// Bind it first to learn the redirect URI, build the [`AuthorizationCode`] flow with it, then
/// [`sign_in`](Self::sign_in) (or [`receive`](Self::receive) and complete the flow
/// yourself). The authorization URL is always printed to stderr, and opened in the system
/// browser unless disabled. The browser gets a short page saying the window can be closed;
/// requests for anything else (`/favicon.ico`) get a 404, and a callback for another
/// sign-in (a stale tab) is answered with an error page and otherwise ignored. The server
/// stops when the callback arrived, on timeout, or when the future is dropped.
///
/// ```no_run
/// # async fn run(config: authed::OAuthConfig) -> Result<(), authed::Error> {
/// use authed::LoopbackReceiver;
///
/// let receiver = LoopbackReceiver::builder().bind().await?;
/// let flow = config
///     .authorization_code(receiver.redirect_uri())
///     .scopes(["openid"])
///     .build()?;
/// let login = receiver.sign_in(&flow).await?;
/// # let _ = login;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LoopbackReceiver {
    redirect_uri: String,
    timeout: Duration,
    open_browser: bool,
    expected: Arc<Mutex<Option<PendingAuthorization>>>,
    callbacks: mpsc::Receiver<Callback>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// Configures a [`LoopbackReceiver`]; from [`LoopbackReceiver::builder`].
#[derive(Debug)]
#[must_use]
pub struct LoopbackReceiverBuilder {
    port: u16,
    path: String,
    timeout: Duration,
    open_browser: bool,
}

#[derive(Clone)]
struct Shared {
    path: String,
    expected: Arc<Mutex<Option<PendingAuthorization>>>,
    callbacks: mpsc::Sender<Callback>,
}

impl LoopbackReceiver {
    /// Starts configuring a receiver: an ephemeral port, path `/callback`, a 5-minute
    /// timeout, and the browser opened.
    pub fn builder() -> LoopbackReceiverBuilder {
        LoopbackReceiverBuilder {
            port: 0,
            path: "/callback".to_owned(),
            timeout: Duration::from_secs(300),
            open_browser: true,
        }
    }

    /// The redirect URI to register and to build the flow with:
    /// `http://127.0.0.1:<port>/<path>`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Shows the user `pending`'s URL (stderr, and the browser when enabled) and waits for
    /// the provider's callback that belongs to it.
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] when no callback arrived within the timeout. Dropping the future
    /// cancels the wait and stops the server.
    pub async fn receive(mut self, pending: &PendingAuthorization) -> Result<Callback, Error> {
        *self.expected.lock().unwrap_or_else(PoisonError::into_inner) = Some(pending.clone());
        eprintln!(
            "To sign in, open this URL in your browser:\n\n  {}\n",
            pending.url()
        );
        if self.open_browser {
            let url = pending.url().to_owned();
            // Opening a browser may block on a subprocess; failure is fine, the URL is printed.
            tokio::task::spawn_blocking(move || {
                if webbrowser::open(&url).is_err() {
                    tracing::debug!("could not open a browser");
                }
            });
        }
        let received = tokio::time::timeout(self.timeout, self.callbacks.recv()).await;
        self.stop().await;
        match received {
            Ok(Some(callback)) => Ok(callback),
            Ok(None) => Err(Error::Callback(
                "the loopback server stopped before a callback arrived".to_owned(),
            )),
            Err(_) => Err(Error::Callback(format!(
                "timed out after {} s waiting for the browser to come back",
                self.timeout.as_secs()
            ))),
        }
    }

    /// The whole native-app sign-in: [`authorize`](AuthorizationCode::authorize),
    /// [`receive`](Self::receive), [`complete`](AuthorizationCode::complete).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `flow` was built with another redirect URI; otherwise as
    /// [`receive`](Self::receive) and [`complete`](AuthorizationCode::complete).
    pub async fn sign_in(self, flow: &AuthorizationCode) -> Result<RefreshTokenSource, Error> {
        if flow.redirect_uri() != self.redirect_uri {
            return Err(Error::config(
                "the flow must be built with the receiver's redirect_uri()",
            ));
        }
        let pending = flow.authorize();
        let callback = self.receive(&pending).await?;
        flow.complete(&pending, &callback).await
    }

    /// Stops the server, letting the response to the browser finish.
    async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            // Graceful shutdown waits for open connections; a browser keeping one alive must
            // not hold the app up.
            let abort = server.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for LoopbackReceiver {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl LoopbackReceiverBuilder {
    /// The port to listen on. Default 0: an ephemeral port, which RFC 8252 §7.3 asks
    /// providers to accept for loopback redirect URIs. Set one for providers that do not.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The callback path. Default `/callback`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// How long to wait for the user. Default 5 minutes.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether to open the system browser. Default yes; the URL is printed either way.
    pub fn open_browser(mut self, open: bool) -> Self {
        self.open_browser = open;
        self
    }

    /// Binds `127.0.0.1` and starts serving.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the path does not start with `/` or the port cannot be bound.
    pub async fn bind(self) -> Result<LoopbackReceiver, Error> {
        if !self.path.starts_with('/') {
            return Err(Error::config("the loopback path must start with '/'"));
        }
        // RFC 8252 §8.3: the IP literal, not `localhost`, which may resolve elsewhere.
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
                .await
                .map_err(|e| {
                    Error::config(format!("cannot listen on 127.0.0.1:{}: {e}", self.port))
                })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::config(format!("cannot read the loopback address: {e}")))?;
        let (tx, callbacks) = mpsc::channel(1);
        let expected = Arc::new(Mutex::new(None));
        let app = Router::new().fallback(handle).with_state(Shared {
            path: self.path.clone(),
            expected: expected.clone(),
            callbacks: tx,
        });
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(LoopbackReceiver {
            redirect_uri: format!("http://{addr}{}", self.path),
            timeout: self.timeout,
            open_browser: self.open_browser,
            expected,
            callbacks,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }
}

async fn handle(State(shared): State<Shared>, uri: Uri) -> Response {
    if uri.path() != shared.path {
        return StatusCode::NOT_FOUND.into_response();
    }
    let callback = Callback::from_query(uri.query().unwrap_or(""));
    if !callback.is_authorization_response() {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a sign-in response",
            "This address only receives the answer of a sign-in.",
        );
    }
    let belongs = shared
        .expected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|p| callback.state_matches(p));
    if !belongs {
        tracing::debug!("ignoring a callback that belongs to another sign-in");
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in response not recognised",
            "This response belongs to another or an older sign-in. Start again from the application.",
        );
    }
    let outcome = match callback.error() {
        Some(e) => {
            let detail = match &e.description {
                Some(d) => format!("The provider answered: {} ({d}).", e.error),
                None => format!("The provider answered: {}.", e.error),
            };
            page(
                StatusCode::OK,
                "Sign-in failed",
                &format!("{detail} You can close this window."),
            )
        }
        None => page(
            StatusCode::OK,
            "Signed in",
            "You can close this window and return to the application.",
        ),
    };
    if shared.callbacks.try_send(callback).is_err() {
        // A second response for the same sign-in (a reload): the first one counts.
        return page(
            StatusCode::OK,
            "Already received",
            "You can close this window.",
        );
    }
    outcome
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let (title, text) = (escape(title), escape(text));
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The provider's error text is shown on the page: escape it so a forged one cannot inject
/// markup.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href='x'>&"),
            "&lt;a href=&#39;x&#39;&gt;&amp;"
        );
    }
}
