//! Provider settings shared by the sign-in examples, read from environment variables.
//!
//! `AUTHED_PROVIDER` picks a preset of `authed::providers`: `github`, `google`, `microsoft`
//! (tenant from `AUTHED_TENANT`, default `common`), or `oidc` (the default: discovery from
//! `AUTHED_ISSUER`, or every URL given one by one). The client and the endpoints are read by
//! `authed::Env` (`OAuthConfig::from_env`), whose docs list every variable; the ones these
//! examples use:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `AUTHED_CLIENT_ID` | the client id (required) |
//! | `AUTHED_CLIENT_SECRET` or `AUTHED_CLIENT_SECRET_FILE` | the client secret, for providers that want one even with PKCE (GitHub, Google "desktop" clients, web apps) |
//! | `AUTHED_ISSUER` | the issuer, to discover the endpoints from (`oidc`) |
//! | `AUTHED_AUTH_URL`, `AUTHED_TOKEN_URL`, `AUTHED_DEVICE_URL`, `AUTHED_REVOCATION_URL` | endpoints, instead of discovery or to override a preset |
//! | `AUTHED_SCOPES` | space-separated scopes |
//! | `AUTHED_API_URL` | the URL fetched with the user's token |
//! | `AUTHED_TOKEN_FILE` | where `cli_login` and `device_login` keep the login |

// Each example uses part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use authed::{Env, Error, OAuthConfig};

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

impl Provider {
    /// Reads the preset and the variables.
    pub async fn from_env() -> Result<Provider, Error> {
        let env = Env::process();
        let name = env
            .var("AUTHED_PROVIDER")
            .unwrap_or_else(|| "oidc".to_owned());
        let config = match name.as_str() {
            "github" => env.apply(authed::providers::github())?.build()?,
            "google" => env.apply(authed::providers::google())?.build()?,
            "microsoft" => env
                .apply(authed::providers::microsoft_entra(
                    &env.var("AUTHED_TENANT")
                        .unwrap_or_else(|| "common".to_owned()),
                ))?
                .build()?,
            // Any OpenID Connect provider: discovery when an issuer is given, else the URLs.
            _ if env.var(Env::ISSUER).is_some() => env.discover().await?,
            _ if env.var(Env::TOKEN_URL).is_none() => {
                return Err(Error::Config(
                    "set AUTHED_ISSUER to the provider's issuer (its endpoints are then \
                     discovered), or AUTHED_PROVIDER to a preset, or the endpoints one by one \
                     (AUTHED_TOKEN_URL, AUTHED_AUTH_URL or AUTHED_DEVICE_URL); see \
                     examples/support/mod.rs"
                        .to_owned(),
                ));
            }
            _ => env.config()?,
        };
        let defaults = defaults(&name);
        let mut scopes = env.scopes();
        if scopes.is_empty() {
            let default = defaults
                .as_ref()
                .map_or("openid offline_access", |d| d.scopes);
            scopes = default.split_whitespace().map(str::to_owned).collect();
        }
        let api_url = env
            .var("AUTHED_API_URL")
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
            config,
            scopes,
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
            .build()?;
        authed::AuthedClient::builder(login)
            .allow_origin(self.api_origin())
            .http_client(http)
            .build()
    }

    /// Fetches the API URL and prints the status and the start of the body.
    pub async fn show_api(&self, login: authed::RefreshTokenSource) -> Result<(), Error> {
        let response = self.client(login)?.get(&self.api_url).send().await?;
        let status = response.status();
        // A failed read is a transport error (retryable), not a configuration error.
        let body = response.text().await?;
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

/// An error and its causes as one line of text, `error: cause: cause of the cause`. The
/// crate's errors say what happened in `Display` and keep the underlying error (reqwest's,
/// a store's) in `source()`, so each text appears once.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// The end of `main`: an error is printed as text with [`report`] (not as the `Debug`
/// struct a `main` returning `Result` would print), and the program fails.
pub fn exit_code<E: Into<Box<dyn std::error::Error>>>(result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report(&*e.into()));
            ExitCode::FAILURE
        }
    }
}
