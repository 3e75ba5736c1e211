//! [`RequestUrl`]: what a request can be addressed with.

use std::fmt;

use url::{ParseError, Url};

/// The URL of a request: a [`Url`], used as it is (not parsed again), or a string, absolute
/// or relative to the client's base URL.
///
/// Requests take `impl Into<RequestUrl>`, so pass a `Url`, `&Url`, `&str`, `String` or
/// `&String`:
///
/// ```no_run
/// # async fn run(client: authed::AuthedClient) -> Result<(), authed::Error> {
/// let items = client.get("items").send().await?;
/// let url = authed::reqwest::Url::parse("https://api.example.com/v1/me").map_err(|e| {
///     authed::Error::Config(e.to_string())
/// })?;
/// let me = client.get(&url).send().await?;
/// # let _ = (items, me);
/// # Ok(()) }
/// ```
///
/// `Debug` does not show the URL, whose query may carry secrets.
#[derive(Clone)]
pub struct RequestUrl<'a>(Kind<'a>);

#[derive(Clone)]
enum Kind<'a> {
    Url(Url),
    UrlRef(&'a Url),
    Str(&'a str),
    String(String),
}

impl RequestUrl<'_> {
    /// The absolute URL: a `Url` as it is, a string joined to `base` when there is one.
    pub(crate) fn resolve(self, base: Option<&Url>) -> Result<Url, ParseError> {
        let join = |s: &str| match base {
            Some(base) => base.join(s),
            None => Url::parse(s),
        };
        match self.0 {
            Kind::Url(url) => Ok(url),
            Kind::UrlRef(url) => Ok(url.clone()),
            Kind::Str(s) => join(s),
            Kind::String(s) => join(&s),
        }
    }
}

impl From<Url> for RequestUrl<'_> {
    fn from(url: Url) -> Self {
        RequestUrl(Kind::Url(url))
    }
}

impl<'a> From<&'a Url> for RequestUrl<'a> {
    fn from(url: &'a Url) -> Self {
        RequestUrl(Kind::UrlRef(url))
    }
}

impl<'a> From<&'a str> for RequestUrl<'a> {
    fn from(url: &'a str) -> Self {
        RequestUrl(Kind::Str(url))
    }
}

impl From<String> for RequestUrl<'_> {
    fn from(url: String) -> Self {
        RequestUrl(Kind::String(url))
    }
}

impl<'a> From<&'a String> for RequestUrl<'a> {
    fn from(url: &'a String) -> Self {
        RequestUrl(Kind::Str(url))
    }
}

impl fmt::Debug for RequestUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestUrl").finish_non_exhaustive()
    }
}
