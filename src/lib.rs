//! OAuth-authenticated HTTP for [`reqwest`]: get tokens, keep them fresh, and call APIs
//! with them, without writing the plumbing yourself.
//!
//! # Quick start
//!
//! A service calling an API with the client credentials grant:
//!
//! ```no_run
//! # async fn run() -> Result<(), authed::Error> {
//! use authed::{AuthedClient, OAuthConfig};
//!
//! let config = OAuthConfig::builder("https://auth.example.com/oauth/token")
//!     .client_id("reports-job")
//!     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
//!     .build()?;
//! let client = AuthedClient::builder(config.client_credentials().scopes(["reports:read"]).build())
//!     .base_url("https://api.example.com/v1/")
//!     .build()?;
//!
//! // Every request carries a fresh token; one token request serves all concurrent callers.
//! let reports = client.get("reports").send().await?.text().await?;
//! # let _ = reports;
//! # Ok(()) }
//! ```
//!
//! Run `cargo run --example quickstart` to watch this against a provider started in-process.
//!
//! # How it fits together
//!
//! - [`OAuthConfig`]: a client registered at a provider (endpoints, credentials, timeouts,
//!   expiry policy). Token sources are made from it.
//! - [`TokenSource`]: hands out valid tokens. [`ClientCredentials`] implements it; all
//!   sources share one cache that refreshes ahead of expiry in the background, sends exactly
//!   one token request for any number of waiting callers, and reads a valid token without
//!   taking a lock.
//! - [`AuthedClient`]: a `reqwest::Client` that attaches the token, and on a 401 with
//!   `invalid_token` refreshes once and retries once.
//! - [`TokenStore`]: keeps tokens across restarts ([`MemoryStore`]).
//! - [`Error`]: typed errors for every OAuth error of RFC 6749 §5.2, with the provider's
//!   description, and predicates that say whether to re-authorize, fix configuration or retry.
//!
//! # Feature flags
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `default-tls` | HTTPS through reqwest's default TLS backend (rustls) | yes |
//! | `native-tls` | HTTPS through the platform's TLS library | no |
//! | `testing` | [`testing::TestProvider`], an in-process provider and API over real HTTP, and [`testing::ManualClock`] | no |
//!
//! # Security
//!
//! - Tokens, refresh tokens, ID tokens and client secrets are kept in [`secrecy`] boxes.
//!   They appear in no `Debug` or `Display` output, no error, and no `tracing` event; the
//!   `Authorization` header is marked sensitive.
//! - Requests to token endpoints never follow redirects, read at most 1 MiB, and time out
//!   (30 s by default).
//! - Endpoints must be HTTPS unless they are on loopback, or you opt out with a setting named
//!   `danger_allow_insecure_http`.
//! - [`AuthedClient`] sends tokens only to the origins you name, and refuses any other
//!   request before it is sent.
//! - A rotated refresh token is saved to the [`TokenStore`] before the new access token is
//!   handed out; if saving fails, the caller gets the store error.
//! - A revoked grant is reported as [`Error::TokenRevoked`]; the crate never starts an
//!   interactive login on its own.
//!
//! All requests need a Tokio runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod config;
mod endpoint;
mod error;
mod source;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod token;

pub use client::{AuthedClient, AuthedClientBuilder, RequestBuilder};
pub use config::{Endpoints, OAuthConfig, OAuthConfigBuilder};
pub use endpoint::ClientAuthMethod;
pub use error::{Error, OAuthError, Unauthorized};
pub use source::{
    BoxFuture, ClientCredentials, ClientCredentialsBuilder, StaticToken, TokenFuture,
    TokenSource,
};
pub use store::{MemoryStore, StoreLock, TokenStore};
pub use token::{
    AccessToken, ClientSecret, Clock, ExpiryPolicy, IdToken, RefreshToken, SystemClock, Token,
};

/// The `reqwest` this crate is built on, so you name the same version.
pub use reqwest;
