//! Setters every grant builder shares, written once as macros.

/// The `scopes` and `param` setters of every grant builder (fields `scopes`, `params`).
macro_rules! request_setters {
    () => {
        /// Scopes to request, sent space-separated. May be called more than once.
        pub fn scopes<I, S>(mut self, scopes: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.scopes.extend(scopes.into_iter().map(Into::into));
            self
        }

        /// Any other request parameter (`audience`, `resource`, ...); may repeat.
        pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.params.push((key.into(), value.into()));
            self
        }
    };
}
pub(crate) use request_setters;

/// The `store`, `key` and `require_revocation` setters of every builder that ends in a user
/// login (field `login`).
macro_rules! login_setters {
    () => {
        /// Keeps the login in `store`: rotated refresh tokens are saved there before use, and
        /// a restart finds the login again.
        pub fn store(mut self, store: impl crate::store::IntoTokenStore) -> Self {
            self.login.store = Some(crate::store::IntoTokenStore::into_token_store(store));
            self
        }

        /// The key the login is stored under. Defaults to one derived from everything that
        /// shapes the token (token URL, client id, scopes, other parameters) and, for an
        /// OpenID Connect sign-in, the validated ID token's `sub`; set it to name logins
        /// yourself (then keep one key per user).
        pub fn key(mut self, key: impl Into<String>) -> Self {
            self.login.key = Some(key.into());
            self
        }

        /// Requires that the login can be revoked at the provider: without a revocation
        /// endpoint (RFC 7009, set with
        /// [`revocation_url`](crate::OAuthConfigBuilder::revocation_url) or discovered), the
        /// flow is refused when it is built, instead of a
        /// [`logout`](crate::RefreshTokenSource::logout) that later can only forget the
        /// login here ([`Logout::NotRevoked`](crate::Logout::NotRevoked)).
        pub fn require_revocation(mut self) -> Self {
            self.login.require_revocation = true;
            self
        }
    };
}
pub(crate) use login_setters;
