//! The one place that talks to a provider's endpoints: client authentication, form encoding,
//! no redirects, a timeout, a response size cap, provider quirks normalised, and RFC 6749 §5.2
//! errors mapped to typed errors. Every grant, revocation and device authorization goes
//! through [`Endpoint`]'s sending (`send.rs`), and every provider call (JWKS and discovery
//! too) through its `observed`, which gives it its `tracing` span and metrics.
//!
//! We build these requests ourselves rather than through `oauth2`'s `AsyncHttpClient`: its
//! response parsing rejects the quirks real providers have (string `expires_in`,
//! form-encoded bodies, errors sent with HTTP 200) and has no size cap, and its reqwest
//! integration is for reqwest 0.12. `oauth2` still provides PKCE and state generation.
//!
//! This file only declares and re-exports. Floors inside: `form`, then `answer` (reading an
//! answer and its errors), `client_auth` and `token_answer` (an answer into a token), then
//! `send`.

mod answer;
mod client_auth;
mod form;
mod send;
mod token_answer;

// The parsers `testing::fuzz` runs without a network.
pub(crate) use answer::{Answer, RawAnswer, answer_from_body, read_raw, seconds};
#[cfg(feature = "testing")]
pub(crate) use answer::{parse_fields, rate_limit_error};
pub use client_auth::ClientAuthMethod;
pub(crate) use client_auth::{
    AssertionSigner, ClientAssertion, default_auth_method, hmac_algorithm, jwt_claims,
    negotiate_key_algorithm, read_assertion_file,
};
pub(crate) use form::Form;
pub(crate) use send::{Endpoint, get_json, get_workload, http_client_from, observed, post_json};
pub(crate) use token_answer::nested_token;
#[cfg(test)]
pub(crate) use token_answer::token_from_answer;
pub(crate) use token_answer::token_from_answer_bound;
