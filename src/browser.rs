//! The one check for every URL handed to a browser or shown to a user: the authorization URL,
//! the end-session URL, and the device flow's `verification_uri` /
//! `verification_uri_complete`; and the one check of a URI the browser is sent back to.

use url::Url;

use crate::config::is_loopback;
use crate::error::Error;

/// `Ok` when `raw` is safe to open in a browser or show to a user: an absolute `https` URL,
/// or `http` on a loopback host (or any host with `allow_insecure_http`); no other scheme
/// (`file:`, `javascript:`, `data:`, custom ones); no user info; nothing a launcher could
/// read as an option (a leading `-`) or as a second argument (whitespace, control
/// characters). The reason never quotes `raw`.
pub(crate) fn check_browser_url(raw: &str, allow_insecure_http: bool) -> Result<(), &'static str> {
    if raw.starts_with('-') {
        return Err("it starts with '-', which a launcher could read as an option");
    }
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("it contains whitespace, control characters or backslashes");
    }
    let url = Url::parse(raw).map_err(|_| "it is not an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure_http || is_loopback(&url) => {}
        "http" => return Err("it is plain http on a host that is not loopback"),
        _ => return Err("its scheme is neither https nor http"),
    }
    if url.host().is_none() {
        return Err("it has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("it carries user info");
    }
    Ok(())
}

/// A URI the provider sends the browser back to (a `redirect_uri`, a
/// `post_logout_redirect_uri`), RFC 9700 §2.6 and RFC 8252 §7: `https`; `http` only on a
/// loopback host; or a native app's private-use scheme in reverse-domain form
/// (`com.example.app:/callback`).
pub(crate) fn check_redirect_uri(raw: &str) -> Result<(), Error> {
    let url = Url::parse(raw).map_err(|e| Error::config(format!("invalid redirect URI: {e}")))?;
    if url.fragment().is_some() {
        return Err(Error::config(
            "a redirect URI has no fragment (RFC 6749 §3.1.2)",
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(Error::config(
            "the redirect URI must use https unless it is on loopback (RFC 9700 §2.6)",
        )),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(Error::config(
            "the redirect URI must be https, loopback http, or a private-use scheme in \
             reverse-domain form (RFC 8252 §7.1)",
        )),
    }
}

/// The device flow's `verification_uri` and `verification_uri_complete` (RFC 8628 §3.2),
/// which the app shows the user or opens: [`check_browser_url`], as a typed error.
pub(crate) fn check_verification_uris(
    status: u16,
    uri: &str,
    complete: Option<&str>,
    allow_insecure_http: bool,
) -> Result<(), Error> {
    for (name, value) in [
        ("verification_uri", Some(uri)),
        ("verification_uri_complete", complete),
    ] {
        if let Some(value) = value {
            check_browser_url(value, allow_insecure_http).map_err(|why| {
                Error::malformed(
                    status,
                    format!("the device authorization response's {name} is refused: {why}"),
                )
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_browser_url;

    #[test]
    fn only_https_or_loopback_http_without_tricks() {
        for ok in [
            "https://auth.example.com/authorize?x=1",
            "http://127.0.0.1:8080/device",
            "http://[::1]/device",
            "http://localhost/device",
        ] {
            assert_eq!(check_browser_url(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "javascript:alert(1)",
            "data:text/html,<script>",
            "-e https://evil.example",
            "--new-window=https://x",
            "https://a.example/ --flag",
            "https://a.example/\n",
            "http://evil.example/device",
            "https://user:pw@a.example/",
            "ms-settings:network",
            "relative/path",
            "",
        ] {
            assert!(check_browser_url(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_browser_url("http://lan.example/x", true), Ok(()));
    }
}
