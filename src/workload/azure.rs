//! Azure managed identity: the Instance Metadata Service (IMDS) of VMs and scale sets, and
//! the local identity endpoint of App Service and Azure Functions.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::common::{Common, common_setters};
use crate::endpoint::Answer;
use crate::error::Error;
use crate::future::BoxFuture;
use crate::source::cache::{Grant, TokenCache};
use crate::source::{TokenFuture, TokenSource};
use crate::token::Token;

const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Access tokens of an Azure managed identity, for one resource (`https://vault.azure.net`,
/// `https://management.azure.com/`, your API's application ID URI).
///
/// Where the token comes from is read from the environment when the source is built:
///
/// | Environment | Endpoint | Request |
/// |---|---|---|
/// | `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` (App Service, Functions) | `IDENTITY_ENDPOINT` | `api-version=2019-08-01`, header `X-IDENTITY-HEADER` |
/// | `MSI_ENDPOINT` and `MSI_SECRET` (older App Service, Cloud Shell) | `MSI_ENDPOINT` | `api-version=2017-09-01`, header `secret` |
/// | neither (VMs, scale sets, AKS nodes) | IMDS, `169.254.169.254` | `api-version=2018-02-01`, header `Metadata: true` |
///
/// The expiry is read in every form these endpoints send: `expires_in` (seconds, as a
/// string from IMDS), `expires_on` as epoch seconds (a string or a number), or, from the
/// 2017 App Service protocol, as a date (`06/20/2019 02:57:58 +00:00`, or with `AM`/`PM`).
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use authed::{AzureManagedIdentity, TokenSource};
///
/// let source = AzureManagedIdentity::builder("https://vault.azure.net")
///     .client_id("5e29463d-71da-4fe0-8e69-999b57db23b0") // a user-assigned identity
///     .build()?;
/// let token = source.token().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AzureManagedIdentity {
    cache: TokenCache,
}

/// Builds an [`AzureManagedIdentity`] source.
#[derive(Debug)]
#[must_use]
pub struct AzureManagedIdentityBuilder {
    pub(super) common: Common,
    resource: String,
    identity: Option<(Identity, String)>,
    imds: Option<String>,
}

/// Which user-assigned identity, when not the system-assigned one.
#[derive(Debug, Clone, Copy)]
enum Identity {
    Client,
    Object,
    Resource,
}

/// The three protocols, each with its own names for the same things.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Imds,
    AppService2019,
    AppService2017,
}

impl Protocol {
    fn api_version(self) -> &'static str {
        match self {
            Protocol::Imds => "2018-02-01",
            Protocol::AppService2019 => "2019-08-01",
            Protocol::AppService2017 => "2017-09-01",
        }
    }

    fn identity_parameter(self, identity: Identity) -> Option<&'static str> {
        match (self, identity) {
            (Protocol::Imds, Identity::Client) => Some("client_id"),
            (Protocol::Imds, Identity::Object) => Some("object_id"),
            (Protocol::Imds, Identity::Resource) => Some("msi_res_id"),
            (Protocol::AppService2019, Identity::Client) => Some("client_id"),
            (Protocol::AppService2019, Identity::Object) => Some("principal_id"),
            (Protocol::AppService2019, Identity::Resource) => Some("mi_res_id"),
            (Protocol::AppService2017, Identity::Client) => Some("clientid"),
            (Protocol::AppService2017, _) => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Imds => "Azure IMDS",
            Protocol::AppService2019 | Protocol::AppService2017 => {
                "the App Service identity endpoint"
            }
        }
    }
}

impl AzureManagedIdentity {
    /// A source of tokens for `resource`, of the system-assigned identity unless you name a
    /// user-assigned one.
    pub fn builder(resource: impl Into<String>) -> AzureManagedIdentityBuilder {
        AzureManagedIdentityBuilder {
            common: Common::default(),
            resource: resource.into(),
            identity: None,
            imds: None,
        }
    }
}

impl AzureManagedIdentityBuilder {
    common_setters!();

