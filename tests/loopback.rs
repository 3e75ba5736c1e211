//! The loopback receiver, with the test acting as the user's browser.

use std::time::Duration;

use authed::testing::TestProvider;
use authed::{
    AuthedClient, BoxFuture, CallbackError, ClientAuthMethod, Error, LoopbackReceiver, OAuthConfig,
    PendingAuthorization, Prompt,
};
use tokio::sync::{Mutex, mpsc};

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A native app: the public client, no secret.
fn public_config(provider: &TestProvider) -> OAuthConfig {
    OAuthConfig::builder(provider.token_url())
        .authorization_url(provider.authorization_url())
        .issuer(provider.issuer())
        .jwks_url(provider.jwks_url())
        .client_id(TestProvider::PUBLIC_CLIENT_ID)
        .auth_method(ClientAuthMethod::None)
        .build()
        .unwrap()
}

async fn receiver(timeout: Duration) -> LoopbackReceiver {
    LoopbackReceiver::builder()
        .open_browser(false)
        .timeout(timeout)
        .prompt(Quiet)
        .bind()
        .await
        .unwrap()
}

/// Shows nothing and reads nothing: the test is the browser.
#[derive(Debug)]
struct Quiet;

impl Prompt for Quiet {
    fn show(&self, _url: &str, _browser_opened: bool) {}
}

/// What the application's prompt was told.
#[derive(Debug, PartialEq)]
enum Told {
    Shown { url: String, browser_opened: bool },
    Refused(CallbackError),
}

/// An application's prompt: reports what it is told, and takes "pasted" addresses from a
/// channel instead of stdin.
#[derive(Debug)]
struct ChannelPrompt {
    told: mpsc::UnboundedSender<Told>,
    pasted: Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Prompt for ChannelPrompt {
    fn show(&self, url: &str, browser_opened: bool) {
        let _ = self.told.send(Told::Shown {
            url: url.to_owned(),
            browser_opened,
        });
    }

    fn pasted_redirect(&self, _browser_opened: bool) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move { self.pasted.lock().await.recv().await })
    }

    fn refused(&self, why: CallbackError) {
        let _ = self.told.send(Told::Refused(why));
    }
}

/// A sign-in under way whose prompt is driven by the test: the receiver's redirect URI, the
/// sign-in, what the prompt was told, and where to paste.
struct Pasting {
    redirect_uri: String,
    signing_in: tokio::task::JoinHandle<Result<authed::RefreshTokenSource, Error>>,
    told: mpsc::UnboundedReceiver<Told>,
    paste: mpsc::UnboundedSender<String>,
}

async fn sign_in_pasting(provider: &TestProvider, scopes: &[&str]) -> Pasting {
    let (told, told_rx) = mpsc::unbounded_channel();
    let (paste, pasted) = mpsc::unbounded_channel();
    let receiver = LoopbackReceiver::builder()
        .open_browser(false)
        .timeout(Duration::from_secs(60))
        .prompt(ChannelPrompt {
            told,
            pasted: Mutex::new(pasted),
        })
        .bind()
        .await
        .unwrap();
    let redirect_uri = receiver.redirect_uri().to_owned();
    let flow = public_config(provider)
        .authorization_code(&redirect_uri)
        .scopes(scopes.iter().copied())
        .build()
        .unwrap();
    Pasting {
        redirect_uri,
        signing_in: tokio::spawn(async move { receiver.sign_in(&flow).await }),
        told: told_rx,
        paste,
    }
}

/// The sign-in URL the prompt was given.
async fn shown_url(told: &mut mpsc::UnboundedReceiver<Told>) -> String {
    match told.recv().await {
        Some(Told::Shown {
            url,
            browser_opened,
        }) => {
            assert!(!browser_opened);
            url
        }
        other => panic!("expected the URL to be shown, got {other:?}"),
    }
}

