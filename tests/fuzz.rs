//! Fuzzing with proptest: no input a provider or an API controls can panic the crate, and what
//! the crate keeps of it stays bounded and clean. Each target feeds the crate's own parser,
//! through `authed::testing::fuzz`, the same function a real response goes through: token
//! responses, `DPoP-Nonce` headers, and JWKS documents and ID tokens (issue 18 point 2: an ID
//! token is accepted only when a key of the set signed it and its claims are right).
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

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use authed::{JwsSigner, SigningAlgorithm, SigningKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

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

// ---- JWKS documents and ID tokens ----------------------------------------------------------

const ISSUER: &str = "https://as.example";
const CLIENT: &str = "client-1";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: u64 = 1_800_000_000;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

/// The provider's keys (ES256, EdDSA, RS256 under kids `k-es`, `k-ed`, `k-rsa`) and their JWKS.
struct Fixture {
    keys: Vec<SigningKey>,
    jwks: Vec<u8>,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let keys = vec![
            SigningKey::generate(SigningAlgorithm::ES256)
                .unwrap()
                .with_kid("k-es"),
            SigningKey::generate(SigningAlgorithm::EdDSA)
                .unwrap()
                .with_kid("k-ed"),
            SigningKey::generate(SigningAlgorithm::RS256)
                .unwrap()
                .with_kid("k-rsa"),
        ];
        let jwks: Vec<Value> = keys.iter().map(|k| k.public_jwk().to_value()).collect();
        Fixture {
            jwks: serde_json::to_vec(&json!({ "keys": jwks })).unwrap(),
            keys,
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        }
    })
}

fn b64_json(value: &Value) -> String {
    B64.encode(value.to_string())
}

/// `header.claims.signature`, signed by `key` (through the public signer trait).
fn signed(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64_json(header), b64_json(claims));
    let signature = fixture()
        .runtime
        .block_on(key.sign(input.as_bytes()))
        .unwrap();
    format!("{input}.{}", B64.encode(signature))
}

fn good_claims() -> Value {
    json!({
        "iss": ISSUER, "aud": CLIENT, "sub": "user-1", "nonce": NONCE,
        "exp": NOW + 600, "iat": NOW,
    })
}

fn validate(raw: &str, jwks: &[u8]) -> Result<authed::IdTokenClaims, authed::IdTokenError> {
    authed::testing::fuzz::id_token(raw, jwks, ISSUER, CLIENT, NONCE, now())
}

// ---- JOSE strategies ----------------------------------------------------------------------

/// base64url of lengths around every size the checks care about.
fn b64_bytes() -> impl Strategy<Value = String> {
    let len = prop_oneof![
        Just(0usize),
        Just(1),
        Just(3),
        Just(31),
        Just(32),
        Just(33),
        Just(48),
        Just(57),
        Just(64),
        Just(65),
        Just(255),
        Just(256),
        Just(257),
        Just(512),
        Just(1025),
        0usize..600,
    ];
    len.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n))
        .prop_map(|bytes| B64.encode(bytes))
}

/// JSON leaves a JWK or a claim might hold.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::from),
        b64_bytes().prop_map(Value::from),
        prop::sample::select(vec![
            "RSA", "EC", "OKP", "oct", "P-256", "P-384", "Ed25519", "X25519", "sig", "enc",
            "verify", "sign", "RS256", "PS256", "ES256", "EdDSA", "HS256", "none", "k-es", "k-ed",
            "k-rsa", "AQAB", "AA",
        ])
        .prop_map(Value::from),
    ]
}

const JWK_MEMBERS: &[&str] = &[
    "kty", "crv", "x", "y", "n", "e", "d", "k", "alg", "use", "key_ops", "kid", "x5c", "",
];

/// A JWK of any shape: the members a JWK has, with values of any kind.
fn jwk() -> impl Strategy<Value = Value> {
    let member = (
        prop::sample::select(JWK_MEMBERS),
        prop_oneof![
            4 => leaf(),
            1 => prop::collection::vec(leaf(), 0..3).prop_map(Value::Array),
        ],
    );
    prop::collection::vec(member, 0..9).prop_map(|pairs| {
        Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    })
}

