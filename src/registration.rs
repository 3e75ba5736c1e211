//! Dynamic client registration (RFC 7591): a client registers itself at the provider's
//! `registration_endpoint` and gets a ready [`OAuthConfig`] back, its credentials and the
//! registration access token (RFC 7592) kept secret.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::browser::check_redirect_uri;
use crate::config::{OAuthConfig, OAuthConfigBuilder, endpoint_url};
use crate::endpoint::{ClientAuthMethod, http_client_from, post_json};
use crate::error::Error;
use crate::token::{AccessToken, ClientSecret};

/// The metadata a client registers with (RFC 7591 §2, OpenID Connect Dynamic Client
/// Registration §2): redirect URIs, the client authentication method, grant types, names
/// and URLs to show the user, keys. Anything else with [`field`](Self::field).
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{ClientAuthMethod, ClientMetadata, OAuthConfig};
///
/// let registration = OAuthConfig::discover("https://auth.example.com")
///     .await?
///     .register(
///         ClientMetadata::new()
///             .client_name("Reports CLI")
///             .application_type("native")
///             .redirect_uris(["http://127.0.0.1/callback"])
///             .grant_types(["authorization_code", "refresh_token"])
///             .token_endpoint_auth_method(ClientAuthMethod::None),
///     )
///     .await?;
/// // Keep the client id (and secret, if any) for the next start.
/// println!("registered {}", registration.client_id());
/// let config = registration.config();
/// # let _ = config; Ok(()) }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ClientMetadata {
    fields: Map<String, Value>,
    initial_access_token: Option<AccessToken>,
}

macro_rules! string_fields {
    ($($name:ident $doc:literal,)*) => {
        $(
            #[doc = $doc]
            pub fn $name(self, value: impl Into<String>) -> Self {
                self.field(stringify!($name), Value::String(value.into()))
            }
        )*
    };
}

macro_rules! list_fields {
    ($($name:ident $doc:literal,)*) => {
        $(
            #[doc = $doc]
            pub fn $name<I, S>(self, values: I) -> Self
            where
                I: IntoIterator<Item = S>,
                S: Into<String>,
            {
                let values: Vec<Value> =
                    values.into_iter().map(|v| Value::String(v.into())).collect();
                self.field(stringify!($name), Value::Array(values))
            }
        )*
    };
}

impl ClientMetadata {
    /// No metadata yet: the provider's defaults (RFC 7591 §2: `authorization_code`,
    /// `client_secret_basic`).
    pub fn new() -> Self {
        ClientMetadata::default()
    }

    list_fields!(
        redirect_uris "`redirect_uris`: where the provider may send the browser back. Each is checked like the redirect URI of a sign-in (`https`, loopback `http`, or a native app's private-use scheme; no fragment) before anything is sent.",
        post_logout_redirect_uris "`post_logout_redirect_uris` (RP-Initiated Logout 1.0 §3.1): where the provider may send the browser after a logout. Checked like `redirect_uris`.",
        grant_types "`grant_types`: `authorization_code`, `refresh_token`, `client_credentials`, `urn:ietf:params:oauth:grant-type:device_code`, ...",
        response_types "`response_types`: `code` for the authorization code flow.",
        contacts "`contacts`: e-mail addresses of the people responsible for the client.",
    );

    string_fields!(
        client_name "`client_name`: shown to the user on the consent page.",
        client_uri "`client_uri`: the client's home page.",
        logo_uri "`logo_uri`: the client's logo.",
        tos_uri "`tos_uri`: the client's terms of service.",
        policy_uri "`policy_uri`: the client's privacy policy.",
        jwks_uri "`jwks_uri`: where the client publishes its public keys (instead of `jwks`).",
        application_type "`application_type` (OpenID Connect): `web` (the default) or `native`.",
        software_id "`software_id`: identifies the client software across its registrations.",
        software_version "`software_version`: the version of the client software.",
        software_statement "`software_statement`: a signed JWT vouching for the metadata (RFC 7591 §2.3).",
    );

    /// `scope`: the scopes the client may ask for, joined with spaces.
    pub fn scope<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.field("scope", Value::String(scopes.join(" ")))
    }

    /// `token_endpoint_auth_method`: how the client will authenticate. Without it, a
    /// configuration with a [`private_key`](crate::OAuthConfigBuilder::private_key) registers
    /// `private_key_jwt` (with the key's public half as `jwks`), and others take the
    /// provider's default (`client_secret_basic`).
    pub fn token_endpoint_auth_method(self, method: ClientAuthMethod) -> Self {
        self.field(
            "token_endpoint_auth_method",
            Value::String(method.as_str().to_owned()),
        )
    }

    /// `jwks`: the client's public keys, as a JWKS (`{"keys": [...]}`). Set for you from the
    /// configuration's [`private_key`](crate::OAuthConfigBuilder::private_key) when it
    /// authenticates with `private_key_jwt`.
    pub fn jwks(self, jwks: Value) -> Self {
        self.field("jwks", jwks)
    }

    /// Any other metadata field (an extension, or a standard one without a setter here).
    pub fn field(mut self, name: impl Into<String>, value: Value) -> Self {
        self.fields.insert(name.into(), value);
        self
    }

    /// The initial access token the provider gave out for registering (RFC 7591 §3), sent as
    /// a Bearer token. Never sent anywhere else, never shown by `Debug`.
    pub fn initial_access_token(mut self, token: impl Into<String>) -> Self {
        self.initial_access_token = Some(AccessToken::new(token));
        self
    }

    /// The metadata as it will be sent.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

