//! Presets for APIs whose token endpoints speak their own dialect: their own names for bearer
//! tokens (eBay), for a dead grant (Twitch, Reddit), a nested user token (Slack), or a client
//! authentication they insist on (X).

use crate::config::{OAuthConfig, OAuthConfigBuilder};
use crate::error::Error;
use crate::provider_codes::DeadGrant;
use crate::token::Token;

/// Twitch (id.twitch.tv), OpenID Connect.
///
/// | | |
/// |---|---|
/// | issuer | `https://id.twitch.tv/oauth2` |
/// | authorization | `https://id.twitch.tv/oauth2/authorize` |
/// | token | `https://id.twitch.tv/oauth2/token` |
/// | device authorization | `https://id.twitch.tv/oauth2/device` |
/// | revocation | `https://id.twitch.tv/oauth2/revoke` |
/// | client auth | `client_secret_post` (Twitch reads `client_id` and `client_secret` from the body) |
///
/// Known quirks:
/// - A refresh token that is no longer valid is answered `400 {"error": "Bad Request",
///   "status": 400, "message": "Invalid refresh token"}`
///   (<https://dev.twitch.tv/docs/authentication/refresh-tokens/>): this preset makes that
///   answer, and only that one, a dead grant ([`Error::TokenRevoked`], the login removed).
pub fn twitch() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://id.twitch.tv/oauth2/token")
        .issuer("https://id.twitch.tv/oauth2")
        .jwks_url("https://id.twitch.tv/oauth2/keys")
        .authorization_url("https://id.twitch.tv/oauth2/authorize")
        .device_authorization_url("https://id.twitch.tv/oauth2/device")
        .revocation_url("https://id.twitch.tv/oauth2/revoke")
        .auth_methods_supported(["client_secret_post"])
        .revoked_grant_errors([
            DeadGrant::code("Bad Request").described_as("Invalid refresh token"),
            DeadGrant::code("400").described_as("Invalid refresh token"),
        ])
}

/// Reddit (www.reddit.com).
///
/// | | |
/// |---|---|
/// | authorization | `https://www.reddit.com/api/v1/authorize` |
/// | token | `https://www.reddit.com/api/v1/access_token` |
/// | revocation | `https://www.reddit.com/api/v1/revoke_token` |
/// | client auth | `client_secret_basic` (an installed app has an empty secret: pass `""`) |
///
/// Known quirks:
/// - Errors name the HTTP status as their code: `{"message": "Unauthorized", "error": 401}`
///   (<https://github.com/reddit-archive/reddit/wiki/OAuth2>). A refresh token Reddit no
///   longer accepts is answered `{"message": "Bad Request", "error": 400}`: this preset makes
///   the code `400` a dead grant ([`Error::TokenRevoked`], the login removed).
/// - Ask for a refresh token with the `duration=permanent` authorization parameter.
/// - Reddit throttles clients without a unique `User-Agent`: set one with
///   [`http_client`](OAuthConfigBuilder::http_client).
pub fn reddit() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://www.reddit.com/api/v1/access_token")
        .authorization_url("https://www.reddit.com/api/v1/authorize")
        .revocation_url("https://www.reddit.com/api/v1/revoke_token")
        .auth_methods_supported(["client_secret_basic"])
        .revoked_grant_errors(["400"])
}

/// eBay, production (`api.ebay.com`); [`ebay_sandbox`] for the sandbox.
///
/// | | |
/// |---|---|
/// | authorization | `https://auth.ebay.com/oauth2/authorize` |
/// | token | `https://api.ebay.com/identity/v1/oauth2/token` |
/// | client auth | `client_secret_basic` |
///
/// Known quirks:
/// - Tokens come with `"token_type": "User Access Token"` or `"Application Access Token"`
///   (<https://developer.ebay.com/api-docs/static/oauth-client-credentials-grant.html>); this
///   preset accepts both as bearer tokens ([`OAuthConfigBuilder::bearer_token_types`]), kept
///   with their name and sent as `Authorization: Bearer`.
/// - The authorization request's `redirect_uri` is the application's RuName, not a URL, which
///   the authorization code flow here refuses; client credentials and refresh work as usual.
pub fn ebay() -> OAuthConfigBuilder {
    ebay_at("https://auth.ebay.com", "https://api.ebay.com")
}

