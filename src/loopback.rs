//! The loopback redirect receiver for native apps (RFC 8252 §7.3).

use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use tokio::sync::{mpsc, oneshot};

use crate::BoxFuture;
use crate::error::{CallbackError, Error};
use crate::source::{
    AuthorizationCode, Callback, PendingAuthorization, RefreshTokenSource, ResponseMode,
};
use crate::token::Secret;

/// Receives the authorization callback of a native app on `http://127.0.0.1:<port>/<path>`
/// (RFC 8252 §7.3), with a small HTTP server that runs only while signing in.
///
/// Bind it first to learn the redirect URI, build the [`AuthorizationCode`] flow with it, then
/// [`sign_in`](Self::sign_in) (or [`receive`](Self::receive) and complete the flow
/// yourself). The authorization URL is opened in the system browser unless disabled, and
/// always handed to the [`Prompt`] to show the user: by default [`TerminalPrompt`], which
/// writes it to stderr; set your own with [`prompt`](LoopbackReceiverBuilder::prompt) to
/// choose the words and where they go.
///
/// **Over SSH, or wherever no browser can be opened**, the browser that signs in runs on
/// another machine and cannot reach this one's `127.0.0.1`: the user copies the address it
/// ends up at (`http://127.0.0.1:<port>/callback?code=...`) and pastes it back. The
/// [`Prompt`] delivers pasted addresses ([`TerminalPrompt`] reads them from stdin when the
/// browser was not opened and stdin is a terminal). Whichever comes first counts: the
/// browser's callback or a pasted address. A pasted address is held to the same rules as
/// the browser's request: it must be this receiver's redirect URI, be well-formed
/// (RFC 6749 §3.1) and carry this sign-in's `state`; otherwise the prompt is told why
/// ([`Prompt::refused`]) and the receiver keeps waiting.
///
/// Only a `GET` of the exact redirect path with a `Host` header naming exactly
/// `127.0.0.1:<port>` can deliver the callback (RFC 8252 §8.3, §8.9, §8.10). Anything
/// else — another path (`/favicon.ico`), another method (a `POST` from a web page), another
/// `Host` (DNS rebinding), a malformed callback, or one for another sign-in (a stale tab or
/// a forgery) — gets a 4xx and the receiver keeps waiting. With [`sign_in`](Self::sign_in)
/// the page shown says "Signed in" only after the code exchange succeeded, and the error
/// otherwise; with [`receive`](Self::receive) it says the response was received. The page
/// loads nothing from elsewhere and is sent with `Referrer-Policy: no-referrer`,
/// `Cache-Control: no-store` and a CSP allowing nothing but its inline style (RFC 9700
/// §4.2.4). The server stops when the sign-in is over, on timeout, or when the future is
/// dropped.
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
    prompt: Arc<dyn Prompt>,
    expected: Arc<Mutex<Option<Secret>>>,
    callbacks: mpsc::Receiver<Received>,
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
    prompt: Arc<dyn Prompt>,
}

#[derive(Clone)]
struct Shared {
    path: String,
    /// The only `Host` header accepted: `127.0.0.1:<port>`.
    host: String,
    expected: Arc<Mutex<Option<Secret>>>,
    callbacks: mpsc::Sender<Received>,
}

/// A callback for the expected sign-in, and where to send the page the browser is shown.
type Received = (Callback, oneshot::Sender<Outcome>);

/// What the browser is told once the app knows.
enum Outcome {
    SignedIn,
    Failed(String),
    /// [`LoopbackReceiver::receive`]: the app completes the sign-in itself.
    Received,
}

impl LoopbackReceiver {
    /// Starts configuring a receiver: an ephemeral port, path `/callback`, a 5-minute
    /// timeout, the browser opened, and [`TerminalPrompt`] showing the URL.
    pub fn builder() -> LoopbackReceiverBuilder {
        LoopbackReceiverBuilder {
            port: 0,
            path: "/callback".to_owned(),
            timeout: Duration::from_secs(300),
            open_browser: true,
            prompt: Arc::new(TerminalPrompt::default()),
        }
    }

