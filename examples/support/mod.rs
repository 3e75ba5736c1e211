//! Provider settings shared by the sign-in examples, read from environment variables.
//!
//! `AUTHED_PROVIDER` picks a preset of `authed::providers`: `github`, `google`, `microsoft`
//! (tenant from `AUTHED_TENANT`, default `common`), or `oidc` (the default: discovery from
//! `AUTHED_ISSUER`, or every URL from the variables below). Every preset value can be
//! overridden:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `AUTHED_CLIENT_ID` | the client id (required) |
//! | `AUTHED_CLIENT_SECRET` | the client secret, for providers that want one even with PKCE (GitHub, Google "desktop" clients, web apps) |
//! | `AUTHED_AUTH_URL`, `AUTHED_TOKEN_URL`, `AUTHED_DEVICE_URL`, `AUTHED_REVOCATION_URL`, `AUTHED_ISSUER` | endpoints |
//! | `AUTHED_SCOPES` | space-separated scopes |
//! | `AUTHED_API_URL` | the URL fetched with the user's token |
//! | `AUTHED_TOKEN_FILE` | where `cli_login` and `device_login` keep the login |

// Each example uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;

use authed::{Error, OAuthConfig};

/// A provider's settings, from a preset and the environment.
pub struct Provider {
    pub name: String,
    pub config: OAuthConfig,
    pub scopes: Vec<String>,
    /// Extra authorization parameters the provider needs (Google: a refresh token only with
    /// `access_type=offline`).
    pub params: Vec<(String, String)>,
    pub api_url: String,
}

/// What each example fetches, and the scopes and parameters that needs, per provider. The
/// endpoints come from `authed::providers`.
struct Defaults {
    scopes: &'static str,
    api: &'static str,
    params: &'static [(&'static str, &'static str)],
}

fn defaults(name: &str) -> Option<Defaults> {
    Some(match name {
        "github" => Defaults {
            scopes: "read:user",
            api: "https://api.github.com/user",
            params: &[],
        },
        "google" => Defaults {
            scopes: "openid email profile",
            api: "https://openidconnect.googleapis.com/v1/userinfo",
            // Google issues a refresh token only for offline access, and again only on consent.
            params: &[("access_type", "offline"), ("prompt", "consent")],
        },
        "microsoft" => Defaults {
            scopes: "openid profile offline_access User.Read",
            api: "https://graph.microsoft.com/v1.0/me",
            params: &[],
        },
        _ => return None,
    })
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String, Error> {
    var(name).ok_or_else(|| Error::Config(format!("set {name} (see the header of this example)")))
}

impl Provider {
    /// Reads the preset and the variables.
    pub async fn from_env() -> Result<Provider, Error> {
        let name = var("AUTHED_PROVIDER").unwrap_or_else(|| "oidc".to_owned());
        let mut b = match name.as_str() {
            "github" => authed::providers::github(),
            "google" => authed::providers::google(),
            "microsoft" => authed::providers::microsoft_entra(
                &var("AUTHED_TENANT").unwrap_or_else(|| "common".to_owned()),
            ),
            // Any OpenID Connect provider: discovery when an issuer is given, else the URLs.
            _ => match var("AUTHED_ISSUER") {
                Some(issuer) => authed::providers::oidc(&issuer).await?,
                None => OAuthConfig::builder(required("AUTHED_TOKEN_URL")?),
            },
        };
        b = b.client_id(required("AUTHED_CLIENT_ID")?);
        if let Some(secret) = var("AUTHED_CLIENT_SECRET") {
            b = b.client_secret(secret);
        }
        if let Some(url) = var("AUTHED_TOKEN_URL") {
            b = b.token_url(url);
        }
        if let Some(url) = var("AUTHED_AUTH_URL") {
            b = b.authorization_url(url);
        }
        if let Some(url) = var("AUTHED_DEVICE_URL") {
            b = b.device_authorization_url(url);
        }
        if let Some(url) = var("AUTHED_REVOCATION_URL") {
            b = b.revocation_url(url);
        }
        if let Some(issuer) = var("AUTHED_ISSUER") {
            b = b.issuer(issuer);
        }
        let defaults = defaults(&name);
        let scopes = var("AUTHED_SCOPES")
            .or_else(|| defaults.as_ref().map(|d| d.scopes.to_owned()))
            .unwrap_or_else(|| "openid offline_access".to_owned());
        let api_url = var("AUTHED_API_URL")
            .or_else(|| defaults.as_ref().map(|d| d.api.to_owned()))
            .ok_or_else(|| Error::Config("set AUTHED_API_URL: the URL to fetch".to_owned()))?;
        let params = defaults
            .map(|d| {
                d.params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Provider {
            name,
            config: b.build()?,
            scopes: scopes.split_whitespace().map(str::to_owned).collect(),
            params,
            api_url,
        })
    }

    /// The API's origin, which alone receives the user's token.
    pub fn api_origin(&self) -> String {
        url::Url::parse(&self.api_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// An authenticated client for the API. GitHub refuses requests without a User-Agent.
    pub fn client(&self, login: authed::RefreshTokenSource) -> Result<authed::AuthedClient, Error> {
        let http = authed::reqwest::Client::builder()
            .user_agent("authed-example")
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        authed::AuthedClient::builder(login)
            .allow_origin(self.api_origin())
            .http_client(http)
            .build()
    }

    /// Fetches the API URL and prints the status and the start of the body.
    pub async fn show_api(&self, login: authed::RefreshTokenSource) -> Result<(), Error> {
        let response = self.client(login)?.get(&self.api_url).send().await?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Error::Config(e.to_string()))?;
        println!("GET {} -> {status}", self.api_url);
        println!("{}", body.chars().take(2000).collect::<String>());
        Ok(())
    }
}

/// Where the CLI examples keep logins: `AUTHED_TOKEN_FILE`, or
/// `$XDG_CONFIG_HOME/authed-examples/tokens.json` (`~/.config/...`).
pub fn token_file() -> PathBuf {
    if let Some(path) = var("AUTHED_TOKEN_FILE") {
        return path.into();
    }
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("authed-examples").join("tokens.json")
}
