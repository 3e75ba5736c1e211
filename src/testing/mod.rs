//! Test helpers: an in-process OAuth provider and protected API over real HTTP, and a clock
//! you move by hand. Enabled by the `testing` feature.
//!
//! ```no_run
//! # async fn run() -> Result<(), authed::Error> {
//! use authed::testing::TestProvider;
//! use authed::{AuthedClient, OAuthConfig};
//!
//! let provider = TestProvider::start().await;
//! let config = OAuthConfig::builder(provider.token_url())
//!     .client_id(TestProvider::CLIENT_ID)
//!     .client_secret(TestProvider::CLIENT_SECRET)
//!     .build()?;
//! let client = AuthedClient::builder(config.client_credentials().build())
//!     .base_url(provider.api_url())
//!     .build()?;
//! let response = client.get("hello").send().await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(provider.token_requests(), 1);
//! # Ok(()) }
//! ```
//!
//! By role: [`TestProvider`]'s state (`state`), its endpoints (`token_endpoint`,
//! `assertions`, `dpop`, `id_token`, `endpoints`, `introspection`, `userinfo`, `end_session`,
//! `registration`), the protected API (`api`), starting it (`provider`), playing the user's
//! browser in a sign-in (`browser`), key files made on demand (`key_files`); [`ManualClock`];
//! the store conformance suite; entry points for fuzzing the crate's parsers ([`fuzz`]). This
//! file only declares and re-exports.

// A test double: a request it cannot serve is a failed test, so, like test code, it may
// unwrap, expect, panic and index.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable
)]

mod api;
mod assertions;
mod browser;
mod client_registry;
mod clock;
mod conformance;
mod dpop;
mod dpop_server;
mod end_session;
mod endpoints;
pub mod fuzz;
mod http;
mod id_token;
mod introspection;
mod key_files;
mod keys;
mod provider;
mod registration;
mod state;
mod token_endpoint;
mod userinfo;

pub use clock::ManualClock;
pub use conformance::{store_conformance, store_lock_conformance};
pub use key_files::new_private_key_pem;
pub use state::{IdTokenForgery, TestProvider};
