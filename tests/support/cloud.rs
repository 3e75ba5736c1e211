//! Local stand-ins for the workload credential endpoints, answering as each is documented to:
//! the headers each demands (refused when missing), the shape and expiry format of its
//! answers, and its error bodies. The documentation each follows is cited beside it.

#![allow(dead_code)] // Each test binary uses some of them.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A JWT as platforms issue them (header, claims, a signature nobody here checks), with an
/// `exp` `lifetime` from now.
pub fn jwt(claims: Value, lifetime: Duration) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = (SystemTime::now() + lifetime)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut claims = claims;
    claims["exp"] = json!(exp);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "RS256", "typ": "JWT"})),
        b64(&claims)
    )
}

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn query(req: &Request, name: &str) -> Option<String> {
    req.url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The GCP metadata server.
///
/// - <https://cloud.google.com/compute/docs/metadata/querying-metadata>: requests must carry
///   `Metadata-Flavor: Google`, or the server denies them; requests carrying
///   `X-Forwarded-For` are rejected; responses carry `Metadata-Flavor: Google`.
/// - <https://cloud.google.com/compute/docs/access/authenticate-workloads#applications>:
///   `GET /computeMetadata/v1/instance/service-accounts/default/token` answers
///   `{"access_token": ..., "expires_in": 3599, "token_type": "Bearer"}`; `scopes` is a
///   comma-separated query parameter.
/// - <https://cloud.google.com/compute/docs/troubleshooting/troubleshoot-metadata-server>:
///   403 when the request fails the server's checks, 404 for a path (a service account)
///   that does not exist, 503 while the server is unavailable.
pub struct GcpMetadataServer {
    /// Service accounts attached to the "machine", besides `default`.
    pub accounts: Vec<&'static str>,
    /// Answer 503 (the server restarting) instead of a token.
    pub unavailable: bool,
}

impl Respond for GcpMetadataServer {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let page = |status: u16, text: &str| {
            ResponseTemplate::new(status)
                .insert_header("Metadata-Flavor", "Google")
                .set_body_raw(
                    format!("<!DOCTYPE html><html><body><p>{text}</p></body></html>"),
                    "text/html; charset=UTF-8",
                )
        };
        if header(req, "metadata-flavor") != Some("Google") {
            return page(403, "Missing Metadata-Flavor:Google header.");
        }
        if header(req, "x-forwarded-for").is_some() {
            return page(403, "Request rejected: X-Forwarded-For is not allowed.");
        }
        if self.unavailable {
            return page(503, "Service Unavailable");
        }
        let path = req.url.path().to_owned();
        let account = path
            .strip_prefix("/computeMetadata/v1/instance/service-accounts/")
            .and_then(|rest| rest.strip_suffix("/token"));
        match account {
            Some(account) if account == "default" || self.accounts.contains(&account) => {
                ResponseTemplate::new(200)
                    .insert_header("Metadata-Flavor", "Google")
                    .set_body_json(json!({
                        "access_token": format!("ya29.gcp-{account}-{}", query(req, "scopes").unwrap_or_default()),
                        "expires_in": 3599,
                        "token_type": "Bearer",
                    }))
            }
            _ => page(404, "Not Found"),
        }
    }
}

/// Azure's Instance Metadata Service, token endpoint.
///
/// <https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http>:
/// `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with
/// `Metadata: true`; a user-assigned identity by `client_id`, `object_id` or `msi_res_id`.
/// The answer's `expires_in`, `expires_on` and `not_before` are strings. The error table of
/// the same page: 400 `bad_request_102` "Required metadata header not specified", 400
/// `invalid_request` "Identity not found" for an identity not assigned to the VM, 400 for a
/// missing `api-version` or `resource`; requests with `X-Forwarded-For` are refused.
pub struct AzureImds {
    /// Client ids of the user-assigned identities on the "VM".
    pub client_ids: Vec<&'static str>,
}

