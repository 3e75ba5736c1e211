//! Configuration from `AUTHED_*` environment variables.

use std::fmt;
use std::time::Duration;

use crate::config::{OAuthConfig, OAuthConfigBuilder, endpoint_url};
use crate::endpoint::ClientAuthMethod;
use crate::error::Error;

/// Reads a client's configuration from `AUTHED_*` environment variables, or from any lookup
/// function (for tests, or a configuration file mapped to the same names).
///
/// [`OAuthConfig::from_env`] and [`OAuthConfig::discover_from_env`] are the short ways in;
/// use `Env` directly to read a different source, to put the variables on top of a preset
/// ([`apply`](Env::apply)), or for the settings that belong to a token source rather than to
/// the configuration ([`scopes`](Env::scopes), [`redirect_uri`](Env::redirect_uri)).
///
/// | Variable | Meaning |
/// |---|---|
/// | `AUTHED_ISSUER` | the issuer: [`OAuthConfig::discover_from_env`] finds the endpoints from it; otherwise kept to check RFC 9207 `iss` |
/// | `AUTHED_TOKEN_URL` | the token endpoint; required by [`OAuthConfig::from_env`], an override with discovery |
/// | `AUTHED_AUTH_URL` | the authorization endpoint |
/// | `AUTHED_DEVICE_URL` | the device authorization endpoint (RFC 8628) |
/// | `AUTHED_REVOCATION_URL` | the revocation endpoint (RFC 7009) |
/// | `AUTHED_INTROSPECTION_URL` | the introspection endpoint (RFC 7662) |
/// | `AUTHED_CLIENT_ID` | the client id; required |
/// | `AUTHED_CLIENT_SECRET` | the client secret |
/// | `AUTHED_CLIENT_SECRET_FILE` | a file holding the client secret (a mounted Kubernetes or Docker secret); one trailing newline is ignored. Not together with `AUTHED_CLIENT_SECRET` |
/// | `AUTHED_AUTH_METHOD` | `client_secret_basic`, `client_secret_post`, `client_secret_jwt` or `none` (a key or a certificate is set in code: `private_key`, `client_certificate`); the default is as for [`OAuthConfigBuilder::auth_method`] |
/// | `AUTHED_TIMEOUT` | timeout of each provider request: seconds (`30`), or with a unit (`500ms`, `30s`, `2m`) |
/// | `AUTHED_SCOPES` | scopes, separated by spaces ([`scopes`](Env::scopes)) |
/// | `AUTHED_REDIRECT_URI` | the redirect URI of the authorization code flow ([`redirect_uri`](Env::redirect_uri)) |
/// | `AUTHED_AUDIENCE` | the `audience` request parameter (Auth0, Okta) ([`audience`](Env::audience)) |
/// | `AUTHED_RESOURCE` | the RFC 8707 `resource` request parameter ([`resource`](Env::resource)) |
///
/// A variable set to the empty string counts as unset. URLs must be HTTPS unless they are on
/// loopback; there is deliberately no variable to allow plain HTTP elsewhere
/// ([`OAuthConfigBuilder::danger_allow_insecure_http`] in code does).
///
/// Errors are [`Error::Config`] and name the variable; they never contain the secret.
///
/// ```
/// use authed::Env;
///
/// let env = Env::from_fn(|name| match name {
///     "AUTHED_TOKEN_URL" => Some("https://auth.example.com/oauth/token".to_owned()),
///     "AUTHED_CLIENT_ID" => Some("reports-job".to_owned()),
///     "AUTHED_SCOPES" => Some("reports:read reports:write".to_owned()),
///     _ => None,
/// });
/// let config = env.config()?;
/// assert_eq!(config.client_id(), "reports-job");
/// let source = config.client_credentials().scopes(env.scopes()).build();
/// # let _ = source;
/// # Ok::<(), authed::Error>(())
/// ```
pub struct Env {
    lookup: Box<Lookup>,
}

/// Returns a variable's value, `None` when it is unset.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values: one of them is a secret.
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

