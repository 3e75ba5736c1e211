//! Ready-made configurations for common providers.
//!
//! Each function returns an [`OAuthConfigBuilder`] with the provider's endpoints and its
//! default client authentication; add your client id (and secret) and build. Providers that
//! publish OpenID Connect metadata are configured through [discovery](OAuthConfig::discover),
//! so their endpoints always match the tenant you name.
//!
//! ```no_run
//! # async fn run() -> Result<(), authed::Error> {
//! use authed::providers;
//!
//! let github = providers::github().client_id("Iv1.0123456789abcdef").build()?;
//! let keycloak = providers::keycloak("https://sso.example.com", "acme")
//!     .await?
//!     .client_id("billing")
//!     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
//!     .build()?;
//! # let _ = (github, keycloak);
//! # Ok(()) }
//! ```
//!
//! Quirks common to several providers are handled for all of them in the one token endpoint
//! client: form-encoded token responses (whatever the `Content-Type` says), `expires_in` as
//! a string or named `expires`, missing `expires_in` or `token_type`, `token_type` in any
//! case, errors sent with HTTP 200 or in other shapes than RFC 6749's (`error` as a number or
//! an object, an `errors` array, WeChat's `errcode`, Okta's `errorCode`, `status` /
//! `message`, `reason`, `"ok": false`), providers' own names for a dead grant (Facebook's
//! `190`, WeChat's `40030`, ...), rate limits in their own shapes (reset headers, a 429's
//! message, Microsoft's AADSTS50196), compressed answers, comma-separated scopes. What each
//! provider needs from you is listed with it; APIs with a dialect of their own have presets:
//! [`slack`], [`twitch`], [`reddit`], [`ebay`], [`x`].
//!
//! `expires_in` is read by these rules:
//!
//! | `expires_in` | the token |
//! |---|---|
//! | missing, `null`, `""` | has no known expiry: used until an API answers 401 |
//! | `0` | has no known expiry (as Go's x/oauth2 reads it) |
//! | a number or numeric string, fractions too | expires that many seconds after receipt |
//! | negative | is already expired: handed to the caller that asked, replaced on the next call |
//! | above 2^31 - 1 seconds (68 years), `inf` | expires after 68 years (saturates) |
//! | anything else | the response is [`Error::MalformedResponse`] |
//!
//! Beyond client secrets: [`GoogleServiceAccount`] reads a Google service account key file
//! for the JWT bearer grant; [`google_sts`] is GCP's token exchange endpoint for workload
//! identity federation; [`microsoft_entra`] documents certificate credentials
//! (`private_key_jwt` with `x5t#S256`) and federated credentials (a token file as the client
//! assertion).
//!
//! A preset adds its provider's codes for a dead grant, beyond the built-in ones, with
//! [`OAuthConfigBuilder::revoked_grant_errors`] (a code, or a [`DeadGrant`](crate::DeadGrant)
//! with words), and its names for bearer tokens with
//! [`OAuthConfigBuilder::bearer_token_types`]; you can do the same for any provider.

use url::Url;

use crate::config::{OAuthConfig, OAuthConfigBuilder};
use crate::error::Error;

mod apis;
mod google_service_account;

pub use apis::{ebay, ebay_sandbox, reddit, slack, slack_user_token, twitch, x};
pub use google_service_account::GoogleServiceAccount;

/// `https://host` from `host` or `https://host/`, without a trailing `/`.
fn base(host_or_url: &str) -> String {
    let trimmed = host_or_url.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    }
}

/// GitHub (github.com): OAuth Apps and GitHub Apps, authorization code and device flow.
///
/// | | |
/// |---|---|
/// | authorization | `https://github.com/login/oauth/authorize` |
/// | token | `https://github.com/login/oauth/access_token` |
/// | device authorization | `https://github.com/login/device/code` |
/// | revocation, introspection, discovery, issuer | none (GitHub's token revocation is a REST API call, not RFC 7009) |
/// | client auth | `client_secret_post` (GitHub's documented way); `none` without a secret, as in the device flow |
///
/// Known quirks:
/// - Without `Accept: application/json` the token endpoint answers form-encoded; this crate
///   always sends the header and reads either form.
/// - Errors come with HTTP 200 (`{"error": "bad_verification_code"}`); the `error` field
///   decides. GitHub's own codes are mapped: `incorrect_client_credentials` is
///   [`Error::InvalidClient`], `bad_verification_code` (a spent or expired code) and
///   `bad_refresh_token` (an expired, used or revoked refresh token) are
///   [`Error::TokenRevoked`], which removes the stored login.
/// - Scopes are comma-separated in responses (`repo,gist`); they are split like spaces.
/// - OAuth App tokens do not expire and come without a refresh token. GitHub App user tokens
///   expire after 8 hours when "expire user authorization tokens" is on, and then come with
///   a refresh token that is replaced at every refresh.
/// - The device flow must be enabled in the app's settings (else `device_flow_disabled`).
pub fn github() -> OAuthConfigBuilder {
    github_enterprise_server("https://github.com")
}