impl Respond for AzureImds {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let error = |code: &str, description: &str| {
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": code, "error_description": description}))
        };
        if header(req, "metadata") != Some("true") || header(req, "x-forwarded-for").is_some() {
            return error("bad_request_102", "Required metadata header not specified");
        }
        if req.url.path() != "/metadata/identity/oauth2/token" {
            return ResponseTemplate::new(404).set_body_json(json!({"error": "Not found"}));
        }
        if query(req, "api-version").as_deref() != Some("2018-02-01") {
            return error(
                "invalid_request",
                "Bad request. api-version is invalid or was not specified in the request.",
            );
        }
        let Some(resource) = query(req, "resource") else {
            return error(
                "invalid_request",
                "Required query variable 'resource' is missing",
            );
        };
        let identity = query(req, "client_id");
        if let Some(id) = &identity
            && !self.client_ids.contains(&id.as_str())
        {
            return error("invalid_request", "Identity not found");
        }
        let now = epoch_now();
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": format!("imds-{}", identity.as_deref().unwrap_or("system")),
            "refresh_token": "",
            "expires_in": "3599",
            "expires_on": (now + 3599).to_string(),
            "ext_expires_in": "3599",
            "not_before": now.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }))
    }
}

/// App Service and Azure Functions' local identity endpoint.
///
/// <https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference>:
/// `GET $IDENTITY_ENDPOINT?resource=...&api-version=2019-08-01` with
/// `X-IDENTITY-HEADER: $IDENTITY_HEADER`; the answer has `expires_on` as epoch seconds in a
/// string, and no `expires_in`. The older protocol (`api-version=2017-09-01`, from
/// `MSI_ENDPOINT` with a `secret` header, still in Cloud Shell) sends `expires_on` as a UTC
/// date (`06/20/2019 02:57:58 +00:00`, as azure-identity documents it). A request without
/// the right header is refused with 401 (as reported in Azure/azure-sdk-for-js#11595).
pub struct AppService {
    pub secret: &'static str,
    /// The 2017-09-01 protocol instead of 2019-08-01.
    pub v2017: bool,
}

impl Respond for AppService {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let (header_name, version) = if self.v2017 {
            ("secret", "2017-09-01")
        } else {
            ("x-identity-header", "2019-08-01")
        };
        if header(req, header_name) != Some(self.secret) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"statusCode": 401, "message": "Unauthorized request"}));
        }
        if query(req, "api-version").as_deref() != Some(version) {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"statusCode": 400, "message": "api-version is invalid"}));
        }
        let resource = query(req, "resource").unwrap_or_default();
        let expires_on = if self.v2017 {
            // One hour from now, as a date: the 2017 protocol's Linux form.
            date_string(epoch_now() + 3600)
        } else {
            (epoch_now() + 3600).to_string()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": format!("app-service-{version}"),
            "expires_on": expires_on,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "5E29463D-71DA-4FE0-8E69-999B57DB23B0",
        }))
    }
}

/// GitHub Actions' OIDC token endpoint.
///
/// <https://docs.github.com/en/actions/reference/security/oidc#methods-for-requesting-the-oidc-token>:
/// a job with `permissions: id-token: write` gets `ACTIONS_ID_TOKEN_REQUEST_URL` (which
/// already has a query) and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`; `GET $URL&audience=...` with
/// `Authorization: Bearer $TOKEN` answers `{"count": ..., "value": "<JWT>"}` (the field
/// @actions/core reads is `value`). A wrong request token is refused with 401.
pub struct GitHubOidc {
    pub request_token: &'static str,
}

impl Respond for GitHubOidc {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if header(req, "authorization") != Some(&format!("Bearer {}", self.request_token)) {
            return ResponseTemplate::new(401).set_body_raw("", "text/plain");
        }
        let audience =
            query(req, "audience").unwrap_or_else(|| "https://github.com/octo-org".into());
        let value = jwt(
            json!({
                "iss": "https://token.actions.githubusercontent.com",
                "aud": audience,
                "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
            }),
            Duration::from_secs(300),
        );
        ResponseTemplate::new(200).set_body_json(json!({"count": 1846, "value": value}))
    }
}

/// An environment with only these variables, for a builder's `env_lookup`.
pub fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// A local server answering every request with `responder`.
pub async fn serve(responder: impl Respond + 'static) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(responder)
        .mount(&server)
        .await;
    server
}

/// The server's `host:port`, as `GCE_METADATA_HOST` names it.
pub fn host(server: &MockServer) -> String {
    server.address().to_string()
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `MM/DD/YYYY HH:MM:SS +00:00` (civil from days, Howard Hinnant's algorithm).
fn date_string(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{month:02}/{day:02}/{year} {:02}:{:02}:{:02} +00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
