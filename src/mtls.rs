//! Mutual TLS (RFC 8705): the client certificate presented to the provider (and to APIs
//! that accept certificate-bound tokens), and the endpoint aliases a provider serves for it.

use serde_json::{Map, Value};

use crate::endpoint::ClientAuthMethod;
use crate::error::Error;

/// A client certificate with its key, as the HTTP client takes it.
#[cfg(any(feature = "default-tls", feature = "native-tls"))]
pub(crate) type Identity = reqwest::Identity;

/// Without a TLS backend there is no client certificate to hold.
#[cfg(not(any(feature = "default-tls", feature = "native-tls")))]
#[derive(Debug)]
pub(crate) enum Identity {}

/// Reads a client certificate (PEM, optionally followed by its chain) and its private key
/// (PEM, PKCS#8: `-----BEGIN PRIVATE KEY-----`) for the TLS backend `authed` is built with:
/// rustls (feature `default-tls`) or the platform's library (feature `native-tls`, which
/// reqwest prefers when both are on).
///
/// Use the same identity for the provider
/// ([`OAuthConfigBuilder::tls_identity`](crate::OAuthConfigBuilder::tls_identity)) and for
/// the API ([`AuthedClientBuilder::http_client`](crate::AuthedClientBuilder::http_client))
/// when the provider binds access tokens to the certificate (RFC 8705 §3): such a token is
/// only accepted over a connection that presents it.
///
/// ```no_run
/// # async fn run(cert_pem: &[u8], key_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
/// use authed::{AuthedClient, ClientAuthMethod, OAuthConfig};
///
/// let identity = authed::identity_from_pem(cert_pem, key_pem)?;
/// let config = OAuthConfig::discover("https://bank.example.com")
///     .await?
///     .client_id("payments-service")
///     .auth_method(ClientAuthMethod::TlsClientAuth)
///     .tls_identity(identity.clone())
///     .build()?;
/// let http = authed::reqwest::Client::builder().identity(identity).build()?;
/// let client = AuthedClient::builder(config.client_credentials().build())
///     .base_url("https://api.bank.example.com/")
///     .http_client(http)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
///
/// # Errors
///
/// [`Error::Config`] when the certificate or the key cannot be read. The message never
/// contains the key.
#[cfg(any(feature = "default-tls", feature = "native-tls"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "default-tls", feature = "native-tls"))))]
pub fn identity_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<reqwest::Identity, Error> {
    #[cfg(feature = "native-tls")]
    let identity = reqwest::Identity::from_pkcs8_pem(cert_pem, key_pem);
    #[cfg(not(feature = "native-tls"))]
    let identity = {
        // rustls reads both from one buffer; it holds the key, so it is wiped after use.
        let mut both = secrecy::zeroize::Zeroizing::new(Vec::with_capacity(
            cert_pem.len() + key_pem.len() + 1,
        ));
        both.extend_from_slice(cert_pem);
        both.push(b'\n');
        both.extend_from_slice(key_pem);
        reqwest::Identity::from_pem(&both)
    };
    identity.map_err(|e| {
        // reqwest says "builder error"; the reason is its source. Parsers name what is
        // wrong, never the bytes.
        let reason = std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string());
        Error::config(format!(
            "cannot read the client certificate and key: {reason}"
        ))
    })
}

/// Adds the client certificate to the HTTP client's settings.
pub(crate) fn with_identity(
    builder: reqwest::ClientBuilder,
    identity: Option<Identity>,
) -> reqwest::ClientBuilder {
    match identity {
        #[cfg(any(feature = "default-tls", feature = "native-tls"))]
        Some(identity) => builder.identity(identity),
        None => builder,
    }
}

/// The methods whose proof is the TLS client certificate.
pub(crate) fn is_tls_method(method: ClientAuthMethod) -> bool {
    matches!(
        method,
        ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth
    )
}

/// `mtls_endpoint_aliases` (RFC 8705 §5): the endpoints a provider serves for clients that
/// present a certificate, used instead of the plain ones when the client does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct MtlsAliases {
    pub(crate) token: Option<String>,
    pub(crate) revocation: Option<String>,
    pub(crate) introspection: Option<String>,
    pub(crate) device_authorization: Option<String>,
    pub(crate) pushed_authorization_request: Option<String>,
}

impl MtlsAliases {
    /// Reads the metadata member; a member of the wrong type is malformed metadata.
    pub(crate) fn from_metadata(value: Option<&Value>) -> Result<Self, Error> {
        let malformed = |what: &str| Error::malformed(200, format!("metadata field {what}"));
        let aliases: &Map<String, Value> = match value {
            None | Some(Value::Null) => return Ok(MtlsAliases::default()),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(malformed("mtls_endpoint_aliases is not an object")),
        };
        let field = |name: &str| match aliases.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(&format!(
                "mtls_endpoint_aliases.{name} is not a string"
            ))),
        };
        Ok(MtlsAliases {
            token: field("token_endpoint")?,
            revocation: field("revocation_endpoint")?,
            pushed_authorization_request: field("pushed_authorization_request_endpoint")?,
            introspection: field("introspection_endpoint")?,
            device_authorization: field("device_authorization_endpoint")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aliases_are_read_and_checked() {
        let v = json!({"token_endpoint": "https://mtls.a/t", "introspection_endpoint": "https://mtls.a/i",
                       "userinfo_endpoint": "https://mtls.a/u"});
        let a = MtlsAliases::from_metadata(Some(&v)).unwrap();
        assert_eq!(a.token.as_deref(), Some("https://mtls.a/t"));
        assert_eq!(a.introspection.as_deref(), Some("https://mtls.a/i"));
        assert_eq!((a.revocation, a.device_authorization), (None, None));
        assert_eq!(
            MtlsAliases::from_metadata(None).unwrap(),
            MtlsAliases::default()
        );
        for bad in [json!("x"), json!({"token_endpoint": 1})] {
            assert!(matches!(
                MtlsAliases::from_metadata(Some(&bad)),
                Err(Error::MalformedResponse { .. })
            ));
        }
    }
}
