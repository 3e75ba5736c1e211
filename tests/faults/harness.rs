//! What the fault tests share: a strict (or grace-period) server with a proxy in front and
//! one login, temporary directories, and helpers to start processes and wait for answers.

use std::sync::Arc;
use std::time::Duration;

use authed::{
    ClientAuthMethod, Error, FileStore, LostRefresh, OAuthConfig, RefreshTokenSource, TokenSource,
    TokenStore,
};

use crate::oidc::{self, Login, Oidc, Rotation};
use crate::processes::{Answer, KEY, Process, Spec};
use crate::proxy::Proxy;
use crate::redis_server::RedisServer;

pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "authed-faults-{name}-{}-{}",
            std::process::id(),
            oauth2::CsrfToken::new_random().secret()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn file(&self) -> std::path::PathBuf {
        self.0.join("tokens.json")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A strict (or grace-period) server, a proxy in front of it, and one login.
pub(crate) struct Harness {
    pub(crate) server: Oidc,
    pub(crate) proxy: Proxy,
    pub(crate) login: Login,
}

impl Harness {
    pub(crate) async fn start(grace: u64) -> Harness {
        Self::start_with_ttl(60, grace).await
    }

    /// With access tokens that live `ttl` seconds.
    pub(crate) async fn start_with_ttl(ttl: u64, grace: u64) -> Harness {
        // AUTHED_FAULTS_LOG=authed=debug shows what the crate did.
        if let Ok(filter) = std::env::var("AUTHED_FAULTS_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_test_writer()
                .try_init();
        }
        // One-minute access tokens by default: once refreshed, a login needs nothing more
        // during a test.
        let server = Oidc::start_with(ttl, grace);
        let proxy = Proxy::start(&server.issuer).await;
        let login = server.login("user-1").await;
        Harness {
            server,
            proxy,
            login,
        }
    }

    pub(crate) fn config(&self, timeout: Duration) -> OAuthConfig {
        self.config_with(timeout, LostRefresh::default())
    }

    pub(crate) fn config_with(&self, timeout: Duration, lost: LostRefresh) -> OAuthConfig {
        OAuthConfig::builder(self.proxy.url("/token"))
            .client_id(oidc::CLIENT_ID)
            .client_secret(oidc::CLIENT_SECRET)
            .auth_method(ClientAuthMethod::ClientSecretPost)
            .timeout(timeout)
            .lost_refresh(lost)
            .build()
            .unwrap()
    }

    /// The login in `store`, its access token expired: the first demand refreshes.
    pub(crate) async fn source(
        &self,
        store: Arc<dyn TokenStore>,
        timeout: Duration,
    ) -> RefreshTokenSource {
        self.config(timeout)
            .refresh_token_source()
            .store(store)
            .key(KEY)
            .from_token(self.login.expired_token())
            .await
            .unwrap()
    }

    pub(crate) async fn counts(&self) -> Rotation {
        self.server.rotation(Some(&self.login.grant_id)).await
    }

    pub(crate) fn spec(
        &self,
        store: String,
        prefix: &str,
        timeout: Duration,
        lock_ttl: Duration,
    ) -> Spec {
        Spec {
            test: "fault_child",
            store,
            prefix: prefix.to_owned(),
            token_url: self.proxy.url("/token"),
            client_id: oidc::CLIENT_ID.to_owned(),
            client_secret: oidc::CLIENT_SECRET.to_owned(),
            timeout,
            lock_ttl,
            command_timeout: Duration::from_secs(1),
        }
    }
}

pub(crate) fn report(name: &str, counts: &Rotation, extra: &str) {
    eprintln!(
        "{name}: presented {}, presented again {}, invalid_grant {}, login alive {:?}{extra}",
        counts.presented, counts.presented_again, counts.invalid_grant, counts.grant_alive
    );
}

/// Asks until the answer is a token or says to sign in again: a lost answer's error, and the
/// cache's shared backoff after it, are transient. The bound is a failure timeout.
pub(crate) async fn settle(
    source: &RefreshTokenSource,
) -> (Result<Arc<authed::Token>, Error>, usize) {
    let mut asked = 1;
    let mut answer = source.token().await;
    while answer
        .as_ref()
        .is_err_and(|e| !e.requires_reauthorization())
        && asked < 600
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = source.token().await;
        asked += 1;
    }
    (answer, asked)
}

pub(crate) fn kind(r: &Result<Arc<authed::Token>, Error>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.kind().to_owned(),
    }
}

pub(crate) fn redis_spec(
    h: &Harness,
    redis: &RedisServer,
    timeout: Duration,
    lock_ttl: Duration,
) -> Spec {
    let prefix = format!("faults-{}:", oauth2::CsrfToken::new_random().secret());
    h.spec(format!("redis:{}", redis.url()), &prefix, timeout, lock_ttl)
}

/// Saves the harness's login (expired) where the children of `spec` find it.
pub(crate) async fn seed(h: &Harness, spec: &Spec) {
    let store: Arc<dyn TokenStore> = match spec.store.split_once(':') {
        Some(("redis", url)) => Arc::new(
            authed::RedisStore::builder(url)
                .prefix(&spec.prefix)
                .build()
                .await
                .unwrap(),
        ),
        Some(("file", path)) => Arc::new(FileStore::new(path)),
        _ => unreachable!(),
    };
    h.config(spec.timeout)
        .refresh_token_source()
        .store(store)
        .key(KEY)
        .from_token(h.login.expired_token())
        .await
        .unwrap();
}

pub(crate) async fn spawn(spec: &Spec, names: &[&str]) -> Vec<Process> {
    let mut out = Vec::new();
    for name in names {
        out.push(Process::spawn(spec, name).await);
    }
    out
}

/// Asks `p` until it answers with an access token other than `old` (its token came due and
/// was refreshed, or another's refresh adopted), or with a re-authorize error. Timeouts and
/// store errors in between are transient. The bound is a failure timeout.
pub(crate) async fn until_renewed(p: &mut Process, old: &Answer) -> Answer {
    let started = std::time::Instant::now();
    loop {
        let answer = p.token().await;
        let renewed = match &answer {
            Answer::Ok(_) => answer != *old,
            Answer::Err { reauthorize, .. } => *reauthorize,
        };
        if renewed || started.elapsed() > Duration::from_secs(90) {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
