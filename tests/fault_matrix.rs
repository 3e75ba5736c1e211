//! Every fault a token endpoint can have, against every grant: the fault happens once, then
//! the endpoint works. The table of outcomes is printed and compared with the expected one:
//! client credentials and device polling ride out transient faults (one retry), unless the
//! fault took the whole call's time (the 5 s timeout bounds a call, retries included); a
//! refresh is retried only when the provider surely did not act on it (503, 429), not after
//! a lost answer or a 500 or 502 that may have come after a rotation (issue 17); an
//! authorization code exchange is never sent twice; a body that cannot be a token response
//! (truncated, 100 MB) fails at once for every grant. Paused Tokio time: exact.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::testing::ManualClock;
use authed::{
    AccessToken, Callback, Error, OAuthConfig, RefreshToken, RetryPolicy, Token, TokenSource,
};
use support::fault_server::{Fault, FaultServer};

const GRANTS: [&str; 4] = ["client credentials", "refresh", "device", "code exchange"];

fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("no answer", Fault::NoAnswer),
        ("reset mid-body", Fault::ResetMidBody),
        ("truncated JSON", Fault::TruncatedJson),
        ("500", Fault::Status500),
        ("502 HTML", Fault::BadGatewayHtml),
        ("503 Retry-After", Fault::RetryAfter(503, "2")),
        ("429 Retry-After", Fault::RetryAfter(429, "2")),
        ("trickling server", Fault::Trickle),
        ("100 MB body", Fault::Huge),
    ]
}

const EXPECTED: &str = "\
fault            | client credentials | refresh        | device         | code exchange
no answer        | timeout after 1    | timeout after 1 | ok after 2     | spent: timeout after 1
reset mid-body   | ok after 2         | transport after 1 | ok after 2     | spent: transport after 1
truncated JSON   | malformed(200) after 1 | malformed(200) after 1 | malformed(200) after 1 | malformed(200) after 1
500              | ok after 2         | malformed(500) after 1 | ok after 2     | spent: malformed(500) after 1
502 HTML         | ok after 2         | malformed(502) after 1 | ok after 2     | spent: malformed(502) after 1
503 Retry-After  | ok after 2         | ok after 2     | ok after 2     | spent: rate-limited(503) after 1
429 Retry-After  | ok after 2         | ok after 2     | ok after 2     | spent: rate-limited(429) after 1
trickling server | timeout after 1    | timeout after 1 | ok after 2     | spent: timeout after 1
100 MB body      | malformed(200) after 1 | malformed(200) after 1 | malformed(200) after 1 | malformed(200) after 1
";

fn kind(e: &Error) -> String {
    match e {
        // A failed code exchange is never retryable: the code may be spent.
        Error::CodeExchange(inner) => format!("spent: {}", kind(inner)),
        _ if e.is_timeout() => "timeout".to_owned(),
        Error::Transport(_) => "transport".to_owned(),
        Error::MalformedResponse { status, .. } => format!("malformed({status})"),
        Error::RateLimited { status, .. } => format!("rate-limited({status})"),
        other => format!("{other:?}"),
    }
}

fn config(server: &FaultServer) -> OAuthConfig {
    OAuthConfig::builder(server.token_url())
        .client_id("client")
        .client_secret("secret")
        .authorization_url(server.url("/authorize"))
        .device_authorization_url(server.url("/device"))
        .timeout(Duration::from_secs(5))
        .retry(RetryPolicy::default())
        .clock(ManualClock::new(start()))
        .build()
        .unwrap()
}

fn start() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

async fn run(grant: &str, fault: Fault) -> String {
    let server = FaultServer::start().await;
    server.script([fault], Fault::Token);
    let config = config(&server);
    let result: Result<(), Error> = match grant {
        "client credentials" => config.client_credentials().build().token().await.map(drop),
        "refresh" => {
            let expired = Token::new(AccessToken::new("old"))
                .with_refresh_token(Some(RefreshToken::new("rt-0")))
                .with_expires_at(Some(start() - Duration::from_secs(1)));
            let login = config
                .refresh_token_source()
                .from_token(expired)
                .await
                .unwrap();
            login.token().await.map(drop)
        }
        "device" => {
            let device = config.device_authorization().build().unwrap();
            let code = device.start().await.unwrap();
            device.poll(&code).await.map(drop)
        }
        "code exchange" => {
            let flow = config
                .authorization_code("http://127.0.0.1:9/callback")
                .build()
                .unwrap();
            let pending = flow.authorize().await.unwrap();
            let state = url::Url::parse(pending.url())
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "state")
                .unwrap()
                .1
                .into_owned();
            flow.complete(pending, &Callback::new("the-code", state))
                .await
                .map(drop)
        }
        _ => unreachable!(),
    };
    let outcome = match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => kind(&e),
    };
    format!("{outcome} after {}", server.token_requests())
}

#[tokio::test(start_paused = true)]
async fn faults_by_grants() {
    let mut table = format!(
        "{:<16} | {:<18} | {:<14} | {:<14} | {}\n",
        "fault", GRANTS[0], GRANTS[1], GRANTS[2], GRANTS[3]
    );
    for (name, fault) in faults() {
        let mut cells = Vec::new();
        for grant in GRANTS {
            cells.push(run(grant, fault.clone()).await);
        }
        table.push_str(&format!(
            "{name:<16} | {:<18} | {:<14} | {:<14} | {}\n",
            cells[0], cells[1], cells[2], cells[3]
        ));
    }
    println!("{table}");
    assert_eq!(table, EXPECTED, "\nactual:\n{table}\nexpected:\n{EXPECTED}");
}
