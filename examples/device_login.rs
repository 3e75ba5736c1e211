//! Signs the user in on a device without a browser (RFC 8628): prints a code to enter on
//! another device, polls until the user approves (Ctrl-C cancels), keeps the login in a
//! `FileStore`, and fetches a URL with the user's token. The second run reuses the login.
//!
//! Written for GitHub (enable "Device Flow" in the OAuth App), Google ("TVs and limited input
//! devices" client, with its secret), Microsoft ("Allow public client flows") and any provider
//! with a device authorization endpoint; the environment variables are described in
//! `examples/support/mod.rs`.
//!
//! ```text
//! AUTHED_PROVIDER=github AUTHED_CLIENT_ID=... cargo run --example device_login --features file-store
//! AUTHED_PROVIDER=microsoft AUTHED_CLIENT_ID=... cargo run --example device_login --features file-store
//! ```

mod support;

use std::process::ExitCode;
use std::sync::Arc;

use authed::{Error, FileStore, TokenStore};

#[tokio::main]
async fn main() -> ExitCode {
    support::exit_code(run().await)
}

async fn run() -> Result<(), Error> {
    let provider = support::Provider::from_env().await?;
    let path = support::token_file();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(&path));
    let key = format!("device_login/{}", provider.name);
    let stored = provider
        .config
        .refresh_token_source()
        .store(store.clone())
        .key(&key)
        .from_store()
        .await?;
    let login = match stored {
        Some(login) => {
            eprintln!("Using the login stored in {}", path.display());
            login
        }
        None => {
            let device = provider
                .config
                .device_authorization()
                .scopes(provider.scopes.clone())
                .store(store)
                .key(&key)
                .build()?;
            let code = device.start().await?;
            eprintln!(
                "On another device, open {} and enter the code {}",
                code.verification_uri(),
                code.user_code()
            );
            if let Some(direct) = code.verification_uri_complete() {
                eprintln!("(or open {direct})");
            }
            eprintln!(
                "The code expires in {} minutes. Waiting... (Ctrl-C to cancel)",
                code.expires_in().as_secs() / 60
            );
            tokio::select! {
                login = device.poll(&code) => login?,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("Cancelled.");
                    return Ok(());
                }
            }
        }
    };
    provider.show_api(login).await
}