    /// The redirect URI to register and to build the flow with:
    /// `http://127.0.0.1:<port>/<path>`.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Shows the user `pending`'s URL (through the [`Prompt`], and in the browser when
    /// enabled) and waits for the provider's callback that belongs to it, from the browser or
    /// pasted. The browser is told the response was received; complete the sign-in with
    /// [`AuthorizationCode::complete`].
    ///
    /// # Errors
    ///
    /// [`Error::Callback`] with [`CallbackError::Timeout`] when no callback arrived within
    /// the timeout. Dropping the future cancels the wait and stops the server.
    pub async fn receive(mut self, pending: &PendingAuthorization) -> Result<Callback, Error> {
        let received = self.wait(pending).await;
        let result = received.map(|(callback, page)| {
            let _ = page.send(Outcome::Received);
            callback
        });
        self.stop().await;
        result
    }

    /// The whole native-app sign-in: [`authorize`](AuthorizationCode::authorize),
    /// [`receive`](Self::receive), [`complete`](AuthorizationCode::complete); the browser is
    /// told the outcome of the code exchange.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `flow` was built with another redirect URI or a `form_post`
    /// response mode (the receiver takes GETs); otherwise as
    /// [`authorize`](AuthorizationCode::authorize), [`receive`](Self::receive) and
    /// [`complete`](AuthorizationCode::complete).
    pub async fn sign_in(self, flow: &AuthorizationCode) -> Result<RefreshTokenSource, Error> {
        // Checked before the request is made (and, for a pushed one, sent).
        self.check_flow(flow)?;
        let pending = flow.authorize().await?;
        self.finish_sign_in(flow, pending).await
    }

    /// [`sign_in`](Self::sign_in) with a `pending` authorization you made (to show its URL
    /// your own way): [`receive`](Self::receive), [`complete`](AuthorizationCode::complete),
    /// and the browser told the outcome of the code exchange.
    ///
    /// # Errors
    ///
    /// As [`sign_in`](Self::sign_in).
    pub async fn finish_sign_in(
        mut self,
        flow: &AuthorizationCode,
        pending: PendingAuthorization,
    ) -> Result<RefreshTokenSource, Error> {
        self.check_flow(flow)?;
        let (callback, page) = match self.wait(&pending).await {
            Ok(received) => received,
            Err(e) => {
                self.stop().await;
                return Err(e);
            }
        };
        let result = flow.complete(pending, &callback).await;
        let _ = page.send(match &result {
            Ok(_) => Outcome::SignedIn,
            // The page's title already says the sign-in failed.
            Err(Error::Callback(why)) => Outcome::Failed(why.to_string()),
            Err(e) => Outcome::Failed(e.to_string()),
        });
        self.stop().await;
        result
    }

    /// `flow` sends its callbacks here: to this redirect URI, as a GET.
    fn check_flow(&self, flow: &AuthorizationCode) -> Result<(), Error> {
        if flow.redirect_uri() != self.redirect_uri {
            return Err(Error::config(
                "the flow must be built with the receiver's redirect_uri()",
            ));
        }
        if matches!(
            flow.response_mode(),
            ResponseMode::FormPost | ResponseMode::FormPostJwt
        ) {
            return Err(Error::config(
                "the loopback receiver takes the callback as a GET: build the flow with a query \
                 response mode (ResponseMode::Query, Jwt or QueryJwt)",
            ));
        }
        Ok(())
    }