    /// A user-assigned identity, by its client (application) id.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.identity = Some((Identity::Client, id.into()));
        self
    }

    /// A user-assigned identity, by its object (principal) id.
    pub fn object_id(mut self, id: impl Into<String>) -> Self {
        self.identity = Some((Identity::Object, id.into()));
        self
    }

    /// A user-assigned identity, by its Azure resource id.
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.identity = Some((Identity::Resource, id.into()));
        self
    }

    /// Uses IMDS at this URL (a test server, a proxy) whatever the environment says,
    /// instead of `http://169.254.169.254/metadata/identity/oauth2/token`.
    pub fn imds_endpoint(mut self, url: impl Into<String>) -> Self {
        self.imds = Some(url.into());
        self
    }

    /// Reads the environment, checks the settings and builds the source. No request is
    /// made until the first token is needed.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the resource is empty, an endpoint is not an HTTP(S) URL, or
    /// the 2017 App Service protocol is asked for a user-assigned identity by object or
    /// resource id (it knows client ids only).
    pub fn build(self) -> Result<AzureManagedIdentity, Error> {
        if self.resource.trim().is_empty() {
            return Err(Error::config(
                "an Azure managed identity token is for a resource; none was given",
            ));
        }
        let env = |name| self.common.var(name);
        let (protocol, endpoint, header) = match (
            &self.imds,
            (env("IDENTITY_ENDPOINT"), env("IDENTITY_HEADER")),
            (env("MSI_ENDPOINT"), env("MSI_SECRET")),
        ) {
            (Some(imds), _, _) => (Protocol::Imds, imds.clone(), None),
            (None, (Some(endpoint), Some(secret)), _) => (
                Protocol::AppService2019,
                endpoint,
                Some(("x-identity-header", secret)),
            ),
            (None, _, (Some(endpoint), Some(secret))) => {
                (Protocol::AppService2017, endpoint, Some(("secret", secret)))
            }
            _ => (Protocol::Imds, IMDS.to_owned(), None),
        };
        let mut url = Url::parse(&endpoint)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::config(format!("{} is not an HTTP(S) URL", protocol.name())))?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("api-version", protocol.api_version())
                .append_pair("resource", &self.resource);
            if let Some((identity, id)) = &self.identity {
                let name = protocol.identity_parameter(*identity).ok_or_else(|| {
                    Error::config(
                        "the 2017 App Service identity protocol (MSI_ENDPOINT) names a \
                         user-assigned identity by client id only",
                    )
                })?;
                query.append_pair(name, id);
            }
        }
        let mut headers = HeaderMap::new();
        match header {
            None => {
                headers.insert("metadata", HeaderValue::from_static("true"));
            }
            Some((name, secret)) => {
                let mut value = HeaderValue::from_str(&secret).map_err(|_| {
                    Error::config("the identity endpoint's secret header is not a header value")
                })?;
                value.set_sensitive(true);
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        let grant = IdentityGrant {
            http: self.common.http()?,
            timeout: self.common.timeout,
            url,
            headers,
            protocol,
        };
        Ok(AzureManagedIdentity {
            cache: self.common.cache(grant),
        })
    }
}

impl TokenSource for AzureManagedIdentity {
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

struct IdentityGrant {
    http: reqwest::Client,
    timeout: Duration,
    url: Url,
    headers: HeaderMap,
    protocol: Protocol,
}

impl std::fmt::Debug for IdentityGrant {
    // Not the headers: one of them is the endpoint's secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityGrant")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Grant for IdentityGrant {
    fn fetch<'a>(
        &'a self,
        _current: Option<&'a Token>,
        now: SystemTime,
        _flight: &'a crate::retry::Flight,
    ) -> BoxFuture<'a, Result<Token, Error>> {
        Box::pin(async move {
            let answer = crate::endpoint::get_workload(
                &self.http,
                &self.url,
                self.headers.clone(),
                self.timeout,
                |_| Ok(()),
            )
            .await
            .map_err(|e| self.explain(e))?;
            crate::endpoint::token_from_answer_bound(with_expires_in(answer, now)?, now, None, &[])
        })
    }
}

impl IdentityGrant {
    /// A 400, 401 or 403 means no such identity here, a wrong resource, or a refused
    /// header: configuration. IMDS's own advice is to retry 404, 429 and 5xx, which stay
    /// retryable.
    fn explain(&self, e: Error) -> Error {
        let status = match &e {
            Error::MalformedResponse { status, .. } => Some(*status),
            other => other.oauth_error().and_then(|o| o.status),
        };
        match status {
            Some(400 | 401 | 403) => Error::config(format!(
                "{} refused the token request: {e}",
                self.protocol.name()
            )),
            _ => e,
        }
    }
}

/// `expires_in` for the token reader: kept when the endpoint sent it (IMDS, relative, so
/// immune to clock skew), else worked out from `expires_on`.
fn with_expires_in(mut answer: Answer, now: SystemTime) -> Result<Answer, Error> {
    if answer.fields.contains_key("expires_in") {
        return Ok(answer);
    }
    let Some(expires_on) = answer.fields.get("expires_on") else {
        return Ok(answer);
    };
    let at = expires_on_time(expires_on).ok_or_else(|| {
        Error::malformed(
            answer.status,
            "expires_on is neither epoch seconds nor an MM/DD/YYYY HH:MM:SS date",
        )
    })?;
    let secs = match at.duration_since(now) {
        Ok(left) => i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
        // Already expired (a skewed clock): handed to the caller that asked, replaced next.
        Err(past) => -i64::try_from(past.duration().as_secs()).unwrap_or(i64::MAX),
    };
    answer.fields.insert("expires_in".to_owned(), secs.into());
    Ok(answer)
}

