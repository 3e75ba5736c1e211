//! The FAPI 2.0 profile switch: which profile a configuration follows, the client duties
//! (FAPI 2.0 Security Profile §5.3, Message Signing §5) it checks, and the typed error naming
//! a duty that is not met. The checks themselves run where the settings are known: the
//! configuration's `build` and the sign-in flow's `build`.

/// A FAPI 2.0 profile for [`OAuthConfigBuilder::fapi2`](crate::OAuthConfigBuilder::fapi2).
///
/// With either, the configuration and every sign-in flow made from it check the client's
/// duties and fail with [`Error::Fapi`](crate::Error::Fapi) naming the first one not met:
///
/// | Duty ([`FapiDuty`]) | What the client must have |
/// |---|---|
/// | [`ClientAuthentication`](FapiDuty::ClientAuthentication) | `private_key_jwt`, `tls_client_auth` or `self_signed_tls_client_auth` (a confidential client) |
/// | [`SenderConstrainedTokens`](FapiDuty::SenderConstrainedTokens) | DPoP ([`dpop`](crate::OAuthConfigBuilder::dpop)) or a client certificate (mTLS-bound tokens) |
/// | [`AllowedAlgorithms`](FapiDuty::AllowedAlgorithms) | keys that sign with PS256, ES256 or EdDSA (an RSA key signs with PS256) |
/// | [`IssuerIdentification`](FapiDuty::IssuerIdentification) | a known issuer, so that RFC 9207 `iss` (then always required on callbacks) and ID tokens are checked |
/// | [`PushedAuthorizationRequests`](FapiDuty::PushedAuthorizationRequests) | a pushed authorization request endpoint: every sign-in is pushed (PAR) |
/// | [`HttpsRedirectUri`](FapiDuty::HttpsRedirectUri) | an `https` redirect URI |
/// | [`SignedRequests`](FapiDuty::SignedRequests) | ([`MessageSigning`](Fapi2::MessageSigning)) a key to sign request objects with |
/// | [`SignedResponses`](FapiDuty::SignedResponses) | ([`MessageSigning`](Fapi2::MessageSigning)) a JWT response mode (JARM) |
///
/// PKCE with S256 is not a setting: every sign-in uses it. ID tokens and JARM responses are
/// then accepted only when signed with PS256, ES256 or EdDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fapi2 {
    /// The FAPI 2.0 Security Profile: PAR, PKCE S256, a confidential client,
    /// sender-constrained tokens, RFC 9207 `iss`, https redirect URIs, PS256 / ES256 / EdDSA.
    SecurityProfile,
    /// The Security Profile and FAPI 2.0 Message Signing: every sign-in's request is a
    /// signed request object (JAR, RFC 9101) pushed with PAR, and its response a signed JWT
    /// (JARM, `response_mode=jwt` unless another JWT mode is chosen).
    MessageSigning,
}

/// A client duty of FAPI 2.0 that a configuration or flow does not meet: the data of
/// [`Error::Fapi`](crate::Error::Fapi). Its `Display` names the duty and what would meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum FapiDuty {
    /// A confidential client authenticating with `private_key_jwt` or mutual TLS; the method
    /// set or chosen was this one.
    #[error(
        "client authentication must be private_key_jwt, tls_client_auth or \
         self_signed_tls_client_auth, not {0} (FAPI 2.0 Security Profile §5.3.2.1)"
    )]
    ClientAuthentication(&'static str),
    /// Sender-constrained access tokens: DPoP or a client certificate.
    #[error(
        "access tokens must be sender-constrained: turn on DPoP or present a client \
         certificate (FAPI 2.0 Security Profile §5.3.2.1)"
    )]
    SenderConstrainedTokens,
    /// Only PS256, ES256 and EdDSA; this algorithm was found.
    #[error("{0} is not allowed: only PS256, ES256 and EdDSA (FAPI 2.0 Security Profile §5.4)")]
    AllowedAlgorithms(&'static str),
    /// The issuer must be known, to check RFC 9207 `iss` and ID tokens.
    #[error(
        "the issuer must be configured, to check the authorization response's iss (RFC 9207) \
         (FAPI 2.0 Security Profile §5.3.2.2)"
    )]
    IssuerIdentification,
    /// Authorization requests must be pushed, and the configuration has no pushed
    /// authorization request endpoint.
    #[error(
        "authorization requests must be pushed (PAR, RFC 9126), and no pushed authorization \
         request endpoint is configured (FAPI 2.0 Security Profile §5.3.2.2)"
    )]
    PushedAuthorizationRequests,
    /// Redirect URIs must be `https`.
    #[error("the redirect URI must use https (FAPI 2.0 Security Profile §5.3.2.2)")]
    HttpsRedirectUri,
    /// Message Signing: request objects must be signed, and there is no key to sign them.
    #[error(
        "authorization requests must be signed request objects (JAR), and there is no signing \
         key: set private_key or request_signing_key (FAPI 2.0 Message Signing §5.3)"
    )]
    SignedRequests,
    /// Message Signing: authorization responses must be JWTs (JARM); this response mode was
    /// chosen instead.
    #[error(
        "authorization responses must be signed (JARM: jwt, query.jwt or form_post.jwt), not \
         {0} (FAPI 2.0 Message Signing §5.4)"
    )]
    SignedResponses(&'static str),
}

