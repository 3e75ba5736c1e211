//! Token sources: the [`TokenSource`] trait and one implementation per grant, all sharing one
//! cache. This file only declares and re-exports.

mod authorization_code;
pub(crate) mod cache;
mod client_credentials;
mod device;
mod jwt_bearer;
pub(crate) use jwt_bearer::unverified_exp;
mod refresh;
mod registry;
mod resource;
mod setters;
mod token_exchange;
mod token_source;

pub use authorization_code::{
    AuthorizationCode, AuthorizationCodeBuilder, Callback, PendingAuthorization,
};
pub use client_credentials::{ClientCredentials, ClientCredentialsBuilder};
pub use device::{DeviceAuthorization, DeviceAuthorizationBuilder, DeviceCode};
pub use jwt_bearer::{JwtBearer, JwtBearerBuilder};
pub use refresh::{Logout, RefreshTokenSource, RefreshTokenSourceBuilder};
pub use registry::{UserSources, UserSourcesBuilder};
pub use resource::{ResourceTokenSource, ResourceTokenSourceBuilder};
pub use token_exchange::{SubjectToken, TokenExchange, TokenExchangeBuilder, token_types};
pub(crate) use token_source::shared;
pub use token_source::{StaticToken, TokenFuture, TokenSource};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::token::Token;
    use std::sync::Arc;

    fn _assert_dyn_compatible(_: Arc<dyn TokenSource>) {}

    #[test]
    fn a_shared_source_is_not_wrapped_again() {
        let source: Arc<dyn TokenSource> = Arc::new(StaticToken::new("t"));
        assert!(Arc::ptr_eq(&shared(source.clone()), &source));
        let other = shared(StaticToken::new("t"));
        assert!(!Arc::ptr_eq(&other, &source));
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        fn check_send<T: Send>() {}
        check_send::<TokenFuture<'static>>();
        check::<ClientCredentials>();
        check::<Error>();
        check::<Token>();
    }
}
