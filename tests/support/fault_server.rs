//! A token endpoint on 127.0.0.1 that answers from a script of faults, written on raw TCP so
//! that it can misbehave below HTTP (no answer, a reset mid-body, a trickle). It runs on the
//! test's own runtime, so Tokio's paused clock governs it and the client alike.
#![allow(dead_code)] // each test binary uses a part

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How the token endpoint answers one request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 200 with a one-hour token and a refresh token, both numbered by request.
    Token,
    /// This status with a JSON body.
    Json(u16, &'static str),
    /// Reads the request and never answers.
    NoAnswer,
    /// Announces 200 bytes, sends 20, then resets the connection.
    ResetMidBody,
    /// 200 with JSON cut in the middle (a consistent Content-Length).
    TruncatedJson,
    /// 500 with an empty body.
    Status500,
    /// 502 with an HTML page, as a load balancer sends.
    BadGatewayHtml,
    /// This status (429 or 503) with `Retry-After: <value>`.
    RetryAfter(u16, &'static str),
    /// 200, then one byte a second.
    Trickle,
    /// 200 with a 100 MB body of JSON whitespace, without Content-Length.
    Huge,
    /// Waits this long, then answers this status with this JSON body.
    SlowJson(Duration, u16, &'static str),
}

#[derive(Default)]
struct State {
    script: VecDeque<Fault>,
    then: Option<Fault>,
    /// Until this instant every token request gets this fault (a server that is down).
    down: Option<(Instant, Fault)>,
    token_requests: Vec<(Instant, String)>,
    device_expires_in: u64,
    device_interval: u64,
}

/// The server; stops with the runtime.
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FaultServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            then: Some(Fault::Token),
            device_expires_in: 600,
            device_interval: 5,
            ..State::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FaultServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn token_url(&self) -> String {
        self.url("/token")
    }

    /// The next token requests get these answers, in order; later ones get `then`.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>, then: Fault) {
        let mut s = self.state.lock().unwrap();
        s.script = faults.into_iter().collect();
        s.then = Some(then);
    }

    /// Every token request before `until` gets `fault`, whatever the script says: a server
    /// that is down for a while.
    pub fn down_until(&self, until: Instant, fault: Fault) {
        self.state.lock().unwrap().down = Some((until, fault));
    }

    pub fn set_device(&self, expires_in: u64, interval: u64) {
        let mut s = self.state.lock().unwrap();
        s.device_expires_in = expires_in;
        s.device_interval = interval;
    }

    pub fn token_requests(&self) -> usize {
        self.state.lock().unwrap().token_requests.len()
    }

    /// When each token request arrived, in Tokio time.
    pub fn token_request_times(&self) -> Vec<Instant> {
        let s = self.state.lock().unwrap();
        s.token_requests.iter().map(|(t, _)| *t).collect()
    }

    /// The form bodies of the token requests.
    pub fn token_forms(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.token_requests.iter().map(|(_, b)| b.clone()).collect()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split_whitespace().nth(1)?.to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    Some((path, body))
}

fn response(status: u16, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let Some((path, body)) = read_request(&mut stream).await else {
        return;
    };
    if path == "/device" {
        let (expires_in, interval) = {
            let s = state.lock().unwrap();
            (s.device_expires_in, s.device_interval)
        };
        let json = format!(
            r#"{{"device_code":"dc","user_code":"UC-1","verification_uri":"https://example.com/device","expires_in":{expires_in},"interval":{interval}}}"#
        );
        let _ = stream
            .write_all(response(200, "application/json", "", &json).as_bytes())
            .await;
        return;
    }
    let (fault, n) = {
        let mut s = state.lock().unwrap();
        s.token_requests.push((Instant::now(), body));
        let down = s
            .down
            .as_ref()
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, f)| f.clone());
        let fault = match down {
            Some(f) => f,
            None => match s.script.pop_front() {
                Some(f) => f,
                None => s.then.clone().unwrap(),
            },
        };
        (fault, s.token_requests.len())
    };
    let text = match fault {
        Fault::Token => response(
            200,
            "application/json",
            "",
            &format!(
                r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{n}"}}"#
            ),
        ),
        Fault::Json(status, body) => response(status, "application/json", "", body),
        Fault::SlowJson(wait, status, body) => {
            tokio::time::sleep(wait).await;
            response(status, "application/json", "", body)
        }
        Fault::NoAnswer => {
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            return;
        }
        Fault::ResetMidBody => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\nConnection: close\r\n\r\n{\"access_token\":\"x";
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.flush().await;
            // Zero linger: closing sends RST instead of FIN. (Deprecated because a non-zero
            // linger blocks on drop; a zero one does not.)
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
            return;
        }
        Fault::TruncatedJson => response(
            200,
            "application/json",
            "",
            r#"{"access_token":"at-x","token_type":"Bea"#,
        ),
        Fault::Status500 => response(500, "text/plain", "", ""),
        Fault::BadGatewayHtml => response(
            502,
            "text/html",
            "",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        Fault::RetryAfter(status, value) => response(
            status,
            "application/json",
            &format!("Retry-After: {value}\r\n"),
            r#"{"error":"temporarily_unavailable"}"#,
        ),
        Fault::Trickle => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
        Fault::Huge => {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let block = vec![b' '; 64 * 1024];
            for _ in 0..(100 * 1024 * 1024 / block.len()) {
                if stream.write_all(&block).await.is_err() {
                    return;
                }
            }
            return;
        }
    };
    let _ = stream.write_all(text.as_bytes()).await;
    let _ = stream.shutdown().await;
}
