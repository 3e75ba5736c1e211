//! The token response rules (RFC 6749 §5.1, §7.1, RFC 9449 §5): an answer read into a
//! [`Token`], with the quirks real providers have.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::answer::Answer;
use crate::error::Error;
use crate::jose::DpopKey;
use crate::token::{AccessToken, IdToken, RefreshToken, Token};

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Option<String> {
    match fields.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The longest lifetime a token is given: 2^31 - 1 seconds (68 years), the largest value
/// providers send for "never expires". Larger values saturate here, so expiry and refresh
/// times stay far from the limits of `SystemTime` and Tokio's timers.
pub(crate) const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(i32::MAX as u64);

/// What a token response's `expires_in` says.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expiry {
    /// Missing, `null`, an empty string or `0`: the provider gives no expiry.
    Unknown,
    /// Negative: the token is already expired.
    Expired,
    /// Expires this long after it was received, at most [`MAX_TOKEN_LIFETIME`].
    After(Duration),
}

/// The `expires_in` rules, one place:
/// - missing, `null` or an empty string: no expiry known (Salesforce sends none);
/// - `0`: no expiry, like Go's x/oauth2 reads it;
/// - a number or a numeric string (Microsoft v1, PayPal), fractions kept;
/// - negative: already expired. The response is kept, not rejected: the token is handed to
///   the caller that asked for it, and the next call asks for a new one;
/// - larger than [`MAX_TOKEN_LIFETIME`] (68 years), `inf` included: saturates there;
/// - anything else (`"soon"`, `NaN`, `true`): a malformed response.
fn expiry(value: &Value) -> Result<Expiry, ()> {
    let secs = match value {
        Value::Null => return Ok(Expiry::Unknown),
        Value::Number(n) => n.as_f64().ok_or(())?,
        Value::String(s) if s.trim().is_empty() => return Ok(Expiry::Unknown),
        Value::String(s) => s.trim().parse::<f64>().map_err(drop)?,
        _ => return Err(()),
    };
    if secs.is_nan() {
        Err(())
    } else if secs < 0.0 {
        Ok(Expiry::Expired)
    } else if secs == 0.0 {
        Ok(Expiry::Unknown)
    } else {
        let d = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
        Ok(Expiry::After(d.min(MAX_TOKEN_LIFETIME)))
    }
}

/// RFC 6749 Appendix A.12: `access-token = 1*VSCHAR` (`%x20-7E`). Anything else (CR, LF,
/// NUL, other controls, DEL, non-ASCII) could split or forge a header, or fail on every API
/// call; it is refused here instead of being cached and handed out.
fn is_valid_access_token(token: &str) -> bool {
    token.bytes().all(|b| (0x20..=0x7e).contains(&b)) && !token.trim().is_empty()
}

/// Slack's oauth.v2.access names its bearer tokens by who they act for (`"token_type":
/// "bot"` or `"user"`, https://api.slack.com/methods/oauth.v2.access); they are sent as
/// `Authorization: Bearer`, and kept with the name Slack gave them.
const SLACK_BEARER_TYPES: &[&str] = &["bot", "user"];

/// Applies the token response rules (RFC 6749 §5.1, §7.1) with the quirks real providers
/// have.
#[cfg(test)]
pub(crate) fn token_from_answer(answer: Answer, now: SystemTime) -> Result<Token, Error> {
    token_from_answer_bound(answer, now, None, &[])
}

