//! Persistence of tokens across restarts: the [`TokenStore`] trait and its implementations.
//! This file only declares and re-exports.

#[cfg(feature = "file-store")]
mod file;
mod into_token_store;
#[cfg(feature = "keyring")]
mod keyring;
mod memory;
mod observed;
#[cfg(feature = "redis")]
mod redis;
mod token_store;

#[cfg(feature = "file-store")]
pub use file::FileStore;
pub use into_token_store::IntoTokenStore;
#[cfg(feature = "keyring")]
pub use keyring::KeyringStore;
pub use memory::MemoryStore;
pub use observed::{ObservedStore, StoreChange};
#[cfg(feature = "redis")]
pub use redis::{RedisStore, RedisStoreBuilder};
pub use token_store::{StoreLock, TokenStore};