/// A key that looks right (type, curve, the fixture's kid) with parameters of any length: the
/// shape that panicked jsonwebtoken.
fn plausible_jwk() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![("OKP", "Ed25519"), ("EC", "P-256"), ("RSA", "")]),
        prop::sample::select(vec!["k-es", "k-ed", "k-rsa"]),
        b64_bytes(),
        b64_bytes(),
        prop::option::of(prop::sample::select(vec![
            "EdDSA", "ES256", "RS256", "PS256", "HS256",
        ])),
    )
        .prop_map(|((kty, crv), kid, a, b, alg)| {
            let mut key = match kty {
                "RSA" => json!({"kty": kty, "n": a, "e": b}),
                "EC" => json!({"kty": kty, "crv": crv, "x": a, "y": b}),
                _ => json!({"kty": kty, "crv": crv, "x": a}),
            };
            key["kid"] = json!(kid);
            if let Some(alg) = alg {
                key["alg"] = json!(alg);
            }
            key
        })
}

/// A JWKS document: a key set of any keys (the fixture's own among them, or not), any JSON, or
/// any bytes.
fn jwks_document() -> impl Strategy<Value = Vec<u8>> {
    let entries = prop::collection::vec(
        prop_oneof![3 => plausible_jwk(), 3 => jwk(), 1 => leaf()],
        0..6,
    );
    prop_oneof![
        6 => (entries, any::<bool>()).prop_map(|(mut keys, with_real)| {
            if with_real {
                let real: Value = serde_json::from_slice(&fixture().jwks).unwrap();
                keys.extend(real["keys"].as_array().unwrap().iter().cloned());
            }
            serde_json::to_vec(&json!({ "keys": keys })).unwrap()
        }),
        1 => leaf().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// A JWS header: every `alg` a forger tries, the fixture's kids, `crit`.
fn header() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "none", "HS256", "ES256", "EdDSA", "RS256", "PS256", "RS384", "ES384", "", "eddsa",
        ]),
        prop::option::of(prop::sample::select(vec![
            "k-es", "k-ed", "k-rsa", "other", "",
        ])),
        any::<bool>(),
        prop::option::of(leaf()),
    )
        .prop_map(|(alg, kid, crit, typ)| {
            let mut header = json!({ "alg": alg });
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            if crit {
                header["crit"] = json!(["exp"]);
            }
            if let Some(typ) = typ {
                header["typ"] = typ;
            }
            header
        })
}

/// Claims near the rules: right and wrong values of every claim the checks read, and any JSON.
fn claims() -> impl Strategy<Value = Value> {
    let time = prop_oneof![(NOW - 7200..NOW + 7200).prop_map(Value::from), leaf(),];
    (
        prop_oneof![
            Just(json!(ISSUER)),
            Just(json!(format!("{ISSUER}/"))),
            leaf()
        ],
        prop_oneof![
            Just(json!(CLIENT)),
            Just(json!([CLIENT])),
            Just(json!([CLIENT, "other"])),
            leaf()
        ],
        prop::option::of(time.clone()),
        prop::option::of(time.clone()),
        prop::option::of(time),
        prop_oneof![Just(json!(NONCE)), leaf()],
        prop_oneof![Just(json!("user-1")), leaf()],
        prop::option::of(prop_oneof![Just(json!(CLIENT)), leaf()]),
    )
        .prop_map(|(iss, aud, exp, iat, nbf, nonce, sub, azp)| {
            let mut claims = json!({"iss": iss, "aud": aud, "nonce": nonce, "sub": sub});
            for (name, value) in [("exp", exp), ("iat", iat), ("nbf", nbf), ("azp", azp)] {
                if let Some(value) = value {
                    claims[name] = value;
                }
            }
            claims
        })
}

