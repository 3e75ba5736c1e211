//! What providers' own error codes mean: the one table of dead grants ("sign in again"), which
//! presets and users extend with [`DeadGrant`]s, and the signs of a rate limit that does not
//! come as a 429. On the ground floor: `error`'s mapping reads both.

use crate::oauth_error::OAuthError;

/// One way a provider says "this grant is dead, sign in again": an error code, optionally
/// only together with words in its description. A refresh answered so is
/// [`Error::TokenRevoked`](crate::Error::TokenRevoked) and removes the stored login, so the
/// dead refresh token is never sent again.
///
/// Add them with [`OAuthConfigBuilder::revoked_grant_errors`](crate::OAuthConfigBuilder::revoked_grant_errors),
/// for a provider whose dead-grant answer is no dead grant anywhere else (presets do). A
/// string is a code. Codes and words are compared ignoring ASCII case; a numeric code
/// (`{"error": 400}`) is written as its digits.
///
/// ```
/// use authed::{DeadGrant, OAuthConfig};
///
/// let config = OAuthConfig::builder("https://id.example.com/oauth2/token")
///     .client_id("app")
///     .revoked_grant_errors([
///         DeadGrant::code("GRANT_GONE"),
///         // Only this 400, not every one.
///         DeadGrant::code("400").described_as("invalid refresh token"),
///     ])
///     .build()?;
/// # Ok::<(), authed::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadGrant {
    code: String,
    words: Option<String>,
}

impl DeadGrant {
    /// The provider's error code `code`, whatever the description says.
    pub fn code(code: impl Into<String>) -> Self {
        DeadGrant {
            code: code.into(),
            words: None,
        }
    }

    /// Only when the description contains `words` too (Twitch sends `Bad Request` for many
    /// things; with "Invalid refresh token" it means a dead grant).
    pub fn described_as(mut self, words: impl Into<String>) -> Self {
        self.words = Some(words.into());
        self
    }

    /// `true` when `e` is this dead grant.
    pub(crate) fn matches(&self, e: &OAuthError) -> bool {
        matches_entry(e, &self.code, self.words.as_deref())
    }
}

impl From<&str> for DeadGrant {
    fn from(code: &str) -> Self {
        DeadGrant::code(code)
    }
}

impl From<String> for DeadGrant {
    fn from(code: String) -> Self {
        DeadGrant::code(code)
    }
}

fn matches_entry(e: &OAuthError, code: &str, words: Option<&str>) -> bool {
    e.error.eq_ignore_ascii_case(code)
        && words.is_none_or(|w| {
            e.description
                .as_deref()
                .is_some_and(|d| d.to_ascii_lowercase().contains(&w.to_ascii_lowercase()))
        })
}

/// Provider codes that mean "this grant is dead, sign in again" at every provider that sends
/// them, with the words a description must contain where the code alone is too broad.
/// Presets add the ones that only mean this at their provider.
const DEAD_GRANTS: &[(&str, Option<&str>)] = &[
    // RFC 6749 §5.2.
    ("invalid_grant", None),
    // GitHub: a spent or expired code, and an expired, used or revoked refresh token.
    // https://docs.github.com/en/apps/oauth-apps/maintaining-oauth-apps/troubleshooting-oauth-app-access-token-request-errors
    ("bad_verification_code", None),
    ("bad_refresh_token", None),
    // Slack's oauth.v2.access (answered with HTTP 200 and `"ok": false`).
    // https://api.slack.com/methods/oauth.v2.access
    ("invalid_refresh_token", None),
    ("invalid_code", None),
    // HubSpot's legacy `status` codes (`BAD_REFRESH_TOKEN` is GitHub's code above, in
    // capitals). https://developers.hubspot.com/docs/api/oauth/tokens
    ("bad_auth_code", None),
    // Facebook's `error.code` 190, "Invalid OAuth 2.0 Access Token" (expired, password
    // changed, app removed: subcodes 458-467).
    // https://developers.facebook.com/docs/graph-api/guides/error-handling/
    ("190", None),
    // WeChat's `errcode`s: invalid code, invalid refresh_token, code already used,
    // refresh_token expired, code expired.
    // https://developers.weixin.qq.com/doc/oplatform/en/Return_codes/Return_code_descriptions_new.html
    ("40029", None),
    ("40030", None),
    ("40163", None),
    ("42002", None),
    ("42003", None),
    // Strava's `Fault`: `{"errors": [{"resource": "RefreshToken", "code": "invalid"}]}`, read
    // as code `invalid` described by its resource and field.
    // https://developers.strava.com/docs/reference/#api-models-Fault
    ("invalid", Some("RefreshToken")),
    ("invalid", Some("AuthorizationCode")),
];

/// Answers that say "slow down" without a 429 (or with a body that names it): a grant that
/// is still alive, and a request to try later. Matched before [`DEAD_GRANTS`].
const RATE_LIMITED: &[(&str, Option<&str>)] = &[
    // Microsoft Entra throttles a user flow's refresh with `invalid_grant` AADSTS50196, "the
    // server terminated an operation because it encountered a client request loop".
    // https://learn.microsoft.com/en-us/entra/msal/dotnet/advanced/client-and-server-throttling
    ("invalid_grant", Some("AADSTS50196")),
    // Okta's E0000047, "API call exceeded rate limit due to too many requests".
    // https://developer.okta.com/docs/reference/error-codes/#E0000047
    ("E0000047", None),
];

/// `true` when `e` means the grant is dead, by the built-in table or `extra`.
pub(crate) fn is_dead_grant(e: &OAuthError, extra: &[DeadGrant]) -> bool {
    DEAD_GRANTS
        .iter()
        .any(|(code, words)| matches_entry(e, code, *words))
        || extra.iter().any(|d| d.matches(e))
}

/// `true` when `e` is a rate limit in a provider's own words.
pub(crate) fn is_rate_limit(e: &OAuthError) -> bool {
    RATE_LIMITED
        .iter()
        .any(|(code, words)| matches_entry(e, code, *words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_words_match_ignoring_case() {
        let twitch = DeadGrant::code("bad request").described_as("INVALID REFRESH TOKEN");
        let e = OAuthError::new("Bad Request").with_description(Some("Invalid refresh token"));
        assert!(twitch.matches(&e));
        assert!(!twitch.matches(&OAuthError::new("Bad Request")));
        assert!(is_dead_grant(&OAuthError::new("INVALID_GRANT"), &[]));
        let strava =
            OAuthError::new("invalid").with_description(Some("RefreshToken refresh_token"));
        assert!(is_dead_grant(&strava, &[]));
        assert!(!is_dead_grant(&OAuthError::new("invalid"), &[]));
        let loop_ = OAuthError::new("invalid_grant").with_description(Some("AADSTS50196: loop"));
        assert!(is_rate_limit(&loop_) && !is_rate_limit(&OAuthError::new("invalid_grant")));
    }
}