/// GitHub Enterprise Server at `base_url` (`https://github.example.com`): the same paths and
/// quirks as [`github`].
pub fn github_enterprise_server(base_url: &str) -> OAuthConfigBuilder {
    let base = base(base_url);
    OAuthConfig::builder(format!("{base}/login/oauth/access_token"))
        .authorization_url(format!("{base}/login/oauth/authorize"))
        .device_authorization_url(format!("{base}/login/device/code"))
        .auth_methods_supported(["client_secret_post"])
}

/// Google (accounts.google.com).
///
/// | | |
/// |---|---|
/// | issuer | `https://accounts.google.com` |
/// | authorization | `https://accounts.google.com/o/oauth2/v2/auth` |
/// | token | `https://oauth2.googleapis.com/token` |
/// | device authorization | `https://oauth2.googleapis.com/device/code` |
/// | revocation | `https://oauth2.googleapis.com/revoke` |
/// | introspection | none |
/// | client auth | `client_secret_basic` (Google accepts `client_secret_post` too) |
///
/// Known quirks:
/// - A refresh token is issued only for `access_type=offline`, and only at the first consent;
///   ask with `prompt=consent` to get a new one.
/// - The device authorization response names its URL `verification_url`, not RFC 8628's
///   `verification_uri`, and polling needs the client secret even for "TVs and Limited Input
///   devices" clients.
/// - Refresh tokens are not rotated; they stop working after six months unused, or after seven
///   days for apps in "Testing" publishing status (answered `invalid_grant`).
/// - Service accounts do not use this configuration: see [`GoogleServiceAccount`].
pub fn google() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://oauth2.googleapis.com/token")
        .issuer("https://accounts.google.com")
        .jwks_url("https://www.googleapis.com/oauth2/v3/certs")
        .authorization_url("https://accounts.google.com/o/oauth2/v2/auth")
        .device_authorization_url("https://oauth2.googleapis.com/device/code")
        .revocation_url("https://oauth2.googleapis.com/revoke")
}

/// Microsoft Entra ID (Azure AD), v2.0 endpoints, in the global cloud.
///
/// `tenant` is a tenant id (GUID), a verified domain (`contoso.onmicrosoft.com`), or one of
/// `common` (work and personal accounts), `organizations` or `consumers`.
///
/// | | |
/// |---|---|
/// | authorization | `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize` |
/// | token | `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token` |
/// | device authorization | `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/devicecode` |
/// | issuer | `https://login.microsoftonline.com/{tenant}/v2.0` when `tenant` is a GUID; otherwise unset |
/// | revocation, introspection | none |
/// | client auth | `client_secret_post` (Microsoft's documented way; Basic is accepted too); `private_key_jwt` with a [`private_key`](OAuthConfigBuilder::private_key) or a [`client_assertion_file`](OAuthConfigBuilder::client_assertion_file) |
///
/// **Certificate credentials** (an app registration with a certificate instead of a secret):
/// load the certificate's private key and attach the certificate, whose SHA-256 thumbprint
/// goes in the `x5t#S256` header Entra looks the credential up by; assertions name the token
/// endpoint as their audience, as Entra requires.
///
/// ```no_run
/// # fn run() -> Result<(), authed::Error> {
/// let key = authed::SigningKey::from_pem(&std::fs::read("app.key").unwrap())?
///     .with_certificate(&std::fs::read("app.crt").unwrap())?;
/// let config = authed::providers::microsoft_entra("00000000-0000-0000-0000-000000000000")
///     .client_id("11111111-1111-1111-1111-111111111111")
///     .private_key(key)
///     .build()?;
/// let source = config
///     .client_credentials()
///     .scopes(["https://graph.microsoft.com/.default"])
///     .build();
/// # let _ = source; Ok(()) }
/// ```
///
/// **Workload identity federation** (AKS workload identity, GitHub Actions): the platform's
/// token is the client assertion; the app registration trusts it through a federated
/// credential. No secret and no key:
///
/// ```no_run
/// # fn run() -> Result<(), authed::Error> {
/// let tenant = std::env::var("AZURE_TENANT_ID").unwrap_or_default();
/// let config = authed::providers::microsoft_entra(&tenant)
///     .client_id(std::env::var("AZURE_CLIENT_ID").unwrap_or_default())
///     .client_assertion_file(std::env::var("AZURE_FEDERATED_TOKEN_FILE").unwrap_or_default())
///     .build()?;
/// # let _ = config; Ok(()) }
/// ```
///
/// Known quirks:
/// - The client credentials grant needs the scope `{resource}/.default`, e.g.
///   `https://graph.microsoft.com/.default`.
/// - Refresh tokens need the `offline_access` scope; a new one comes with every refresh.
/// - The v1 endpoints (`/oauth2/token`) send `expires_in` as a string; handled.
/// - For `common`, `organizations` and `consumers` the metadata's issuer is a template
///   (`https://login.microsoftonline.com/{tenantid}/v2.0`), so discovery of those cannot pass
///   the issuer check: use this function.
/// - Errors carry an `AADSTS…` code in `error_description`.
pub fn microsoft_entra(tenant: &str) -> OAuthConfigBuilder {
    microsoft_entra_at("https://login.microsoftonline.com", tenant)
}