/// The variable names, for messages and for [`Env::from_fn`] implementations.
impl Env {
    /// `AUTHED_ISSUER`
    pub const ISSUER: &'static str = "AUTHED_ISSUER";
    /// `AUTHED_TOKEN_URL`
    pub const TOKEN_URL: &'static str = "AUTHED_TOKEN_URL";
    /// `AUTHED_AUTH_URL`
    pub const AUTH_URL: &'static str = "AUTHED_AUTH_URL";
    /// `AUTHED_DEVICE_URL`
    pub const DEVICE_URL: &'static str = "AUTHED_DEVICE_URL";
    /// `AUTHED_REVOCATION_URL`
    pub const REVOCATION_URL: &'static str = "AUTHED_REVOCATION_URL";
    /// `AUTHED_INTROSPECTION_URL`
    pub const INTROSPECTION_URL: &'static str = "AUTHED_INTROSPECTION_URL";
    /// `AUTHED_CLIENT_ID`
    pub const CLIENT_ID: &'static str = "AUTHED_CLIENT_ID";
    /// `AUTHED_CLIENT_SECRET`
    pub const CLIENT_SECRET: &'static str = "AUTHED_CLIENT_SECRET";
    /// `AUTHED_CLIENT_SECRET_FILE`
    pub const CLIENT_SECRET_FILE: &'static str = "AUTHED_CLIENT_SECRET_FILE";
    /// `AUTHED_AUTH_METHOD`
    pub const AUTH_METHOD: &'static str = "AUTHED_AUTH_METHOD";
    /// `AUTHED_TIMEOUT`
    pub const TIMEOUT: &'static str = "AUTHED_TIMEOUT";
    /// `AUTHED_SCOPES`
    pub const SCOPES: &'static str = "AUTHED_SCOPES";
    /// `AUTHED_REDIRECT_URI`
    pub const REDIRECT_URI: &'static str = "AUTHED_REDIRECT_URI";
    /// `AUTHED_AUDIENCE`
    pub const AUDIENCE: &'static str = "AUTHED_AUDIENCE";
    /// `AUTHED_RESOURCE`
    pub const RESOURCE: &'static str = "AUTHED_RESOURCE";
}

impl Env {
    /// The process environment. A variable that is not valid Unicode counts as unset.
    pub fn process() -> Env {
        Env::from_fn(|name| std::env::var(name).ok())
    }

    /// Variables looked up with `lookup`, which returns `None` for an unset one. Tests use
    /// this instead of changing the process environment, which is shared by every thread.
    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Env {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// The value of `name`, `None` when unset or empty.
    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str, hint: &str) -> Result<String, Error> {
        self.var(name)
            .ok_or_else(|| Error::config(format!("{name} is not set{hint}")))
    }

    /// A configuration from the variables, with the endpoints given one by one:
    /// `AUTHED_TOKEN_URL` and `AUTHED_CLIENT_ID` are required.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid.
    pub fn config(&self) -> Result<OAuthConfig, Error> {
        let hint = if self.var(Self::ISSUER).is_some() {
            " (AUTHED_ISSUER is set: use OAuthConfig::discover_from_env to find the endpoints \
             from it)"
        } else {
            " (or set AUTHED_ISSUER and use OAuthConfig::discover_from_env)"
        };
        let token_url = self.required(Self::TOKEN_URL, hint)?;
        self.apply(OAuthConfig::builder(token_url))?.build()
    }

    /// A configuration whose endpoints come from discovery at `AUTHED_ISSUER`
    /// ([`OAuthConfig::discover`]); the other variables are applied on top, so an endpoint
    /// variable overrides the discovered endpoint.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid, and the errors of
    /// [`OAuthConfig::discover`] (a provider that cannot be reached is [`Error::Transport`]).
    pub async fn discover(&self) -> Result<OAuthConfig, Error> {
        let issuer = self.required(
            Self::ISSUER,
            " (or set AUTHED_TOKEN_URL and use OAuthConfig::from_env)",
        )?;
        // Checked here so the message names the variable; discovery checks it again.
        endpoint_url(Self::ISSUER, &issuer, false)?;
        self.apply(OAuthConfig::discover(&issuer).await?)?.build()
    }

    /// Applies every variable that is set to `builder` (a preset's or a discovered one), and
    /// requires `AUTHED_CLIENT_ID`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid.
    pub fn apply(&self, mut b: OAuthConfigBuilder) -> Result<OAuthConfigBuilder, Error> {
        let url = |name: &str| -> Result<Option<String>, Error> {
            let Some(raw) = self.var(name) else {
                return Ok(None);
            };
            // The builder would check it too, but its message names the setting, not the
            // variable.
            endpoint_url(name, &raw, false)?;
            Ok(Some(raw))
        };
        if let Some(issuer) = url(Self::ISSUER)? {
            b = b.issuer(issuer);
        }
        if let Some(u) = url(Self::TOKEN_URL)? {
            b = b.token_url(u);
        }
        if let Some(u) = url(Self::AUTH_URL)? {
            b = b.authorization_url(u);
        }
        if let Some(u) = url(Self::DEVICE_URL)? {
            b = b.device_authorization_url(u);
        }
        if let Some(u) = url(Self::REVOCATION_URL)? {
            b = b.revocation_url(u);
        }
        if let Some(u) = url(Self::INTROSPECTION_URL)? {
            b = b.introspection_url(u);
        }
        b = b.client_id(self.required(Self::CLIENT_ID, "")?);
        if let Some(secret) = self.client_secret()? {
            b = b.client_secret(secret);
        }
        if let Some(method) = self.var(Self::AUTH_METHOD) {
            b = b.auth_method(parse_auth_method(&method)?);
        }
        if let Some(timeout) = self.var(Self::TIMEOUT) {
            b = b.timeout(parse_duration(&timeout).ok_or_else(|| {
                Error::config(format!(
                    "{} is not a duration: {timeout:?} (write seconds, or 500ms, 30s, 2m)",
                    Self::TIMEOUT
                ))
            })?);
        }
        Ok(b)
    }

