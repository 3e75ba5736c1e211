//! The provider's own error (RFC 6749 §5.2) as it sent it, and the rules for showing provider
//! text. On the ground floor: `error` wraps it in typed variants.

use std::fmt;
use std::time::Duration;

/// An OAuth error response (RFC 6749 §5.2), as the provider sent it.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The `error` code, e.g. `invalid_grant`.
    pub error: String,
    /// The provider's `error_description`, if any.
    pub description: Option<String>,
    /// The provider's `error_uri`, if any.
    pub uri: Option<String>,
    /// The HTTP status the error came with; `None` when it arrived another way (a redirect
    /// to a callback URL).
    pub status: Option<u16>,
    /// The `interval` a device flow `slow_down` names (GitHub sends one).
    interval: Option<Duration>,
}

/// Provider-controlled text ends up in logs and terminals: keep it short and printable.
pub(crate) const MAX_FIELD_CHARS: usize = 512;

/// Replaces control characters with a space, so a provider's CR/LF cannot forge log lines
/// and words on either side of a newline do not run together; keeps at most 512 characters.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_FIELD_CHARS)
        .collect()
}

impl OAuthError {
    /// An error with the given code and no description.
    pub fn new(error: impl AsRef<str>) -> Self {
        OAuthError {
            error: clean(error.as_ref()),
            description: None,
            uri: None,
            status: None,
            interval: None,
        }
    }

    /// The new polling interval a device flow `slow_down` error carries, when the provider
    /// sent one (GitHub does; RFC 8628 §3.5 otherwise adds 5 seconds).
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    pub(crate) fn with_interval(mut self, interval: Option<Duration>) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, description: Option<&str>) -> Self {
        self.description = description.map(clean);
        self
    }

    /// Sets the error URI.
    pub fn with_uri(mut self, uri: Option<&str>) -> Self {
        self.uri = uri.map(clean);
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: Option<u16>) -> Self {
        self.status = status;
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(d) = &self.description {
            write!(f, ": {d}")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "; see {u}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("error", &self.error)
            .field("description", &self.description)
            .field("uri", &self.uri)
            .field("status", &self.status)
            .field("interval", &self.interval)
            .finish()
    }
}