/// Microsoft Entra ID in a national cloud, by its authority host
/// (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`); otherwise as
/// [`microsoft_entra`].
pub fn microsoft_entra_at(authority: &str, tenant: &str) -> OAuthConfigBuilder {
    let tenant = tenant.trim().trim_matches('/');
    let base = format!("{}/{tenant}", base(authority));
    let builder = OAuthConfig::builder(format!("{base}/oauth2/v2.0/token"))
        .authorization_url(format!("{base}/oauth2/v2.0/authorize"))
        .device_authorization_url(format!("{base}/oauth2/v2.0/devicecode"))
        .jwks_url(format!("{base}/discovery/v2.0/keys"))
        .auth_methods_supported(["client_secret_post", "private_key_jwt"])
        // Entra wants the token endpoint as the audience of client assertions.
        .client_assertion_audience(format!("{base}/oauth2/v2.0/token"));
    if is_guid(tenant) {
        builder.issuer(format!("{base}/v2.0"))
    } else {
        builder
    }
}

/// Google Cloud's Security Token Service (`https://sts.googleapis.com/v1/token`), for
/// workload identity federation: a token from another identity provider (a GitHub Actions
/// OIDC token, a Kubernetes service account token, an AWS or Entra token) is exchanged
/// ([`OAuthConfig::token_exchange`]) for a Google access token. STS takes no client
/// authentication.
///
/// | parameter | value |
/// |---|---|
/// | `audience` | `//iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL_ID/providers/PROVIDER_ID` |
/// | `subject_token_type` | [`token_types::JWT`](crate::token_types::JWT) for OIDC tokens (the default of [`SubjectToken::file`](crate::SubjectToken::file)) |
/// | `requested_token_type` | [`token_types::ACCESS_TOKEN`](crate::token_types::ACCESS_TOKEN) |
/// | `scope` | `https://www.googleapis.com/auth/cloud-platform` |
///
/// The token is a federated access token; APIs that need a service account's token take one
/// from the IAM Credentials API (`generateAccessToken`), called with this token.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{SubjectToken, TokenSource, token_types};
///
/// let config = authed::providers::google_sts().build()?;
/// let source = config
///     .token_exchange(SubjectToken::file("/var/run/secrets/tokens/gcp-token"))
///     .audience("//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/ci/providers/github")
///     .requested_token_type(token_types::ACCESS_TOKEN)
///     .scopes(["https://www.googleapis.com/auth/cloud-platform"])
///     .build();
/// let token = source.token().await?;
/// # let _ = token; Ok(()) }
/// ```
pub fn google_sts() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://sts.googleapis.com/v1/token").client_id("")
}

/// `8-4-4-4-12` hex digits: a tenant id, whose issuer is known without asking.
fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// GitLab.com.
///
/// | | |
/// |---|---|
/// | issuer | `https://gitlab.com` |
/// | authorization | `https://gitlab.com/oauth/authorize` |
/// | token | `https://gitlab.com/oauth/token` |
/// | device authorization | `https://gitlab.com/oauth/authorize_device` (GitLab 17.2 and later) |
/// | revocation | `https://gitlab.com/oauth/revoke` |
/// | client auth | `client_secret_basic` (`client_secret_post` is accepted too) |
///
/// Known quirks:
/// - Access tokens expire after two hours; every refresh returns a new refresh token and
///   the old one stops working, so a refresh token must never be used twice.
/// - Token responses carry a non-standard `created_at` (kept in [`Token::extra`](crate::Token::extra)).
pub fn gitlab() -> OAuthConfigBuilder {
    gitlab_self_managed("https://gitlab.com")
}

