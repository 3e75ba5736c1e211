//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1, RFC 6750 §3): what an API's 401 asks
//! for. On the ground floor, so that `error` can describe a refusal without importing the
//! request rules.

use http::HeaderMap;
use http::header;

/// A `WWW-Authenticate: Bearer` challenge (RFC 6750 §3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Challenge {
    pub(crate) error: Option<String>,
    pub(crate) description: Option<String>,
}

impl Challenge {
    /// `invalid_token`, or a bare challenge (the token was missing, expired or revoked).
    pub(crate) fn asks_for_new_token(&self) -> bool {
        self.error.as_deref().is_none_or(|e| e == "invalid_token")
    }
}

/// The first Bearer challenge of the response. `None` when there is no `WWW-Authenticate`
/// header at all; a challenge with an error of `"-"` stands for one that is not Bearer, so
/// that a 401 asking for Basic credentials is not answered with a token refresh.
pub(crate) fn bearer_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let mut saw_other = false;
    for value in headers.get_all(header::WWW_AUTHENTICATE) {
        // Read as UTF-8, lossily: an `error_description` in another language (obs-text) must
        // not hide the challenge's `error`.
        let value = String::from_utf8_lossy(value.as_bytes());
        for (scheme, params) in parse_challenges(&value) {
            // A DPoP token's challenge names the DPoP scheme (RFC 9449 §7.1), same parameters.
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop") {
                let get = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                };
                return Some(Challenge {
                    error: get("error"),
                    description: get("error_description"),
                });
            }
            saw_other = true;
        }
    }
    saw_other.then(|| Challenge {
        error: Some("-".to_owned()),
        description: None,
    })
}

/// Whether any challenge, in any `WWW-Authenticate` header, is `DPoP` with
/// `error="use_dpop_nonce"` (RFC 9449 §9): the server wants its nonce in the proof.
pub(crate) fn asks_for_dpop_nonce(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .any(|value| {
            parse_challenges(&String::from_utf8_lossy(value.as_bytes()))
                .iter()
                .any(|(scheme, params)| {
                    scheme.eq_ignore_ascii_case("dpop")
                        && params
                            .iter()
                            .any(|(k, v)| k.eq_ignore_ascii_case("error") && v == "use_dpop_nonce")
                })
        })
}

type Params = Vec<(String, String)>;

