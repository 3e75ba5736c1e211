//! A provider's endpoint URLs, and the rule every one of them follows: HTTPS, or plain HTTP
//! on loopback only (unless the application opts out by name).

use url::Url;

use crate::error::Error;

/// A provider's endpoint URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Endpoints {
    /// The issuer identifier, when known (discovery, presets), exactly as the provider spells
    /// it. RFC 9207 `iss` and ID tokens' `iss` must equal it character for character.
    pub issuer: Option<String>,
    /// The provider's metadata says `authorization_response_iss_parameter_supported: true`
    /// (RFC 9207): a callback without `iss` is then refused. Set with
    /// [`OAuthConfigBuilder::iss_parameter_supported`](crate::OAuthConfigBuilder::iss_parameter_supported).
    #[doc(alias = "authorization_response_iss_parameter_supported")]
    pub iss_parameter_supported: bool,
    /// The provider's JSON Web Key Set (`jwks_uri`), for checking ID token signatures.
    pub jwks_url: Option<Url>,
    /// The token endpoint (the provider's `mtls_endpoint_aliases` one when the client
    /// presents a certificate).
    pub token_url: Url,
    /// The authorization endpoint, for the authorization code flow.
    pub authorization_url: Option<Url>,
    /// The pushed authorization request endpoint (RFC 9126), where sign-in requests are
    /// pushed before the browser is sent to the authorization endpoint.
    #[doc(alias = "pushed_authorization_request_endpoint")]
    #[doc(alias = "PAR")]
    pub par_url: Option<Url>,
    /// The provider's metadata says `require_pushed_authorization_requests: true` (RFC 9126
    /// §5): every sign-in is then pushed. Set with
    /// [`OAuthConfigBuilder::require_pushed_authorization_requests`](crate::OAuthConfigBuilder::require_pushed_authorization_requests).
    pub require_pushed_authorization_requests: bool,
    /// The device authorization endpoint (RFC 8628).
    pub device_authorization_url: Option<Url>,
    /// The revocation endpoint (RFC 7009).
    pub revocation_url: Option<Url>,
    /// The introspection endpoint (RFC 7662).
    pub introspection_url: Option<Url>,
    /// The OpenID Connect UserInfo endpoint (`userinfo_endpoint`, Core §5.3).
    pub userinfo_url: Option<Url>,
    /// The OpenID Connect RP-Initiated Logout endpoint (`end_session_endpoint`).
    pub end_session_url: Option<Url>,
    /// The dynamic client registration endpoint (`registration_endpoint`, RFC 7591).
    pub registration_url: Option<Url>,
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Parses an endpoint URL and refuses plain HTTP to anything but loopback.
pub(crate) fn endpoint_url(what: &str, raw: &str, allow_insecure_http: bool) -> Result<Url, Error> {
    let url = Url::parse(raw).map_err(|e| Error::config(format!("invalid {what}: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(Error::config(format!(
            "{what} must use https (plain http is only accepted for loopback hosts, or with \
             danger_allow_insecure_http)"
        ))),
        other => Err(Error::config(format!(
            "{what} has unsupported scheme {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(endpoint_url("t", "http://127.0.0.1:8080/token", false).is_ok());
        assert!(endpoint_url("t", "http://[::1]/token", false).is_ok());
        assert!(endpoint_url("t", "http://localhost/token", false).is_ok());
        assert!(matches!(
            endpoint_url("t", "http://auth.example.com/token", false),
            Err(Error::Config(_))
        ));
        assert!(endpoint_url("t", "http://auth.example.com/token", true).is_ok());
        assert!(endpoint_url("t", "ftp://auth.example.com/token", true).is_err());
    }
}