/// `expires_on` in each form the managed identity endpoints send: epoch seconds as a number
/// or a string, or the 2017 App Service protocol's UTC date, `06/20/2019 02:57:58 +00:00`
/// (Linux) or `1/16/2020 5:24:12 AM +00:00` (Windows).
fn expires_on_time(value: &Value) -> Option<SystemTime> {
    let epoch = |secs: u64| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs));
    match value {
        Value::Number(n) => epoch(n.as_u64()?),
        Value::String(s) => match s.trim().parse::<u64>() {
            Ok(secs) => epoch(secs),
            Err(_) => date_time(s.trim()),
        },
        _ => None,
    }
}

/// `M/D/YYYY H:MM:SS [AM|PM] ±HH:MM`.
fn date_time(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let (meridiem, offset) = match (parts.next()?, parts.next()) {
        (offset, None) => (None, offset),
        (meridiem, Some(offset)) => (Some(meridiem), offset),
    };
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str| s.parse::<u32>().ok();
    let mut d = date.split('/').map(number);
    let (month, day, year) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(number);
    let (mut hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if d.next().is_some() || t.next().is_some() {
        return None;
    }
    match meridiem.map(str::to_ascii_uppercase).as_deref() {
        None => {}
        Some("AM") if (1..=12).contains(&hour) => hour %= 12,
        Some("PM") if (1..=12).contains(&hour) => hour = hour % 12 + 12,
        Some(_) => return None,
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let offset = offset_seconds(offset)?;
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let utc = u64::try_from(local - offset).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(utc))
}

/// `+HH:MM` or `-HH:MM` in seconds east of UTC.
fn offset_seconds(text: &str) -> Option<i64> {
    let (sign, rest) = match text.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn epoch(secs: u64) -> Option<SystemTime> {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    #[test]
    fn expires_on_in_every_form() {
        // App Service 2019-08-01 and IMDS: epoch seconds in a string.
        assert_eq!(expires_on_time(&json!("1586984735")), epoch(1_586_984_735));
        assert_eq!(expires_on_time(&json!(1_586_984_735)), epoch(1_586_984_735));
        // App Service 2017-09-01 on Linux and on Windows (the azure-identity examples).
        assert_eq!(
            expires_on_time(&json!("06/20/2019 02:57:58 +00:00")),
            epoch(1_560_999_478)
        );
        assert_eq!(
            expires_on_time(&json!("1/16/2020 5:24:12 AM +00:00")),
            epoch(1_579_152_252)
        );
        assert_eq!(
            expires_on_time(&json!("1/16/2020 5:24:12 PM +00:00")),
            epoch(1_579_195_452)
        );
        assert_eq!(
            expires_on_time(&json!("1/16/2020 12:00:00 AM +00:00")),
            epoch(1_579_132_800)
        );
        assert_eq!(
            expires_on_time(&json!("01/16/2020 07:24:12 +02:00")),
            epoch(1_579_152_252)
        );
        // Leap day, year end.
        assert_eq!(
            expires_on_time(&json!("02/29/2024 00:00:00 +00:00")),
            epoch(1_709_164_800)
        );
        assert_eq!(
            expires_on_time(&json!("12/31/1999 23:59:59 +00:00")),
            epoch(946_684_799)
        );
        for bad in [
            json!("tomorrow"),
            json!("13/01/2020 00:00:00 +00:00"),
            json!("01/16/2020 25:00:00 +00:00"),
            json!("01/16/2020 13:00:00 PM +00:00"),
            json!("01/16/2020 05:00:00 +00:00 extra"),
            json!("01/16/2020 05:00:00"),
            json!(-5),
            json!(null),
            json!(""),
        ] {
            assert_eq!(expires_on_time(&bad), None, "{bad}");
        }
    }

    #[test]
    fn expires_in_wins_over_expires_on() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let answer = |fields: Value| Answer {
            status: 200,
            fields: fields.as_object().cloned().unwrap_or_default(),
        };
        let kept = with_expires_in(
            answer(json!({"expires_in": "3599", "expires_on": "9"})),
            now,
        )
        .unwrap();
        assert_eq!(kept.fields["expires_in"], json!("3599"));
        let worked_out = with_expires_in(answer(json!({"expires_on": "4600"})), now).unwrap();
        assert_eq!(worked_out.fields["expires_in"], json!(3600));
        let past = with_expires_in(answer(json!({"expires_on": 400})), now).unwrap();
        assert_eq!(past.fields["expires_in"], json!(-600));
        assert!(with_expires_in(answer(json!({"expires_on": "soon"})), now).is_err());
    }

    proptest::proptest! {
        #[test]
        fn no_expires_on_panics(s in ".*") {
            let _ = expires_on_time(&Value::String(s));
        }
    }
}
