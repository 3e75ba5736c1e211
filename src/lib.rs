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
//! Every request to a provider (token, revocation, device authorization, JWKS, discovery,
//! userinfo, registration) runs in an INFO span `provider_request`, one per call with all its
//! retries. Every caller
//! that has to wait for a token runs in an INFO span `token_wait`; the `provider_request` of
//! the token request it started is its child, and a background refresh runs in the span of the
//! request whose read found the token due. Both are made in `authed::telemetry` (their target).
//!
//! | Span | Field | Value |
//! |---|---|---|
//! | `provider_request` | `grant` | `client_credentials`, `refresh_token`, `authorization_code`, `device_code`, `jwt_bearer`, `token_exchange` or `other`; else `revocation`, `device_authorization`, `jwks`, `discovery`, `userinfo`, `registration`, `workload` (a metadata server, GitHub's OIDC endpoint) |
//! | | `host` | the endpoint's host: no path, no query |
//! | | `attempts` | requests sent, retries included (`0` when a `Retry-After` wait ruled out sending) |
//! | | `status` | the last answer's HTTP status (none after a transport failure) |
//! | | `outcome` | `ok`, or the error's [`Error::kind`] (`invalid_grant`, `transport`, `rate_limited`, ...) |
//! | | `duration_ms` | the whole call, backoff and `Retry-After` waits included |
//! | `token_wait` | `reason` | `missing` (no token yet), `expired`, or `rejected` (a 401 `invalid_token`) |
//! | | `refresh` | `started` (this caller started the token request) or `joined` (one was in flight) |
//! | | `outcome`, `wait_ms` | `ok` or the error's kind; how long the caller waited |
//!
//! With feature `metrics`, the crate records through the [`metrics`](https://docs.rs/metrics)
//! facade into whatever recorder the application installs (a Prometheus exporter, StatsD, ...):
//!
//! | Metric | Type | Labels | What |
//! |---|---|---|---|
//! | `authed_token_requests_total` | counter | `grant`, `outcome` (`ok` / `error`) | provider calls, as the span counts them |
//! | `authed_token_request_failures_total` | counter | `grant`, `kind` ([`Error::kind`]) | failed provider calls |
//! | `authed_token_request_duration_seconds` | histogram | `grant` | each call's duration: refresh latency |
//! | `authed_cache_hits_total` | counter | none | `token()` calls answered from the cache |
//! | `authed_cache_misses_total` | counter | none | `token()` calls that found no valid token and waited |
//! | `authed_unauthorized_retries_total` | counter | none | requests sent once more with a fresh token after a 401 |
//! | `authed_background_refreshes_total` | counter | `outcome` (`ok` / `error`) | refreshes ahead of expiry, while the token was still valid |
//!
//! Labels and span fields only take values from these fixed sets: never a token, a secret, a
//! URL or a client id (which is not secret, but a multi-tenant app has too many for a label).
//! The cache's counters are registered when a token source is built, so install the recorder
//! first. A cache hit then costs one atomic increment more (BENCHMARKS.md); without the feature
//! nothing.
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
//! General promises:
//!
//! - Tokens, refresh tokens, ID tokens, client secrets, private keys, client assertions,
//!   subject tokens, DPoP private keys and proofs, and client certificate keys never appear
//!   in `Debug`, `Display`, errors, `tracing` output (tested at TRACE level, span fields
//!   included) or metric labels (`tests/observability.rs`); the `Authorization` and `DPoP`
//!   headers are marked sensitive.
//! - Client assertions live 60 seconds and carry a random `jti`; each request gets a new one.
//!   Client authentication never falls back to a method the provider's metadata does not
//!   list.
//! - Token endpoint requests never follow redirects, read at most 1 MiB, and time out (30 s).
//! - Tokens, and the DPoP proofs of DPoP-bound tokens, go only to the origins you configure,
//!   through every front door ([`AuthedClient`], `AuthMiddleware`, `AuthLayer`, [`AuthHeaders`]):
//!   a request elsewhere is refused before sending; redirects are followed only within those
//!   origins, each hop with a fresh proof, and a redirect to any other origin is not followed
//!   but returned as the API's answer, so nothing reaches that origin (a `reqwest::Client` of
//!   your own must be built with `redirect::Policy::none()`; one that follows a redirect
//!   elsewhere anyway gets `Error::UntrustedRedirect`, never that origin's answer).
//!   `tests/redirects.rs` `authed_client_returns_a_redirect_elsewhere_unfollowed`,
//!   `the_middleware_returns_a_redirect_elsewhere_unfollowed`,
//!   `the_tower_layer_never_sends_a_redirect_hop_elsewhere`,
//!   `a_redirect_within_the_allowed_origins_is_followed_with_a_fresh_proof`,
//!   `a_client_that_follows_redirects_itself_never_yields_the_other_origins_answer`.
//! - A rotated refresh token is saved before the new access token is handed out.
//! - Provider endpoints must be HTTPS except on loopback hosts, unless you opt out with a
//!   setting named `danger_allow_insecure_http`.
//! - Sign-in always uses PKCE with S256 (no `plain`); `state` and `nonce` are compared in
//!   constant time, and so is `==` on every secret type (`AccessToken`, `RefreshToken`,
//!   `IdToken`, `ClientSecret`: `tests/constant_time.rs` counts its instructions with callgrind,
//!   equal wherever two secrets differ); verifiers, `state`, nonces and codes are never logged or
//!   shown by `Debug`.
//! - A revoked grant is an error ([`Error::TokenRevoked`]); `authed` never starts an interactive
//!   login on its own.
//!
//! Sign-in (RFC 9700, RFC 8252, RFC 9207, OpenID Connect Core), each promise with the test that
//! plays the attacker (`tests/sign_in_security.rs` unless named otherwise):
//!
//! 1. **An authorization code is sent at most once.** `complete` consumes the
//!    `PendingAuthorization`, and every flow of the same `OAuthConfig` refuses a second
//!    completion of the same sign-in (a copy from a session store, through the same flow or
//!    another, however many sign-ins came in between) with `CallbackError::AlreadyCompleted` and
//!    no request. The memory is bounded by time, not count: a pending authorization lives 10
//!    minutes (`pending_lifetime`), after which it is refused with `CallbackError::Expired`, no
//!    request. A failed exchange that looks passing is `Error::CodeExchange`, never
//!    `is_retryable()`.
//!    `point1_a_replayed_completion_sends_nothing_and_a_failed_exchange_is_not_retryable`;
//!    `tests/sign_in_replay.rs` `a_replay_after_thousands_of_later_sign_ins_sends_nothing`,
//!    `a_replay_through_another_flow_of_the_same_configuration_sends_nothing`,
//!    `an_expired_pending_authorization_is_refused_without_a_request`;
//!    interop `authorization_code_with_pkce_then_refresh_rotation_and_reuse_detection`.
//! 2. **RFC 9207 `iss` is compared exactly** (after form-decoding), and required when the
//!    metadata says `authorization_response_iss_parameter_supported`; discovery's issuer check is
//!    an identical-string check, and presets state exact issuers.
//!    `point2_an_equivalent_but_different_iss_is_a_mix_up`,
//!    `point2_a_callback_without_iss_is_refused_when_discovery_says_the_server_sends_it`,
//!    `tests/discovery.rs` `an_issuer_that_is_only_equivalent_is_refused`; interop
//!    `a_callback_whose_iss_is_removed_is_refused_because_discovery_says_it_is_sent`.
//! 3. **Callbacks are parsed strictly**: a repeated `code`, `state`, `iss` or `error`, `code`
//!    with `error`, or an over-long `code` (4 KiB) or `state` (1 KiB) is refused before any
//!    token request. `point3_repeated_conflicting_or_huge_callback_parameters_are_refused`.
//! 4. **The loopback receiver** takes the response only as a `GET` of its exact path with
//!    `Host: 127.0.0.1:<port>`; anything else gets a 4xx and it keeps waiting. Its page says
//!    "Signed in" only after the exchange succeeded, loads nothing, and is sent with
//!    `Referrer-Policy: no-referrer`, `Cache-Control: no-store` and `default-src 'none'`.
//!    `point4_the_loopback_receiver_takes_only_a_get_for_its_own_host_and_tells_the_truth`.
//! 5. **Every URL handed to a browser or a user is validated** by one check — the
//!    authorization URL and the device flow's `verification_uri(_complete)`: https, or http on
//!    loopback; no other scheme, no user info, nothing a launcher reads as an option.
//!    `point5_device_flow_urls_that_are_not_https_are_refused`.
//! 6. **HTTPS everywhere**: a `redirect_uri` must be https unless it is loopback (or a native
//!    app's reverse-domain private-use scheme); each `danger_*` opt-out logs exactly one WARN
//!    when it takes effect.
//!    `point6_a_plain_http_redirect_uri_is_refused_and_each_opt_out_warns_once`.
//! 7. **A 401 from an origin the token was not sent to is not the token's rejection**: after a
//!    redirect to another allowed origin that a client of your own followed (reqwest drops
//!    the token), its 401 is
//!    `Error::RedirectedUnauthorized`, with no refresh and no replay. `tests/authed_client.rs`
//!    `a_401_from_another_origin_after_a_redirect_is_not_the_tokens_rejection`.
//! 8. **Token responses are validated** (RFC 6749 §5.1, §7.1): a `token_type` other than
//!    `Bearer` (any case; missing means Bearer), or `DPoP` for a configuration with DPoP, is
//!    `Error::UnsupportedTokenType`, never sent (a DPoP configuration answered with a Bearer
//!    token too: no silent downgrade; a DPoP token is never sent as Bearer,
//!    `tests/dpop.rs` `a_dpop_source_refuses_a_bearer_token`,
//!    `a_dpop_token_is_never_sent_as_bearer`);
//!    an access token with characters outside VSCHAR (CR, LF, NUL, ...) is refused at the token
//!    endpoint, never cached; a token exchange answer without `issued_token_type` (RFC 8693
//!    §2.2.1) is `Error::MalformedResponse`, never cached. `tests/provider_errors.rs`
//!    `attack_unknown_token_type_is_never_sent_as_bearer`,
//!    `attack_access_token_with_cr_lf_is_refused_at_the_token_endpoint`;
//!    `tests/token_exchange.rs` `an_answer_without_issued_token_type_is_refused_and_not_cached`.
//! 9. **The ID token is validated whenever a nonce is sent**: signature against the provider's
//!    JWKS (RS256, PS256, ES256, EdDSA; `none` and HMAC refused; the JWKS fetched again on an
//!    unknown `kid` at most every 10 s), `iss`, `aud` / `azp`, `exp` / `nbf` / `iat` with 60 s of
//!    skew, `nonce`. The claims (`sub`, `email`, `name`, the rest as JSON) are on the login.
//!    Every key of the JWKS is checked before any crypto library sees it (type, curve, exact
//!    sizes, `alg`, `use`, `key_ops`): a bad key is skipped, never a panic. `tests/provider_keys.rs`,
//!    the fuzz target `tests/fuzz.rs`.
//!    `point9_every_kind_of_bad_id_token_is_refused_and_nothing_is_stored`,
//!    `point9_good_id_tokens_of_each_algorithm_are_accepted_and_their_claims_exposed`,
//!    `point9_a_rotated_key_is_fetched_again_but_unknown_kids_only_within_a_limit`; interop
//!    `authorization_code_with_pkce_then_refresh_rotation_and_reuse_detection` (oidc-provider's
//!    real JWKS).
//! 10. **Logins never mix**: the default store key covers the token URL, client id, scopes and
//!     every other request parameter, and the validated ID token's `sub` (or the key the app
//!     passes to `complete_as`), so neither two users nor two scope sets share a stored login.
//!     `point10_two_users_and_two_scopes_never_share_a_stored_login`.
//! 11. **No store, parser or flow error carries stored or received content** (a `FileStore` that
//!     cannot be parsed names the line and column, not the content; discovery does not quote a
//!     claimed issuer). `point11_an_unreadable_file_store_does_not_quote_its_content`.
//! 12. **Your own `reqwest` settings for provider endpoints** (private CA, proxy, User-Agent)
//!     through `OAuthConfigBuilder::http_client` and `OAuthConfig::discover_with`, for token,
//!     discovery, revocation, device and JWKS requests, with redirects still refused, the
//!     timeout and the size cap kept. A failed certificate check is
//!     `Error::ServerCertificateRejected`, a client certificate the server refuses in the
//!     handshake `Error::ClientCertificateRejected` (matchable types, configuration errors, sent
//!     once and never `is_retryable()`). `tests/tls.rs`
//!     `an_untrusted_server_certificate_is_a_typed_error_that_is_not_retried`,
//!     `a_client_certificate_the_server_refuses_is_typed_and_not_retried`,
//!     `your_own_client_settings_reach_the_provider_and_the_crates_rules_still_hold`,
//!     `discovery_uses_your_own_client_settings_and_keeps_them_for_the_token_request`.
//! 13. **Nothing received goes into an error unbounded**: every value taken from a response,
//!     headers included, is cut to 512 characters with control characters replaced before it
//!     reaches an error (a 60 KB `Content-Type` shows as 64 characters), and a `DPoP-Nonce`
//!     longer than 512 bytes is ignored rather than sent back in every proof.
//!     `tests/hostile_values.rs` `a_huge_content_type_does_not_reach_the_error_whole`,
//!     `huge_provider_texts_in_every_shape_are_bounded_and_cleaned`,
//!     `a_huge_challenge_from_the_api_is_bounded_and_cleaned`,
//!     `a_huge_dpop_nonce_is_not_kept_or_sent_back`.
//! 14. **No provider input panics the crate**: token responses (any status, `Content-Type` and
//!     body, with and without DPoP), `DPoP-Nonce` headers, JWKS documents and ID tokens (forged,
//!     really signed with any claims, one character changed, against hostile key sets) are
//!     fuzzed through the crate's own parsers (`authed::testing::fuzz`); `cargo test --test fuzz`
//!     runs 1,000 cases per target, `AUTHED_FUZZ_CASES=100000 cargo test --release --test fuzz`
//!     the long run, with 0 panics. `tests/fuzz.rs` `token_responses_never_panic`,
//!     `dpop_nonces_never_panic`, `jwks_documents_never_panic`, `forged_id_tokens_are_refused`,
//!     `signed_id_tokens_are_judged_by_their_claims`, `a_changed_character_breaks_a_good_token`.
//! 15. **A dead grant is never mistaken for a passing failure, nor a rate limit for a dead
//!     grant**: Microsoft's `invalid_grant` AADSTS50196 (a request loop) is `Error::RateLimited`
//!     and keeps the login; every dead-grant shape (numeric, `errors` arrays, Facebook's 190, a
//!     preset's words) removes it. `tests/provider_limits.rs`
//!     `microsoft_request_loop_throttling_is_a_rate_limit_not_a_dead_grant`,
//!     `facebook_code_190_is_a_dead_grant`.
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
mod env;
mod error;
mod future;
mod headers;
mod id_token;
mod introspect;
mod jose;
#[cfg(feature = "loopback")]
mod loopback;
#[cfg(feature = "middleware")]
#[cfg_attr(docsrs, doc(cfg(feature = "middleware")))]
pub mod middleware;
mod mtls;
mod oauth_error;
mod origins;
mod provider_codes;
pub mod providers;
mod registration;
mod request_url;
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