/// A self-managed GitLab at `base_url` (`https://gitlab.example.com`, or with a relative URL
/// root such as `https://example.com/gitlab`); as [`gitlab`].
pub fn gitlab_self_managed(base_url: &str) -> OAuthConfigBuilder {
    let base = base(base_url);
    OAuthConfig::builder(format!("{base}/oauth/token"))
        .issuer(base.clone())
        .jwks_url(format!("{base}/oauth/discovery/keys"))
        .authorization_url(format!("{base}/oauth/authorize"))
        .device_authorization_url(format!("{base}/oauth/authorize_device"))
        .revocation_url(format!("{base}/oauth/revoke"))
}

/// Auth0, by tenant domain (`example.us.auth0.com`, or a custom domain), through discovery
/// of `https://{domain}/`.
///
/// Known quirks: ask for an API's access token with the `audience` parameter
/// ([`ClientCredentialsBuilder::audience`](crate::ClientCredentialsBuilder::audience));
/// without it Auth0 issues a token for its userinfo endpoint only. The issuer ends with `/`.
/// Refresh token rotation, when enabled, detects reuse and revokes the whole family.
///
/// # Errors
///
/// As [`OAuthConfig::discover`].
pub async fn auth0(domain: &str) -> Result<OAuthConfigBuilder, Error> {
    OAuthConfig::discover(format!("{}/", base(domain))).await
}

/// Okta, by org domain (`example.okta.com`) and authorization server, through discovery.
///
/// `Some("default")` (or another id) selects a custom authorization server, issuer
/// `https://{domain}/oauth2/{id}`; `None` the org authorization server, issuer
/// `https://{domain}`. Known quirk: the org authorization server issues tokens only for
/// Okta's own APIs and has no client credentials grant for your APIs; use a custom one.
///
/// # Errors
///
/// As [`OAuthConfig::discover`].
pub async fn okta(
    domain: &str,
    authorization_server: Option<&str>,
) -> Result<OAuthConfigBuilder, Error> {
    let issuer = match authorization_server {
        Some(id) => format!("{}/oauth2/{}", base(domain), id.trim_matches('/')),
        None => base(domain),
    };
    OAuthConfig::discover(issuer).await
}

/// Keycloak, by server URL and realm, through discovery of `{base_url}/realms/{realm}`.
///
/// Keycloak before version 17 serves under `/auth`: pass `https://sso.example.com/auth`.
/// Known quirk: with "Revoke Refresh Token" on, reusing a refresh token fails with
/// `invalid_grant`; sessions that end on the server also end the refresh token.
///
/// # Errors
///
/// [`Error::Config`] when `base_url` is not a URL; otherwise as [`OAuthConfig::discover`].
pub async fn keycloak(base_url: &str, realm: &str) -> Result<OAuthConfigBuilder, Error> {
    OAuthConfig::discover(keycloak_issuer(base_url, realm)?).await
}

fn keycloak_issuer(base_url: &str, realm: &str) -> Result<String, Error> {
    let mut url = Url::parse(&base(base_url))
        .map_err(|e| Error::config(format!("invalid Keycloak base URL: {e}")))?;
    url.path_segments_mut()
        .map_err(|()| Error::config("invalid Keycloak base URL"))?
        .pop_if_empty()
        .extend(["realms", realm]);
    Ok(url.into())
}