    fn client_secret(&self) -> Result<Option<String>, Error> {
        let inline = self.var(Self::CLIENT_SECRET);
        let Some(path) = self.var(Self::CLIENT_SECRET_FILE) else {
            return Ok(inline);
        };
        if inline.is_some() {
            return Err(Error::config(format!(
                "both {} and {} are set; set one",
                Self::CLIENT_SECRET,
                Self::CLIENT_SECRET_FILE
            )));
        }
        // The path is not secret; the contents are, and appear in no message.
        let contents = std::fs::read_to_string(&path).map_err(|e| {
            Error::config(format!(
                "{}: cannot read {path:?}: {}",
                Self::CLIENT_SECRET_FILE,
                e.kind()
            ))
        })?;
        // `echo secret > file` and most secret managers end the file with a newline.
        let secret = contents
            .strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s))
            .unwrap_or(&contents);
        if secret.is_empty() {
            return Err(Error::config(format!(
                "{}: {path:?} is empty",
                Self::CLIENT_SECRET_FILE
            )));
        }
        Ok(Some(secret.to_owned()))
    }

    /// `AUTHED_SCOPES`, split at whitespace; empty when unset. Pass them to a grant
    /// builder's `scopes`.
    pub fn scopes(&self) -> Vec<String> {
        self.var(Self::SCOPES)
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// `AUTHED_REDIRECT_URI`, for [`OAuthConfig::authorization_code`].
    pub fn redirect_uri(&self) -> Option<String> {
        self.var(Self::REDIRECT_URI)
    }

    /// `AUTHED_AUDIENCE`, for a grant builder's `audience`.
    pub fn audience(&self) -> Option<String> {
        self.var(Self::AUDIENCE)
    }

    /// `AUTHED_RESOURCE`, for a grant builder's `resource`.
    pub fn resource(&self) -> Option<String> {
        self.var(Self::RESOURCE)
    }
}

impl OAuthConfig {
    /// A configuration from the `AUTHED_*` environment variables, with the endpoints given
    /// one by one (`AUTHED_TOKEN_URL` is required). The variables are listed at [`Env`].
    ///
    /// ```no_run
    /// # fn run() -> Result<(), authed::Error> {
    /// // AUTHED_TOKEN_URL=https://auth.example.com/oauth/token AUTHED_CLIENT_ID=reports-job
    /// // AUTHED_CLIENT_SECRET_FILE=/run/secrets/client_secret AUTHED_SCOPES=reports:read
    /// let config = authed::OAuthConfig::from_env()?;
    /// let source = config
    ///     .client_credentials()
    ///     .scopes(authed::Env::process().scopes())
    ///     .build();
    /// # let _ = source;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable that is missing or invalid.
    pub fn from_env() -> Result<OAuthConfig, Error> {
        Env::process().config()
    }

    /// A configuration whose endpoints are discovered from `AUTHED_ISSUER`
    /// ([`OAuthConfig::discover`]), with the other `AUTHED_*` variables applied on top. The
    /// variables are listed at [`Env`].
    ///
    /// # Errors
    ///
    /// As [`Env::discover`].
    pub async fn discover_from_env() -> Result<OAuthConfig, Error> {
        Env::process().discover().await
    }
}

fn parse_auth_method(raw: &str) -> Result<ClientAuthMethod, Error> {
    [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
        ClientAuthMethod::ClientSecretJwt,
        ClientAuthMethod::None,
    ]
    .into_iter()
    .find(|m| m.as_str().eq_ignore_ascii_case(raw.trim()))
    .ok_or_else(|| {
        Error::config(format!(
            "{} is {raw:?}; expected client_secret_basic, client_secret_post, client_secret_jwt or \
             none",
            Env::AUTH_METHOD
        ))
    })
}

/// `30` (seconds), `30s`, `500ms`, `2m`.
fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 30s "), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        for bad in ["", "s", "-1", "1.5", "10h", "ms10", "18446744073709551615m"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn auth_methods() {
        assert_eq!(
            parse_auth_method("client_secret_post").unwrap(),
            ClientAuthMethod::ClientSecretPost
        );
        assert_eq!(parse_auth_method("NONE").unwrap(), ClientAuthMethod::None);
        let e = parse_auth_method("private_key_jwt").unwrap_err();
        assert!(e.to_string().contains("AUTHED_AUTH_METHOD"), "{e}");
    }
}
