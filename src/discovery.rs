//! Provider configuration from an issuer URL: OpenID Connect Discovery 1.0 and RFC 8414
//! authorization server metadata.

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use crate::config::{OAuthConfig, OAuthConfigBuilder, endpoint_url};
use crate::endpoint::{get_json, http_client_from};
use crate::error::Error;
use crate::mtls::MtlsAliases;

/// Same default as every other provider request.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

impl OAuthConfig {
    /// Fetches the provider's metadata from its issuer URL and starts a configuration with
    /// its endpoints filled in; add the client id (and secret) and build.
    ///
    /// Both metadata documents are read, because providers put different endpoints in each
    /// (django-oauth-toolkit names its revocation and introspection endpoints only in the
    /// RFC 8414 one):
    ///
    /// 1. the OpenID Connect document, at `<issuer>/.well-known/openid-configuration`, or,
    ///    for an issuer with a path, where RFC 8414 §5 puts it
    ///    (`/.well-known/openid-configuration` inserted before the path);
    /// 2. the RFC 8414 document, at `/.well-known/oauth-authorization-server` inserted before
    ///    the issuer's path, or, for an issuer with a path, appended to it (the form servers
    ///    mounted under a prefix serve).
    ///
    /// Each location answering 404 (or another client error) counts as absent; at least one
    /// document must be found. The `issuer` of every document found must be identical to the
    /// one asked for, character for character (RFC 8414 §3.3: a trailing `/` counts), so a
    /// document cannot claim another provider's identity. What the two documents name is
    /// merged: a field named in the OpenID document is taken from it, any other from the
    /// RFC 8414 one. `jwks_uri` and
    /// `authorization_response_iss_parameter_supported` (RFC 9207) are read too, and
    /// `mtls_endpoint_aliases` (RFC 8705 §5), used instead of the plain endpoints when the
    /// client presents a certificate
    /// ([`client_certificate`](crate::OAuthConfigBuilder::client_certificate), or a
    /// `tls_client_auth` method). The token, authorization, device authorization, revocation,
    /// introspection, userinfo, end-session (RP-Initiated Logout) and registration (RFC 7591)
    /// endpoints are taken from it, `token_endpoint_auth_methods_supported`
    /// picks the default client authentication from what the client has (see
    /// [`auth_method`](crate::OAuthConfigBuilder::auth_method); a provider listing none of
    /// them makes `build` fail rather than fall back to Basic), and
    /// `token_endpoint_auth_signing_alg_values_supported` the algorithm of its client
    /// assertions. Endpoints are checked like hand-set ones when you call
    /// [`build`](crate::OAuthConfigBuilder::build): HTTPS unless loopback.
    ///
    /// The requests follow no redirects, read at most 1 MiB and time out after 30 seconds.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), authed::Error> {
    /// let config = authed::OAuthConfig::discover("https://accounts.example.com")
    ///     .await?
    ///     .client_id("my-service")
    ///     .client_secret(std::env::var("CLIENT_SECRET").unwrap_or_default())
    ///     .build()?;
    /// # let _ = config;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::Config`] when the issuer is not an HTTPS (or loopback HTTP) URL without
    ///   query and fragment, when no metadata is found at any location, or when a document
    ///   names another issuer.
    /// - [`Error::MalformedResponse`] when the metadata is not a JSON object, lacks
    ///   `token_endpoint`, or has a field of the wrong type.
    /// - [`Error::Transport`] when the provider cannot be reached, and the error of a
    ///   location that answered with a server error (5xx), which a retry may fix: a
    ///   configuration made from one document while the other could not be read could lack
    ///   an endpoint.
    pub async fn discover(issuer: impl AsRef<str>) -> Result<OAuthConfigBuilder, Error> {
        let mut builder = OAuthConfig::discover_with(issuer, reqwest::Client::builder()).await?;
        // Nothing of yours to keep: `build` makes the client again, so that a client
        // certificate set afterwards can be added to it.
        builder.discovered_http = None;
        Ok(builder)
    }

