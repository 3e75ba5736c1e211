use super::*;
use crate::oauth_error::MAX_FIELD_CHARS;

#[test]
fn codes_map_to_variants() {
    assert!(Error::from_oauth(OAuthError::new("invalid_client")).is_invalid_client());
    assert!(Error::from_oauth(OAuthError::new("invalid_grant")).is_revoked());
    assert!(Error::from_oauth(OAuthError::new("access_denied")).requires_reauthorization());
    assert!(Error::from_oauth(OAuthError::new("invalid_scope")).is_configuration());
    assert!(matches!(
        Error::from_oauth(OAuthError::new("unauthorized_client")),
        Error::UnauthorizedClient(_)
    ));
    // Providers' own names for a dead grant, in any case, and a preset's additions.
    for code in [
        "bad_refresh_token",
        "invalid_refresh_token",
        "invalid_code",
        "BAD_REFRESH_TOKEN",
        "BAD_AUTH_CODE",
    ] {
        assert!(
            Error::from_oauth(OAuthError::new(code)).is_revoked(),
            "{code}"
        );
    }
    assert!(!Error::from_oauth(OAuthError::new("400")).is_revoked());
    let preset = [DeadGrant::code("400")];
    assert!(Error::from_oauth_with(OAuthError::new("400"), &preset).is_revoked());
    // A rate limit in the provider's words is one, whatever its code says.
    let throttled = Error::from_oauth(
        OAuthError::new("invalid_grant")
            .with_description(Some("AADSTS50196: client request loop"))
            .with_status(Some(400)),
    );
    assert!(matches!(throttled, Error::RateLimited { status: 400, .. }));
    assert!(throttled.is_retryable() && !throttled.is_revoked());
    let other = Error::from_oauth(OAuthError::new("temporarily_unavailable"));
    assert!(matches!(other, Error::OAuth(_)));
    assert!(other.is_retryable());
}

#[test]
fn display_keeps_the_provider_description_and_status() {
    let e = Error::from_oauth(
        OAuthError::new("invalid_client")
            .with_description(Some("client authentication failed"))
            .with_status(Some(401)),
    );
    assert_eq!(
        e.to_string(),
        "the provider rejected the client credentials: invalid_client (HTTP 401): client \
         authentication failed"
    );
}

#[test]
fn provider_text_is_cleaned() {
    let long = "x".repeat(5000);
    let e = OAuthError::new("bad\r\ncode").with_description(Some(&long));
    assert_eq!(e.error, "bad  code");
    assert_eq!(e.description.unwrap().len(), MAX_FIELD_CHARS);
}
