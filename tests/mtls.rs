//! Mutual TLS (RFC 8705) against a local TLS server that asks for client certificates
//! (verified against a private client CA made here with rcgen) and plays both the provider
//! (metadata with `mtls_endpoint_aliases`, a token endpoint that authenticates the client by
//! its certificate and binds tokens to it with `cnf.x5t#S256`, introspection) and the API
//! (which accepts a bound token only over a connection presenting the same certificate).
//! The server certificate is tests/support/server.crt, as in tests/tls.rs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authed::{AuthedClient, ClientAuthMethod, Error, OAuthConfig, TokenSource};
use base64::Engine as _;
use sha2::Digest as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const CA: &[u8] = include_bytes!("support/private_ca.crt");
const SERVER_CERT: &[u8] = include_bytes!("support/server.crt");
const SERVER_KEY: &[u8] = include_bytes!("support/server.key");
const CLIENT_ID: &str = "payments-client";

/// A client certificate and its key, in PEM, and its RFC 8705 thumbprint.
struct ClientCert {
    cert_pem: String,
    key_pem: String,
    thumbprint: String,
}

fn thumbprint(der: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// A private client CA and certificates it signs.
struct ClientCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    der: CertificateDer<'static>,
}

impl ClientCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "authed test client CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        ClientCa { params, key, der }
    }

    fn issue(&self, common_name: &str) -> ClientCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        ClientCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            thumbprint: thumbprint(cert.der()),
        }
    }
}

/// What the server saw: one entry per request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    /// Thumbprint of the certificate the connection presented.
    cert: Option<String>,
    authorization: Option<String>,
    form: HashMap<String, String>,
}

#[derive(Default)]
struct State {
    /// The registered client's certificate thumbprint (RFC 8705 §2.1 matches the subject;
    /// a test registration may as well name the certificate itself).
    registered: String,
    /// Access token → the thumbprint it is bound to.
    bound: HashMap<String, String>,
    seen: Vec<Seen>,
}

struct MtlsServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl MtlsServer {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        let state = self.state.lock().unwrap();
        state
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn response(status: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn invalid_client() -> String {
    response(
        "401 Unauthorized",
        "",
        r#"{"error":"invalid_client","error_description":"client certificate required"}"#,
    )
}

fn answer(port: u16, state: &Mutex<State>, seen: &Seen) -> String {
    let mut state = state.lock().unwrap();
    state.seen.push(seen.clone());
    let registered = seen.cert.as_deref() == Some(state.registered.as_str());
    match seen.path.as_str() {
        "/.well-known/openid-configuration" => {
            let base = format!("https://127.0.0.1:{port}");
            let body = serde_json::json!({
                "issuer": base,
                "token_endpoint": format!("{base}/plain/token"),
                "introspection_endpoint": format!("{base}/plain/introspect"),
                "token_endpoint_auth_methods_supported": ["tls_client_auth"],
                "tls_client_certificate_bound_access_tokens": true,
                "mtls_endpoint_aliases": {
                    "token_endpoint": format!("{base}/token"),
                    "introspection_endpoint": format!("{base}/introspect"),
                },
            });
            response("200 OK", "", &body.to_string())
        }
        "/token" => {
            let form = &seen.form;
            if form.get("client_id").map(String::as_str) != Some(CLIENT_ID) || !registered {
                return invalid_client();
            }
            let token = format!("at-{}", state.bound.len() + 1);
            let cert = seen.cert.clone().unwrap();
            state.bound.insert(token.clone(), cert);
            response(
                "200 OK",
                "",
                &format!(r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":3600}}"#),
            )
        }
        "/introspect" => {
            if !registered {
                return invalid_client();
            }
            let body = match seen.form.get("token").and_then(|t| state.bound.get(t)) {
                Some(bound) => serde_json::json!({
                    "active": true, "client_id": CLIENT_ID, "cnf": {"x5t#S256": bound},
                }),
                None => serde_json::json!({"active": false}),
            };
            response("200 OK", "", &body.to_string())
        }
        path if path.starts_with("/api/") => {
            let token = seen
                .authorization
                .as_deref()
                .and_then(|a| a.strip_prefix("Bearer "));
            let bound = token.and_then(|t| state.bound.get(t));
            // RFC 8705 §3: the token's thumbprint must be that of this connection's certificate.
            if bound.is_some() && bound == seen.cert.as_ref() {
                response("200 OK", "", r#"{"hello":"bound caller"}"#)
            } else {
                response(
                    "401 Unauthorized",
                    "WWW-Authenticate: Bearer error=\"invalid_token\", error_description=\"certificate mismatch\"\r\n",
                    "{}",
                )
            }
        }
        // The plain endpoints: a client presenting a certificate must use the aliases.
        _ => response("400 Bad Request", "", r#"{"error":"invalid_request"}"#),
    }
}

/// For `self_signed_tls_client_auth` (RFC 8705 §2.2): any certificate whose handshake
/// signature checks out passes TLS; the registration decides at the HTTP level.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A server verifying client certificates against `ca`, or, without one, accepting
/// self-signed ones; `registered` is the client's certificate.
async fn mtls_server(ca: Option<&ClientCa>, registered: &ClientCert) -> MtlsServer {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = match ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der.clone()).unwrap();
            // Unauthenticated clients get through the handshake, so that the token
            // endpoint can answer them `invalid_client`, as providers do.
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .allow_unauthenticated()
            .build()
            .unwrap()
        }
        None => Arc::new(AnyCertificate(provider.clone())),
    };
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(SERVER_CERT).unwrap()],
            PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Mutex::new(State {
        registered: registered.thumbprint.clone(),
        ..State::default()
    }));
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, state) = (acceptor.clone(), shared.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| thumbprint(c));
                let Some(seen) = read_request(&mut tls, cert).await else {
                    return;
                };
                let reply = answer(port, &state, &seen);
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    MtlsServer { port, state }
}