/// A client registered with [`OAuthConfigBuilder::register`]: a ready configuration, and
/// what to keep to use the registration again (the client id and secret for the next start;
/// the registration access token to read, change or delete it, RFC 7592).
///
/// `Debug` shows the client id and the metadata, never the secret or the registration access
/// token.
#[derive(Clone)]
pub struct Registration {
    config: OAuthConfig,
    client_secret: Option<ClientSecret>,
    secret_expires_at: Option<SystemTime>,
    issued_at: Option<SystemTime>,
    access_token: Option<AccessToken>,
    client_uri: Option<String>,
    metadata: Map<String, Value>,
}

impl Registration {
    /// The configuration of the registered client, ready to make token sources and sign-in
    /// flows: the builder's endpoints and settings, the new client id and secret, and the
    /// client authentication method the provider registered.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// [`config`](Self::config), by value.
    pub fn into_config(self) -> OAuthConfig {
        self.config
    }

    /// The new client id.
    pub fn client_id(&self) -> &str {
        self.config.client_id()
    }

    /// The client secret the provider issued, if any (for the secret-based methods). Keep it
    /// like a password.
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        self.client_secret.as_ref()
    }

    /// When the client secret expires (`client_secret_expires_at`); `None` when it does not
    /// (the provider said `0`) or there is no secret.
    pub fn client_secret_expires_at(&self) -> Option<SystemTime> {
        self.secret_expires_at
    }

    /// When the client id was issued (`client_id_issued_at`), when the provider says.
    pub fn client_id_issued_at(&self) -> Option<SystemTime> {
        self.issued_at
    }

    /// The registration access token (RFC 7592), for reading, changing or deleting this
    /// registration at [`registration_client_uri`](Self::registration_client_uri). A secret.
    pub fn registration_access_token(&self) -> Option<&AccessToken> {
        self.access_token.as_ref()
    }

    /// Where this registration can be read, changed or deleted (RFC 7592).
    pub fn registration_client_uri(&self) -> Option<&str> {
        self.client_uri.as_deref()
    }

    /// The metadata the provider registered, which may differ from what was asked (RFC 7591
    /// §3.2.1 lets it replace values), without the client secret and the registration access
    /// token.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("client_id", &self.client_id())
            .field("has_client_secret", &self.client_secret.is_some())
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClientMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMetadata")
            .field("fields", &self.fields)
            .field(
                "has_initial_access_token",
                &self.initial_access_token.is_some(),
            )
            .finish()
    }
}

const METHODS: [ClientAuthMethod; 7] = [
    ClientAuthMethod::ClientSecretBasic,
    ClientAuthMethod::ClientSecretPost,
    ClientAuthMethod::PrivateKeyJwt,
    ClientAuthMethod::ClientSecretJwt,
    ClientAuthMethod::None,
    ClientAuthMethod::TlsClientAuth,
    ClientAuthMethod::SelfSignedTlsClientAuth,
];