/// An accepted token said what it must: the right issuer, audience, nonce and a subject.
fn assert_sound(claims: &authed::IdTokenClaims) -> Result<(), TestCaseError> {
    prop_assert_eq!(claims.get("iss"), Some(&json!(ISSUER)));
    prop_assert_eq!(claims.get("nonce"), Some(&json!(NONCE)));
    prop_assert!(!claims.sub().is_empty());
    let exp = claims.get("exp").and_then(Value::as_f64);
    prop_assert!(exp.is_some_and(|exp| exp + 60.0 > NOW as f64));
    Ok(())
}

/// What a character of a good token is changed to: base64url, the separator, and what a
/// lenient decoder might skip or accept.
const CHANGED_TO: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

// ---- JOSE targets -------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any JWKS document: the keys that pass the checks are kept, the rest skipped; a document
    /// that is not a key set is `IdTokenError::Jwks`. Never a panic.
    #[test]
    fn jwks_documents_never_panic(document in jwks_document()) {
        match authed::testing::fuzz::jwks_document(&document) {
            Ok(kept) => prop_assert!(kept <= 100),
            Err(e) => prop_assert_eq!(e, authed::IdTokenError::Jwks),
        }
    }

    /// Any header and claims with a signature of random bytes, against any key set: refused,
    /// never a panic.
    #[test]
    fn forged_id_tokens_are_refused(
        header in header(),
        claims in claims(),
        signature in prop::collection::vec(any::<u8>(), 0..600),
        document in jwks_document(),
    ) {
        let raw = format!("{}.{}.{}", b64_json(&header), b64_json(&claims), B64.encode(signature));
        prop_assert!(validate(&raw, &document).is_err());
        prop_assert!(validate(&raw, &fixture().jwks).is_err());
    }

    /// Tokens the provider really signed, with claims of every kind, against key sets holding
    /// hostile keys under the same kids: never a panic, and accepted only when the claims
    /// are right.
    #[test]
    fn signed_id_tokens_are_judged_by_their_claims(
        which in 0usize..3,
        claims in claims(),
        document in jwks_document(),
    ) {
        let key = &fixture().keys[which];
        let header = json!({"alg": key.algorithm().as_str(), "kid": key.kid(), "typ": "JWT"});
        let raw = signed(key, &header, &claims);
        for jwks in [&document, &fixture().jwks] {
            if let Ok(accepted) = validate(&raw, jwks) {
                assert_sound(&accepted)?;
            }
        }
    }

    /// A good token with one character changed anywhere is refused.
    #[test]
    fn a_changed_character_breaks_a_good_token(
        which in 0usize..3,
        at in any::<prop::sample::Index>(),
        shift in 1usize..CHANGED_TO.len(),
    ) {
        let key = &fixture().keys[which];
        let header = json!({"alg": key.algorithm().as_str(), "kid": key.kid()});
        let mut raw = signed(key, &header, &good_claims()).into_bytes();
        let at = at.index(raw.len());
        // Another character than the one there, without rejecting cases (a long run would
        // hit proptest's cap on rejections): the one `shift` places further in the list.
        let from = CHANGED_TO.iter().position(|c| *c == raw[at]).unwrap_or(0);
        let to = CHANGED_TO[(from + shift) % CHANGED_TO.len()];
        raw[at] = to;
        let raw = String::from_utf8(raw).unwrap();
        prop_assert!(validate(&raw, &fixture().jwks).is_err(), "accepted {raw}");
    }

    /// Any text at all as an ID token: never a panic.
    #[test]
    fn any_text_is_refused(raw in "(.{0,40}\\.?){0,6}", document in jwks_document()) {
        prop_assert!(validate(&raw, &document).is_err());
    }
}

#[test]
fn the_fixture_signs_tokens_the_crate_accepts() {
    for key in &fixture().keys {
        let header = json!({"alg": key.algorithm().as_str(), "kid": key.kid()});
        let claims = validate(&signed(key, &header, &good_claims()), &fixture().jwks)
            .unwrap_or_else(|e| panic!("{:?}: {e:?}", key.algorithm()));
        assert_eq!(claims.sub(), "user-1");
    }
}
