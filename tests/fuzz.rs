//! Fuzzing with proptest: no input a provider or an API controls can panic the crate, and what
//! the crate keeps of it stays bounded and clean. Each target feeds the crate's own parser,
//! through `authed::testing::fuzz`, the same function a real response goes through.
//!
//! `cargo test --test fuzz` runs a modest number of cases per target (1,000). The longer run,
//! at least 100,000 cases per target, is:
//!
//! ```text
//! AUTHED_FUZZ_CASES=100000 cargo test --release --test fuzz
//! ```
//!
//! (about a minute per target on two cores). A failing case is shrunk and printed; no
//! regression file is written.
//!
//! Adding a target: a strategy for the input, and a `proptest!` block using [`config`] whose
//! property calls into `authed::testing::fuzz` and checks what came out with the helpers at
//! the top (`assert_bounded_error`).

use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per target: `AUTHED_FUZZ_CASES`, or 1,000.
fn cases() -> u32 {
    std::env::var("AUTHED_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000)
}

/// The configuration every target uses.
fn config() -> Config {
    Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    }
}

/// An error's text is bounded and has no control characters, whatever came in.
fn assert_bounded_error(e: &authed::Error) -> Result<(), TestCaseError> {
    let shown = e.to_string();
    prop_assert!(shown.len() <= 2048, "{} characters", shown.len());
    prop_assert!(
        !shown.chars().any(char::is_control),
        "control characters in {shown:?}"
    );
    let debug = format!("{e:?}");
    prop_assert!(debug.len() <= 4096);
    Ok(())
}

// ---- Token responses ------------------------------------------------------------------------

/// Field names real token responses and error bodies use, and a few odd ones.
const KEYS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "expires",
    "refresh_token",
    "id_token",
    "scope",
    "error",
    "error_description",
    "error_uri",
    "errors",
    "errcode",
    "errmsg",
    "errorCode",
    "errorSummary",
    "message",
    "status",
    "reason",
    "code",
    "type",
    "ok",
    "success",
    "interval",
    "issued_token_type",
    "authed_user",
    "resource",
    "field",
    "",
];

/// JSON values of every kind, nested a few levels, with provider-like keys.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,40}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("Bearer"),
            Just("bearer"),
            Just("DPoP"),
            Just("N_A"),
            Just("user"),
            Just("invalid_grant"),
            Just("slow_down"),
            Just("190"),
            Just("-1"),
            Just("1e400"),
            Just("NaN"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|pairs| {
                serde_json::Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                )
            }),
        ]
    })
}

/// A body: a JSON object of provider-like fields, a form, or any bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec((prop::sample::select(KEYS), json_value()), 0..8).prop_map(
            |pairs| {
                let map: serde_json::Map<_, _> =
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::to_vec(&map).unwrap()
            }
        ),
        2 => prop::collection::vec((prop::sample::select(KEYS), ".{0,30}"), 0..6).prop_map(
            |pairs| {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    form.append_pair(k, &v);
                }
                form.finish().into_bytes()
            }
        ),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        Just(200u16),
        Just(201),
        Just(400),
        Just(401),
        Just(429),
        Just(500),
        Just(503),
        100u16..600,
    ]
}

fn content_type() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("application/json".to_owned()),
        Just("application/x-www-form-urlencoded".to_owned()),
        Just(String::new()),
        "[ -~\t]{0,300}",
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Any answer, read as a token response with or without DPoP: a token whose access token
    /// can be a header value, or a bounded, clean error. Never a panic.
    #[test]
    fn token_responses_never_panic(
        status in status(),
        content_type in content_type(),
        body in body(),
        dpop in any::<bool>(),
    ) {
        match authed::testing::fuzz::token_response(status, &content_type, &body, dpop) {
            Ok(token) => {
                prop_assert!(token.access_token().secret().bytes().all(|b| (0x20..=0x7e).contains(&b)));
                prop_assert!(token.token_type().len() <= 512);
            }
            Err(e) => assert_bounded_error(&e)?,
        }
    }
}

// ---- DPoP nonces ----------------------------------------------------------------------------

/// Header values: any bytes an HTTP header can carry, long and short, and nonce-like ones.
fn nonce_header() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[!#-~]{1,64}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..128),
        (1usize..4096).prop_map(|n| vec![b'n'; n]),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// A `DPoP-Nonce` header of any content: kept and sent back in the next proof only when
    /// it is a valid nonce (RFC 9449 §8.1, `1*NQCHAR`) of bounded length; never a panic.
    #[test]
    fn dpop_nonces_never_panic(value in nonce_header()) {
        let sent = authed::testing::fuzz::dpop_nonce(&value);
        let valid = !value.is_empty()
            && value.len() <= authed::testing::fuzz::MAX_DPOP_NONCE_LEN
            && value.iter().all(|b| *b == 0x21 || (0x23..=0x7e).contains(b));
        match sent {
            Some(nonce) => {
                prop_assert!(valid, "kept an invalid nonce {value:?}");
                prop_assert_eq!(nonce.as_bytes(), &value[..]);
            }
            None => prop_assert!(!valid, "dropped a valid nonce {value:?}"),
        }
    }
}
