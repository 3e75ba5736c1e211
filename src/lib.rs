//! OAuth-authenticated HTTP for [`reqwest`]: get tokens, keep them fresh, and call APIs
//! with them, without writing the plumbing yourself.
//!
//! ```sh
//! cargo add authed
//! cargo add tokio --features macros,rt-multi-thread
//! ```
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
//! In the repository, `cargo run --example quickstart --features testing` shows this against a
//! provider started in-process, and `examples/` has one program per use case (README's
//! "Examples" lists each with its command).
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
//!   `invalid_token` refreshes once and retries once. The same rules, one implementation,
//!   serve a `reqwest_middleware` chain (`authed::middleware`, feature `middleware`; a
//!   request can name its user's login in its extensions), any tower client, tonic included
//!   (`authed::tower`, feature `tower`), and any other HTTP client through [`AuthHeaders`]
//!   (the headers for one request, and what to do after its answer; `examples/headers_hyper.rs`,
//!   `examples/headers_ureq.rs`).
//! - Resource servers: [`OAuthConfig::introspect`] (RFC 7662) answers whether a token is
//!   active, with an [`Introspection`] of its claims. Mutual TLS (RFC 8705):
//!   [`ClientAuthMethod::TlsClientAuth`], a client certificate from
//!   [`OAuthConfigBuilder::client_certificate`] or `identity_from_pem`, and discovery's
//!   `mtls_endpoint_aliases`; the same identity on the [`AuthedClient`]'s HTTP client for
//!   certificate-bound tokens.
//! - User sign-in: [`AuthorizationCode`] (PKCE S256, `state`, `nonce`, RFC 9207 `iss`),
//!   `LoopbackReceiver` for native apps (feature `loopback`; over SSH the user pastes the
//!   redirect address back, and a `Prompt` words what the user is told), [`DeviceAuthorization`]
//!   (RFC 8628); each ends in a [`RefreshTokenSource`], which refreshes through the same
//!   cache, saves rotated refresh tokens before use, and [`logout`](RefreshTokenSource::logout)s
//!   with RFC 7009 revocation ([`OAuthConfig::revoke`]).
//! - OpenID Connect beyond sign-in: [`RefreshTokenSource::userinfo`] ([`UserInfo`], typed
//!   standard claims, the `sub` check of Core §5.3.2, JSON or signed JWT, Bearer or DPoP);
//!   RP-Initiated Logout ([`RefreshTokenSource::end_session`], [`EndSession`], with
//!   revocation in [`EndSessionBuilder::sign_out`]); dynamic client registration (RFC 7591,
//!   [`OAuthConfigBuilder::register`] with [`ClientMetadata`], a ready [`Registration`]).
//! - Several resources, one login (RFC 8707 §2.2): [`RefreshTokenSource::for_resource`] and
//!   [`for_scopes`](RefreshTokenSource::for_scopes) give a [`ResourceTokenSource`] per target,
//!   each with its own cached token and single flight, all spending the login's one refresh
//!   token in turn; `examples/resources.rs` shows it.
//! - Modern sign-in requests, each a setter of [`AuthorizationCodeBuilder`]: pushed (PAR, RFC
//!   9126, [`pushed`](AuthorizationCodeBuilder::pushed); automatic when the provider requires
//!   it), signed (JAR, RFC 9101, [`signed`](AuthorizationCodeBuilder::signed)), answered by a
//!   form post or a signed JWT ([`ResponseMode`], JARM), with rich authorization details
//!   ([`AuthorizationDetail`], RFC 9396, also on client credentials and refreshes), and
//!   step-up authentication (RFC 9470: an API's challenge is [`Error::StepUpRequired`],
//!   answered with [`step_up`](AuthorizationCodeBuilder::step_up)). One switch,
//!   [`OAuthConfigBuilder::fapi2`], checks the FAPI 2.0 client duties ([`FapiDuty`]).
//! - Many users in one app: [`UserSources`] holds each signed-in user's
//!   [`RefreshTokenSource`] by store key (loaded from the store on first use, dropped from
//!   memory when idle), and one shared [`AuthedClient`] sends each request on behalf of a
//!   user with [`RequestBuilder::source`]: one connection pool, one set of origin rules, the
//!   401 refresh going to that user's login. `examples/web_login.rs` shows it.
//! - Beyond shared secrets: [`SigningKey`] (RSA, P-256, Ed25519 from PEM, PKCS#8 or JWK, or
//!   generated) for `private_key_jwt` ([`OAuthConfigBuilder::private_key`]) and
//!   `client_secret_jwt` client authentication on every provider request; any [`JwsSigner`]
//!   instead of a `SigningKey`, for a key that stays in a KMS or HSM (the crate's one signer:
//!   assertions, JWT bearer grants and DPoP proofs all sign through it; [`PublicJwk`] is its
//!   public key); [`JwtBearer`] (RFC 7523 §2.1) with
//!   [`providers::GoogleServiceAccount`]; [`TokenExchange`] (RFC 8693) from another source
//!   or a token file ([`SubjectToken`]), for workload identity federation.
//! - Workload credentials, each a source over the same cache: [`GcpMetadata`] (the GCP
//!   metadata server), [`AzureManagedIdentity`] (IMDS, App Service and Functions),
//!   [`KubernetesServiceAccount`] (a projected token file), [`GitHubActionsOidc`]; and
//!   [`DefaultCredentials`], which picks the environment's client credentials, else the
//!   workload's identity, else a stored user login.
//! - [`TokenStore`]: keeps tokens across restarts ([`MemoryStore`], `FileStore` with feature
//!   `file-store`, `KeyringStore` with feature `keyring`, `RedisStore` with feature `redis`,
//!   [`ObservedStore`] to be told of every change).
//! - Sender-constrained tokens: DPoP (RFC 9449) with
//!   [`OAuthConfigBuilder::dpop`] or [`dpop_key`](OAuthConfigBuilder::dpop_key). A [`DpopKey`]
//!   (ES256, EdDSA, RS256 or PS256; in memory or [`from_signer`](DpopKey::from_signer)) signs a proof for every token request (every grant) and every
//!   [`AuthedClient`] request (`Authorization: DPoP`, `ath`); `use_dpop_nonce` is answered
//!   with one retry per call, the nonce remembered per origin; `dpop_jkt` binds the authorization
//!   code; the key is stored with the login, so a restarted app refreshes a bound refresh
//!   token with it.
//! - [`Error`]: typed errors for every OAuth error of RFC 6749 §5.2, with the provider's
//!   description, and predicates that say whether to re-authorize, fix configuration or retry.
//!   `Display` says what happened; an underlying error is only the `source()` (see
//!   [`Error`]'s "Printing an error").
//!
//! # Observability
//!
//! Every call to a provider runs in an INFO `tracing` span `provider_request`, with one span
//! per HTTP request it sends named and shaped as the OpenTelemetry HTTP client conventions say
//! (`POST` / `GET`, `http.request.method`, `server.address`, `http.response.status_code`,
//! `error.type`, ...); every caller waiting for a token runs in a `token_wait` span. With
//! feature `metrics`, counters and histograms go through the [`metrics`](https://docs.rs/metrics)
//! facade, `http.client.request.duration` among them. [`observability`] lists every span, field
//! and metric, with their names as constants. No field or label ever holds a token, a secret or
//! a query string.
//!
//! # Rotation
//!
//! Providers that rotate refresh tokens (RFC 9700 §4.14.2) hand out a new refresh token with
//! every refresh and, with reuse detection, revoke the whole login when a spent one comes
//! again. A [`RefreshTokenSource`] keeps such a login alive through lost answers, dead
//! processes and failing stores, alone or in a fleet sharing a [`TokenStore`]
//! (ARCHITECTURE.md, "Rotation", has the design and the measured numbers):
//!
//! - **A refresh belongs to the cache.** Callers wait at most the configuration's
//!   [`timeout`](OAuthConfigBuilder::timeout) (30 s), retries included, then get
//!   [`Error::Timeout`]; the request goes on and its answer is read for the *in-flight bound*,
//!   twice the timeout, and saved. A caller that leaves never causes a new request.
//! - **An unknown outcome is never presented blindly.** After a timeout, a cut connection or a
//!   gateway's 502/504 the refresh token is not retried in the call, and no process presents
//!   it while another may still read the answer (an in-flight record in the store says since
//!   when). Then [`LostRefresh`] decides: present it once more (default), within a grace
//!   period (Okta, Auth0), or never. A login lost this way ends in
//!   [`Error::RefreshOutcomeUnknown`], a re-authorize error.
//! - **Fleet-wide.** Under the store's lock a refresh re-reads the login, writes its in-flight
//!   record (fenced: a holder whose lease ran out fails, and checks the lock again right
//!   before sending), sends, and saves. A dead or signed-out login leaves a tombstone, so it
//!   costs one `invalid_grant` for the whole fleet. A store that lost its data is refilled
//!   with the newest copy a process holds; a logout still wins.
//! - **A login has an identity**, made at sign-in and stored with it: a source that finds
//!   another login under its key ends with [`Error::LoginReplaced`] and never hands out that
//!   login's tokens.
//!
//! The one window no client can close: a process killed after the provider rotated and
//! before the store saved (a few milliseconds: `tests/faults` measures it) loses the login on
//! a provider without a grace period; it then costs at most one `invalid_grant` fleet-wide and
//! one typed error per process.
//!
//! # Feature flags
//!
//! | Name | Description | Default |
//! |---|---|---|
//! | `default-tls` | HTTPS through reqwest's default TLS backend (rustls) | yes |
//! | `aws-lc-rs` | JOSE (signing assertions and DPoP proofs, verifying ID tokens, SHA-256) on aws-lc-rs, the library rustls already builds for TLS: one crypto stack | yes |
//! | `compression` | gzip, deflate and brotli provider answers (Salesforce) are decoded; the 1 MiB cap counts decoded bytes | yes |
//! | `native-tls` | HTTPS through the platform's TLS library (add `rust-crypto` without default features for a build with no aws-lc at all) | no |
//! | `rust-crypto` | JOSE on the pure-Rust RustCrypto crates, for targets where aws-lc does not build; used only when `aws-lc-rs` is off. Without default features, one of the two is required | no |
//! | `loopback` | `LoopbackReceiver`: the RFC 8252 loopback redirect receiver (a small axum server) and opening the system browser | no |
//! | `file-store` | `FileStore`: tokens in a JSON file, replaced atomically, mode 0600, locked across processes (`fs4`) | no |
//! | `keyring` | `KeyringStore`: tokens in the OS credential store (macOS Keychain, Windows Credential Manager, Linux Secret Service or kernel keyring; `keyring` crate) | no |
//! | `redis` | `RedisStore`: tokens shared by every replica, with an expiring, renewed, fenced distributed refresh lock (`redis` crate) | no |
//! | `blocking` | `authed::blocking`: a synchronous client and token access for programs without a Tokio runtime, on an internal runtime thread | no |
//! | `middleware` | [`middleware::AuthMiddleware`]: the same token and 401 rules in a `reqwest_middleware` chain, composable with reqwest-retry and reqwest-tracing | no |
//! | `tower` | [`tower::AuthLayer`]: the same rules for any tower HTTP client (hyper-util's client, a tonic `Channel`; gRPC `UNAUTHENTICATED` counts as a 401) | no |
//! | `metrics` | counters and a histogram of token requests, cache hits, 401 retries and background refreshes through the `metrics` facade (see [Observability](#observability)) | no |
//! | `interop` | development only: builds the interop suite against a real authorization server (`scripts/interop`) | no |
//! | `testing` | [`testing::TestProvider`], an in-process provider and API over real HTTP, and [`testing::ManualClock`] | no |
//!
//! # Security
//!
//! Tokens, secrets, keys, PKCE verifiers, codes and assertions never appear in `Debug`,
//! `Display`, errors, logs or metrics; tokens go only to the origins you configure; the token
//! endpoint never follows redirects; provider endpoints must be HTTPS except on loopback;
//! sign-in always uses PKCE S256, and `state`, `nonce` and RFC 9207 `iss` are checked. Every
//! promise, with the test that plays the attacker: [`security`].
//!
//! 13. **A pushed request never shows its parameters to the browser**: the authorization URL
//!     carries only `client_id` and the single-use `request_uri`, pushed with client
//!     authentication (and a DPoP proof); the provider refuses a replayed or expired one.
//!     `tests/par.rs` `the_browser_gets_only_client_id_and_request_uri_and_every_parameter_is_pushed`,
//!     `a_request_uri_is_used_once_and_not_after_it_expires`; interop
//!     `fapi::a_replayed_request_uri_is_refused_and_the_sign_in_completes_once`.
//! 14. **A step-up challenge is never answered with a refresh**: the API's
//!     `insufficient_user_authentication` is [`Error::StepUpRequired`] after one request, and
//!     the sign-in that answers it checks the ID token's `acr` and `auth_time`.
//!     `tests/step_up.rs`; interop
//!     `fapi::a_step_up_answer_is_a_typed_error_and_the_new_sign_in_reaches_the_level_asked`.
//! 15. **FAPI 2.0 duties are checked before anything is sent**, each refusal naming its duty.
//!     `tests/fapi.rs` `each_configuration_duty_is_named`, `each_flow_duty_is_named`.
//!
//! All requests need a Tokio runtime, except through `authed::blocking` (feature `blocking`),
//! which brings its own.
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
// Panics impossible by construction: library code returns typed errors instead. The few
// invariants that remain are allowed where they are, each with the proof in a comment; unit
// tests are exempt through clippy.toml, the `testing` module in its own root.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorization_details;
mod authorize;
#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub mod blocking;
mod browser;
mod challenge;
mod claims;
mod client;
mod clock;
mod config;
mod discovery;
mod dpop;
mod end_session;
mod endpoint;
mod endpoints;
mod env;
mod error;
mod fapi;
mod future;
mod headers;
mod id_token;
mod introspect;
mod jose;
mod login;
#[cfg(feature = "loopback")]
mod loopback;
#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub mod middleware;
mod mtls;
mod oauth_error;
pub mod observability;
mod origins;
mod provider_codes;
pub mod providers;
mod registration;
mod request_url;
mod reqwest_exchange;
mod retry;
mod revoke;
mod source;
mod spent_sign_ins;
mod store;
mod telemetry;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod token;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;
mod transport_failure;
mod userinfo;
mod workload;

