//! Client authentication (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2): the methods, the
//! client assertions of `private_key_jwt` and `client_secret_jwt`, and adding them to a
//! request.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::form::Form;
use crate::clock::Clock;
use crate::error::Error;
use crate::jose::jws::{Signer, sign_hmac_jwt};
use crate::jose::{HmacAlgorithm, SigningAlgorithm};
use crate::token::ClientSecret;

/// How the client proves its identity to the provider's endpoints (token, revocation, device
/// authorization, introspection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1). The default for
    /// clients with a secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
    /// A JWT signed with the client's private key in the body (`client_assertion`, RFC 7523
    /// §2.2, OpenID Connect Core §9). The default for clients with a
    /// [`private_key`](crate::OAuthConfigBuilder::private_key). The secret never leaves the
    /// client, and each assertion is valid for one request.
    PrivateKeyJwt,
    /// A JWT signed with the client secret (HMAC, HS256 unless the provider lists only
    /// HS384 or HS512) in the body: the secret itself is not sent. Chosen by discovery only
    /// when the provider lists neither Basic nor post.
    ClientSecretJwt,
    /// Only `client_id` in the body: public clients (native and browser apps).
    None,
    /// Mutual TLS with a certificate from a CA the provider trusts (RFC 8705 §2.1): the
    /// client certificate set with
    /// [`client_certificate`](crate::OAuthConfigBuilder::client_certificate) authenticates
    /// the client; only `client_id` goes in the body.
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate registered with the provider (RFC 8705
    /// §2.2); otherwise as [`TlsClientAuth`](Self::TlsClientAuth).
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The method's name in provider metadata (`token_endpoint_auth_methods_supported`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::ClientSecretJwt => "client_secret_jwt",
            ClientAuthMethod::None => "none",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub(crate) const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long a client assertion is valid. Short, because it is built per request: a stolen
/// one is useless a minute later (and providers refuse a second use of its `jti`).
pub(crate) const ASSERTION_LIFETIME: Duration = Duration::from_secs(60);

/// What signs the client assertions of `private_key_jwt` and `client_secret_jwt`, and the
/// audience they name.
#[derive(Clone)]
pub(crate) struct ClientAssertion {
    pub(crate) signer: AssertionSigner,
    pub(crate) audience: String,
    pub(crate) clock: Arc<dyn Clock>,
}

/// The key of a client assertion.
#[derive(Clone)]
pub(crate) enum AssertionSigner {
    /// `private_key_jwt`, through the one signer.
    Key(Signer),
    /// `client_secret_jwt` with this HMAC algorithm and the client secret.
    Secret(HmacAlgorithm),
    /// An assertion someone else signs, read from this file at each request (Entra workload
    /// identity federation: `AZURE_FEDERATED_TOKEN_FILE`).
    File(std::path::PathBuf),
}

impl ClientAssertion {
    /// A fresh assertion: `iss = sub = client_id`, the audience, a random `jti`, `iat`,
    /// `nbf` and `exp` from the configuration's clock.
    async fn build(
        &self,
        client_id: &str,
        secret: Option<&ClientSecret>,
    ) -> Result<secrecy::SecretString, Error> {
        let claims = || {
            jwt_claims(
                client_id,
                client_id,
                &self.audience,
                self.clock.now(),
                ASSERTION_LIFETIME,
            )
        };
        match &self.signer {
            AssertionSigner::File(path) => read_assertion_file(path).await,
            AssertionSigner::Key(signer) => signer.sign_jwt("JWT", &claims()).await,
            AssertionSigner::Secret(alg) => {
                let secret = secret
                    .ok_or_else(|| Error::config("client_secret_jwt needs a client secret"))?;
                sign_hmac_jwt(*alg, secret.secret().as_bytes(), &claims())
            }
        }
    }
}

/// A JWT from a file a platform keeps fresh (Kubernetes projected tokens, workload identity
/// token files), trimmed. Read at each use, so a rotated file is always picked up.
pub(crate) async fn read_assertion_file(
    path: &std::path::Path,
) -> Result<secrecy::SecretString, Error> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        Error::config(format!(
            "cannot read the token file {}: {}",
            path.display(),
            e.kind()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::config(format!(
            "the token file {} is empty",
            path.display()
        )));
    }
    Ok(secrecy::SecretString::from(token.to_owned()))
}

