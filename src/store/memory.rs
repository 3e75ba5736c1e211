use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::error::Error;
use crate::future::BoxFuture;
use crate::store::TokenStore;
use crate::token::Token;

/// Keeps tokens in this process's memory: logins last as long as the process.
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
