//! Provider endpoints behind TLS with a private CA (tests/support/private_ca.crt, a
//! self-signed CA, and server.crt for 127.0.0.1 signed by it; made with `openssl req -x509`
//! and `openssl x509 -req`, valid for 100 years; the CA's key was thrown away): your own
//! `reqwest::ClientBuilder` settings apply, the crate's rules still win, and a failed
//! certificate check is a transport error that is not retryable.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use authed::{Error, OAuthConfig, TokenSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("support/private_ca.crt");
const CERT: &[u8] = include_bytes!("support/server.crt");
const KEY: &[u8] = include_bytes!("support/server.key");

struct TlsServer {
    port: u16,
    /// TCP connections accepted, whether or not the handshake succeeded.
    connections: Arc<AtomicUsize>,
    /// The request heads that arrived over TLS.
    heads: Arc<Mutex<Vec<String>>>,
}

/// A provider over TLS that answers `answer(port, request head)`: a whole HTTP response.
async fn tls_server(answer: impl Fn(u16, &str) -> String + Send + Sync + 'static) -> TlsServer {
    tls_server_verifying(None, answer).await
}

/// [`tls_server`] that asks for a client certificate and checks it with `clients`.
async fn tls_server_verifying(
    clients: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    answer: impl Fn(u16, &str) -> String + Send + Sync + 'static,
) -> TlsServer {
    let answer = Arc::new(answer);
    let certs = vec![CertificateDer::from_pem_slice(CERT).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(KEY).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap();
    let config = match clients {
        Some(verifier) => config.with_client_cert_verifier(verifier),
        None => config.with_no_client_auth(),
    }
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (connections.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (acceptor, seen, answer) = (acceptor.clone(), seen.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut len = 0;
                while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => len += n,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..len]).to_lowercase();
                let response = answer(port, &head);
                seen.lock().unwrap().push(head);
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer {
        port,
        connections,
        heads,
    }
}

const TOKEN: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 56\r\nConnection: close\r\n\r\n{\"access_token\":\"tls-token\",\"token_type\":\"Bearer\",\"x\":1}";
const REDIRECT: &str = "HTTP/1.1 302 Found\r\nLocation: https://127.0.0.1:9/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn builder(server: &TlsServer) -> authed::OAuthConfigBuilder {
    OAuthConfig::builder(format!("https://127.0.0.1:{}/token", server.port))
        .client_id("client")
        .client_secret("secret")
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_a_typed_error_that_is_not_retried() {
    let server = tls_server(|_, _| TOKEN.to_owned()).await;
    let e = builder(&server)
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    // Issue 18 point 6: matchable by type, not only by the words below.
    assert!(matches!(e, Error::ServerCertificateRejected(_)), "{e:?}");
    assert_eq!(e.kind(), "server_certificate_rejected");
    // Said in words; rustls's own text is the source (tests/error_messages.rs).
    assert_eq!(
        e.to_string(),
        "the server's TLS certificate was not accepted"
    );
    assert!(
        !e.is_retryable(),
        "a certificate failure is not transient: {e:?}"
    );
    // The retry policy did not try again.
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    assert!(
        server.heads.lock().unwrap().is_empty(),
        "nothing crossed TLS"
    );
}

/// A self-signed certificate (a CA of its own) with the key it was made with.
fn self_signed(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    (params.self_signed(&key).unwrap(), key)
}

// Issue 18 point 6: a failed certificate check, ours or the server's, is a type to match on
// and is not retried. The server below trusts only its own client CA and requires a client
// certificate (RFC 8705 §2.1 deployments do): one client presents none, another presents one
// from a CA the server does not trust. Either way the server refuses it in the handshake; a
// client that sends the same certificate again gets the same refusal.
#[tokio::test]
async fn a_client_certificate_the_server_refuses_is_typed_and_not_retried() {
    let (client_ca, _) = self_signed("the server's client CA");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .build()
    .unwrap();
    let server = tls_server_verifying(Some(verifier), |_, _| TOKEN.to_owned()).await;
    let (stranger, stranger_key) = self_signed("a client of another CA");
    let identities = [
        None,
        Some(
            authed::identity_from_pem(
                stranger.pem().as_bytes(),
                stranger_key.serialize_pem().as_bytes(),
            )
            .unwrap(),
        ),
    ];
    for (n, identity) in identities.into_iter().enumerate() {
        let mut http = authed::reqwest::Client::builder()
            .add_root_certificate(authed::reqwest::Certificate::from_pem(CA).unwrap());
        if let Some(identity) = identity {
            http = http.identity(identity);
        }
        let e = builder(&server)
            .http_client(http)
            .build()
            .unwrap()
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::ClientCertificateRejected(_)),
            "case {n}: {e:?}"
        );
        assert_eq!(e.kind(), "client_certificate_rejected");
        assert!(!e.is_retryable() && e.is_configuration(), "case {n}: {e:?}");
        assert_eq!(
            server.connections.load(Ordering::SeqCst),
            n + 1,
            "case {n}: sent once, not retried"
        );
    }
    assert!(
        server.heads.lock().unwrap().is_empty(),
        "no request was read"
    );
}