async fn read_request(
    tls: &mut tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    cert: Option<String>,
) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let form = form_urlencoded::parse(&buf[head_end..head_end + length])
        .into_owned()
        .collect();
    Some(Seen {
        path,
        cert,
        authorization: headers.get("authorization").cloned(),
        form,
    })
}

/// Trusts the server's private CA, and presents `cert` when given.
fn http(cert: Option<&ClientCert>) -> authed::reqwest::ClientBuilder {
    let builder = authed::reqwest::Client::builder()
        .add_root_certificate(authed::reqwest::Certificate::from_pem(CA).unwrap());
    match cert {
        Some(c) => builder.identity(
            authed::identity_from_pem(c.cert_pem.as_bytes(), c.key_pem.as_bytes()).unwrap(),
        ),
        None => builder,
    }
}

fn config(server: &MtlsServer, cert: Option<&ClientCert>) -> OAuthConfig {
    let builder = OAuthConfig::builder(server.url("/token"))
        .introspection_url(server.url("/introspect"))
        .client_id(CLIENT_ID)
        .auth_method(ClientAuthMethod::TlsClientAuth)
        .http_client(http(None));
    match cert {
        Some(c) => builder.client_certificate(&c.cert_pem, &c.key_pem),
        None => builder,
    }
    .build()
    .unwrap()
}

