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
//!   expiry policy). Token sources are made from it. [`OAuthConfig::discover`] fills in the
//!   endpoints from an issuer's OpenID Connect or RFC 8414 metadata; [`providers`] has
//!   ready-made configurations for GitHub, Google, Microsoft Entra ID, GitLab, Auth0, Okta
//!   and Keycloak. [`OAuthConfig::from_env`] and [`OAuthConfig::discover_from_env`] read it
//!   from `AUTHED_*` variables (listed at [`Env`]).
//! - [`TokenSource`]: hands out valid tokens. [`ClientCredentials`] implements it; all
//!   sources share one cache that refreshes ahead of expiry in the background, sends exactly
//!   one token request for any number of waiting callers, and reads a valid token without
//!   taking a lock.
//! - [`AuthedClient`]: a `reqwest::Client` that attaches the token, and on a 401 with
//!   `invalid_token` refreshes once and retries once.
//! - User sign-in: [`AuthorizationCode`] (PKCE S256, `state`, `nonce`, RFC 9207 `iss`),
//!   `LoopbackReceiver` for native apps (feature `loopback`), [`DeviceAuthorization`]
//!   (RFC 8628); each ends in a [`RefreshTokenSource`], which refreshes through the same
//!   cache, saves rotated refresh tokens before use, and [`logout`](RefreshTokenSource::logout)s
//!   with RFC 7009 revocation ([`OAuthConfig::revoke`]).
//! - [`TokenStore`]: keeps tokens across restarts ([`MemoryStore`], `FileStore` with feature
//!   `file-store`, [`ObservedStore`] to be told of every change).
//! - [`Error`]: typed errors for every OAuth error of RFC 6749 §5.2, with the provider's
//!   description, and predicates that say whether to re-authorize, fix configuration or retry.
//!
//! # Feature flags
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `default-tls` | HTTPS through reqwest's default TLS backend (rustls) | yes |
//! | `native-tls` | HTTPS through the platform's TLS library | no |
//! | `loopback` | `LoopbackReceiver`: the RFC 8252 loopback redirect receiver (a small axum server) and opening the system browser | no |
//! | `file-store` | `FileStore`: tokens in a JSON file, replaced atomically, mode 0600, locked across processes (`fs4`) | no |
//! | `blocking` | `authed::blocking`: a synchronous client and token access for programs without a Tokio runtime, on an internal runtime thread | no |
//! | `interop` | development only: builds the interop suite against a real authorization server (`scripts/interop`) | no |
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
//! - Sign-in always uses PKCE with S256 (no `plain`); `state` is compared in constant time,
//!   and a callback whose `state` or `iss` does not match is refused before any token
//!   request. PKCE verifiers, `state`, nonces, codes and device codes are never logged or
//!   shown by `Debug`.
//!
//! All requests need a Tokio runtime, except through `authed::blocking` (feature `blocking`),
//! which brings its own.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod client;
mod config;
mod discovery;
mod endpoint;
mod env;
mod error;
#[cfg(feature = "loopback")]
mod loopback;
pub mod providers;
mod revoke;
mod source;
mod store;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod token;

pub use client::{AuthedClient, AuthedClientBuilder, RequestBuilder};
pub use config::{Endpoints, OAuthConfig, OAuthConfigBuilder};
pub use endpoint::ClientAuthMethod;
pub use env::Env;
pub use error::{Error, OAuthError, Unauthorized};
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use loopback::{LoopbackReceiver, LoopbackReceiverBuilder};
pub use source::{
    AuthorizationCode, AuthorizationCodeBuilder, BoxFuture, Callback, ClientCredentials,
    ClientCredentialsBuilder, DeviceAuthorization, DeviceAuthorizationBuilder, DeviceCode,
    PendingAuthorization, RefreshTokenSource, RefreshTokenSourceBuilder, StaticToken, TokenFuture,
    TokenSource,
};
#[cfg(feature = "file-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "file-store")))]
pub use store::FileStore;
pub use store::{MemoryStore, ObservedStore, StoreChange, StoreLock, TokenStore};
pub use token::{
    AccessToken, ClientSecret, Clock, ExpiryPolicy, IdToken, RefreshToken, SystemClock, Token,
};

/// The `reqwest` this crate is built on, so you name the same version.
pub use reqwest;
