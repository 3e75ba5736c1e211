//! Where tokens may go: the origins a front door is configured for, checked before anything
//! is sent and again for every redirect the rules follow.

use url::{Host, Url};

use crate::error::Error;

/// Where a request goes, as its front door names it.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "tower"), allow(dead_code))] // `Uri` is the tower front door's
pub(crate) enum Target<'a> {
    /// An absolute URL (reqwest).
    Url(&'a Url),
    /// An `http::Uri`: absolute (hyper-util's client), or only a path when the inner service
    /// has one fixed destination (a tonic `Channel`).
    Uri(&'a http::Uri),
}

impl Target<'_> {
    pub(crate) fn path(&self) -> &str {
        match self {
            Target::Url(url) => url.path(),
            Target::Uri(uri) => uri.path(),
        }
    }
}

/// The origins a token may be sent to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origins {
    pub(crate) origins: Vec<Allowed>,
    pub(crate) any_https: bool,
}

/// One origin a token may go to, as `scheme://host[:port]/`: how every URL of this origin
/// without user info begins (an `http` or `https` URL's path starts with `/`), so one
/// comparison, without parsing or allocating, decides most requests. A URL's parts are
/// canonical (lowercase host, IDNA, no default port), so equal origins have equal prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allowed {
    prefix: String,
}

impl Allowed {
    /// The origin of `url`, an `http` or `https` URL.
    pub(crate) fn of(url: &Url) -> Self {
        let mut prefix = url.origin().ascii_serialization();
        prefix.push('/');
        Allowed { prefix }
    }
}

/// The origin settings of every front door's builder, checked by [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub(crate) struct OriginSettings {
    pub(crate) origins: Vec<String>,
    pub(crate) any_https: bool,
    pub(crate) insecure: bool,
}

/// The `allow_origin`, `danger_allow_any_https_origin` and `danger_allow_insecure_http`
/// setters of every front door's builder (field `origins: OriginSettings`).
macro_rules! origin_setters {
    () => {
        /// Another origin (`https://host[:port]`) that receives tokens. May be called more
        /// than once.
        pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
            self.origins.origins.push(origin.into());
            self
        }

        /// Sends tokens to any HTTPS origin. Use only when every host that can be reached is
        /// meant to see the token: a URL built from user input would leak it.
        pub fn danger_allow_any_https_origin(mut self) -> Self {
            self.origins.any_https = true;
            self
        }

        /// Allows plain-HTTP origins that are not loopback. Tokens then cross the network in
        /// clear.
        pub fn danger_allow_insecure_http(mut self) -> Self {
            self.origins.insecure = true;
            self
        }
    };
}
pub(crate) use origin_setters;

impl OriginSettings {
    /// The allowed origins: `base`'s, if any, and each added one. `require_one`: a front
    /// door whose every request names its origin must be told at least one.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unparsable origin, a plain-HTTP one that is not loopback, or
    /// none at all when one is required.
    pub(crate) fn build(&self, base: Option<&Url>, require_one: bool) -> Result<Origins, Error> {
        let mut urls = Vec::new();
        if let Some(base) = base {
            urls.push(base.clone());
        }
        for raw in &self.origins {
            urls.push(crate::endpoints::endpoint_url(
                "origin",
                raw,
                self.insecure,
            )?);
        }
        if require_one && urls.is_empty() && !self.any_https {
            return Err(Error::config(
                "name where tokens may go: base_url, allow_origin or danger_allow_any_https_origin",
            ));
        }
        if self.any_https {
            tracing::warn!("danger_allow_any_https_origin: tokens go to any HTTPS origin");
        }
        let plain = |url: &Url| {
            url.scheme() == "http"
                && !matches!(url.host(), Some(Host::Ipv4(ip)) if ip.is_loopback())
                && !matches!(url.host(), Some(Host::Ipv6(ip)) if ip.is_loopback())
                && !matches!(url.host(), Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost"))
        };
        if self.insecure && urls.iter().any(plain) {
            tracing::warn!(
                "danger_allow_insecure_http: tokens go to a plain-HTTP origin that is not \
                 loopback, in clear"
            );
        }
        Ok(Origins {
            origins: urls.iter().map(Allowed::of).collect(),
            any_https: self.any_https,
        })
    }
}

impl Origins {
    /// `Ok` when a token may go to `target`; [`Error::UntrustedOrigin`] otherwise. A URI
    /// without an authority goes to the inner service's own destination, which the
    /// application chose when it wrapped that service: allowed.
    pub(crate) fn check(&self, target: Target<'_>) -> Result<(), Error> {
        match target {
            Target::Url(url) => self.check_url(url),
            Target::Uri(uri) if uri.authority().is_none() => Ok(()),
            Target::Uri(uri) => match Url::parse(&uri.to_string()) {
                Ok(url) => self.check_url(&url),
                Err(_) => Err(Error::UntrustedOrigin {
                    origin: "(unparsable URI)".to_owned(),
                }),
            },
        }
    }