#[tokio::test]
async fn a_certificate_bound_token_works_over_the_same_identity() {
    let ca = ClientCa::new();
    let cert = ca.issue(CLIENT_ID);
    let server = mtls_server(Some(&ca), &cert).await;
    let config = config(&server, Some(&cert));
    let client = AuthedClient::builder(config.client_credentials().build())
        .base_url(server.url("/api/"))
        .http_client(http(Some(&cert)).build().unwrap())
        .build()
        .unwrap();
    let response = client.get("hello").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"hello":"bound caller"}"#
    );

    // The token request: the certificate authenticated the client, the body named it, and
    // no secret or Authorization header was sent (RFC 8705 §2).
    let token_requests = server.seen("/token");
    assert_eq!(token_requests.len(), 1);
    let request = &token_requests[0];
    assert_eq!(request.cert.as_deref(), Some(cert.thumbprint.as_str()));
    assert_eq!(
        request.form.get("client_id").map(String::as_str),
        Some(CLIENT_ID)
    );
    assert!(!request.form.contains_key("client_secret"));
    assert!(request.authorization.is_none());

    // Introspection shows what the token is bound to.
    let token = config.client_credentials().build().token().await.unwrap();
    let info = config
        .introspect_access_token(token.access_token())
        .await
        .unwrap();
    assert!(info.is_active());
    assert_eq!(
        info.cnf().and_then(|c| c.x5t_s256()),
        Some(cert.thumbprint.as_str())
    );
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_client_without_or_with_another_certificate() {
    let ca = ClientCa::new();
    let registered = ca.issue(CLIENT_ID);
    let other = ca.issue("someone-else");
    let server = mtls_server(Some(&ca), &registered).await;
    for cert in [None, Some(&other)] {
        let e = config(&server, cert)
            .client_credentials()
            .build()
            .token()
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
        assert!(e.is_configuration());
    }
    let seen = server.seen("/token");
    assert_eq!(seen.len(), 2, "not retried: {seen:?}");
    assert_eq!(seen[0].cert, None);
    assert_eq!(seen[1].cert.as_deref(), Some(other.thumbprint.as_str()));
}

#[tokio::test]
async fn a_bound_token_presented_over_another_identity_is_refused_by_the_resource() {
    let ca = ClientCa::new();
    let cert = ca.issue(CLIENT_ID);
    let other = ca.issue("someone-else");
    let server = mtls_server(Some(&ca), &cert).await;
    let config = config(&server, Some(&cert));
    for api_identity in [None, Some(&other)] {
        let client = AuthedClient::builder(config.client_credentials().build())
            .base_url(server.url("/api/"))
            .http_client(http(api_identity).build().unwrap())
            .build()
            .unwrap();
        let e = client.get("hello").send().await.unwrap_err();
        assert!(matches!(e, Error::Unauthorized(_)), "{e:?}");
    }
    // Each client sent its token, refreshed once on the 401, and sent the new one: four
    // refusals, each of a token bound to `cert` over a connection that did not present it.
    let api = server.seen("/api/hello");
    assert_eq!(api.len(), 4, "{api:?}");
    for seen in &api {
        assert_ne!(seen.cert.as_deref(), Some(cert.thumbprint.as_str()));
        assert!(seen.authorization.is_some());
    }
}

#[tokio::test]
async fn discovery_uses_the_mtls_endpoint_aliases() {
    let ca = ClientCa::new();
    let cert = ca.issue(CLIENT_ID);
    let server = mtls_server(Some(&ca), &cert).await;
    // The discovery client is the one every later request uses: the certificate goes on it.
    let config = OAuthConfig::discover_with(server.url(""), http(Some(&cert)))
        .await
        .unwrap()
        .client_id(CLIENT_ID)
        .auth_method(ClientAuthMethod::TlsClientAuth)
        .build()
        .unwrap();
    assert_eq!(config.endpoints().token_url.as_str(), server.url("/token"));
    assert_eq!(
        config
            .endpoints()
            .introspection_url
            .as_ref()
            .unwrap()
            .as_str(),
        server.url("/introspect")
    );
    let token = config.client_credentials().build().token().await.unwrap();
    assert!(
        config
            .introspect_access_token(token.access_token())
            .await
            .unwrap()
            .is_active()
    );
    assert!(server.seen("/plain/token").is_empty());

    // Without a certificate or a TLS method, the plain endpoints stay.
    let plain = OAuthConfig::discover_with(server.url(""), http(None))
        .await
        .unwrap()
        .client_id(CLIENT_ID)
        .client_secret("s")
        // The metadata lists only the TLS methods: a secret method is an explicit choice.
        .auth_method(authed::ClientAuthMethod::ClientSecretBasic)
        .build()
        .unwrap();
    assert_eq!(
        plain.endpoints().token_url.as_str(),
        server.url("/plain/token")
    );
    // A URL set by hand after discovery wins over the alias.
    let by_hand = OAuthConfig::discover_with(server.url(""), http(Some(&cert)))
        .await
        .unwrap()
        .client_id(CLIENT_ID)
        .auth_method(ClientAuthMethod::TlsClientAuth)
        .token_url(server.url("/custom/token"))
        .build()
        .unwrap();
    assert_eq!(
        by_hand.endpoints().token_url.as_str(),
        server.url("/custom/token")
    );
}