/// The JWS algorithms FAPI 2.0 allows (Security Profile §5.4.1).
pub(crate) const ALLOWED_ALGORITHMS: [&str; 3] = ["PS256", "ES256", "EdDSA"];

/// What [`check_client`] needs to know about a configuration.
pub(crate) struct ClientSettings<'a> {
    /// The client authentication method's metadata name.
    pub(crate) auth_method: &'static str,
    /// The DPoP key's `alg`, when DPoP is on.
    pub(crate) dpop_alg: Option<&'static str>,
    /// A client certificate is presented (or the method is a TLS one).
    pub(crate) mtls: bool,
    /// The `alg` of the key that signs client assertions and request objects, if any.
    pub(crate) signing_alg: Option<&'a str>,
    pub(crate) issuer_known: bool,
}

/// The duties a configuration alone decides.
pub(crate) fn check_client(s: &ClientSettings<'_>) -> Result<(), FapiDuty> {
    if !matches!(
        s.auth_method,
        "private_key_jwt" | "tls_client_auth" | "self_signed_tls_client_auth"
    ) {
        return Err(FapiDuty::ClientAuthentication(s.auth_method));
    }
    if s.dpop_alg.is_none() && !s.mtls {
        return Err(FapiDuty::SenderConstrainedTokens);
    }
    for alg in [s.dpop_alg, s.signing_alg].into_iter().flatten() {
        if let Some(bad) = refused_algorithm(alg) {
            return Err(FapiDuty::AllowedAlgorithms(bad));
        }
    }
    if !s.issuer_known {
        return Err(FapiDuty::IssuerIdentification);
    }
    Ok(())
}

/// The algorithms of `supported` (the provider's list, if any) that FAPI 2.0 allows.
pub(crate) fn allowed_of(supported: Option<&[String]>) -> Vec<String> {
    ALLOWED_ALGORITHMS
        .iter()
        .filter(|a| supported.is_none_or(|s| s.iter().any(|s| s == *a)))
        .map(|a| (*a).to_owned())
        .collect()
}

/// `alg`, as a static name, when FAPI 2.0 does not allow it.
pub(crate) fn refused_algorithm(alg: &str) -> Option<&'static str> {
    if ALLOWED_ALGORITHMS.contains(&alg) {
        return None;
    }
    const NAMES: [&str; 11] = [
        "RS256", "RS384", "RS512", "PS384", "PS512", "ES384", "ES512", "HS256", "HS384", "HS512",
        "none",
    ];
    Some(
        NAMES
            .iter()
            .find(|n| **n == alg)
            .copied()
            .unwrap_or("this algorithm"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings<'static> {
        ClientSettings {
            auth_method: "private_key_jwt",
            dpop_alg: Some("ES256"),
            mtls: false,
            signing_alg: Some("PS256"),
            issuer_known: true,
        }
    }

    #[test]
    fn each_duty_is_named() {
        assert_eq!(check_client(&settings()), Ok(()));
        let mut s = settings();
        s.auth_method = "client_secret_basic";
        assert_eq!(
            check_client(&s),
            Err(FapiDuty::ClientAuthentication("client_secret_basic"))
        );
        let mut s = settings();
        s.dpop_alg = None;
        assert_eq!(check_client(&s), Err(FapiDuty::SenderConstrainedTokens));
        s.mtls = true;
        assert_eq!(check_client(&s), Ok(()));
        let mut s = settings();
        s.dpop_alg = Some("RS256");
        assert_eq!(check_client(&s), Err(FapiDuty::AllowedAlgorithms("RS256")));
        let mut s = settings();
        s.signing_alg = Some("RS384");
        assert_eq!(check_client(&s), Err(FapiDuty::AllowedAlgorithms("RS384")));
        let mut s = settings();
        s.issuer_known = false;
        assert_eq!(check_client(&s), Err(FapiDuty::IssuerIdentification));
        assert!(
            FapiDuty::ClientAuthentication("none")
                .to_string()
                .contains("not none")
        );
    }
}