#[doc = include_str!("../SECURITY.md")]
pub mod security {}

// The README's code blocks compile as doc tests, so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use authorization_details::AuthorizationDetail;
pub use challenge::StepUp;
pub use claims::Address;
pub use client::{AuthedClient, AuthedClientBuilder, RequestBuilder};
pub use clock::{Clock, SystemClock};
pub use config::{Endpoints, OAuthConfig, OAuthConfigBuilder};
pub use end_session::{EndSession, EndSessionBuilder, SignOut};
pub use endpoint::ClientAuthMethod;
pub use env::Env;
pub use error::{CallbackError, Error, IdTokenError, Unauthorized, UserInfoError};
pub use fapi::{Fapi2, FapiDuty};
pub use future::BoxFuture;
pub use headers::{AfterResponse, AuthHeaders, AuthHeadersBuilder, RequestAuth};
pub use id_token::IdTokenClaims;
pub use introspect::{Confirmation, Introspection};
pub use jose::{DpopKey, JwsSigner, PublicJwk, SigningAlgorithm, SigningKey};
pub use login::LostRefresh;
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use loopback::{LoopbackReceiver, LoopbackReceiverBuilder, Prompt, TerminalPrompt};
#[cfg(any(feature = "default-tls", feature = "native-tls"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "default-tls", feature = "native-tls"))))]
pub use mtls::identity_from_pem;
pub use oauth_error::OAuthError;
pub use provider_codes::DeadGrant;
pub use registration::{ClientMetadata, Registration};
pub use request_url::RequestUrl;
pub use retry::RetryPolicy;
pub use revoke::{Revocation, Revoked};
pub use source::{
    AuthorizationCode, AuthorizationCodeBuilder, Callback, ClientCredentials,
    ClientCredentialsBuilder, DeviceAuthorization, DeviceAuthorizationBuilder, DeviceCode,
    JwtBearer, JwtBearerBuilder, Logout, PendingAuthorization, RefreshTokenSource,
    RefreshTokenSourceBuilder, ResourceTokenSource, ResourceTokenSourceBuilder, ResponseMode,
    StaticToken, SubjectToken, TokenExchange, TokenExchangeBuilder, TokenFuture, TokenSource,
    UserSources, UserSourcesBuilder, token_types,
};
#[cfg(feature = "file-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "file-store")))]
pub use store::FileStore;
#[cfg(feature = "keyring")]
#[cfg_attr(docsrs, doc(cfg(feature = "keyring")))]
pub use store::KeyringStore;
pub use store::{IntoTokenStore, MemoryStore, ObservedStore, StoreChange, StoreLock, TokenStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::{RedisStore, RedisStoreBuilder};
pub use token::{AccessToken, ClientSecret, ExpiryPolicy, IdToken, RefreshToken, Token};

pub use userinfo::UserInfo;
pub use workload::{
    AzureManagedIdentity, AzureManagedIdentityBuilder, DefaultCredentials,
    DefaultCredentialsBuilder, GcpMetadata, GcpMetadataBuilder, GitHubActionsOidc,
    GitHubActionsOidcBuilder, KubernetesServiceAccount, KubernetesServiceAccountBuilder,
};

/// The `reqwest` this crate is built on, so you name the same version.
pub use reqwest;