    #[inline]
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), Error> {
        let serialized = url.as_str();
        if self
            .origins
            .iter()
            .any(|o| serialized.starts_with(&o.prefix))
        {
            return Ok(());
        }
        self.check_url_further(url)
    }

    /// The rest of [`check_url`](Self::check_url), kept out of its way: a URL with user
    /// info, any HTTPS origin, or a refusal.
    #[cold]
    fn check_url_further(&self, url: &Url) -> Result<(), Error> {
        // A URL with user info: its origin made the same way (allocating, off the hot path).
        let origin = Allowed::of(url);
        if self.origins.contains(&origin) || (self.any_https && url.scheme() == "https") {
            Ok(())
        } else {
            Err(Error::UntrustedOrigin {
                origin: url.origin().ascii_serialization(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_only_uri_goes_to_the_services_own_destination() {
        let none = Origins::default();
        let path: http::Uri = "/grpc.health.v1.Health/Check".parse().unwrap();
        assert!(none.check(Target::Uri(&path)).is_ok());
        let abs: http::Uri = "http://127.0.0.1:1/x".parse().unwrap();
        assert!(matches!(
            none.check(Target::Uri(&abs)),
            Err(Error::UntrustedOrigin { .. })
        ));
        let allowed = Origins {
            origins: vec![Allowed::of(&Url::parse("http://127.0.0.1:1").unwrap())],
            any_https: false,
        };
        assert!(allowed.check(Target::Uri(&abs)).is_ok());
    }

    /// A URL is allowed by its origin: a default port written out, case,
    /// user info and the path change nothing; another port, scheme or host is refused.
    #[test]
    fn a_url_is_allowed_exactly_when_its_origin_is() {
        let origins = |raw: &[&str]| Origins {
            origins: raw
                .iter()
                .map(|o| Allowed::of(&Url::parse(o).unwrap()))
                .collect(),
            any_https: false,
        };
        let allowed = origins(&[
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:9",
        ]);
        let check = |url: &str| allowed.check_url(&Url::parse(url).unwrap()).is_ok();
        for ok in [
            "https://api.example.com/v1?x=1",
            "https://API.Example.com:443/",
            "https://user:secret@api.example.com/",
            "http://127.0.0.1:8080/a",
            "http://[0:0::1]:9/",
        ] {
            assert!(check(ok), "{ok} refused");
        }
        for refused in [
            "http://api.example.com/",
            "https://api.example.com:8443/",
            "https://api.example.com.evil.test/",
            "https://evil.test/@api.example.com",
            "http://127.0.0.1:8081/",
            "http://127.0.0.1/",
            "http://[::2]:9/",
        ] {
            assert!(!check(refused), "{refused} allowed");
        }
        assert!(
            origins(&[])
                .check_url(&Url::parse("https://a.test/").unwrap())
                .is_err()
        );
        assert!(
            Origins {
                origins: Vec::new(),
                any_https: true,
            }
            .check_url(&Url::parse("https://a.test/").unwrap())
            .is_ok()
        );
    }
}