impl OAuthConfigBuilder {
    /// Registers a new client at the provider's registration endpoint (RFC 7591; from
    /// discovery or [`registration_url`](Self::registration_url)) and builds its
    /// configuration from this builder: the endpoints and settings set here, the client id
    /// and secret the provider issued, and the authentication method it registered.
    ///
    /// Before anything is sent, `redirect_uris` and `post_logout_redirect_uris` are checked
    /// like a sign-in's redirect URI. With a [`private_key`](Self::private_key) and no
    /// `jwks` / `jwks_uri` / other method in the metadata, `private_key_jwt` is registered
    /// with the key's public half; with [`dpop`](Self::dpop), `dpop_bound_access_tokens`.
    /// The request is a JSON POST, with the initial access token as Bearer when given; it is
    /// never retried (a second one could register a second client), follows no redirects,
    /// reads at most 1 MiB, and times out like every provider request.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidRedirectUri`] and [`Error::InvalidClientMetadata`] when the provider
    ///   refuses the metadata (RFC 7591 §3.2.2), with its description; other refusals
    ///   (`invalid_software_statement`, `unapproved_software_statement`, a 401 for a
    ///   missing or wrong initial access token) as [`Error::OAuth`].
    /// - [`Error::Config`] without a registration endpoint, for a redirect URI refused
    ///   locally, when the provider registered a method this configuration cannot use
    ///   (`private_key_jwt` without a private key, a secret method without a secret), and
    ///   for what [`build`](Self::build) refuses.
    /// - [`Error::MalformedResponse`] for an answer without a `client_id`; transport errors.
    pub async fn register(mut self, metadata: ClientMetadata) -> Result<Registration, Error> {
        let ClientMetadata {
            mut fields,
            initial_access_token,
        } = metadata;
        let raw_url = self.oidc_urls[2].clone().ok_or_else(|| {
            Error::config("no registration endpoint is configured (registration_url)")
        })?;
        let url = endpoint_url("registration URL", &raw_url, self.allow_insecure_http)?;
        for name in ["redirect_uris", "post_logout_redirect_uris"] {
            if let Some(Value::Array(uris)) = fields.get(name) {
                for uri in uris {
                    check_redirect_uri(uri.as_str().unwrap_or_default()).map_err(|e| {
                        Error::config(format!("a registered {name} entry is refused: {e}"))
                    })?;
                }
            }
        }
        if let Some(key) = &self.private_key {
            // A signer that does not fit its key: the error `build` would report.
            let key = key.as_ref().map_err(Clone::clone)?;
            let wants_key_method = matches!(
                fields
                    .get("token_endpoint_auth_method")
                    .and_then(Value::as_str),
                None | Some("private_key_jwt")
            );
            if wants_key_method && !fields.contains_key("jwks") && !fields.contains_key("jwks_uri")
            {
                fields.insert(
                    "token_endpoint_auth_method".into(),
                    json!("private_key_jwt"),
                );
                fields.insert("jwks".into(), json!({ "keys": [key.public_jwk()] }));
            }
        }
        if self.dpop.is_some() {
            fields
                .entry("dpop_bound_access_tokens")
                .or_insert(Value::Bool(true));
        }
        let http = self.registration_client()?;
        let answer = post_json(
            &http,
            &url,
            &Value::Object(fields.clone()),
            initial_access_token.as_ref().map(AccessToken::secret),
            self.timeout,
        )
        .await?;
        let mut metadata = answer.fields;
        let client_id = match metadata.get("client_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(Error::malformed(
                    answer.status,
                    "the registration answer has no client_id",
                ));
            }
        };
        let client_secret = match metadata.remove("client_secret") {
            Some(Value::String(s)) => Some(ClientSecret::new(s)),
            _ => None,
        };
        let access_token = match metadata.remove("registration_access_token") {
            Some(Value::String(t)) => Some(AccessToken::new(t)),
            _ => None,
        };
        // RFC 7591 §2: the default is client_secret_basic; the answer says what was registered.
        let method_name = metadata
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            .or_else(|| {
                fields
                    .get("token_endpoint_auth_method")
                    .and_then(Value::as_str)
            })
            .unwrap_or("client_secret_basic");
        let method = METHODS
            .into_iter()
            .find(|m| m.as_str() == method_name)
            .ok_or_else(|| {
                Error::config(format!(
                    "the provider registered the client authentication method {:?}, which \
                     authed does not support",
                    crate::oauth_error::clean(method_name)
                ))
            })?;
        let secret_expires_at =
            crate::claims::time(&metadata, "client_secret_expires_at").filter(|t| *t != UNIX_EPOCH);
        let issued_at = crate::claims::time(&metadata, "client_id_issued_at");
        let client_uri = metadata
            .get("registration_client_uri")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self = self.client_id(client_id).auth_method(method);
        if let Some(secret) = &client_secret {
            self = self.client_secret(secret.secret());
        }
        let config = self.build().map_err(|e| match e {
            Error::Config(why) => {
                Error::config(format!("the registered client cannot be configured: {why}"))
            }
            other => other,
        })?;
        Ok(Registration {
            config,
            client_secret,
            secret_expires_at,
            issued_at,
            access_token,
            client_uri,
            metadata,
        })
    }

    /// The HTTP client for the registration request, kept for [`build`](Self::build): the
    /// one discovery made, or one made now from the builder's own settings.
    fn registration_client(&mut self) -> Result<reqwest::Client, Error> {
        if let Some(client) = &self.discovered_http {
            return Ok(client.clone());
        }
        let Some(builder) = self.http.take() else {
            return http_client_from(reqwest::ClientBuilder::new(), self.timeout);
        };
        if self.identity.is_some() {
            return Err(Error::config(
                "register with both http_client and a client certificate through \
                 OAuthConfig::discover_with, with the certificate on its ClientBuilder",
            ));
        }
        let client = http_client_from(builder, self.timeout)?;
        self.discovered_http = Some(client.clone());
        Ok(client)
    }
}