fn self_signed(name: &str) -> ClientCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    ClientCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        thumbprint: thumbprint(cert.der()),
    }
}

#[tokio::test]
async fn a_self_signed_certificate_authenticates_by_its_registration() {
    let registered = self_signed(CLIENT_ID);
    let impostor = self_signed(CLIENT_ID);
    let server = mtls_server(None, &registered).await;
    let config = |cert: &ClientCert| {
        OAuthConfig::builder(server.url("/token"))
            .client_id(CLIENT_ID)
            .auth_method(ClientAuthMethod::SelfSignedTlsClientAuth)
            .http_client(http(None))
            .client_certificate(&cert.cert_pem, &cert.key_pem)
            .build()
            .unwrap()
    };
    let client = AuthedClient::builder(config(&registered).client_credentials().build())
        .base_url(server.url("/api/"))
        .http_client(http(Some(&registered)).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(client.get("hello").send().await.unwrap().status(), 200);

    // Same subject, another key: not the registered certificate.
    let e = config(&impostor)
        .client_credentials()
        .build()
        .token()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidClient(_)), "{e:?}");
}

#[test]
fn a_tls_method_needs_a_certificate_and_a_bad_one_is_a_configuration_error() {
    let base = || {
        OAuthConfig::builder("https://auth.example.com/token")
            .client_id(CLIENT_ID)
            .auth_method(ClientAuthMethod::SelfSignedTlsClientAuth)
    };
    let e = base().build().unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("client certificate"), "{e}");

    let ca = ClientCa::new();
    let cert = ca.issue(CLIENT_ID);
    let config = base()
        .client_certificate(&cert.cert_pem, &cert.key_pem)
        .build()
        .unwrap();
    assert_eq!(
        config.client_auth_method(),
        ClientAuthMethod::SelfSignedTlsClientAuth
    );
    assert_eq!(
        config.client_auth_method().as_str(),
        "self_signed_tls_client_auth"
    );
    assert_eq!(ClientAuthMethod::TlsClientAuth.as_str(), "tls_client_auth");

    // A key that is not PEM, and a certificate with the wrong key: reported by build, and
    // the key is in no message.
    let key_body = cert.key_pem.lines().nth(1).unwrap().to_owned();
    for (c, k) in [
        (cert.cert_pem.clone(), "not a key".to_owned()),
        ("not a cert".to_owned(), cert.key_pem.clone()),
        (cert.cert_pem.clone(), ca.issue("x").key_pem),
    ] {
        let result = base().client_certificate(&c, &k).build();
        let e = result.unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(&key_body), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
    }
}

#[tokio::test]
async fn a_certificate_set_after_discovery_reaches_the_provider_client() {
    let provider = authed::testing::TestProvider::start().await;
    let ca = ClientCa::new();
    let cert = ca.issue(CLIENT_ID);
    // `discover` keeps none of your settings, so the certificate can be added afterwards.
    let config = OAuthConfig::discover(provider.issuer())
        .await
        .unwrap()
        .client_id(CLIENT_ID)
        .auth_method(ClientAuthMethod::TlsClientAuth)
        .client_certificate(&cert.cert_pem, &cert.key_pem)
        .build()
        .unwrap();
    assert_eq!(config.client_auth_method(), ClientAuthMethod::TlsClientAuth);
    // `discover_with` built its client from your builder: the certificate belongs there.
    let e = OAuthConfig::discover_with(provider.issuer(), authed::reqwest::Client::builder())
        .await
        .unwrap()
        .client_id(CLIENT_ID)
        .client_certificate(&cert.cert_pem, &cert.key_pem)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("discover_with"), "{e}");
}
