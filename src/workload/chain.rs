//! The default credential chain: environment, then workload, then a stored user login.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::azure::{AzureManagedIdentity, AzureManagedIdentityBuilder};
use super::common::{Common, common_setters};
use super::gcp::GcpMetadata;
use super::github::{self, GitHubActionsOidc};
use super::kubernetes::{self, KubernetesServiceAccount};
use crate::env::Env;
use crate::error::Error;
use crate::source::{RefreshTokenSourceBuilder, TokenFuture, TokenSource};
use crate::token::Token;

const GCP_DEFAULT_HOST: &str = "metadata.google.internal";
const IMDS_PROBE: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// One token source chosen from where the program runs, as google-cloud-auth's and
/// azure_identity's default credentials choose: the first link of the chain below that
/// applies, decided once, when [`build`](DefaultCredentialsBuilder::build) is awaited.
///
/// | # | Link ([`chosen`](Self::chosen)) | Applies when | Source |
/// |---|---|---|---|
/// | 1 | `environment` | `AUTHED_CLIENT_ID` is set | client credentials from the [`AUTHED_*` variables](crate::Env), discovered from `AUTHED_ISSUER` or with `AUTHED_TOKEN_URL` |
/// | 2 | `github-actions` | `ACTIONS_ID_TOKEN_REQUEST_URL` and `..._TOKEN` are set | [`GitHubActionsOidc`] for the [`audience`](DefaultCredentialsBuilder::audience) |
/// | 3 | `azure-app-service` | an [Azure resource](DefaultCredentialsBuilder::azure_resource) is set, and `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` (or `MSI_ENDPOINT` / `MSI_SECRET`) | [`AzureManagedIdentity`] |
/// | 4 | `gcp-metadata` | `GCE_METADATA_HOST` is set (used without a probe), or `metadata.google.internal` answers with `Metadata-Flavor: Google` | [`GcpMetadata`] with the [scopes](DefaultCredentialsBuilder::scopes) |
/// | 5 | `azure-imds` | an Azure resource is set, and IMDS (`169.254.169.254`) answers a request without `Metadata: true` with its 400 | [`AzureManagedIdentity`] |
/// | 6 | `kubernetes` | `KUBERNETES_SERVICE_HOST` is set and the token file exists | [`KubernetesServiceAccount`] |
/// | 7 | `user-login` | a [user login](DefaultCredentialsBuilder::user_login) is stored | the stored [`RefreshTokenSource`](crate::RefreshTokenSource) |
///
/// The two probes (4 and 5) wait at most the
/// [probe timeout](DefaultCredentialsBuilder::probe_timeout) (1 second by default). A link
/// that applies but is misconfigured (an `AUTHED_*` variable that is invalid, say) stops the
/// chain with its error rather than falling through to a weaker credential. When no link
/// applies, the [`Error::Config`] says what each link looked for.
///
/// ```no_run
/// # async fn run() -> Result<(), authed::Error> {
/// use std::sync::Arc;
/// use authed::{DefaultCredentials, FileStore, OAuthConfig, TokenSource};
///
/// let user = OAuthConfig::discover("https://auth.example.com").await?.client_id("cli").build()?;
/// let credentials = DefaultCredentials::builder()
///     .scopes(["reports:read"])
///     .audience("https://api.example.com")
///     .azure_resource("api://reports")
///     .user_login(user.refresh_token_source().store(Arc::new(FileStore::new("login.json"))))
///     .build()
///     .await?;
/// println!("using {}", credentials.chosen());
/// let token = credentials.token().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DefaultCredentials {
    chosen: &'static str,
    source: Arc<dyn TokenSource>,
}

impl std::fmt::Debug for DefaultCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultCredentials")
            .field("chosen", &self.chosen)
            .finish_non_exhaustive()
    }
}

/// Builds a [`DefaultCredentials`]: what each link asks for, then
/// [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct DefaultCredentialsBuilder {
    common: Common,
    scopes: Vec<String>,
    audience: Option<String>,
    azure_resource: Option<String>,
    gcp_host: Option<String>,
    imds: Option<String>,
    kubernetes_path: Option<std::path::PathBuf>,
    user: Option<RefreshTokenSourceBuilder>,
    probe_timeout: Duration,
}

impl DefaultCredentials {
    /// A chain with nothing asked for yet.
    pub fn builder() -> DefaultCredentialsBuilder {
        DefaultCredentialsBuilder {
            common: Common::default(),
            scopes: Vec::new(),
            audience: None,
            azure_resource: None,
            gcp_host: None,
            imds: None,
            kubernetes_path: None,
            user: None,
            probe_timeout: Duration::from_secs(1),
        }
    }

    /// Which link was chosen: `environment`, `github-actions`, `azure-app-service`,
    /// `gcp-metadata`, `azure-imds`, `kubernetes` or `user-login`.
    pub fn chosen(&self) -> &'static str {
        self.chosen
    }

    /// The chosen source itself.
    pub fn source(&self) -> &Arc<dyn TokenSource> {
        &self.source
    }
}