    /// [`discover`](Self::discover) with your own `reqwest` settings (a private CA's root
    /// certificate, a proxy, a `User-Agent`), used for the metadata requests and then, in the
    /// configuration it returns, for every other request to the provider (token, JWKS,
    /// revocation, device authorization), as with
    /// [`OAuthConfigBuilder::http_client`](crate::OAuthConfigBuilder::http_client). The
    /// crate's own rules are set last and always win: no redirects, the timeout, the 1 MiB
    /// cap.
    ///
    /// For mutual TLS, put the client certificate on this builder
    /// (`ClientBuilder::identity`, with [`identity_from_pem`](crate::identity_from_pem)):
    /// the client built here cannot take one later, so
    /// [`client_certificate`](crate::OAuthConfigBuilder::client_certificate) on the
    /// configuration it returns is an [`Error::Config`] at `build`.
    ///
    /// ```no_run
    /// # async fn run(ca_pem: &[u8]) -> Result<(), Box<dyn std::error::Error>> {
    /// let http = authed::reqwest::Client::builder()
    ///     .add_root_certificate(authed::reqwest::Certificate::from_pem(ca_pem)?)
    ///     .user_agent("reports-job/1.0");
    /// let config = authed::OAuthConfig::discover_with("https://sso.corp.example", http)
    ///     .await?
    ///     .client_id("reports-job")
    ///     .build()?;
    /// # let _ = config;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`discover`](Self::discover); [`Error::Config`] when the client cannot be built.
    pub async fn discover_with(
        issuer: impl AsRef<str>,
        http: reqwest::ClientBuilder,
    ) -> Result<OAuthConfigBuilder, Error> {
        let asked = issuer.as_ref();
        let issuer = endpoint_url("issuer", asked, false)?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(Error::config(
                "an issuer has no query or fragment (RFC 8414 §2)",
            ));
        }
        let http = http_client_from(http, DISCOVERY_TIMEOUT)?;
        let (openid, rfc8414) = metadata_locations(&issuer);
        let mut merged: Option<Map<String, Value>> = None;
        // Why a location that answered 200 held no metadata, shown if nothing else is found.
        let mut unreadable = None;
        for locations in [openid, rfc8414] {
            let document = match first_document(&http, &locations, asked).await? {
                Found::Document(document) => document,
                Found::Absent(why) => {
                    unreadable = unreadable.or(why);
                    continue;
                }
            };
            match &mut merged {
                None => merged = Some(document),
                // The first document's fields win; the second fills in what it lacks.
                Some(fields) => {
                    for (name, value) in document {
                        fields.entry(name).or_insert(value);
                    }
                }
            }
        }
        let Some(meta) = merged else {
            return Err(unreadable.unwrap_or_else(|| {
                Error::config(format!(
                    "no OpenID Connect or RFC 8414 metadata found for issuer {issuer}"
                ))
            }));
        };
        let mut builder = builder_from_metadata(asked, &meta)?;
        builder.discovered_http = Some(http);
        Ok(builder)
    }
}

/// What one family of locations held.
enum Found {
    /// A metadata document of the issuer asked for.
    Document(Map<String, Value>),
    /// None: every location answered a client error (404 above all), or a 200 that is not
    /// a metadata document (a web app's page served for any path), whose error is kept.
    Absent(Option<Error>),
}