/// The claims of an assertion (RFC 7523 §3): who issued it, whom it is about, for whom, a
/// unique `jti` (128 random bits), and a validity window of `lifetime` from `now`.
pub(crate) fn jwt_claims(
    iss: &str,
    sub: &str,
    aud: &str,
    now: SystemTime,
    lifetime: Duration,
) -> Map<String, Value> {
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = Map::new();
    claims.insert("iss".into(), iss.into());
    claims.insert("sub".into(), sub.into());
    claims.insert("aud".into(), aud.into());
    claims.insert(
        "jti".into(),
        oauth2::CsrfToken::new_random().secret().as_str().into(),
    );
    claims.insert("iat".into(), now.into());
    // Entra requires `nbf`; every other provider accepts it.
    claims.insert("nbf".into(), now.into());
    claims.insert("exp".into(), (now + lifetime.as_secs()).into());
    claims
}

/// Who the client is and how it proves it: the part of every provider request that
/// authenticates the client.
#[derive(Clone)]
pub(crate) struct ClientAuth {
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<ClientSecret>,
    pub(crate) method: ClientAuthMethod,
    /// The signer of `private_key_jwt` / `client_secret_jwt` assertions.
    pub(crate) assertion: Option<ClientAssertion>,
}

impl ClientAuth {
    /// Adds client authentication to a request and its form. Assertions are built here,
    /// once per request sent, so that a retried request carries a fresh `jti`.
    pub(crate) async fn apply(
        &self,
        req: reqwest::RequestBuilder,
        form: Form,
    ) -> Result<(reqwest::RequestBuilder, Form), Error> {
        Ok(match (self.method, &self.client_secret) {
            (ClientAuthMethod::ClientSecretBasic, Some(secret)) => {
                // RFC 6749 §2.3.1: form-urlencode id and secret before base64.
                let credentials = format!(
                    "{}:{}",
                    form_encode_component(&self.client_id),
                    form_encode_component(secret.secret())
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                // Base64 is always a valid header value; an error here cannot happen.
                let mut value = reqwest::header::HeaderValue::try_from(format!("Basic {encoded}"))
                    .map_err(|_| Error::config("the client credentials are not a header value"))?;
                value.set_sensitive(true);
                (req.header(reqwest::header::AUTHORIZATION, value), form)
            }
            (ClientAuthMethod::ClientSecretPost, Some(secret)) => (
                req,
                form.with("client_id", self.client_id.clone())
                    .with("client_secret", secret.secret()),
            ),
            // RFC 8705 §2: the TLS handshake already presented the certificate; the body
            // names the client, and no secret is sent even if one is configured.
            (ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth, _) => {
                (req, form.with("client_id", self.client_id.clone()))
            }
            (ClientAuthMethod::PrivateKeyJwt | ClientAuthMethod::ClientSecretJwt, secret) => {
                use secrecy::ExposeSecret as _;
                let assertion = self
                    .assertion
                    .as_ref()
                    .ok_or_else(|| Error::config("no client assertion signer is configured"))?
                    .build(&self.client_id, secret.as_ref())
                    .await?;
                // `client_id` is optional next to an assertion (RFC 7521 §4.2) but Entra
                // requires it, and no provider refuses it.
                (
                    req,
                    form.with("client_id", self.client_id.clone())
                        .with("client_assertion_type", JWT_BEARER_ASSERTION_TYPE)
                        .with("client_assertion", assertion.expose_secret()),
                )
            }
            // An empty client id (a service account's grant, which authenticates by its
            // assertion alone) sends nothing.
            _ if self.client_id.is_empty() => (req, form),
            _ => (req, form.with("client_id", self.client_id.clone())),
        })
    }
}

fn form_encode_component(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The method the client's credentials allow that the provider lists (RFC 8414: Basic when
/// the metadata says nothing). A key comes first: it is why one was given.
pub(crate) fn default_auth_method(
    has_key: bool,
    has_secret: bool,
    supported: Option<&[String]>,
) -> Result<ClientAuthMethod, Error> {
    use ClientAuthMethod::{ClientSecretBasic, ClientSecretJwt, ClientSecretPost, PrivateKeyJwt};
    let Some(supported) = supported else {
        return Ok(if has_key {
            PrivateKeyJwt
        } else if has_secret {
            ClientSecretBasic
        } else {
            ClientAuthMethod::None
        });
    };
    if !has_key && !has_secret {
        // Providers that accept public clients seldom list `none`: let the provider decide.
        return Ok(ClientAuthMethod::None);
    }
    let mut possible = Vec::new();
    if has_key {
        possible.push(PrivateKeyJwt);
    }
    if has_secret {
        possible.extend([ClientSecretBasic, ClientSecretPost, ClientSecretJwt]);
    }
    possible
        .iter()
        .copied()
        .find(|m| supported.iter().any(|s| s == m.as_str()))
        .ok_or_else(|| {
            Error::config(format!(
                "the provider supports none of the client authentication methods this client \
                 can use ({}); give it {}, or set auth_method to override",
                possible
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if has_key {
                    "a client secret"
                } else {
                    "a private key"
                },
            ))
        })
}

/// The signer, signing with an algorithm the provider lists: its own, or else (an in-memory
/// key, which can sign with any algorithm of its type) the first listed one it can sign with.
pub(crate) fn negotiate_key_algorithm(
    signer: Signer,
    supported: Option<&[String]>,
) -> Result<Signer, Error> {
    let Some(supported) = supported else {
        return Ok(signer);
    };
    let own = signer.algorithm();
    if supported.iter().any(|a| a == own.as_str()) {
        return Ok(signer);
    }
    if let Signer::Local(key) = &signer {
        for alg in supported
            .iter()
            .filter_map(|a| SigningAlgorithm::from_name(a))
        {
            if let Ok(key) = key.clone().with_algorithm(alg) {
                return Ok(Signer::Local(key));
            }
        }
    }
    Err(Error::config(format!(
        "the provider accepts no client assertion algorithm this key can sign with (the key \
         signs {own}; token_endpoint_auth_signing_alg_values_supported lists others)"
    )))
}

/// HS256 unless the provider lists only stronger HMAC algorithms.
pub(crate) fn hmac_algorithm(supported: Option<&[String]>) -> Result<HmacAlgorithm, Error> {
    use HmacAlgorithm::{HS256, HS384, HS512};
    let Some(supported) = supported else {
        return Ok(HS256);
    };
    [("HS256", HS256), ("HS384", HS384), ("HS512", HS512)]
        .into_iter()
        .find(|(name, _)| supported.iter().any(|s| s == name))
        .map(|(_, alg)| alg)
        .ok_or_else(|| {
            Error::config(
                "the provider lists no HMAC algorithm (HS256, HS384, HS512) for client_secret_jwt",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_before_base64() {
        assert_eq!(form_encode_component("a:b@c% d"), "a%3Ab%40c%25+d");
    }

    #[test]
    fn default_auth_method_follows_the_supported_list() {
        use ClientAuthMethod::{
            ClientSecretBasic, ClientSecretJwt, ClientSecretPost, PrivateKeyJwt,
        };
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pick = |key, secret, supported: Option<&[String]>| {
            default_auth_method(key, secret, supported).ok()
        };
        assert_eq!(pick(false, true, None), Some(ClientSecretBasic));
        assert_eq!(pick(false, false, None), Some(ClientAuthMethod::None));
        assert_eq!(pick(true, true, None), Some(PrivateKeyJwt));
        let post_only = list(&["client_secret_post", "private_key_jwt"]);
        assert_eq!(pick(false, true, Some(&post_only)), Some(ClientSecretPost));
        assert_eq!(
            pick(false, false, Some(&post_only)),
            Some(ClientAuthMethod::None)
        );
        assert_eq!(pick(true, true, Some(&post_only)), Some(PrivateKeyJwt));
        let both = list(&["client_secret_post", "client_secret_basic"]);
        assert_eq!(pick(false, true, Some(&both)), Some(ClientSecretBasic));
        // A key the provider does not take, but a secret it does.
        assert_eq!(pick(true, true, Some(&both)), Some(ClientSecretBasic));
        let secret_jwt = list(&["client_secret_jwt", "private_key_jwt"]);
        assert_eq!(pick(false, true, Some(&secret_jwt)), Some(ClientSecretJwt));
        // Nothing this client can do (private_key_jwt only, and it has only a secret): a
        // configuration error, not Basic sent to a provider that did not offer it.
        let jwt = list(&["private_key_jwt"]);
        let e = default_auth_method(false, true, Some(&jwt)).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(e.to_string().contains("client_secret_basic"), "{e}");
        assert!(default_auth_method(true, false, Some(&both)).is_err());
    }
}
