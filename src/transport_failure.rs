//! What a failed HTTP request was, from reqwest's error and its causes: a certificate the
//! client did not accept or the server refused, or another transport failure in words. On
//! the ground floor, for `error`.

/// ` Not Found` for 404: the status's reason phrase, when it has one.
pub(crate) fn reason_of(status: u16) -> String {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map_or_else(String::new, |r| format!(" {r}"))
}

/// What went wrong with an HTTP request, in words, for [`Error::Transport`]'s `Display`. It
/// does not repeat the cause's own text, which stays in `source()`.
pub(crate) fn transport_summary(cause: &(dyn std::error::Error + 'static)) -> &'static str {
    let Some(e) = cause.downcast_ref::<reqwest::Error>() else {
        return "the HTTP request failed";
    };
    if e.is_timeout() {
        "the HTTP request timed out"
    } else if e.is_connect() {
        "could not connect to the server"
    } else if e.is_body() {
        "the connection failed while the response body was read"
    } else if e.is_decode() {
        "the response body could not be decoded"
    } else if e.is_redirect() {
        "the server's redirects could not be followed"
    } else if e.is_status() {
        "the server answered with an error status"
    } else if e.is_builder() {
        "the HTTP request could not be built"
    } else {
        "the HTTP request failed"
    }
}

/// Which side's certificate a failed TLS handshake was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsFailure {
    /// We did not accept the server's.
    ServerCertificate,
    /// The server refused ours (its alert).
    ClientCertificate,
}

/// The certificate failure somewhere in `e`'s chain of causes, if any. By type for rustls
/// (the default backend); by message for the platform TLS libraries (OpenSSL's "certificate
/// verify failed" and "alert bad certificate"), whose error types differ per platform.
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    let mut next = Some(e);
    while let Some(e) = next {
        #[cfg(feature = "default-tls")]
        if let Some(rustls) = e.downcast_ref::<rustls::Error>() {
            use rustls::AlertDescription as A;
            return match rustls {
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                    Some(TlsFailure::ServerCertificate)
                }
                // RFC 8446 §6.2: the alerts a server sends about the client's certificate.
                rustls::Error::AlertReceived(
                    A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::UnknownCA
                    | A::CertificateRequired,
                ) => Some(TlsFailure::ClientCertificate),
                _ => None,
            };
        }
        // `io::Error::source` skips the error it wraps: look at that one too.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            && let Some(failure) = tls_failure(inner)
        {
            return Some(failure);
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("certificate verify failed") || text.contains("invalid peer certificate") {
            return Some(TlsFailure::ServerCertificate);
        }
        const CLIENT_ALERTS: &[&str] = &[
            "alert bad certificate",
            "alert unsupported certificate",
            "alert certificate revoked",
            "alert certificate expired",
            "alert certificate unknown",
            "alert unknown ca",
            "alert certificate required",
        ];
        if CLIENT_ALERTS.iter().any(|a| text.contains(a)) {
            return Some(TlsFailure::ClientCertificate);
        }
        next = e.source();
    }
    None
}
