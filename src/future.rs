//! [`BoxFuture`], the future type of the crate's dyn-compatible traits. A module of its own so
//! that token sources and stores both use it without importing each other.

use std::future::Future;
use std::pin::Pin;

/// A boxed, `Send` future, as returned by the crate's dyn-compatible traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