    async fn wait(&mut self, pending: &PendingAuthorization) -> Result<Received, Error> {
        let state = pending.state();
        *self.expected.lock().unwrap_or_else(PoisonError::into_inner) = Some(state.clone());
        let browser_opened = self.open_browser && open_browser(pending.url()).await;
        self.prompt.show(pending.url(), browser_opened);
        let prompt = self.prompt.clone();
        let redirect_uri = self.redirect_uri.clone();
        let callbacks = &mut self.callbacks;
        let first = async move {
            let mut pasting = true;
            loop {
                tokio::select! {
                    received = callbacks.recv() => {
                        return received.ok_or(Error::Callback(CallbackError::ReceiverStopped));
                    }
                    pasted = prompt.pasted_redirect(browser_opened), if pasting => match pasted {
                        None => pasting = false,
                        Some(text) => match pasted_callback(&text, &redirect_uri, &state) {
                            // No browser waits for a page about a pasted address.
                            Ok(callback) => return Ok((callback, oneshot::channel().0)),
                            Err(why) => prompt.refused(why),
                        },
                    },
                }
            }
        };
        match tokio::time::timeout(self.timeout, first).await {
            Ok(received) => received,
            Err(_) => Err(Error::Callback(CallbackError::Timeout)),
        }
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

    /// Whether to open the system browser. Default yes; the URL is shown through the
    /// [`Prompt`] either way. Turn it off for a sign-in over SSH, where the user opens the
    /// URL on another machine and pastes the redirect back.
    pub fn open_browser(mut self, open: bool) -> Self {
        self.open_browser = open;
        self
    }

    /// What the user is told, and where pasted redirect addresses come from. Default
    /// [`TerminalPrompt`]: stderr, and stdin when no browser was opened.
    pub fn prompt(mut self, prompt: impl Prompt + 'static) -> Self {
        self.prompt = Arc::new(prompt);
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
            host: addr.to_string(),
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
            prompt: self.prompt,
            expected,
            callbacks,
            shutdown: Some(shutdown),
            server: Some(server),
        })
    }
}

/// Opens `url` in the system browser; `false` when none could be launched (no display, as
/// over SSH). A launcher that does not return within 5 s counts as failed, so the user is
/// offered the paste-back fallback rather than left waiting.
async fn open_browser(url: &str) -> bool {
    let url = url.to_owned();
    let opening = tokio::task::spawn_blocking(move || webbrowser::open(&url).is_ok());
    match tokio::time::timeout(Duration::from_secs(5), opening).await {
        Ok(Ok(true)) => true,
        _ => {
            tracing::debug!("could not open a browser");
            false
        }
    }
}

/// A redirect address the user pasted, held to the rules of the browser's request: this
/// receiver's redirect URI exactly (scheme, `127.0.0.1:<port>`, path), a well-formed
/// authorization response, and this sign-in's `state`.
fn pasted_callback(
    text: &str,
    redirect_uri: &str,
    state: &Secret,
) -> Result<Callback, CallbackError> {
    let url = url::Url::parse(text.trim()).map_err(|_| CallbackError::NotAUrl)?;
    let expected = url::Url::parse(redirect_uri).map_err(|_| CallbackError::NotAUrl)?;
    let before_query = |u: &url::Url| u[..url::Position::AfterPath].to_owned();
    if before_query(&url) != before_query(&expected) {
        return Err(CallbackError::NotTheRedirectUri);
    }
    accept(url.query().unwrap_or(""), Some(state))
}

/// The one set of rules for an authorization response reaching the receiver, from the browser
/// or pasted: well-formed (RFC 6749 §3.1), a code or an error, and the `state` of the sign-in
/// being waited for (`expected`).
fn accept(query: &str, expected: Option<&Secret>) -> Result<Callback, CallbackError> {
    let callback = Callback::from_query(query);
    if let Some(problem) = callback.problem() {
        return Err(problem);
    }
    if !callback.is_authorization_response() {
        return Err(CallbackError::MissingCode);
    }
    if !expected.is_some_and(|state| callback.state_is(state.secret())) {
        return Err(CallbackError::StateMismatch);
    }
    Ok(callback)
}