/// A browser on another machine signs in: the address it ends up at (which it cannot load,
/// since 127.0.0.1 is not this machine there).
async fn redirect_address(url: &str) -> String {
    let at_provider = browser().get(url).send().await.unwrap();
    assert_eq!(at_provider.status(), 302);
    at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_pasted_redirect_address_completes_the_sign_in() {
    let provider = TestProvider::start().await;
    let Pasting {
        redirect_uri,
        signing_in,
        mut told,
        paste,
    } = sign_in_pasting(&provider, &["openid"]).await;

    // The hook, not stderr, receives the URL.
    let url = shown_url(&mut told).await;
    assert!(url.starts_with(&provider.authorization_url()), "{url}");
    let address = redirect_address(&url).await;
    assert!(address.starts_with(&redirect_uri), "{address}");
    paste.send(format!("  {address}\n")).unwrap();

    let login = signing_in.await.unwrap().unwrap();
    assert_eq!(provider.token_requests(), 1);
    let client = AuthedClient::builder(login)
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("me").send().await.unwrap().status(), 200);
    assert!(told.try_recv().is_err(), "nothing was refused");
    // The server is gone once the sign-in is over.
    assert!(browser().get(&redirect_uri).send().await.is_err());
}

#[tokio::test]
async fn a_pasted_address_of_another_sign_in_or_place_is_refused_and_the_wait_goes_on() {
    let provider = TestProvider::start().await;
    let Pasting {
        signing_in,
        mut told,
        paste,
        ..
    } = sign_in_pasting(&provider, &[]).await;
    let url = shown_url(&mut told).await;
    let address = redirect_address(&url).await;
    let (base, query) = address.split_once('?').unwrap();
    let with_state = |state: &str| {
        let pairs: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some(("state", _)) => format!("state={state}"),
                _ => p.to_owned(),
            })
            .collect();
        format!("{base}?{}", pairs.join("&"))
    };

    for (pasted, why) in [
        // A stale or forged sign-in.
        (with_state("not-this-sign-in"), CallbackError::StateMismatch),
        // Another place than the receiver's redirect URI.
        (
            address.replacen("/callback", "/elsewhere", 1),
            CallbackError::NotTheRedirectUri,
        ),
        (
            address.replacen("http://", "https://", 1),
            CallbackError::NotTheRedirectUri,
        ),
        // The strict parsing of the browser's callback.
        (
            format!("{address}&code=second"),
            CallbackError::DuplicateParameter("code"),
        ),
        ("not an address".to_owned(), CallbackError::NotAUrl),
    ] {
        paste.send(pasted).unwrap();
        assert_eq!(told.recv().await, Some(Told::Refused(why)));
        assert!(!signing_in.is_finished());
    }
    assert_eq!(
        provider.token_requests(),
        0,
        "nothing refused reached the provider"
    );

    paste.send(address).unwrap();
    signing_in.await.unwrap().unwrap();
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn the_browser_callback_wins_while_a_paste_is_awaited() {
    let provider = TestProvider::start().await;
    // Nothing is pasted, and the paste channel stays open: the browser comes first.
    let Pasting {
        signing_in,
        mut told,
        paste: _paste,
        ..
    } = sign_in_pasting(&provider, &[]).await;
    let url = shown_url(&mut told).await;
    let address = redirect_address(&url).await;
    let page = browser().get(&address).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Signed in"));
    signing_in.await.unwrap().unwrap();
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn a_full_loopback_login_driven_by_the_browser() {
    let provider = TestProvider::start().await;
    let receiver = receiver(Duration::from_secs(30)).await;
    let redirect_uri = receiver.redirect_uri().to_owned();
    let base = redirect_uri.strip_suffix("/callback").unwrap().to_owned();
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(port, 0);
    let flow = public_config(&provider)
        .authorization_code(&redirect_uri)
        .scopes(["openid"])
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let waiting = {
        let pending: PendingAuthorization =
            serde_json::from_value(serde_json::to_value(&pending).unwrap()).unwrap();
        tokio::spawn(async move { receiver.receive(&pending).await })
    };

    let http = browser();
    // The browser asks for a favicon and hits stray paths: ignored.
    let favicon = http
        .get(format!("{base}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.status(), 404);
    let bare = http.get(&redirect_uri).send().await.unwrap();
    assert_eq!(bare.status(), 400);
    // A stale tab of an earlier sign-in: refused with a page, and the receiver keeps waiting.
    let stale = http
        .get(format!("{redirect_uri}?code=old&state=old"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 400);
    assert!(
        stale
            .text()
            .await
            .unwrap()
            .contains("another or an older sign-in")
    );
    assert!(!waiting.is_finished());

    // The real sign-in: the provider redirects to the loopback address.
    let at_provider = http.get(pending.url()).send().await.unwrap();
    assert_eq!(at_provider.status(), 302);
    let callback = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(callback.starts_with(&redirect_uri), "{callback}");
    let page = http.get(&callback).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("You can close this window")
    );

    let callback = waiting.await.unwrap().unwrap();
    let login = flow.complete(pending, &callback).await.unwrap();
    assert_eq!(
        provider.token_forms()[0]["client_id"],
        TestProvider::PUBLIC_CLIENT_ID
    );
    let client = AuthedClient::builder(login)
        .base_url(provider.api_url())
        .build()
        .unwrap();
    assert_eq!(client.get("me").send().await.unwrap().status(), 200);

    // The server is gone once the callback arrived.
    assert!(http.get(&redirect_uri).send().await.is_err());
    assert_eq!(provider.token_requests(), 1);
}

#[tokio::test]
async fn a_callback_with_an_error_shows_it_and_is_typed() {
    let provider = TestProvider::start().await;
    provider.set_authorize_error(Some(("access_denied", "<b>no</b> thanks")));
    let receiver = receiver(Duration::from_secs(30)).await;
    let flow = public_config(&provider)
        .authorization_code(receiver.redirect_uri())
        .build()
        .unwrap();
    let pending = flow.authorize().await.unwrap();
    let url = pending.url().to_owned();
    let waiting = {
        let flow = flow.clone();
        tokio::spawn(async move { receiver.finish_sign_in(&flow, pending).await })
    };
    let http = browser();
    let at_provider = http.get(&url).send().await.unwrap();
    let callback = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = http
        .get(&callback)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign-in failed"), "{page}");
    assert!(page.contains("&lt;b&gt;no&lt;/b&gt; thanks"), "{page}");
    assert!(page.contains("You can close this window"));

    match waiting.await.unwrap() {
        Err(Error::AccessDenied(e)) => {
            assert_eq!(e.description.as_deref(), Some("<b>no</b> thanks"))
        }
        other => panic!("expected AccessDenied, got {other:?}"),
    }
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test(start_paused = true)]
async fn sign_in_times_out_and_shuts_the_server_down() {
    let provider = TestProvider::start().await;
    let receiver = receiver(Duration::from_millis(300)).await;
    let redirect_uri = receiver.redirect_uri().to_owned();
    let flow = public_config(&provider)
        .authorization_code(&redirect_uri)
        .build()
        .unwrap();
    // Tokio time, not the wall clock: on a loaded machine the wall clock says nothing.
    let started = tokio::time::Instant::now();
    match receiver.sign_in(&flow).await {
        Err(Error::Callback(CallbackError::Timeout)) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(300)..Duration::from_secs(1)).contains(&waited),
        "{waited:?}"
    );
    assert!(
        browser().get(&redirect_uri).send().await.is_err(),
        "server still listening"
    );
    assert_eq!(provider.token_requests(), 0);
}

#[tokio::test]
async fn dropping_the_wait_cancels_and_stops_the_server() {
    let provider = TestProvider::start().await;
    let receiver = receiver(Duration::from_secs(30)).await;
    let redirect_uri = receiver.redirect_uri().to_owned();
    let flow = public_config(&provider)
        .authorization_code(&redirect_uri)
        .build()
        .unwrap();
    let r = tokio::time::timeout(Duration::from_millis(200), receiver.sign_in(&flow)).await;
    assert!(r.is_err(), "sign_in ended on its own");
    // Shutdown is asynchronous: wait for the listener to close (for up to a minute, which
    // no loaded machine needs; the loop ends as soon as it is closed).
    let mut closed = false;
    for _ in 0..3000 {
        if browser().get(&redirect_uri).send().await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(closed, "server still listening after cancellation");

    // A flow built for another redirect URI is refused before anything is shown.
    let other = receiver_for_mismatch().await;
    let e = other.sign_in(&flow).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
}

async fn receiver_for_mismatch() -> LoopbackReceiver {
    receiver(Duration::from_secs(1)).await
}

#[tokio::test]
async fn a_chosen_port_and_path_make_the_redirect_uri() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let r = LoopbackReceiver::builder()
        .port(port)
        .path("/oauth/cb")
        .open_browser(false)
        .bind()
        .await
        .unwrap();
    assert_eq!(
        r.redirect_uri(),
        format!("http://127.0.0.1:{port}/oauth/cb")
    );
    // The port is taken while the receiver lives.
    let e = LoopbackReceiver::builder()
        .port(port)
        .bind()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(matches!(
        LoopbackReceiver::builder().path("cb").bind().await,
        Err(Error::Config(_))
    ));
}