/// Any OpenID Connect or RFC 8414 provider, by issuer URL: [`OAuthConfig::discover`].
///
/// # Errors
///
/// As [`OAuthConfig::discover`].
pub async fn oidc(issuer: &str) -> Result<OAuthConfigBuilder, Error> {
    OAuthConfig::discover(issuer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientAuthMethod;
    use crate::config::Endpoints;

    fn endpoints(builder: OAuthConfigBuilder) -> Endpoints {
        builder.client_id("id").build().unwrap().endpoints().clone()
    }

    fn url(s: &str) -> Option<Url> {
        Some(Url::parse(s).unwrap())
    }

    fn auth_method(builder: OAuthConfigBuilder, secret: Option<&str>) -> ClientAuthMethod {
        let builder = builder.client_id("id");
        let builder = match secret {
            Some(s) => builder.client_secret(s),
            None => builder,
        };
        builder.build().unwrap().client_auth_method()
    }

    #[test]
    fn github_endpoints_and_auth() {
        let e = endpoints(github());
        assert_eq!(
            e.token_url.as_str(),
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(
            e.authorization_url,
            url("https://github.com/login/oauth/authorize")
        );
        assert_eq!(
            e.device_authorization_url,
            url("https://github.com/login/device/code")
        );
        assert_eq!(
            (e.issuer, e.revocation_url, e.introspection_url),
            (None, None, None)
        );
        assert_eq!(
            auth_method(github(), Some("s")),
            ClientAuthMethod::ClientSecretPost
        );
        // The device flow of a public app sends only the client id.
        assert_eq!(auth_method(github(), None), ClientAuthMethod::None);
        let ghes = endpoints(github_enterprise_server("github.example.com/"));
        assert_eq!(
            ghes.token_url.as_str(),
            "https://github.example.com/login/oauth/access_token"
        );
    }

    #[test]
    fn google_endpoints_and_auth() {
        let e = endpoints(google());
        assert_eq!(e.issuer.as_deref(), Some("https://accounts.google.com"));
        assert_eq!(e.token_url.as_str(), "https://oauth2.googleapis.com/token");
        assert_eq!(
            e.authorization_url,
            url("https://accounts.google.com/o/oauth2/v2/auth")
        );
        assert_eq!(
            e.device_authorization_url,
            url("https://oauth2.googleapis.com/device/code")
        );
        assert_eq!(
            e.revocation_url,
            url("https://oauth2.googleapis.com/revoke")
        );
        assert_eq!(e.introspection_url, None);
        assert_eq!(
            auth_method(google(), Some("s")),
            ClientAuthMethod::ClientSecretBasic
        );
    }

    #[test]
    fn microsoft_entra_is_tenant_aware() {
        let e = endpoints(microsoft_entra("organizations"));
        let base = "https://login.microsoftonline.com/organizations/oauth2/v2.0";
        assert_eq!(e.token_url.as_str(), format!("{base}/token"));
        assert_eq!(e.authorization_url, url(&format!("{base}/authorize")));
        assert_eq!(
            e.device_authorization_url,
            url(&format!("{base}/devicecode"))
        );
        assert_eq!(e.issuer, None);
        let guid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let e = endpoints(microsoft_entra(guid));
        assert_eq!(
            e.issuer,
            Some(format!("https://login.microsoftonline.com/{guid}/v2.0"))
        );
        assert_eq!(
            e.token_url.as_str(),
            format!("https://login.microsoftonline.com/{guid}/oauth2/v2.0/token")
        );
        let us = endpoints(microsoft_entra_at(
            "https://login.microsoftonline.us/",
            "contoso.com",
        ));
        assert_eq!(
            us.token_url.as_str(),
            "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token"
        );
        assert_eq!(
            auth_method(microsoft_entra("common"), Some("s")),
            ClientAuthMethod::ClientSecretPost
        );
        assert!(!is_guid("72f988bf-86f1-41af-91ab-2d7cd011db4"));
        assert!(!is_guid("common"));
    }

    #[test]
    fn gitlab_endpoints_for_a_self_managed_base_url() {
        let e = endpoints(gitlab());
        assert_eq!(e.issuer.as_deref(), Some("https://gitlab.com"));
        assert_eq!(e.token_url.as_str(), "https://gitlab.com/oauth/token");
        let e = endpoints(gitlab_self_managed("https://example.com/gitlab/"));
        assert_eq!(e.issuer.as_deref(), Some("https://example.com/gitlab"));
        assert_eq!(
            e.token_url.as_str(),
            "https://example.com/gitlab/oauth/token"
        );
        assert_eq!(
            e.authorization_url,
            url("https://example.com/gitlab/oauth/authorize")
        );
        assert_eq!(
            e.device_authorization_url,
            url("https://example.com/gitlab/oauth/authorize_device")
        );
        assert_eq!(
            e.revocation_url,
            url("https://example.com/gitlab/oauth/revoke")
        );
        assert_eq!(
            auth_method(gitlab(), Some("s")),
            ClientAuthMethod::ClientSecretBasic
        );
        // Plain HTTP to a remote GitLab is refused like any other endpoint.
        let insecure = gitlab_self_managed("http://gitlab.internal")
            .client_id("id")
            .build();
        assert!(insecure.unwrap_err().is_configuration());
    }

    #[test]
    fn keycloak_issuer_appends_the_realm() {
        assert_eq!(
            keycloak_issuer("https://sso.example.com/", "acme").unwrap(),
            "https://sso.example.com/realms/acme"
        );
        assert_eq!(
            keycloak_issuer("https://sso.example.com/auth", "my realm").unwrap(),
            "https://sso.example.com/auth/realms/my%20realm"
        );
        let err = keycloak_issuer("https://exa mple.com", "x").unwrap_err();
        assert!(err.is_configuration());
    }
}