pub use claims::Address;
pub use client::{AuthedClient, AuthedClientBuilder, RequestBuilder};
pub use clock::{Clock, SystemClock};
pub use config::{Endpoints, OAuthConfig, OAuthConfigBuilder};
pub use end_session::{EndSession, EndSessionBuilder, SignOut};
pub use endpoint::ClientAuthMethod;
pub use env::Env;
pub use error::{CallbackError, Error, IdTokenError, Unauthorized, UserInfoError};
pub use future::BoxFuture;
pub use headers::{AfterResponse, AuthHeaders, AuthHeadersBuilder, RequestAuth};
pub use id_token::IdTokenClaims;
pub use introspect::{Confirmation, Introspection};
pub use jose::{DpopKey, JwsSigner, PublicJwk, SigningAlgorithm, SigningKey};
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
    RefreshTokenSourceBuilder, ResourceTokenSource, ResourceTokenSourceBuilder, StaticToken,
    SubjectToken, TokenExchange, TokenExchangeBuilder, TokenFuture, TokenSource, UserSources,
    UserSourcesBuilder, token_types,
};
#[cfg(feature = "file-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "file-store")))]
pub use store::FileStore;
#[cfg(feature = "keyring")]
#[cfg_attr(docsrs, doc(cfg(feature = "keyring")))]
pub use store::KeyringStore;
pub use store::{MemoryStore, ObservedStore, StoreChange, StoreLock, TokenStore};
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