/// [`token_from_answer`] for a request that carried a proof by `dpop`, if any.
///
/// `token_type` decides the scheme (RFC 9449 §5): `DPoP` is accepted only when a proof was
/// sent, and the token is bound to its key. A DPoP request answered with a Bearer token is
/// refused ([`Error::UnsupportedTokenType`]): the application asked for sender-constrained
/// tokens, and silently accepting a bearer token instead would hide a provider that does
/// not (or no longer) bind tokens. `bearer_types` are the provider's own names for bearer
/// tokens that the configuration accepts (eBay's `User Access Token`), compared ignoring
/// ASCII case and kept as sent.
pub(crate) fn token_from_answer_bound(
    answer: Answer,
    now: SystemTime,
    dpop: Option<&DpopKey>,
    bearer_types: &[String],
) -> Result<Token, Error> {
    let Answer { status, mut fields } = nested_user_token(answer);
    let access_token = take_string(&mut fields, "access_token")
        .ok_or_else(|| Error::malformed(status, "no access_token in the token response"))?;
    if !is_valid_access_token(&access_token) {
        return Err(Error::malformed(
            status,
            "the access token has characters an HTTP header cannot carry",
        ));
    }
    // RFC 6749 §7.1: a client must not use a token whose type it does not understand.
    // Bearer always; DPoP only when the request carried a proof (the token needs the key's
    // proofs, RFC 9449 §5). A missing token_type is read as Bearer, a quirk of several
    // providers (Facebook, older Salesforce answers).
    let token_type = match fields.remove("token_type") {
        Some(Value::String(t)) if dpop.is_some() && crate::jose::is_dpop_type(&t) => {
            "DPoP".to_owned()
        }
        None | Some(Value::Null) => "Bearer".to_owned(),
        Some(Value::String(t)) if t.trim().eq_ignore_ascii_case("bearer") => "Bearer".to_owned(),
        Some(Value::String(t)) if t.is_empty() => "Bearer".to_owned(),
        Some(Value::String(t)) if SLACK_BEARER_TYPES.contains(&t.as_str()) => t,
        Some(Value::String(t))
            if bearer_types
                .iter()
                .any(|b| b.trim().eq_ignore_ascii_case(t.trim())) =>
        {
            t
        }
        Some(other) => {
            let shown = match &other {
                Value::String(t) => crate::oauth_error::clean(t),
                v => crate::oauth_error::clean(&v.to_string()),
            };
            return Err(Error::UnsupportedTokenType { token_type: shown });
        }
    };
    if dpop.is_some() && token_type != "DPoP" {
        return Err(Error::UnsupportedTokenType { token_type });
    }
    // `expires` is Facebook's older name for `expires_in`.
    let expiry = match ["expires_in", "expires"]
        .iter()
        .find_map(|key| fields.remove(*key).filter(|v| !v.is_null()))
    {
        Some(v) => expiry(&v)
            .map_err(|()| Error::malformed(status, "expires_in is not a number of seconds"))?,
        None => Expiry::Unknown,
    };
    let scopes = match fields.remove("scope") {
        // Comma-separated by GitHub, Slack and Facebook; a comma in a scope name is legal
        // but unseen in practice, so it is read as a separator too.
        Some(Value::String(s)) => Some(
            s.split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    };
    let refresh_token = take_string(&mut fields, "refresh_token").map(RefreshToken::new);
    let id_token = take_string(&mut fields, "id_token").map(IdToken::new);

    let token = Token::new(AccessToken::new(access_token))
        .with_token_type(token_type)
        .with_refresh_token(refresh_token)
        .with_id_token(id_token)
        .with_scopes(scopes)
        .with_extra(fields)
        .with_dpop_key(dpop.cloned());
    Ok(match expiry {
        Expiry::After(d) => token.with_lifetime(now, d),
        Expiry::Expired => token.with_lifetime(now, Duration::ZERO),
        Expiry::Unknown => token.with_expires_at(None),
    })
}

/// Slack's `oauth.v2.access` answer to a sign-in that asked only for user scopes has no
/// top-level token: the user's is in `authed_user` (https://api.slack.com/methods/oauth.v2.access).
/// It is then the answer's token; the rest of the answer stays in [`Token::extra`].
fn nested_user_token(mut answer: Answer) -> Answer {
    if answer.fields.contains_key("access_token") {
        return answer;
    }
    let Some(Value::Object(user)) = answer.fields.get("authed_user") else {
        return answer;
    };
    if !matches!(user.get("access_token"), Some(Value::String(_))) {
        return answer;
    }
    let user = user.clone();
    for (key, value) in user {
        if matches!(
            key.as_str(),
            "access_token" | "token_type" | "refresh_token" | "expires_in" | "scope"
        ) {
            answer.fields.insert(key, value);
        }
    }
    answer
}

/// The user token nested in `authed_user` of a Slack answer kept in `extra`, read by the
/// same rules as any token (`token_type` `user`, its own refresh token and expiry).
pub(crate) fn nested_token(
    extra: &Map<String, Value>,
    key: &str,
    now: SystemTime,
) -> Result<Option<Token>, Error> {
    match extra.get(key) {
        Some(Value::Object(nested)) if nested.contains_key("access_token") => {
            token_from_answer_bound(
                Answer {
                    status: 200,
                    fields: nested.clone(),
                },
                now,
                None,
                &[],
            )
            .map(Some)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::answer::{answer_from_body, seconds};
    use super::*;
    use serde_json::json;

    fn answer(status: u16, v: Value) -> Answer {
        Answer {
            status,
            fields: v.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn string_expires_in_and_lowercase_bearer() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = token_from_answer(
            answer(
                200,
                json!({"access_token": "a", "token_type": "bearer", "expires_in": "3600"}),
            ),
            now,
        )
        .unwrap();
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(t.expires_at(), Some(now + Duration::from_secs(3600)));
    }

    #[test]
    fn missing_fields_get_defaults() {
        let t = token_from_answer(answer(201, json!({"access_token": "a"})), SystemTime::now())
            .unwrap();
        assert_eq!(t.token_type(), "Bearer");
        assert_eq!(t.expires_at(), None);
    }

    #[test]
    fn garbage_expires_in_is_a_typed_error() {
        let e = token_from_answer(
            answer(200, json!({"access_token": "a", "expires_in": "soon"})),
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(matches!(e, Error::MalformedResponse { status: 200, .. }));
    }

    #[test]
    fn a_successful_token_response_is_not_an_error_for_its_extra_fields() {
        for v in [
            json!({"access_token": "a", "status": "active", "message": "welcome", "reason": "x"}),
            json!({"access_token": "a", "error": null, "errors": [], "ok": true}),
            json!({"access_token": "a", "error": ""}),
        ] {
            let body = serde_json::to_vec(&v).unwrap();
            assert!(
                answer_from_body(200, "application/json", &body, &[]).is_ok(),
                "{v}"
            );
        }
    }

    #[test]
    fn expires_in_rules() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = |v: Value| {
            token_from_answer(
                answer(200, json!({"access_token": "a", "expires_in": v})),
                now,
            )
        };
        for none in [json!(null), json!(0), json!("0"), json!(""), json!(" ")] {
            assert_eq!(token(none.clone()).unwrap().expires_at(), None, "{none}");
        }
        // Negative: kept, and already expired.
        for negative in [json!(-1), json!("-3600"), json!(-1e300), json!("-inf")] {
            let t = token(negative.clone()).unwrap();
            assert_eq!(t.expires_at(), Some(now), "{negative}");
            assert!(!t.is_valid_at(now, &crate::ExpiryPolicy::default()));
        }
        // Absurdly large: saturates at 68 years.
        for huge in [
            json!(u64::MAX),
            json!(1e300),
            json!("1e400"),
            json!("inf"),
            json!(i32::MAX),
        ] {
            let t = token(huge.clone()).unwrap();
            assert_eq!(t.lifetime(), Some(MAX_TOKEN_LIFETIME), "{huge}");
        }
        assert_eq!(
            token(json!(1.5)).unwrap().lifetime(),
            Some(Duration::from_millis(1500))
        );
        for bad in [json!("soon"), json!("NaN"), json!(true), json!([1])] {
            assert!(token(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_type_must_be_usable() {
        let now = SystemTime::now();
        for ok in [
            json!("bearer"),
            json!("BEARER"),
            json!(" Bearer "),
            json!(null),
            json!(""),
        ] {
            let t = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": ok})),
                now,
            );
            assert_eq!(t.unwrap().token_type(), "Bearer", "{ok}");
        }
        // Slack's bearer tokens keep their name.
        for slack in ["bot", "user"] {
            let t = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": slack})),
                now,
            );
            assert_eq!(t.unwrap().token_type(), slack);
        }
        for bad in [
            json!("mac"),
            json!("N_A"),
            json!("DPoP"),
            json!("app"),
            json!("Bot"),
            json!("bearer2"),
            json!(1),
            json!("Bearer\r\nX-Evil: 1"),
        ] {
            let e = token_from_answer(
                answer(200, json!({"access_token": "a", "token_type": bad})),
                now,
            )
            .unwrap_err();
            assert!(
                matches!(&e, Error::UnsupportedTokenType { token_type } if !token_type.contains('\n')),
                "{bad}: {e:?}"
            );
            assert!(e.is_configuration());
        }
    }

    #[test]
    fn access_tokens_that_are_not_header_values_are_refused() {
        for bad in [
            "a\r\nX-Injected: 1",
            "a\nb",
            "a\0b",
            "a\tb",
            "a\u{7f}",
            "tök",
            " ",
        ] {
            let e = token_from_answer(answer(200, json!({"access_token": bad})), SystemTime::now())
                .unwrap_err();
            assert!(
                matches!(e, Error::MalformedResponse { status: 200, .. }),
                "{bad:?}"
            );
            assert!(
                bad.trim().is_empty() || !e.to_string().contains(bad.trim()),
                "{e}"
            );
        }
        // Salesforce's `!` and JWTs' dots are fine.
        for ok in ["00Dxx0000001gPL!AR8AQJXg", "eyJ.eyJ.sig-_", "a~b+c/d="] {
            assert!(
                token_from_answer(answer(200, json!({"access_token": ok})), SystemTime::now())
                    .is_ok()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn no_body_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
                          status in 100u16..600) {
            if let Ok(answer) = answer_from_body(status, "application/json", &body, &[]) {
                let _ = token_from_answer(answer, SystemTime::now());
            }
        }

        #[test]
        fn no_expires_in_panics(v in proptest::prelude::any::<f64>(), s in ".*") {
            let _ = seconds(&json!(v));
            let _ = seconds(&json!(s));
            let _ = token_from_answer(
                answer(200, json!({"access_token": "a", "expires_in": v})),
                SystemTime::now(),
            );
        }
    }
}
