//! The provider's endpoint URLs and what its metadata says about them, as builder settings:
//! a preset's or discovery's values, replaced or completed by hand.

use super::OAuthConfigBuilder;
use crate::fapi::Fapi2;
use crate::jose::JwsSigner;
use crate::jose::jws::Signer;

impl OAuthConfigBuilder {
    /// Replaces the token endpoint (to override a preset's or a discovered one).
    pub fn token_url(mut self, url: impl Into<String>) -> Self {
        self.token_url = url.into();
        self.mtls_aliases.token = None;
        self
    }

    /// The issuer identifier, exactly as the provider's metadata spells it (a trailing `/`
    /// counts). RFC 9207 `iss` callback parameters and ID tokens' `iss` must equal it.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Whether the provider always sends RFC 9207 `iss` on authorization responses
    /// (`authorization_response_iss_parameter_supported`; discovery reads it). When `true`,
    /// a callback without `iss` is refused. Default `false`. Named like
    /// [`Endpoints::iss_parameter_supported`](crate::Endpoints::iss_parameter_supported), which it sets.
    #[doc(alias = "authorization_response_iss_parameter_supported")]
    pub fn iss_parameter_supported(mut self, supported: bool) -> Self {
        self.iss_parameter_supported = supported;
        self
    }

    /// The provider's JSON Web Key Set URL (`jwks_uri`; discovery reads it), needed to
    /// validate the ID token of an OpenID Connect sign-in.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }

    /// The authorization endpoint.
    pub fn authorization_url(mut self, url: impl Into<String>) -> Self {
        self.authorization_url = Some(url.into());
        self
    }

    /// The pushed authorization request endpoint (RFC 9126; discovery reads
    /// `pushed_authorization_request_endpoint`). With it, a sign-in flow can push its request
    /// ([`AuthorizationCodeBuilder::pushed`](crate::AuthorizationCodeBuilder::pushed)), and
    /// does whenever the provider requires it or a [FAPI 2.0 profile](Self::fapi2) is on.
    #[doc(alias = "pushed_authorization_request_endpoint")]
    #[doc(alias = "PAR")]
    pub fn par_url(mut self, url: impl Into<String>) -> Self {
        self.par_url = Some(url.into());
        self.mtls_aliases.pushed_authorization_request = None;
        self
    }

    /// Whether the provider accepts only pushed authorization requests
    /// (`require_pushed_authorization_requests`, RFC 9126 §5; discovery reads it). When
    /// `true`, every sign-in is pushed to the [`par_url`](Self::par_url). Default `false`.
    pub fn require_pushed_authorization_requests(mut self, required: bool) -> Self {
        self.require_par = required;
        self
    }

    /// Follows a FAPI 2.0 profile: [`build`](Self::build) and each sign-in flow's `build`
    /// check the client's duties (see [`Fapi2`]) and refuse with [`Error::Fapi`](crate::Error::Fapi) naming the
    /// first one not met; sign-ins are then always pushed (PAR), callbacks must carry RFC
    /// 9207 `iss`, and signatures are made and accepted with PS256, ES256 and EdDSA only
    /// (an RSA private key signs with PS256). [`Fapi2::MessageSigning`] adds signed request
    /// objects (JAR) and signed responses (JARM) to every sign-in.
    #[doc(alias = "FAPI")]
    pub fn fapi2(mut self, profile: Fapi2) -> Self {
        self.fapi = Some(profile);
        self
    }

    /// The key that signs request objects (JAR, RFC 9101), when it is not the client's
    /// [`private_key`](Self::private_key) (which signs them otherwise): a client
    /// authenticating with mutual TLS, say: a [`SigningKey`](crate::SigningKey) (set its
    /// [`kid`](crate::SigningKey::with_kid) to the one registered with the provider) or any
    /// [`JwsSigner`], a key service's key among them.
    pub fn request_signing_key(mut self, key: impl JwsSigner + 'static) -> Self {
        self.request_signing_key = Some(Signer::new(key));
        self
    }

    /// The device authorization endpoint.
    pub fn device_authorization_url(mut self, url: impl Into<String>) -> Self {
        self.device_authorization_url = Some(url.into());
        self.mtls_aliases.device_authorization = None;
        self
    }

    /// The revocation endpoint.
    pub fn revocation_url(mut self, url: impl Into<String>) -> Self {
        self.revocation_url = Some(url.into());
        self.mtls_aliases.revocation = None;
        self
    }

    /// The introspection endpoint.
    pub fn introspection_url(mut self, url: impl Into<String>) -> Self {
        self.introspection_url = Some(url.into());
        self.mtls_aliases.introspection = None;
        self
    }

    /// The OpenID Connect UserInfo endpoint (discovery reads `userinfo_endpoint`), for
    /// [`RefreshTokenSource::userinfo`](crate::RefreshTokenSource::userinfo).
    pub fn userinfo_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[0] = Some(url.into());
        self
    }

    /// The RP-Initiated Logout endpoint (discovery reads `end_session_endpoint`), for
    /// [`OAuthConfig::end_session`](crate::OAuthConfig::end_session).
    pub fn end_session_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[1] = Some(url.into());
        self
    }

    /// The dynamic client registration endpoint (discovery reads `registration_endpoint`),
    /// for [`register`](Self::register).
    pub fn registration_url(mut self, url: impl Into<String>) -> Self {
        self.oidc_urls[2] = Some(url.into());
        self
    }
}
