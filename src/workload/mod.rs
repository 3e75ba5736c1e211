//! Workload credentials: tokens a platform hands to the code it runs, with no secret of
//! yours. Each is a [`TokenSource`](crate::TokenSource) over the crate's one token cache
//! (refreshed ahead of expiry, one request for any number of callers, backoff after
//! failures), with one small grant per platform:
//!
//! | Source | Platform | Asks |
//! |---|---|---|
//! | [`GcpMetadata`] | Compute Engine, GKE, Cloud Run, Cloud Functions | the metadata server (`Metadata-Flavor: Google`; `GCE_METADATA_HOST`) |
//! | [`AzureManagedIdentity`] | Azure VMs (IMDS), App Service and Functions | IMDS (`Metadata: true`) or `IDENTITY_ENDPOINT` with `IDENTITY_HEADER` |
//! | [`KubernetesServiceAccount`] | Kubernetes pods | a projected service account token file, read again as the kubelet rotates it |
//! | [`GitHubActionsOidc`] | GitHub Actions jobs with `id-token: write` | `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN` |
//!
//! [`DefaultCredentials`] picks one for you, as google-cloud-auth's and azure_identity's
//! default credentials do: the environment (`AUTHED_*`), then the workload, then a stored
//! user login.
//!
//! A Kubernetes or GitHub token is usually exchanged for a provider's token rather than
//! used as is: give it to a [token exchange](crate::TokenExchange) as
//! [`SubjectToken::source`](crate::SubjectToken::source) (or, for a file,
//! [`SubjectToken::file`](crate::SubjectToken::file)).

mod azure;
mod chain;
mod common;
mod gcp;
mod github;
mod kubernetes;

pub use azure::{AzureManagedIdentity, AzureManagedIdentityBuilder};
pub use chain::{DefaultCredentials, DefaultCredentialsBuilder};
pub use gcp::{GcpMetadata, GcpMetadataBuilder};
pub use github::{GitHubActionsOidc, GitHubActionsOidcBuilder};
pub use kubernetes::{KubernetesServiceAccount, KubernetesServiceAccountBuilder};