/// Shows the user the sign-in URL and hands back redirect addresses they paste: the words
/// and where they go are the application's to choose (see [`LoopbackReceiver`]).
///
/// ```
/// use authed::{BoxFuture, CallbackError, Prompt};
///
/// /// Shows the URL in the app's own words, and takes pasted addresses from its UI.
/// #[derive(Debug)]
/// struct MyPrompt {
///     pasted: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<String>>,
/// }
///
/// impl Prompt for MyPrompt {
///     fn show(&self, url: &str, browser_opened: bool) {
///         println!("Sign in at {url}");
///         if !browser_opened {
///             println!("Then paste the address your browser shows here.");
///         }
///     }
///
///     fn pasted_redirect(&self, _browser_opened: bool) -> BoxFuture<'_, Option<String>> {
///         Box::pin(async move { self.pasted.lock().await.recv().await })
///     }
///
///     fn refused(&self, why: CallbackError) {
///         println!("That address does not finish this sign-in ({why}); try again.");
///     }
/// }
/// ```
pub trait Prompt: Send + Sync + fmt::Debug {
    /// Shows the user `url`, the provider's sign-in page. `browser_opened` is `false` when
    /// the system browser was not opened (turned off, or none could be launched, as over
    /// SSH): tell the user to open it on any machine and paste back the address the browser
    /// ends up at. Called once per sign-in. `url` carries `state` and the code challenge:
    /// show it, do not log it.
    fn show(&self, url: &str, browser_opened: bool);

    /// The next redirect address the user pasted, or `None` when no more will come. Called
    /// again after a refused one; its future is dropped when the browser's callback arrives
    /// first, so it must be cancel-safe (an `mpsc` receive is). Default: `None` (only the
    /// browser's callback counts).
    fn pasted_redirect(&self, browser_opened: bool) -> BoxFuture<'_, Option<String>> {
        let _ = browser_opened;
        Box::pin(async { None })
    }

    /// A pasted address was refused (`why`), and the receiver keeps waiting. Default:
    /// nothing.
    fn refused(&self, why: CallbackError) {
        let _ = why;
    }
}

/// The default [`Prompt`]: writes the URL to stderr and, when no browser was opened and
/// stdin is a terminal, reads pasted redirect addresses from stdin, one a line.
///
/// The words are set with [`message`](Self::message) and [`paste_message`](Self::paste_message);
/// for anything else (a GUI, another stream), implement [`Prompt`].
///
/// The default text is:
///
/// ```text
/// To sign in, open this URL in your browser:
///
///   https://provider.example/authorize?...
///
/// ```
///
/// and, when no browser was opened, `If your browser is on another machine (for example
/// over SSH), sign in there, then paste here the address it ends up at (it starts with
/// http://127.0.0.1):`.
pub struct TerminalPrompt {
    message: String,
    paste_message: String,
    pasted: Mutex<Option<Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>>>>,
}

impl Default for TerminalPrompt {
    fn default() -> Self {
        TerminalPrompt {
            message: "To sign in, open this URL in your browser:".to_owned(),
            paste_message: "If your browser is on another machine (for example over SSH), sign \
                            in there, then paste here the address it ends up at (it starts \
                            with http://127.0.0.1):"
                .to_owned(),
            pasted: Mutex::new(None),
        }
    }
}

impl TerminalPrompt {
    /// The line written before the URL.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The line written after the URL when no browser was opened, asking for the address to
    /// be pasted.
    pub fn paste_message(mut self, message: impl Into<String>) -> Self {
        self.paste_message = message.into();
        self
    }

