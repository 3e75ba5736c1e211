//! The GCP metadata server: access tokens of the service account attached to a Compute
//! Engine VM, a GKE pod (Workload Identity), Cloud Run or Cloud Functions.

use std::time::SystemTime;

use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::common::{Common, common_setters};
use crate::error::Error;
use crate::future::BoxFuture;
use crate::source::cache::{Grant, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

const FLAVOR: &str = "metadata-flavor";
const DEFAULT_HOST: &str = "metadata.google.internal";

/// Access tokens from the GCP metadata server, for the service account attached to the
/// machine (`default`, or one you name).
///
/// Each request carries `Metadata-Flavor: Google` (the server refuses requests without it),
/// and each answer must carry it too: an answer without it is not from a metadata server
/// (a hijacked name, a captive portal), and its token is not used. The server is
/// `metadata.google.internal`, or the host (`host` or `host:port`) in `GCE_METADATA_HOST`,
/// as Google's own libraries read it (an emulator, a proxy), or the one you set with
/// [`host`](GcpMetadataBuilder::host).
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{GcpMetadata, TokenSource};
///
/// let source = GcpMetadata::builder()
///     .scopes(["https://www.googleapis.com/auth/cloud-platform"])
///     .build()?;
/// let token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GcpMetadata {
    cache: TokenCache,
}

/// Builds a [`GcpMetadata`] source.
#[derive(Debug)]
#[must_use]
pub struct GcpMetadataBuilder {
    pub(super) common: Common,
    host: Option<String>,
    account: String,
    scopes: Vec<String>,
}

impl GcpMetadata {
    /// A source for the `default` service account.
    pub fn builder() -> GcpMetadataBuilder {
        GcpMetadataBuilder {
            common: Common::default(),
            host: None,
            account: "default".to_owned(),
            scopes: Vec::new(),
        }
    }
}

impl GcpMetadataBuilder {
    common_setters!();

    /// The metadata server's host (`host` or `host:port`, plain HTTP as the real one),
    /// instead of `GCE_METADATA_HOST` or `metadata.google.internal`.
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Another service account attached to the machine, by its email, instead of
    /// `default`.
    pub fn service_account(mut self, email: impl Into<String>) -> Self {
        self.account = email.into();
        self
    }

    /// OAuth scopes to ask for (sent as `scopes=a,b`). Cloud Run, Cloud Functions and GKE
    /// honour them; a Compute Engine VM answers with the scopes it was created with.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Checks the settings and builds the source. No request is made until the first token
    /// is needed.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the host does not make a URL.
    pub fn build(self) -> Result<GcpMetadata, Error> {
        let host = self
            .host
            .clone()
            .or_else(|| self.common.var("GCE_METADATA_HOST"))
            .unwrap_or_else(|| DEFAULT_HOST.to_owned());
        let mut url = Url::parse(&format!("http://{host}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "the GCP metadata host {} is not a host or host:port",
                    crate::oauth_error::clean(&host)
                ))
            })?;
        url.path_segments_mut()
            .map_err(|()| Error::config("the GCP metadata host is not a host"))?
            .clear()
            .extend([
                "computeMetadata",
                "v1",
                "instance",
                "service-accounts",
                &self.account,
                "token",
            ]);
        if !self.scopes.is_empty() {
            url.query_pairs_mut()
                .append_pair("scopes", &self.scopes.join(","));
        }
        let grant = MetadataGrant {
            http: self.common.http()?,
            timeout: self.common.timeout,
            url,
            account: self.account,
        };
        Ok(GcpMetadata {
            cache: self.common.cache(grant),
        })
    }
}

impl TokenSource for GcpMetadata {
    fn token(&self) -> TokenFuture<'_> {
        self.cache.token()
    }

    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        self.cache.token_rejected(rejected)
    }

    fn request_latency(&self, took: std::time::Duration) {
        self.cache.request_latency(took);
    }
}

#[derive(Debug)]
struct MetadataGrant {
    http: reqwest::Client,
    timeout: std::time::Duration,
    url: Url,
    account: String,
}

impl Grant for MetadataGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        _flight: &'a crate::retry::Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let mut headers = HeaderMap::new();
            headers.insert(FLAVOR, HeaderValue::from_static("Google"));
            let answer =
                crate::endpoint::get_workload(&self.http, &self.url, headers, self.timeout, |h| {
                    if h.get(FLAVOR).is_some_and(|v| v == "Google") {
                        Ok(())
                    } else {
                        Err(Error::config(
                            "the GCP metadata host answered without Metadata-Flavor: Google: it \
                             is not a metadata server (check GCE_METADATA_HOST)",
                        ))
                    }
                })
                .await
                .map_err(|e| self.explain(e))?;
            crate::endpoint::token_from_answer_bound(answer, now, None, &[])
        })
    }
}

impl MetadataGrant {
    /// The metadata server answers refusals with a text page: say what each status means
    /// (its troubleshooting guide's table), as configuration to fix.
    fn explain(&self, e: Error) -> Error {
        match e {
            Error::MalformedResponse { status: 403, .. } => Error::config(
                "the GCP metadata server refused the token request (HTTP 403): the endpoint is \
                 disabled for this instance, or the request failed its security checks",
            ),
            Error::MalformedResponse { status: 404, .. } => Error::config(format!(
                "the GCP metadata server has no service account {} here (HTTP 404)",
                crate::oauth_error::clean(&self.account)
            )),
            other => other,
        }
    }
}