/// Splits a `WWW-Authenticate` value into challenges (RFC 9110 §11.6.1): scheme, then
/// `name=value` or `name="quoted"` parameters. Lenient, never panics.
fn parse_challenges(value: &str) -> Vec<(String, Params)> {
    let chars: Vec<char> = value.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    let mut out: Vec<(String, Params)> = Vec::new();
    let is_delim = |c: char| c.is_whitespace() || c == ',' || c == '=' || c == '"';
    while i < chars.len() {
        while at(i).is_some_and(|c| c.is_whitespace() || c == ',') {
            i += 1;
        }
        let start = i;
        while at(i).is_some_and(|c| !is_delim(c)) {
            i += 1;
        }
        if start == i {
            // A stray `=` or `"`: skip it.
            i += 1;
            continue;
        }
        let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
        let mut j = i;
        while at(j).is_some_and(char::is_whitespace) {
            j += 1;
        }
        let is_param = at(j) == Some('=') && !out.is_empty();
        if !is_param {
            out.push((word, Vec::new()));
            continue;
        }
        i = j + 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let mut val = String::new();
        if at(i) == Some('"') {
            i += 1;
            while let Some(c) = at(i).filter(|&c| c != '"') {
                // A backslash escapes the next character, if there is one.
                let c = match (c, at(i + 1)) {
                    ('\\', Some(next)) => {
                        i += 1;
                        next
                    }
                    _ => c,
                };
                val.push(c);
                i += 1;
            }
            i += 1;
        } else {
            while let Some(c) = at(i).filter(|&c| c != ',' && !c.is_whitespace()) {
                val.push(c);
                i += 1;
            }
        }
        if let Some((_, params)) = out.last_mut() {
            params.push((word, val));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parses_bearer_parameters() {
        let c = bearer_challenge(&headers(&[
            r#"Bearer realm="api", error="invalid_token", error_description="The access token expired""#,
        ]))
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.description.as_deref(), Some("The access token expired"));
        assert!(c.asks_for_new_token());
    }

    #[test]
    fn finds_bearer_among_several_challenges() {
        let c = bearer_challenge(&headers(&[
            r#"Basic realm="x", Bearer error=invalid_token"#,
        ]))
        .unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        let c = bearer_challenge(&headers(&["Basic realm=x", "Bearer"])).unwrap();
        assert!(c.asks_for_new_token());
    }

    #[test]
    fn other_errors_and_schemes_do_not_ask_for_a_token() {
        let scope = bearer_challenge(&headers(&[r#"Bearer error="insufficient_scope""#])).unwrap();
        assert!(!scope.asks_for_new_token());
        let basic = bearer_challenge(&headers(&[r#"Basic realm="x""#])).unwrap();
        assert!(!basic.asks_for_new_token());
        assert_eq!(bearer_challenge(&HeaderMap::new()), None);
    }

    #[test]
    fn quoted_strings_unescape() {
        let c = parse_challenges(r#"Bearer error_description="say \"hi\", ok""#);
        assert_eq!(c[0].1[0].1, r#"say "hi", ok"#);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(s in ".*") {
            let _ = parse_challenges(&s);
        }
    }

    /// RFC 9110 §11.6.1's own example: two challenges in one header, the second with three
    /// parameters, one a quoted string with escaped quotes.
    #[test]
    fn rfc_9110_example() {
        let c = parse_challenges(
            r#"Basic realm="simple", Newauth realm="apps", type=1, title="Login to \"apps\"""#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, "Basic");
        assert_eq!(c[0].1, [("realm".to_owned(), "simple".to_owned())]);
        assert_eq!(c[1].0, "Newauth");
        assert_eq!(c[1].1.len(), 3);
        assert_eq!(
            c[1].1[2],
            ("title".to_owned(), r#"Login to "apps""#.to_owned())
        );
    }

    /// The cases a strict parser (the http-auth crate, tried for this) gives up on, losing
    /// the Bearer challenge after them: a token68 challenge, empty list elements (RFC 9110
    /// §5.6.1 says to accept them), a missing comma between parameters.
    #[test]
    fn what_real_servers_send_still_finds_the_bearer_challenge() {
        for value in [
            r#"Negotiate YIIB==, Bearer error="invalid_token""#,
            r#"Bearer error="invalid_token", "#,
            r#", , Bearer error="invalid_token""#,
            r#"Bearer realm="api" error="invalid_token""#,
            r#"bearer ERROR = "invalid_token" , error_description = "spaced""#,
            r#"Basic realm="a, Bearer error=insufficient_scope", Bearer error=invalid_token"#,
        ] {
            let c = bearer_challenge(&headers(&[value])).unwrap();
            assert_eq!(c.error.as_deref(), Some("invalid_token"), "{value}");
        }
        // An unterminated quoted string ends at the end of the value.
        let c = bearer_challenge(&headers(&[r#"Bearer error="invalid_token"#])).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
    }

    #[test]
    fn several_headers_and_non_ascii_descriptions() {
        let mut h = headers(&[r#"Basic realm="x""#]);
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_bytes(
                "Bearer error=\"invalid_token\", error_description=\"le jeton a expiré\""
                    .as_bytes(),
            )
            .unwrap(),
        );
        let c = bearer_challenge(&h).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert!(c.description.unwrap().starts_with("le jeton a expir"));
    }

    #[test]
    fn a_dpop_nonce_request_is_found_in_any_challenge() {
        assert!(asks_for_dpop_nonce(&headers(&[
            r#"Bearer realm="x", DPoP algs="ES256 PS256", error="use_dpop_nonce""#
        ])));
        assert!(asks_for_dpop_nonce(&headers(&[
            "Bearer",
            r#"dpop error="use_dpop_nonce""#
        ])));
        assert!(!asks_for_dpop_nonce(&headers(&[
            r#"DPoP error="invalid_token", error_description="not use_dpop_nonce""#
        ])));
        assert!(!asks_for_dpop_nonce(&headers(&[
            r#"Bearer error="use_dpop_nonce""#
        ])));
    }
}