    /// Lines of stdin, read on a thread of their own: a read of stdin cannot be cancelled,
    /// and a runtime's blocking pool would wait for it at shutdown.
    fn stdin_lines(&self) -> Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>> {
        let mut pasted = self.pasted.lock().unwrap_or_else(PoisonError::into_inner);
        pasted
            .get_or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let spawned = std::thread::Builder::new()
                    .name("authed-stdin".to_owned())
                    .spawn(move || {
                        for line in std::io::stdin().lock().lines() {
                            let Ok(line) = line else { break };
                            if !line.trim().is_empty() && tx.send(line).is_err() {
                                break;
                            }
                        }
                    });
                if spawned.is_err() {
                    tracing::debug!("could not start reading stdin");
                }
                Arc::new(tokio::sync::Mutex::new(rx))
            })
            .clone()
    }
}

impl Prompt for TerminalPrompt {
    fn show(&self, url: &str, browser_opened: bool) {
        let mut text = format!("{}\n\n  {url}\n\n", self.message);
        if !browser_opened && std::io::stdin().is_terminal() {
            text.push_str(&self.paste_message);
            text.push('\n');
        }
        // Nowhere else to tell the user; a closed stderr is not worth failing the sign-in.
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn pasted_redirect(&self, browser_opened: bool) -> BoxFuture<'_, Option<String>> {
        if browser_opened || !std::io::stdin().is_terminal() {
            return Box::pin(async { None });
        }
        let lines = self.stdin_lines();
        Box::pin(async move { lines.lock().await.recv().await })
    }

    fn refused(&self, why: CallbackError) {
        let _ = writeln!(
            std::io::stderr(),
            "That address does not complete this sign-in ({why}). Paste the address the \
             browser shows after signing in:"
        );
    }
}

impl fmt::Debug for TerminalPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TerminalPrompt")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if uri.path() != shared.path {
        return StatusCode::NOT_FOUND.into_response();
    }
    if method != Method::GET {
        // A page in the user's browser can POST here; only the provider's redirect (a GET)
        // delivers the authorization response.
        let mut resp = StatusCode::METHOD_NOT_ALLOWED.into_response();
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    let host_ok = headers
        .get(header::HOST)
        .is_some_and(|h| h.as_bytes() == shared.host.as_bytes());
    if !host_ok {
        // DNS rebinding: a remote page reaching us through a name that resolves to 127.0.0.1.
        return page(
            StatusCode::BAD_REQUEST,
            "Not accepted",
            "This address only answers requests for its own loopback address.",
        );
    }
    let expected = shared
        .expected
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let callback = match accept(uri.query().unwrap_or(""), expected.as_ref()) {
        Ok(callback) => callback,
        Err(CallbackError::StateMismatch) => {
            tracing::debug!("ignoring a callback that belongs to another sign-in");
            return page(
                StatusCode::BAD_REQUEST,
                "Sign-in response not recognised",
                "This response belongs to another or an older sign-in. Start again from the application.",
            );
        }
        Err(_) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Not a sign-in response",
                "This address only receives the answer of a sign-in.",
            );
        }
    };
    let (tell, told) = oneshot::channel();
    if shared.callbacks.try_send((callback, tell)).is_err() {
        // A second response for the same sign-in (a reload): the first one counts.
        return page(
            StatusCode::OK,
            "Already received",
            "You can close this window.",
        );
    }
    match told.await {
        Ok(Outcome::SignedIn) => page(
            StatusCode::OK,
            "Signed in",
            "You can close this window and return to the application.",
        ),
        Ok(Outcome::Failed(why)) => page(
            StatusCode::OK,
            "Sign-in failed",
            &format!("{why}. Return to the application to try again. You can close this window."),
        ),
        Ok(Outcome::Received) | Err(_) => page(
            StatusCode::OK,
            "Sign-in response received",
            "Return to the application to see whether the sign-in succeeded. You can close this window.",
        ),
    }
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let (title, text) = (escape(title), escape(text));
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut resp = (status, Html(html)).into_response();
    let h = resp.headers_mut();
    // RFC 9700 §4.2.4: nothing on this page may carry the callback URL (with its code and
    // state) elsewhere: no referrer, no third-party resources, no caching.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
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