#[tokio::test]
async fn your_own_client_settings_reach_the_provider_and_the_crates_rules_still_hold() {
    let server = tls_server(|_, _| TOKEN.to_owned()).await;
    let http = authed::reqwest::Client::builder()
        .add_root_certificate(authed::reqwest::Certificate::from_pem(CA).unwrap())
        .user_agent("my-service/1.0");
    let token = builder(&server)
        .http_client(http)
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(token.access_token().secret(), "tls-token");
    let heads = server.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].contains("user-agent: my-service/1.0"),
        "{}",
        heads[0]
    );

    // A builder that asks for redirects does not get them for provider requests.
    let redirecting = tls_server(|_, _| REDIRECT.to_owned()).await;
    let http = authed::reqwest::Client::builder()
        .add_root_certificate(authed::reqwest::Certificate::from_pem(CA).unwrap())
        .redirect(authed::reqwest::redirect::Policy::limited(10));
    let e = builder(&redirecting)
        .http_client(http)
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("HTTP 302 with a redirect")),
        "{e:?}"
    );
    assert_eq!(redirecting.heads.lock().unwrap().len(), 1);
}

/// Discovery metadata at the OIDC location, none at the RFC 8414 one, the token everywhere
/// else.
fn provider(port: u16, head: &str) -> String {
    if head.starts_with("get /.well-known/oauth-authorization-server ") {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
    } else if head.starts_with("get /.well-known/openid-configuration ") {
        let body = format!(
            r#"{{"issuer":"https://127.0.0.1:{port}","token_endpoint":"https://127.0.0.1:{port}/token"}}"#
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        TOKEN.to_owned()
    }
}

#[tokio::test]
async fn discovery_uses_your_own_client_settings_and_keeps_them_for_the_token_request() {
    let server = tls_server(provider).await;
    let issuer = format!("https://127.0.0.1:{}", server.port);

    // Without the private CA, discovery fails like any provider request: not retryable.
    let e = OAuthConfig::discover(&issuer).await.unwrap_err();
    assert!(
        matches!(e, Error::ServerCertificateRejected(_)) && !e.is_retryable(),
        "{e:?}"
    );
    assert!(server.heads.lock().unwrap().is_empty());

    let http = authed::reqwest::Client::builder()
        .add_root_certificate(authed::reqwest::Certificate::from_pem(CA).unwrap())
        .user_agent("my-service/1.0");
    let token = OAuthConfig::discover_with(&issuer, http)
        .await
        .unwrap()
        .client_id("client")
        .client_secret("secret")
        .build()
        .unwrap()
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap();
    assert_eq!(token.access_token().secret(), "tls-token");
    let heads = server.heads.lock().unwrap().clone();
    assert_eq!(
        heads.len(),
        3,
        "both metadata locations, then the token request"
    );
    assert!(heads[0].starts_with("get /.well-known/openid-configuration "));
    assert!(heads[1].starts_with("get /.well-known/oauth-authorization-server "));
    assert!(heads[2].starts_with("post /token "));
    for head in &heads {
        assert!(head.contains("user-agent: my-service/1.0"), "{head}");
    }
}