/// eBay's sandbox (`api.sandbox.ebay.com`); otherwise as [`ebay`].
pub fn ebay_sandbox() -> OAuthConfigBuilder {
    ebay_at(
        "https://auth.sandbox.ebay.com",
        "https://api.sandbox.ebay.com",
    )
}

fn ebay_at(auth: &str, api: &str) -> OAuthConfigBuilder {
    OAuthConfig::builder(format!("{api}/identity/v1/oauth2/token"))
        .authorization_url(format!("{auth}/oauth2/authorize"))
        .auth_methods_supported(["client_secret_basic"])
        .bearer_token_types(["User Access Token", "Application Access Token"])
}

/// Slack apps (`oauth.v2.access`).
///
/// | | |
/// |---|---|
/// | authorization | `https://slack.com/oauth/v2/authorize` |
/// | token | `https://slack.com/api/oauth.v2.access` |
/// | revocation | none (`auth.revoke` is a Web API method, not RFC 7009) |
/// | client auth | `client_secret_basic` (Slack accepts `client_secret_post` too) |
///
/// Known quirks:
/// - Errors come with HTTP 200 and `"ok": false`; `invalid_refresh_token` and `invalid_code`
///   are dead grants.
/// - Tokens are named `"token_type": "bot"` or `"user"`; both are bearer tokens.
/// - A sign-in returns the bot token at the top level and the installing user's token in
///   `authed_user` (<https://api.slack.com/methods/oauth.v2.access>). Ask for user scopes with
///   the `user_scope` parameter; read the user token with [`slack_user_token`]. When only user
///   scopes were asked for, the answer has no bot token, and the user token is the login's.
pub fn slack() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://slack.com/api/oauth.v2.access")
        .authorization_url("https://slack.com/oauth/v2/authorize")
}

/// The user token of a Slack sign-in (`authed_user` in `oauth.v2.access`'s answer), read by
/// the same token response rules as any token; `None` when the answer had none. To keep it
/// fresh (with token rotation on), make it a login of its own with
/// [`OAuthConfig::refresh_token_source`].
///
/// ```no_run
/// # async fn run(login: authed::RefreshTokenSource, config: authed::OAuthConfig) -> Result<(), authed::Error> {
/// use authed::TokenSource;
///
/// let token = login.token().await?;
/// if let Some(user_token) = authed::providers::slack_user_token(&token)? {
///     let user_login = config.refresh_token_source().key("slack-user").from_token(user_token).await?;
///     # let _ = user_login;
/// }
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// As for any token response: [`Error::UnsupportedTokenType`], [`Error::MalformedResponse`].
pub fn slack_user_token(token: &Token) -> Result<Option<Token>, Error> {
    let received = token
        .received_at()
        .unwrap_or_else(std::time::SystemTime::now);
    crate::endpoint::nested_token(token.extra(), "authed_user", received)
}

/// X (formerly Twitter), OAuth 2.0.
///
/// | | |
/// |---|---|
/// | authorization | `https://x.com/i/oauth2/authorize` |
/// | token | `https://api.x.com/2/oauth2/token` |
/// | revocation | `https://api.x.com/2/oauth2/revoke` |
/// | client auth | `client_secret_basic` for confidential clients (the only method X takes); `none` without a secret |
///
/// Known quirks:
/// - A confidential client that does not send HTTP Basic credentials is answered
///   `401 unauthorized_client` "Missing valid authorization header": an
///   [`Error::UnauthorizedClient`], a configuration error. A native or single-page app is a
///   public client: give no secret.
/// - A refresh token needs the `offline.access` scope.
pub fn x() -> OAuthConfigBuilder {
    OAuthConfig::builder("https://api.x.com/2/oauth2/token")
        .authorization_url("https://x.com/i/oauth2/authorize")
        .revocation_url("https://api.x.com/2/oauth2/revoke")
        .auth_methods_supported(["client_secret_basic"])
}
