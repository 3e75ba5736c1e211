//! A command-line program that signs the user in with the authorization code flow and PKCE
//! through a loopback redirect (RFC 8252), keeps the login in a `FileStore`, and fetches a
//! URL with the user's token. The second run reuses the stored login: no browser.
//!
//! Written for GitHub, Google, Microsoft and any OpenID Connect provider; the environment
//! variables are described in `examples/support/mod.rs`. Register a "desktop"/"native" (or
//! GitHub "OAuth App") client with the redirect URI `http://127.0.0.1/callback` (Google,
//! Microsoft and GitHub accept any port for loopback), or set `AUTHED_PORT` to use a fixed
//! port and register `http://127.0.0.1:<port>/callback`.
//!
//! ```text
//! AUTHED_PROVIDER=google AUTHED_CLIENT_ID=... AUTHED_CLIENT_SECRET=... \
//!     cargo run --example cli_login --features loopback,file-store
//! # again: reuses the stored login
//! cargo run --example cli_login --features loopback,file-store -- --logout
//! # over SSH, or with --no-browser: open the URL anywhere, paste back the address it ends at
//! cargo run --example cli_login --features loopback,file-store -- --no-browser
//! ```
//!
//! Tokens are never printed; the login is in `AUTHED_TOKEN_FILE` (mode 0600).

mod support;

use std::process::ExitCode;
use std::sync::Arc;

use authed::{Error, FileStore, LoopbackReceiver, TerminalPrompt, TokenStore};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Error> {
    let provider = support::Provider::from_env().await?;
    let path = support::token_file();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));
    let key = format!("cli_login/{}", provider.name);
    let stored = provider
        .config
        .refresh_token_source()
        .store(store.clone())
        .key(&key)
        .from_store()
        .await?;

    if std::env::args().any(|a| a == "--logout") {
        match stored {
            Some(login) => {
                if login.logout().await?.is_revoked() {
                    eprintln!("Signed out; the provider revoked the login");
                } else {
                    eprintln!("Signed out here; the provider has no revocation endpoint");
                }
                eprintln!("Removed the login from {}", path.display());
            }
            None => eprintln!("Not signed in."),
        }
        return Ok(());
    }

    let login = match stored {
        Some(login) => {
            eprintln!("Using the login stored in {}", path.display());
            login
        }
        None => {
            let port = std::env::var("AUTHED_PORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            // Over SSH the browser is on the user's own machine, which cannot reach this
            // one's 127.0.0.1: show the URL and take the redirect address pasted back.
            let no_browser = std::env::args().any(|a| a == "--no-browser")
                || std::env::var_os("SSH_CONNECTION").is_some();
            let receiver = LoopbackReceiver::builder()
                .port(port)
                .open_browser(!no_browser)
                .prompt(
                    TerminalPrompt::default()
                        .message(format!("Sign in to {} at:", provider.name))
                        .paste_message(
                            "Then paste here the address your browser ends up at \
                             (http://127.0.0.1:...), even if it shows an error page:",
                        ),
                )
                .bind()
                .await?;
            let mut flow = provider
                .config
                .authorization_code(receiver.redirect_uri())
                .scopes(provider.scopes.clone())
                .store(store)
                .key(&key);
            for (k, v) in &provider.params {
                flow = flow.param(k, v);
            }
            let login = receiver.sign_in(&flow.build()?).await?;
            eprintln!("Signed in; the login is saved in {}", path.display());
            login
        }
    };

    match provider.show_api(login).await {
        Err(e) if e.requires_reauthorization() => {
            // The crate never starts a sign-in on its own; the stored login is already gone.
            eprintln!("The login is no longer valid ({e}). Run again to sign in.");
            Ok(())
        }
        other => other,
    }
}
