//! A loopback HTTP/1.1 proxy in front of a real authorization server that breaks refresh
//! answers *after* the server processed the request: it delays them, holds them until the
//! test releases them, drops them, cuts them mid-body, or replaces them with a gateway's 502
//! or 504. It can also answer like a gateway that never reached the server. Everything else
//! passes through untouched.
//!
//! One request per connection (`Connection: close` both ways), so every request is one
//! accept and the proxy never has to frame a chunked answer it forwards. Counters move as
//! things happen and [`Proxy::wait`] waits for them: tests wait for events, not for time.
#![allow(dead_code)] // each test binary uses a part

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// What happens to one refresh request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forwarded, answer passed back.
    Pass,
    /// Forwarded; the answer is passed back this long after the server gave it.
    Delay(Duration),
    /// Forwarded; the answer is passed back when the test calls [`Proxy::release`].
    Hold,
    /// Forwarded; the connection is closed without a byte of the answer.
    Drop,
    /// Forwarded; the status line, headers and half the body are passed back, then the
    /// connection is reset.
    CutMidBody,
    /// Forwarded; a gateway's answer with this status (502, 504) replaces the server's.
    Replace(u16),
    /// Not forwarded: a gateway that could not reach the server answers with this status.
    Unreachable(u16),
}

/// What the proxy has seen, for [`Proxy::wait`] and assertions.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Refresh requests that arrived from clients.
    pub refresh_requests: usize,
    /// Refresh requests the server answered (the proxy has the whole answer).
    pub refresh_answered: usize,
    /// Refresh answers passed back whole to a client that was still there.
    pub refresh_delivered: usize,
    /// Refresh answers the proxy is holding.
    pub held: usize,
    /// Refresh answers that could not be passed back (the client had gone).
    pub client_gone: usize,
    /// When the server answered each refresh, in order (the proxy's clock).
    pub answered_at: Vec<Instant>,
    /// All requests, refresh or not.
    pub requests: usize,
}

struct State {
    script: VecDeque<Fault>,
    release: watch::Sender<u64>,
}

/// The proxy; stops with the runtime.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    seen: watch::Sender<Seen>,
}

impl Proxy {
    /// A proxy on 127.0.0.1 in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (release, _) = watch::channel(0u64);
        let state = Arc::new(Mutex::new(State {
            script: VecDeque::new(),
            release,
        }));
        let (seen, _) = watch::channel(Seen::default());
        let (st, sn) = (state.clone(), seen.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, upstream, st.clone(), sn.clone()));
            }
        });
        Proxy { addr, state, seen }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next refresh requests meet these faults, in order; later ones pass.
    pub fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.lock().unwrap().script = faults.into_iter().collect();
    }

    /// Passes back every answer held so far.
    pub fn release(&self) {
        self.state.lock().unwrap().release.send_modify(|n| *n += 1);
    }

    pub fn seen(&self) -> Seen {
        self.seen.borrow().clone()
    }

    /// Waits until `until` holds for what the proxy has seen. `what` names the event for the
    /// failure message; the bound is generous, only a failure timeout.
    pub async fn wait(&self, what: &str, until: impl Fn(&Seen) -> bool) -> Seen {
        let mut rx = self.seen.subscribe();
        let waited = tokio::time::timeout(Duration::from_secs(90), rx.wait_for(|s| until(s)))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "proxy: timed out waiting for {what}; seen {:?}",
                    self.seen()
                )
            });
        waited.expect("proxy stopped").clone()
    }
}

fn bump(seen: &watch::Sender<Seen>, f: impl FnOnce(&mut Seen)) {
    seen.send_modify(f);
}

/// Reads one request: head and `Content-Length` body.
async fn read_request(stream: &mut TcpStream) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
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
    let body = buf[head_end..head_end + length].to_vec();
    buf.truncate(head_end);
    Some((buf, body))
}

/// The head with every `Connection`-ish header replaced by `Connection: close`.
fn closing(head: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for line in text.trim_end().split("\r\n") {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "proxy-connection"
        ) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

fn gateway(status: u16) -> Vec<u8> {
    let body = format!("<html><body><h1>{status} from the gateway</h1></body></html>");
    format!(
        "HTTP/1.1 {status} Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
    seen: watch::Sender<Seen>,
) {
    let Some((head, body)) = read_request(&mut client).await else {
        return;
    };
    let refresh = body
        .windows(b"grant_type=refresh_token".len())
        .any(|w| w == b"grant_type=refresh_token");
    let (fault, mut release) = {
        let mut s = state.lock().unwrap();
        let fault = if refresh {
            s.script.pop_front().unwrap_or(Fault::Pass)
        } else {
            Fault::Pass
        };
        (fault, s.release.subscribe())
    };
    bump(&seen, |s| {
        s.requests += 1;
        if refresh {
            s.refresh_requests += 1;
        }
    });
    if let Fault::Unreachable(status) = fault {
        let _ = client.write_all(&gateway(status)).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        let _ = client.write_all(&gateway(502)).await;
        return;
    };
    let mut request = closing(&head);
    request.extend_from_slice(&body);
    if server.write_all(&request).await.is_err() {
        return;
    }
    let mut answer = Vec::new();
    if server.read_to_end(&mut answer).await.is_err() || answer.is_empty() {
        let _ = client.write_all(&gateway(502)).await;
        return;
    }
    if refresh {
        bump(&seen, |s| {
            s.refresh_answered += 1;
            s.answered_at.push(Instant::now());
        });
    }
    let Some(split) = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
    else {
        return;
    };
    let mut whole = closing(&answer[..split]);
    whole.extend_from_slice(&answer[split..]);
    let deliver = match fault {
        Fault::Pass => Some(whole),
        Fault::Delay(d) => {
            tokio::time::sleep(d).await;
            Some(whole)
        }
        Fault::Hold => {
            // Read before the test can see this answer held: a release that comes right
            // after it does must still count (it did not when read after the count).
            let at = *release.borrow_and_update();
            bump(&seen, |s| s.held += 1);
            let _ = release.wait_for(|n| *n > at).await;
            bump(&seen, |s| s.held -= 1);
            Some(whole)
        }
        Fault::Drop => None,
        Fault::CutMidBody => {
            let body_len = answer.len() - split;
            let mut part = closing(&answer[..split]);
            part.extend_from_slice(&answer[split..split + body_len / 2]);
            let _ = client.write_all(&part).await;
            let _ = client.flush().await;
            // Zero linger: the close is a reset, as a cut connection looks.
            #[allow(deprecated)]
            let _ = client.set_linger(Some(Duration::ZERO));
            None
        }
        Fault::Replace(status) => Some(gateway(status)),
        Fault::Unreachable(_) => unreachable!(),
    };
    let Some(bytes) = deliver else {
        drop(client);
        return;
    };
    let delivered = client.write_all(&bytes).await.is_ok() && client.flush().await.is_ok();
    // A client that left before the answer came shows as a reset on a later read.
    let gone = !delivered || {
        let mut probe = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_millis(0), client.read(&mut probe)).await,
            Ok(Err(_))
        )
    };
    if refresh {
        let replaced = matches!(fault, Fault::Replace(_));
        bump(&seen, |s| {
            if gone {
                s.client_gone += 1;
            } else if !replaced {
                s.refresh_delivered += 1;
            }
        });
    }
    let _ = client.shutdown().await;
}
