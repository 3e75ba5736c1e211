//! Provider settings shared by the sign-in examples, read from environment variables.
//!
//! `AUTHED_PROVIDER` picks a preset: `github`, `google`, `microsoft` (tenant from
//! `AUTHED_TENANT`, default `common`), or `oidc` (the default: every URL from the variables
//! below). Every preset value can be overridden:
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

struct Preset {
    auth: String,
    token: String,
    device: Option<String>,
    revocation: Option<String>,
    issuer: Option<String>,
    scopes: &'static str,
    api: &'static str,
    params: &'static [(&'static str, &'static str)],
}

fn preset(name: &str, tenant: &str) -> Option<Preset> {
    let ms = |path: &str| format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{path}");
    Some(match name {
        "github" => Preset {
            auth: "https://github.com/login/oauth/authorize".into(),
            token: "https://github.com/login/oauth/access_token".into(),
            device: Some("https://github.com/login/device/code".into()),
            // GitHub revokes through its REST API, not RFC 7009.
            revocation: None,
            issuer: None,
            scopes: "read:user",
            api: "https://api.github.com/user",
            params: &[],
        },
        "google" => Preset {
            auth: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token: "https://oauth2.googleapis.com/token".into(),
            device: Some("https://oauth2.googleapis.com/device/code".into()),
            revocation: Some("https://oauth2.googleapis.com/revoke".into()),
            issuer: Some("https://accounts.google.com".into()),
            scopes: "openid email profile",
            api: "https://openidconnect.googleapis.com/v1/userinfo",
            params: &[("access_type", "offline"), ("prompt", "consent")],
        },
        "microsoft" => Preset {
            auth: ms("authorize"),
            token: ms("token"),
            device: Some(ms("devicecode")),
            revocation: None,
            issuer: None,
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
    pub fn from_env() -> Result<Provider, Error> {
        let name = var("AUTHED_PROVIDER").unwrap_or_else(|| "oidc".to_owned());
        let tenant = var("AUTHED_TENANT").unwrap_or_else(|| "common".to_owned());
        let preset = preset(&name, &tenant);
        let pick =
            |env: &str, from_preset: Option<&str>| var(env).or(from_preset.map(str::to_owned));
        let token_url = pick(
            "AUTHED_TOKEN_URL",
            preset.as_ref().map(|p| p.token.as_str()),
        )
        .ok_or_else(|| Error::Config("set AUTHED_PROVIDER or AUTHED_TOKEN_URL".to_owned()))?;
        let mut b = OAuthConfig::builder(token_url).client_id(required("AUTHED_CLIENT_ID")?);
        if let Some(secret) = var("AUTHED_CLIENT_SECRET") {
            b = b.client_secret(secret);
        }
        if let Some(url) = pick("AUTHED_AUTH_URL", preset.as_ref().map(|p| p.auth.as_str())) {
            b = b.authorization_url(url);
        }
        if let Some(url) = pick(
            "AUTHED_DEVICE_URL",
            preset.as_ref().and_then(|p| p.device.as_deref()),
        ) {
            b = b.device_authorization_url(url);
        }
        if let Some(url) = pick(
            "AUTHED_REVOCATION_URL",
            preset.as_ref().and_then(|p| p.revocation.as_deref()),
        ) {
            b = b.revocation_url(url);
        }
        if let Some(issuer) = pick(
            "AUTHED_ISSUER",
            preset.as_ref().and_then(|p| p.issuer.as_deref()),
        ) {
            b = b.issuer(issuer);
        }
        let scopes = pick("AUTHED_SCOPES", preset.as_ref().map(|p| p.scopes))
            .unwrap_or_else(|| "openid".to_owned());
        let api_url = pick("AUTHED_API_URL", preset.as_ref().map(|p| p.api))
            .ok_or_else(|| Error::Config("set AUTHED_API_URL: the URL to fetch".to_owned()))?;
        let params = preset
            .map(|p| {
                p.params
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
