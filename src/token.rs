//! Tokens, their secret parts, and expiry math.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::jose::DpopKey;
use crate::login::Lineage;

macro_rules! secret_string {
    ($(#[$doc:meta])* $vis:vis $name:ident) => {
        $(#[$doc])*
        ///
        /// `Debug` prints `[redacted]`; there is no `Display`. Serializing writes the secret in
        /// clear, so that [`TokenStore`](crate::TokenStore)s can keep it: protect what you
        /// serialize.
        #[derive(Clone)]
        $vis struct $name(SecretString);

        impl $name {
            /// Wraps a secret value.
            pub fn new(secret: impl Into<String>) -> Self {
                Self(SecretString::from(secret.into()))
            }

            /// The secret value. Every call site is a place where the secret leaves its box:
            /// keep them few.
            pub fn secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }

        /// Compares in constant time for secrets of equal length (only the lengths can
        /// tell two secrets apart early): an attacker timing a comparison learns nothing
        /// of where they differ.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                use subtle::ConstantTimeEq as _;
                self.secret().as_bytes().ct_eq(other.secret().as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.secret())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_string!(
    /// An OAuth access token.
    pub AccessToken
);
secret_string!(
    /// An OAuth refresh token.
    pub RefreshToken
);
secret_string!(
    /// An OpenID Connect ID token (a JWT that can carry personal data).
    pub IdToken
);
secret_string!(
    /// An OAuth client secret.
    pub ClientSecret
);
secret_string!(
    /// Any other secret the crate holds for a while: PKCE verifiers, `state`, nonces, device
    /// codes.
    pub(crate) Secret
);

/// A token response from a provider, with its expiry made absolute.
///
/// `Debug` shows the token type, times and scopes, never a token. Serializes to JSON for
/// [`TokenStore`](crate::TokenStore)s with times as Unix seconds.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    access_token: AccessToken,
    token_type: String,
    #[serde(default, with = "unix_seconds")]
    expires_at: Option<SystemTime>,
    #[serde(default, with = "unix_seconds")]
    received_at: Option<SystemTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<RefreshToken>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_token: Option<IdToken>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    extra: serde_json::Map<String, serde_json::Value>,
    /// The key a DPoP-bound token (and its refresh token) is bound to. Stored with the
    /// login; older stored tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<DpopKey>,
    /// The login this token belongs to, and the records stores keep about it (see
    /// `login.rs`). Older stored tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login: Option<Lineage>,
    #[serde(skip)]
    header: HeaderCache,
    #[serde(skip)]
    untimed: Untimed,
}

/// What every request with a token derives from it, made on first use: the `Authorization`
/// header (formatting and validating it on every request was the largest cost
/// `AuthedClient` added over a fixed header) and, for a DPoP-bound token, the proofs' `ath`
/// (a SHA-256 of the token, the same for every proof).
#[derive(Clone, Default)]
struct HeaderCache(
    std::sync::OnceLock<Option<http::HeaderValue>>,
    std::sync::OnceLock<Box<str>>,
);

/// Derived from the access token, so never a difference between two tokens.
impl PartialEq for HeaderCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Set by the cache that hands the token out while no request latency could make it
/// expiring (the first part of its life, see `cache::expiry`): the request rules then skip
/// timing requests sent with it, two clock reads and a report each. Tokens from anywhere else
/// are timed.
#[derive(Default)]
struct Untimed(AtomicBool);

impl Clone for Untimed {
    fn clone(&self) -> Self {
        Untimed(AtomicBool::new(self.0.load(Ordering::Relaxed)))
    }
}

/// Where the token is in its cache's life, not part of the token.
impl PartialEq for Untimed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Token {
    /// A bearer token with no expiry, received at `received_at`.
    pub fn new(access_token: AccessToken) -> Self {
        Token {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_at: None,
            received_at: None,
            refresh_token: None,
            scopes: None,
            id_token: None,
            extra: serde_json::Map::new(),
            dpop_key: None,
            login: None,
            header: HeaderCache::default(),
            untimed: Untimed::default(),
        }
    }

    /// Sets the token type (`Bearer` unless the provider said otherwise).
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }

    /// Sets the lifetime: the token was received at `received_at` and expires `lifetime`
    /// later. Knowing both lets the cache shrink its margins for short-lived tokens.
    pub fn with_lifetime(mut self, received_at: SystemTime, lifetime: Duration) -> Self {
        self.received_at = Some(received_at);
        // A provider can send an absurd `expires_in`; treat an overflow as "no expiry".
        self.expires_at = received_at.checked_add(lifetime);
        self
    }

    /// Sets an absolute expiry without a known lifetime.
    pub fn with_expires_at(mut self, expires_at: Option<SystemTime>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, refresh_token: Option<RefreshToken>) -> Self {
        self.refresh_token = refresh_token;
        self
    }

    /// Sets the granted scopes.
    pub fn with_scopes(mut self, scopes: Option<Vec<String>>) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the ID token.
    pub fn with_id_token(mut self, id_token: Option<IdToken>) -> Self {
        self.id_token = id_token;
        self
    }

    /// Sets the response's other fields.
    pub fn with_extra(mut self, extra: serde_json::Map<String, serde_json::Value>) -> Self {
        self.extra = extra;
        self
    }

    /// Binds the token to a DPoP key (RFC 9449): it is then sent as
    /// `Authorization: DPoP <token>` with a proof signed by `key`, and refreshed with proofs
    /// by the same key. Tokens from a DPoP-configured source come bound already.
    pub fn with_dpop_key(mut self, key: Option<DpopKey>) -> Self {
        self.dpop_key = key;
        self.header = HeaderCache::default();
        self
    }

    /// The DPoP key the token is bound to, if it is DPoP-bound.
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop_key.as_ref()
    }

    /// The identity of the login this token belongs to: made when the login was created (a
    /// sign-in, a device flow, [`from_token`](crate::RefreshTokenSourceBuilder::from_token)),
    /// stored with it, the same across its refreshes. A source serves only its own login: one
    /// that finds another login under its key ends with [`Error::LoginReplaced`](crate::Error::LoginReplaced).
    /// `None` for tokens that are not a user's login (client credentials) and for logins
    /// stored by an older version of this crate.
    pub fn login_id(&self) -> Option<&str> {
        self.login.as_ref().map(|l| l.id.as_str())
    }

    pub(crate) fn lineage(&self) -> Option<&Lineage> {
        self.login.as_ref()
    }

    pub(crate) fn lineage_mut(&mut self) -> &mut Option<Lineage> {
        &mut self.login
    }

    pub(crate) fn with_lineage(mut self, lineage: Option<Lineage>) -> Self {
        self.login = lineage;
        self
    }

    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    /// The token type as the provider sent it, normalised so that `bearer` reads `Bearer`.
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token expires, if the provider said.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// When the token was received, if known.
    pub fn received_at(&self) -> Option<SystemTime> {
        self.received_at
    }

    /// How long the token was issued for, if known.
    pub fn lifetime(&self) -> Option<Duration> {
        self.expires_at?.duration_since(self.received_at?).ok()
    }

    /// The refresh token, if any.
    pub fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    /// The granted scopes, if the provider listed them.
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// The OpenID Connect ID token, if any.
    pub fn id_token(&self) -> Option<&IdToken> {
        self.id_token.as_ref()
    }

    /// The response's fields this type has no place for.
    pub fn extra(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.extra
    }

    /// The `authorization_details` the provider granted (RFC 9396 §7), from the token
    /// response: `None` when it sent none (or an `extra` set by hand holds something else).
    /// A token response with malformed ones is refused, so a token from a provider has
    /// either none or well-formed ones.
    pub fn authorization_details(&self) -> Option<Vec<crate::AuthorizationDetail>> {
        self.extra
            .get("authorization_details")
            .and_then(crate::authorization_details::from_value)
    }

    /// `true` when the token is still usable at `now` with `margin` to spare.
    ///
    /// The margin is clamped for short-lived tokens (see [`ExpiryPolicy`]). A token without an
    /// expiry is always valid: the API's 401 is what retires it.
    pub fn is_valid_at(&self, now: SystemTime, policy: &ExpiryPolicy) -> bool {
        policy.valid_until(self).is_none_or(|until| now < until)
    }

    /// Whether requests sent with this token are timed for its source
    /// ([`TokenSource::request_latency`](crate::TokenSource::request_latency)).
    pub(crate) fn is_timed(&self) -> bool {
        !self.untimed.0.load(Ordering::Relaxed)
    }

    /// See [`is_timed`](Self::is_timed); set by the cache that hands the token out.
    pub(crate) fn set_timed(&self, timed: bool) {
        // Loaded first: every read past the quiet part of the token's life calls this, and a
        // store on every read would bounce the cache line between cores.
        if self.is_timed() != timed {
            self.untimed.0.store(!timed, Ordering::Relaxed);
        }
    }

    /// `Bearer <access token>`, or `DPoP <access token>` for a DPoP token, marked
    /// sensitive; `None` when the token has characters a header cannot carry, or is a DPoP
    /// token without its key (never sent as Bearer, RFC 9449 §7.1).
    pub(crate) fn bearer_header(&self) -> Option<http::HeaderValue> {
        self.header
            .0
            .get_or_init(|| {
                let scheme = match (crate::jose::is_dpop_type(&self.token_type), &self.dpop_key) {
                    (true, Some(_)) => "DPoP",
                    (true, None) => return None,
                    (false, _) => "Bearer",
                };
                let mut value =
                    http::HeaderValue::try_from(format!("{scheme} {}", self.access_token.secret()))
                        .ok()?;
                value.set_sensitive(true);
                Some(value)
            })
            .clone()
    }

    /// The DPoP proofs' `ath` for this token, made by `make` from the access token on first
    /// use and kept (`dpop.rs` knows how).
    pub(crate) fn ath(&self, make: impl FnOnce(&str) -> String) -> &str {
        self.header
            .1
            .get_or_init(|| make(self.access_token.secret()).into_boxed_str())
    }

    /// Takes the refresh token out of this token: it belongs to the login, not to a token
    /// for one of its resources.
    pub(crate) fn take_refresh_token(&mut self) -> Option<RefreshToken> {
        self.refresh_token.take()
    }

    /// Takes the refresh token from `previous` when this token has none: providers that do
    /// not rotate refresh tokens omit them from refresh responses (RFC 6749 §6). The ID token
    /// too: a refresh response need not carry one (OpenID Connect Core §12.2), and the login
    /// still needs it (the subject its UserInfo is checked against, the `id_token_hint` of
    /// its logout).
    pub(crate) fn keep_refresh_token_from(&mut self, previous: &Token) {
        if self.refresh_token.is_none() {
            self.refresh_token = previous.refresh_token.clone();
        }
        if self.id_token.is_none() {
            self.id_token = previous.id_token.clone();
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("has_refresh_token", &self.refresh_token.is_some())
            .field("has_id_token", &self.id_token.is_some())
            .field("scopes", &self.scopes)
            .field("dpop_bound", &self.dpop_key.is_some())
            .field("login_id", &self.login_id())
            .finish_non_exhaustive()
    }
}

/// When a cached token stops being handed out, and when a replacement is fetched early.
///
/// A token is used until `expires_at - expiry_margin`. Its replacement is fetched in the
/// background from `expires_at - expiry_margin - refresh_ahead` on, while callers keep the
/// current token. Both durations are clamped to a quarter of the token's lifetime, so a
/// 60-second token is used for 30 seconds before a background refresh and 45 before callers
/// wait, instead of looking expired on arrival.
///
/// The margin also grows with the network. Every request sent through the crate's front
/// doors ([`AuthedClient`](crate::AuthedClient), the middleware, the tower layer,
/// [`AuthHeaders`](crate::AuthHeaders)) reports how long it took, from taking the token to
/// the answer ([`TokenSource::request_latency`](crate::TokenSource::request_latency)). The
/// caches of this crate's sources then use a margin of **twice the slowest request of the
/// last 5–10 seconds** when that is longer than `expiry_margin`, so that a token that would
/// expire before a request sent now arrives is not handed out: callers wait for the one
/// refresh instead (and the refresh-ahead moves earlier by as much). That latency margin is
/// capped at **half the token's lifetime** (without a known lifetime, half the time it had
/// left when it arrived): a slow network, or an API that holds requests such as a long poll,
/// never makes a fresh token count as expiring, so tokens are not refreshed in a loop; at
/// worst a token is handed out for the first half of its life and replaced from a quarter
/// of it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    expiry_margin: Duration,
    refresh_ahead: Duration,
}

impl Default for ExpiryPolicy {
    /// 60 seconds of margin, 5 minutes of refresh-ahead.
    ///
    /// 60 s covers ordinary clock skew between us, the provider and the API, plus a request
    /// that is slow to arrive (Duende and Authlib use the same). Refreshing ahead means
    /// callers almost never wait for the margin: with the default, a one-hour token is
    /// replaced in the background after 54 minutes.
    fn default() -> Self {
        ExpiryPolicy {
            expiry_margin: Duration::from_secs(60),
            refresh_ahead: Duration::from_secs(300),
        }
    }
}

/// The largest share of a token's lifetime that either margin may take.
const MAX_LIFETIME_SHARE: u32 = 4;

impl ExpiryPolicy {
    /// A policy with the given margin and refresh-ahead window.
    pub fn new(expiry_margin: Duration, refresh_ahead: Duration) -> Self {
        ExpiryPolicy {
            expiry_margin,
            refresh_ahead,
        }
    }

    /// The configured expiry margin, before clamping.
    pub fn expiry_margin(&self) -> Duration {
        self.expiry_margin
    }

    /// The configured refresh-ahead window, before clamping.
    pub fn refresh_ahead(&self) -> Duration {
        self.refresh_ahead
    }

    fn clamp(&self, d: Duration, token: &Token) -> Duration {
        match token.lifetime() {
            Some(lifetime) => d.min(lifetime / MAX_LIFETIME_SHARE),
            None => d,
        }
    }

    /// The instant from which `token` is no longer handed out; `None` if it never expires.
    pub fn valid_until(&self, token: &Token) -> Option<SystemTime> {
        let expires_at = token.expires_at?;
        let margin = self.clamp(self.expiry_margin, token);
        Some(expires_at.checked_sub(margin).unwrap_or(UNIX_EPOCH))
    }

    /// The instant from which a replacement for `token` is fetched in the background.
    pub fn refresh_at(&self, token: &Token) -> Option<SystemTime> {
        let until = self.valid_until(token)?;
        let ahead = self.clamp(self.refresh_ahead, token);
        Some(until.checked_sub(ahead).unwrap_or(UNIX_EPOCH))
    }
}

mod unix_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?
            .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn token(lifetime: u64) -> Token {
        Token::new(AccessToken::new("at-secret"))
            .with_lifetime(at(1_000_000), Duration::from_secs(lifetime))
    }

    #[test]
    fn margin_boundary_is_exact() {
        let policy = ExpiryPolicy::default();
        let t = token(3600);
        let until = at(1_000_000 + 3600 - 60);
        assert_eq!(policy.valid_until(&t), Some(until));
        assert!(t.is_valid_at(until - Duration::from_nanos(1), &policy));
        assert!(!t.is_valid_at(until, &policy));
        assert_eq!(
            policy.refresh_at(&t),
            Some(until - Duration::from_secs(300))
        );
    }

    #[test]
    fn short_lived_tokens_get_a_clamped_margin() {
        let policy = ExpiryPolicy::default();
        let t = token(60);
        assert_eq!(policy.valid_until(&t), Some(at(1_000_000 + 45)));
        assert_eq!(policy.refresh_at(&t), Some(at(1_000_000 + 30)));
        assert!(t.is_valid_at(at(1_000_000), &policy), "valid on arrival");

        let two_seconds = token(2);
        assert_eq!(
            policy.valid_until(&two_seconds),
            Some(at(1_000_000) + Duration::from_millis(1500))
        );
    }

    #[test]
    fn token_without_expiry_is_always_valid() {
        let t = Token::new(AccessToken::new("x"));
        assert!(t.is_valid_at(SystemTime::now(), &ExpiryPolicy::default()));
    }

    #[test]
    fn bearer_header_is_sensitive_and_refuses_bad_tokens() {
        let h = token(60).bearer_header().unwrap();
        assert!(h.is_sensitive());
        assert_eq!(h.to_str().unwrap(), "Bearer at-secret");
        assert!(
            Token::new(AccessToken::new("a\nb"))
                .bearer_header()
                .is_none()
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let t = token(60)
            .with_refresh_token(Some(RefreshToken::new("rt-secret")))
            .with_id_token(Some(IdToken::new("id-secret")));
        let shown = format!("{t:?} {:?}", t.access_token());
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn serde_round_trip_keeps_everything() {
        let t = token(60).with_refresh_token(Some(RefreshToken::new("rt")));
        let json = serde_json::to_string(&t).unwrap();
        let back: Token = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.refresh_token().unwrap().secret(), "rt");
    }
}
