//! Google service account keys, for the JWT bearer grant.

use crate::config::{OAuthConfig, OAuthConfigBuilder};
use crate::error::Error;

/// A Google service account key (the JSON file of `type: service_account` that the Cloud
/// console or `gcloud iam service-accounts keys create` writes), for the JWT bearer grant
/// ([`OAuthConfig::jwt_bearer`]): access tokens for scopes, or ID tokens for an audience
/// (Cloud Run, IAP, Cloud Functions), optionally on behalf of a Workspace user (domain-wide
/// delegation).
///
/// `Debug` shows the `client_email` and `private_key_id` only.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::providers::GoogleServiceAccount;
/// use authed::{Env, TokenSource};
///
/// let account = GoogleServiceAccount::from_env(&Env::process())?
///     .expect("GOOGLE_APPLICATION_CREDENTIALS names the key file");
/// let config = account.config().build()?;
/// let storage = account
///     .access_tokens(&config, ["https://www.googleapis.com/auth/devstorage.read_only"])
///     .build();
/// let run = account.id_tokens(&config, "https://my-service-abc123-uc.a.run.app").build();
/// let as_user = account
///     .access_tokens(&config, ["https://www.googleapis.com/auth/gmail.readonly"])
///     .subject("someone@example.com")
///     .build();
/// # let _ = (storage.token().await?, run, as_user); Ok(()) }
/// ```
#[derive(Clone)]
pub struct GoogleServiceAccount {
    client_email: String,
    private_key_id: Option<String>,
    token_uri: String,
    project_id: Option<String>,
    key: crate::SigningKey,
}

impl std::fmt::Debug for GoogleServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

impl GoogleServiceAccount {
    /// Google's token endpoint, used when the key file names none.
    pub const TOKEN_URI: &'static str = "https://oauth2.googleapis.com/token";

    /// Reads a service account key from its JSON text.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the text is not JSON, its `type` is not `service_account`,
    /// `client_email` or `private_key` is missing, or the key does not parse. The message
    /// never contains the key.
    pub fn from_json(json: &str) -> Result<GoogleServiceAccount, Error> {
        #[derive(serde::Deserialize)]
        struct KeyFile {
            #[serde(rename = "type")]
            kind: Option<String>,
            client_email: Option<String>,
            private_key: Option<String>,
            private_key_id: Option<String>,
            token_uri: Option<String>,
            project_id: Option<String>,
        }
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|_| Error::config("service account key: not a JSON key file"))?;
        if file.kind.as_deref() != Some("service_account") {
            return Err(Error::config(
                "service account key: `type` is not `service_account` (user credentials and \
                 external account files are other formats)",
            ));
        }
        let client_email = file
            .client_email
            .ok_or_else(|| Error::config("service account key: `client_email` is missing"))?;
        let pem = secrecy::zeroize::Zeroizing::new(
            file.private_key
                .ok_or_else(|| Error::config("service account key: `private_key` is missing"))?,
        );
        let mut key = crate::SigningKey::from_pem(pem.as_bytes())?;
        if let Some(kid) = &file.private_key_id {
            key = key.with_kid(kid.clone());
        }
        Ok(GoogleServiceAccount {
            client_email,
            private_key_id: file.private_key_id,
            token_uri: file.token_uri.unwrap_or_else(|| Self::TOKEN_URI.to_owned()),
            project_id: file.project_id,
            key,
        })
    }

    /// Reads a service account key file.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the file cannot be read, or as [`from_json`](Self::from_json).
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<GoogleServiceAccount, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read the service account key {}: {}",
                path.display(),
                e.kind()
            ))
        })?;
        Self::from_json(&text)
    }

    /// The key file named by `GOOGLE_APPLICATION_CREDENTIALS` in `env`
    /// ([`Env::process`](crate::Env::process) for the process environment), or `None` when the
    /// variable is unset or empty.
    ///
    /// # Errors
    ///
    /// As [`from_file`](Self::from_file).
    pub fn from_env(env: &crate::Env) -> Result<Option<GoogleServiceAccount>, Error> {
        match env.var("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(path) if !path.trim().is_empty() => Self::from_file(path.trim()).map(Some),
            _ => Ok(None),
        }
    }

    /// The service account's email: the `iss` of its assertions.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The key's id (`private_key_id`), sent as the assertions' `kid`.
    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    /// The project the key belongs to.
    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// The token endpoint (`token_uri`).
    pub fn token_uri(&self) -> &str {
        &self.token_uri
    }

    /// A configuration for the key's token endpoint, without client authentication (the
    /// assertion is the credential). Add settings (clock, HTTP client) and build.
    pub fn config(&self) -> OAuthConfigBuilder {
        OAuthConfig::builder(self.token_uri.clone()).client_id("")
    }

    fn assertions(&self, config: &OAuthConfig) -> crate::JwtBearerBuilder {
        config
            .jwt_bearer(self.key.clone())
            .issuer(self.client_email.clone())
            .subject_only_when_named()
            .assertion_audience(self.token_uri.clone())
    }

    /// Access tokens for `scopes` (Google reads them from the assertion's `scope` claim).
    /// Add [`subject`](crate::JwtBearerBuilder::subject) to act as a Workspace user
    /// (domain-wide delegation); without it the assertion has no `sub`, as Google documents.
    pub fn access_tokens<I, S>(&self, config: &OAuthConfig, scopes: I) -> crate::JwtBearerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        self.assertions(config).claim("scope", scopes.join(" "))
    }

    /// Google-signed ID tokens whose `aud` is `target_audience` (the URL of a Cloud Run
    /// service, an IAP client id). Google answers these with an `id_token` and no
    /// `access_token`; the ID token is then the source's bearer token, cached until its
    /// `exp`.
    pub fn id_tokens(
        &self,
        config: &OAuthConfig,
        target_audience: impl Into<String>,
    ) -> crate::JwtBearerBuilder {
        self.assertions(config)
            .claim("target_audience", target_audience.into())
    }
}