/// The document at the first of `locations` that has one. A document naming another issuer
/// is an error, never skipped: the provider says it is someone else.
async fn first_document(
    http: &reqwest::Client,
    locations: &[Url],
    asked: &str,
) -> Result<Found, Error> {
    let mut unreadable = None;
    for location in locations {
        let checked = match get_json(http, location, DISCOVERY_TIMEOUT).await {
            Ok(answer) => check_issuer(asked, &answer.fields).map(|()| answer.fields),
            Err(e) => Err(e),
        };
        match checked {
            Ok(document) => return Ok(Found::Document(document)),
            Err(e) if is_client_error(&e) => continue,
            Err(
                e @ Error::MalformedResponse {
                    status: 200..=299, ..
                },
            ) => {
                tracing::debug!(error = %e, "no metadata document at this location");
                unreadable = unreadable.or(Some(e));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Found::Absent(unreadable))
}

fn is_client_error(e: &Error) -> bool {
    let status = match e {
        Error::MalformedResponse { status, .. } => Some(*status),
        other => other.oauth_error().and_then(|o| o.status),
    };
    status.is_some_and(|s| (400..500).contains(&s))
}

/// Where to look for each document: the OpenID Connect locations, then the RFC 8414 ones,
/// each list in the order to try.
fn metadata_locations(issuer: &Url) -> (Vec<Url>, Vec<Url>) {
    // Both specifications drop a terminating `/` from the issuer's path first.
    let path = issuer.path().trim_end_matches('/');
    let origin = issuer.origin().ascii_serialization();
    let mut openid = vec![format!("{origin}{path}/.well-known/openid-configuration")];
    let mut rfc8414 = vec![format!(
        "{origin}/.well-known/oauth-authorization-server{path}"
    )];
    if !path.is_empty() {
        // RFC 8414 §5's compatibility form of OIDC discovery for issuers with a path, and
        // the RFC 8414 document where a server mounted under a prefix serves it.
        openid.push(format!("{origin}/.well-known/openid-configuration{path}"));
        rfc8414.push(format!(
            "{origin}{path}/.well-known/oauth-authorization-server"
        ));
    }
    let parse = |raw: Vec<String>| raw.iter().filter_map(|r| Url::parse(r).ok()).collect();
    (parse(openid), parse(rfc8414))
}

/// RFC 8414 §3.3: the document's `issuer` is identical to the one asked for, not
/// "equivalent". The claimed value is not quoted: nothing received goes into an error.
fn check_issuer(asked: &str, meta: &Map<String, Value>) -> Result<(), Error> {
    match meta.get("issuer") {
        Some(Value::String(issuer)) if issuer == asked => Ok(()),
        Some(Value::String(_)) => Err(Error::config(format!(
            "the metadata found for issuer {} names another issuer (RFC 8414 §3.3)",
            crate::oauth_error::clean(asked)
        ))),
        None | Some(Value::Null) => Err(Error::malformed(200, "metadata without issuer")),
        Some(_) => Err(Error::malformed(
            200,
            "metadata field issuer is not a string",
        )),
    }
}

fn builder_from_metadata(
    asked: &str,
    meta: &Map<String, Value>,
) -> Result<OAuthConfigBuilder, Error> {
    let malformed = |reason: String| Error::malformed(200, reason);
    let field = |name: &str| -> Result<Option<String>, Error> {
        match meta.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(malformed(format!("metadata field {name} is not a string"))),
        }
    };
    check_issuer(asked, meta)?;
    let issuer = asked.to_owned();
    let token_url = field("token_endpoint")?
        .ok_or_else(|| malformed("metadata without token_endpoint".into()))?;
    let mut builder = OAuthConfig::builder(token_url).issuer(issuer);
    if let Some(url) = field("authorization_endpoint")? {
        builder = builder.authorization_url(url);
    }
    if let Some(url) = field("device_authorization_endpoint")? {
        builder = builder.device_authorization_url(url);
    }
    if let Some(url) = field("revocation_endpoint")? {
        builder = builder.revocation_url(url);
    }
    if let Some(url) = field("introspection_endpoint")? {
        builder = builder.introspection_url(url);
    }
    if let Some(url) = field("jwks_uri")? {
        builder = builder.jwks_url(url);
    }
    if let Some(url) = field("userinfo_endpoint")? {
        builder = builder.userinfo_url(url);
    }
    if let Some(url) = field("end_session_endpoint")? {
        builder = builder.end_session_url(url);
    }
    if let Some(url) = field("registration_endpoint")? {
        builder = builder.registration_url(url);
    }
    match meta.get("authorization_response_iss_parameter_supported") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => {
            builder = builder.iss_parameter_supported(*b);
        }
        Some(_) => {
            return Err(malformed(
                "metadata field authorization_response_iss_parameter_supported is not a boolean"
                    .into(),
            ));
        }
    }
    match meta.get("token_endpoint_auth_methods_supported") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            builder = builder.auth_methods_supported(items.iter().filter_map(Value::as_str));
        }
        Some(_) => {
            return Err(malformed(
                "metadata field token_endpoint_auth_methods_supported is not an array".into(),
            ));
        }
    }
    match meta.get("token_endpoint_auth_signing_alg_values_supported") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            builder = builder.auth_signing_algs_supported(items.iter().filter_map(Value::as_str));
        }
        Some(_) => {
            return Err(malformed(
                "metadata field token_endpoint_auth_signing_alg_values_supported is not an array"
                    .into(),
            ));
        }
    }
    // Last: the URL setters above drop an alias, as a hand-set URL should.
    builder.mtls_aliases = MtlsAliases::from_metadata(meta.get("mtls_endpoint_aliases"))?;
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(urls: Vec<Url>) -> Vec<String> {
        urls.into_iter().map(String::from).collect()
    }

    #[test]
    fn locations_for_an_issuer_without_path() {
        let issuer = Url::parse("https://auth.example.com").unwrap();
        let (openid, rfc8414) = metadata_locations(&issuer);
        assert_eq!(
            strings(openid),
            ["https://auth.example.com/.well-known/openid-configuration"]
        );
        assert_eq!(
            strings(rfc8414),
            ["https://auth.example.com/.well-known/oauth-authorization-server"]
        );
    }

    #[test]
    fn locations_for_an_issuer_with_a_path_insert_the_well_known_part() {
        let issuer = Url::parse("https://sso.example.com:8443/realms/acme/").unwrap();
        let (openid, rfc8414) = metadata_locations(&issuer);
        assert_eq!(
            strings(openid),
            [
                "https://sso.example.com:8443/realms/acme/.well-known/openid-configuration",
                "https://sso.example.com:8443/.well-known/openid-configuration/realms/acme",
            ]
        );
        assert_eq!(
            strings(rfc8414),
            [
                "https://sso.example.com:8443/.well-known/oauth-authorization-server/realms/acme",
                "https://sso.example.com:8443/realms/acme/.well-known/oauth-authorization-server",
            ]
        );
    }
}
