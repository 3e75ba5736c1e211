use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::TokenStore;
use crate::token::Token;

/// Keeps tokens in this process's memory: logins last as long as the process.
///
/// The store for tests, for short-lived programs, and for logins an app keeps elsewhere
/// (wrap your database in a [`TokenStore`] of your own for restarts). Give it to a builder
/// by value, or share one between sources as an `Arc`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), authed::Error> {
/// use std::sync::Arc;
/// use authed::{AccessToken, MemoryStore, OAuthConfig, RefreshToken, Token, TokenStore};
///
/// let store = Arc::new(MemoryStore::new());
/// let signed_in = Token::new(AccessToken::new("access-token"))
///     .with_refresh_token(Some(RefreshToken::new("refresh-token")));
/// store.save("user:42", &signed_in).await?;
///
/// let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
///     .client_id("my-app")
///     .build()?;
/// let login = config
///     .refresh_token_source()
///     .store(store.clone())
///     .key("user:42")
///     .from_store()
///     .await?;
/// assert!(login.is_some(), "the login saved above");
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    tokens: Mutex<HashMap<String, Token>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Token>) -> T) -> T {
        f(&mut self.tokens.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl TokenStore for MemoryStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Token>, Error>> {
        let token = self.with(|t| t.get(key).cloned());
        Box::pin(async move { Ok(token) })
    }

    fn save<'a>(&'a self, key: &'a str, token: &'a Token) -> BoxFuture<'a, Result<(), Error>> {
        self.with(|t| t.insert(key.to_owned(), token.clone()));
        Box::pin(async { Ok(()) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        self.with(|t| t.remove(key));
        Box::pin(async { Ok(()) })
    }
}