impl TokenSource for DefaultCredentials {
    fn token(&self) -> TokenFuture<'_> {
        self.source.token()
    }

    fn token_rejected<'a>(&'a self, rejected: &'a Token) -> TokenFuture<'a> {
        self.source.token_rejected(rejected)
    }

    fn request_latency(&self, took: std::time::Duration) {
        self.source.request_latency(took);
    }
}

fn chosen_link(chosen: &'static str, source: Arc<dyn TokenSource>) -> DefaultCredentials {
    tracing::debug!(chosen, "default credentials chosen");
    DefaultCredentials { chosen, source }
}

/// One link's outcome: chosen, or why not.
type Link = Result<(&'static str, Arc<dyn TokenSource>), String>;

impl DefaultCredentialsBuilder {
    common_setters!();

    /// Scopes: for the environment's client credentials (unless `AUTHED_SCOPES` is set)
    /// and the GCP metadata server.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// The audience of a GitHub Actions OIDC token.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The resource Azure managed identity tokens are for; without it the Azure links do
    /// not apply.
    pub fn azure_resource(mut self, resource: impl Into<String>) -> Self {
        self.azure_resource = Some(resource.into());
        self
    }

    /// The GCP metadata server's host to probe, instead of `metadata.google.internal`
    /// (tests, proxies). `GCE_METADATA_HOST`, when set, wins and is used without a probe.
    pub fn gcp_metadata_host(mut self, host: impl Into<String>) -> Self {
        self.gcp_host = Some(host.into());
        self
    }

    /// Azure IMDS's token URL, instead of `169.254.169.254` (tests, proxies).
    pub fn azure_imds_endpoint(mut self, url: impl Into<String>) -> Self {
        self.imds = Some(url.into());
        self
    }

    /// The Kubernetes token file, instead of
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`.
    pub fn kubernetes_token_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.kubernetes_path = Some(path.into());
        self
    }

    /// The last link: a user's login, loaded from the store of `login` (configure its
    /// store and key). Applies when a login is stored there.
    pub fn user_login(mut self, login: RefreshTokenSourceBuilder) -> Self {
        self.user = Some(login);
        self
    }

    /// How long each probe of a metadata server may take (1 second by default).
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Walks the chain and returns the first link that applies.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] listing what each link looked for when none applies; the error of
    /// a link that applies but cannot be set up (an invalid `AUTHED_*` variable, a
    /// discovery that fails, a store that cannot be read).
    pub async fn build(self) -> Result<DefaultCredentials, Error> {
        let mut tried: Vec<String> = Vec::new();
        let links = [
            self.environment().await?,
            self.github()?,
            self.azure_app_service()?,
            self.gcp().await?,
            self.azure_imds().await?,
            self.kubernetes(),
        ];
        for link in links {
            match link {
                Ok((chosen, source)) => return Ok(chosen_link(chosen, source)),
                Err(why) => tried.push(why),
            }
        }
        match self.stored_login().await? {
            Ok((chosen, source)) => Ok(chosen_link(chosen, source)),
            Err(why) => {
                tried.push(why);
                Err(Error::config(format!(
                    "no credentials found; tried {}",
                    tried.join("; ")
                )))
            }
        }
    }

    async fn environment(&self) -> Result<Link, Error> {
        let lookup = self.common.env.clone();
        let env = Env::from_fn(move |name| lookup(name));
        if env.var(Env::CLIENT_ID).is_none() {
            return Ok(Err("environment: AUTHED_CLIENT_ID is not set".to_owned()));
        }
        let config = if env.var(Env::ISSUER).is_some() {
            env.discover().await?
        } else {
            env.config()?
        };
        let scopes = match env.scopes() {
            scopes if scopes.is_empty() => self.scopes.clone(),
            scopes => scopes,
        };
        let mut source = config.client_credentials().scopes(scopes);
        if let Some(audience) = env.audience() {
            source = source.audience(audience);
        }
        if let Some(resource) = env.resource() {
            source = source.resource(resource);
        }
        Ok(Ok(("environment", Arc::new(source.build()))))
    }

    fn github(&self) -> Result<Link, Error> {
        for name in [github::URL_VAR, github::TOKEN_VAR] {
            if self.common.var(name).is_none() {
                return Ok(Err(format!("GitHub Actions: {name} is not set")));
            }
        }
        let mut builder = GitHubActionsOidc::builder();
        builder.common = self.common.clone();
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience);
        }
        Ok(Ok(("github-actions", Arc::new(builder.build()?))))
    }

    fn azure_builder(&self, why: &str) -> Result<AzureManagedIdentityBuilder, String> {
        let resource = self
            .azure_resource
            .as_ref()
            .ok_or_else(|| format!("{why}: no Azure resource set (azure_resource)"))?;
        let mut builder = AzureManagedIdentity::builder(resource);
        builder.common = self.common.clone();
        Ok(builder)
    }

    fn azure_app_service(&self) -> Result<Link, Error> {
        let builder = match self.azure_builder("Azure App Service") {
            Ok(builder) => builder,
            Err(why) => return Ok(Err(why)),
        };
        let set = |a: &str, b: &str| self.common.var(a).is_some() && self.common.var(b).is_some();
        if !set("IDENTITY_ENDPOINT", "IDENTITY_HEADER") && !set("MSI_ENDPOINT", "MSI_SECRET") {
            return Ok(Err(
                "Azure App Service: IDENTITY_ENDPOINT and IDENTITY_HEADER are not set".to_owned(),
            ));
        }
        Ok(Ok(("azure-app-service", Arc::new(builder.build()?))))
    }

    async fn gcp(&self) -> Result<Link, Error> {
        let mut builder = GcpMetadata::builder().scopes(self.scopes.clone());
        builder.common = self.common.clone();
        // Named by the environment: used without a probe, as Google's libraries do.
        if let Some(host) = self.common.var("GCE_METADATA_HOST") {
            return Ok(Ok(("gcp-metadata", Arc::new(builder.host(host).build()?))));
        }
        let host = self
            .gcp_host
            .clone()
            .unwrap_or_else(|| GCP_DEFAULT_HOST.to_owned());
        let root = format!("http://{host}/");
        match self.probe(&root, Some(("metadata-flavor", "Google"))).await {
            Ok((_, headers))
                if headers
                    .get("metadata-flavor")
                    .is_some_and(|v| v == "Google") =>
            {
                Ok(Ok(("gcp-metadata", Arc::new(builder.host(host).build()?))))
            }
            Ok(_) => Ok(Err(format!(
                "GCP metadata server: {host} answered without Metadata-Flavor: Google"
            ))),
            Err(why) => Ok(Err(format!(
                "GCP metadata server: GCE_METADATA_HOST is not set and {host} {why}"
            ))),
        }
    }

    async fn azure_imds(&self) -> Result<Link, Error> {
        let builder = match self.azure_builder("Azure IMDS") {
            Ok(builder) => builder,
            Err(why) => return Ok(Err(why)),
        };
        let url = self.imds.clone().unwrap_or_else(|| IMDS_PROBE.to_owned());
        // Without `Metadata: true` IMDS answers 400 at once. Another cloud's metadata
        // service at the same address (AWS's) answers 401 or 404 there: not Azure.
        match self.probe(&url, None).await {
            Ok((400, _)) => Ok(Ok((
                "azure-imds",
                Arc::new(builder.imds_endpoint(url).build()?),
            ))),
            Ok((status, _)) => Ok(Err(format!(
                "Azure IMDS: {url} answered HTTP {status}, not IMDS's 400 to a request without \
                 Metadata: true"
            ))),
            Err(why) => Ok(Err(format!("Azure IMDS: {why}"))),
        }
    }

    fn kubernetes(&self) -> Link {
        if self.common.var("KUBERNETES_SERVICE_HOST").is_none() {
            return Err("Kubernetes: KUBERNETES_SERVICE_HOST is not set".to_owned());
        }
        let path = self
            .kubernetes_path
            .clone()
            .unwrap_or_else(|| kubernetes::DEFAULT_PATH.into());
        if !path.is_file() {
            return Err(format!("Kubernetes: no token file at {}", path.display()));
        }
        let mut builder = KubernetesServiceAccount::builder().path(path);
        builder.common = self.common.clone();
        Ok(("kubernetes", Arc::new(builder.build())))
    }

    async fn stored_login(self) -> Result<Link, Error> {
        let Some(login) = self.user else {
            return Ok(Err("user login: none configured (user_login)".to_owned()));
        };
        match login.from_store().await? {
            Some(source) => Ok(Ok(("user-login", Arc::new(source)))),
            None => Ok(Err("user login: no login is stored".to_owned())),
        }
    }

    /// GETs `url` within the probe timeout; the answer's status and headers, or why there
    /// was none.
    async fn probe(
        &self,
        url: &str,
        header: Option<(&'static str, &'static str)>,
    ) -> Result<(u16, reqwest::header::HeaderMap), String> {
        let http =
            crate::endpoint::http_client_from(reqwest::Client::builder(), self.probe_timeout)
                .map_err(|e| e.to_string())?;
        let mut request = http.get(url);
        if let Some((name, value)) = header {
            request = request.header(name, HeaderValue::from_static(value));
        }
        match request.send().await {
            Ok(response) => Ok((response.status().as_u16(), response.headers().clone())),
            Err(e) if e.is_timeout() => Err(format!(
                "did not answer within {}ms",
                self.probe_timeout.as_millis()
            )),
            Err(e) if e.is_connect() => Err("could not be reached".to_owned()),
            Err(_) => Err("did not answer".to_owned()),
        }
    }
}
