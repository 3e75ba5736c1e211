//! Reading a provider's answer: capped at 1 MiB, JSON or form-encoded whatever the content
//! type says, and a provider error in whatever shape it comes mapped to a typed error
//! (RFC 6749 §5.2 and the shapes real providers use).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::oauth_error::{OAuthError, clean};
use crate::provider_codes::DeadGrant;

/// Go's x/oauth2 caps token responses at 1 MiB too; no real token response comes close.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// A provider's answer: its status and its fields, from JSON or a form-encoded body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) fields: Map<String, Value>,
}

impl Answer {
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }
}

/// What a configuration adds to the built-in answer rules: its provider's codes for a dead
/// grant, and the `token_type` names it accepts as bearer tokens (a preset's and the user's).
#[derive(Debug, Clone, Default)]
pub(crate) struct AnswerRules {
    pub(crate) dead_grants: Arc<[DeadGrant]>,
    pub(crate) bearer_token_types: Arc<[String]>,
}

/// How much of a `Content-Type` an error shows: more than any real one, far less than a
/// hostile one.
const MAX_CONTENT_TYPE_SHOWN: usize = 64;

/// A provider endpoint that redirects (Django's 301 to the URL with a trailing slash, an
/// `http` URL sent on to `https`) is configured under the wrong URL: the redirect is not
/// followed, since credentials must not be sent on to wherever an answer points. Says where
/// it pointed, without query or fragment, so the fix is in the message.
fn redirected(resp: &reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let target = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|location| resp.url().join(location).ok())
        .map(|url| {
            let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
            format!(" to {}", crate::oauth_error::clean(&shown))
        })
        .unwrap_or_default();
    Error::config(format!(
        "the endpoint answered HTTP {status} with a redirect{target}, which is not followed: \
         configure the URL it names"
    ))
}

/// Reads at most [`MAX_RESPONSE_BYTES`] and parses the body. Never panics on what a
/// provider sends. `revoked` extends the table of codes that mean a dead grant.
pub(crate) async fn read_answer(
    resp: reqwest::Response,
    revoked: &[DeadGrant],
) -> Result<Answer, Error> {
    let answer = read_answer_inner(resp, revoked).await;
    match &answer {
        Ok(a) => tracing::debug!(status = a.status, "oauth response"),
        Err(e) => tracing::debug!(error = %e, "oauth request failed"),
    }
    answer
}

async fn read_answer_inner(
    resp: reqwest::Response,
    revoked: &[DeadGrant],
) -> Result<Answer, Error> {
    let raw = read_raw(resp).await?;
    answer_from_body(raw.status, &raw.content_type, &raw.body, revoked)
}

/// An answer's bytes, not yet read as a form or JSON: for answers that may be something else
/// (a UserInfo JWT).
pub(crate) struct RawAnswer {
    pub(crate) status: u16,
    /// Lowercase, parameters included.
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    /// The `WWW-Authenticate: Bearer` (or `DPoP`) challenge, if any.
    pub(crate) challenge: Option<crate::challenge::Challenge>,
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of the body, decoded (gzip, deflate, br) first, so
/// that the cap counts what is parsed. A redirect is an error: it is never followed.
pub(crate) async fn read_raw(mut resp: reqwest::Response) -> Result<RawAnswer, Error> {
    let status = resp.status().as_u16();
    if resp.status().is_redirection() {
        return Err(redirected(&resp));
    }
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(Error::malformed(status, "response body larger than 1 MiB"));
    }
    // Only shown in errors: the body decides how it is read. A form body labelled
    // `application/json` exists in the wild, as does JSON labelled `text/plain`.
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let challenge = crate::challenge::bearer_challenge(resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(Error::malformed(status, "response body larger than 1 MiB"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawAnswer {
        status,
        content_type,
        body,
        challenge,
    })
}

/// Everything after the bytes have arrived: the body's format, the provider's error in
/// whatever shape it comes, and the status. Separate from the I/O so it is unit-tested.
pub(crate) fn answer_from_body(
    status: u16,
    content_type: &str,
    body: &[u8],
    revoked: &[DeadGrant],
) -> Result<Answer, Error> {
    let success = (200..300).contains(&status);
    // RFC 7009 revocation answers 200 with an empty body; as a token response, an empty body
    // still fails later for lack of an `access_token`.
    if body.iter().all(u8::is_ascii_whitespace) && success {
        return Ok(Answer {
            status,
            fields: Map::new(),
        });
    }
    let fields = parse_fields(body).ok_or_else(|| {
        // The provider's header: cleaned and cut like every received value.
        let shown: String = clean(content_type.split(';').next().unwrap_or("").trim())
            .chars()
            .take(MAX_CONTENT_TYPE_SHOWN)
            .collect();
        let shown = if shown.is_empty() {
            "no content type".to_owned()
        } else {
            shown
        };
        Error::malformed(
            status,
            format!(
                "expected a JSON object or a form, got {} of {} bytes ({shown})",
                body_kind(body),
                body.len()
            ),
        )
    })?;
    if let Some(e) = provider_error(success, &fields) {
        // Some providers (GitHub, Slack) send errors with HTTP 200: the body decides.
        let interval = fields
            .get("interval")
            .and_then(seconds)
            .and_then(Result::ok);
        return Err(Error::from_oauth_with(
            e.with_status(Some(status)).with_interval(interval),
            revoked,
        ));
    }
    if !success {
        return Err(Error::malformed(
            status,
            "error status without an OAuth error code",
        ));
    }
    if says_failed(&fields) {
        return Err(Error::malformed(
            status,
            "the provider reported a failure without an error code",
        ));
    }
    Ok(Answer { status, fields })
}

/// What an unreadable body looks like, for the error message (never the body itself).
fn body_kind(body: &[u8]) -> &'static str {
    let start = body.trim_ascii_start();
    if start.first() == Some(&b'<') {
        "an HTML or XML page"
    } else if start
        .first()
        .is_some_and(|b| matches!(b, b'{' | b'[' | b'"'))
    {
        "invalid JSON or a JSON value that is not an object"
    } else if std::str::from_utf8(body).is_err() {
        "a binary body"
    } else {
        "a text body"
    }
}

/// Reads the body by what it is, whatever its `Content-Type` says: a JSON object, or a
/// form (`a=b&c=d`: GitHub without `Accept`, Facebook's legacy endpoint labelled
/// `text/plain`). Anything else, an HTML error page or plain text, is `None`.
pub(crate) fn parse_fields(body: &[u8]) -> Option<Map<String, Value>> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let trimmed = body.trim_ascii();
    match trimmed.first()? {
        b'{' => match serde_json::from_slice::<Value>(trimmed) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        },
        _ if is_form(trimmed) => Some(
            form_urlencoded::parse(trimmed)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        ),
        _ => None,
    }
}

/// `name=value` pairs joined by `&`, with parameter-like names: so that `Bad Gateway` or
/// `upstream connect error` are not read as a form with one empty field.
fn is_form(body: &[u8]) -> bool {
    let name_char =
        |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'[' | b']');
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .all(|pair| match pair.iter().position(|b| *b == b'=') {
            Some(eq) => {
                eq > 0
                    && pair
                        .get(..eq)
                        .is_some_and(|name| name.iter().all(name_char))
            }
            None => false,
        })
        && body.contains(&b'=')
}

/// A code sent as a string or a number, as text. Empty strings are no code.
fn code_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `keys` that holds a string or a number.
fn first_code(fields: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| code_of(fields.get(*k)))
}

fn first_text<'a>(fields: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| fields.get(*k).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}

/// `"ok": false` (Slack) or `"success": false` (Fitbit).
fn says_failed(fields: &Map<String, Value>) -> bool {
    ["ok", "success"]
        .iter()
        .any(|k| fields.get(*k) == Some(&Value::Bool(false)))
}

/// The provider's error, in every shape real providers send, read in this one place:
///
/// | shape | code | description | seen at |
/// |---|---|---|---|
/// | `error` string (RFC 6749 §5.2) | `error` | `error_description`, `message`, `reason` | most; Slack with `"ok": false`; Zoom with `reason` |
/// | `error` number | the number | `message`, `error_description` | Reddit (`{"error": 401, "message": ...}`) |
/// | `error` object | `code`, else `type` | `message` | Facebook Graph (`{"code": 190, "type": "OAuthException"}`), Microsoft Graph |
/// | `errcode` (not 0) | `errcode` | `errmsg` | WeChat, WeCom, DingTalk (with HTTP 200) |
/// | `errorCode` | `errorCode` | `errorSummary` | Okta's non-OAuth errors (`E0000047`) |
/// | `errors` array | first item's `errorType`, `error`, `code` or `type` | its `message`, else its `resource` and `field` | Fitbit, Strava |
/// | legacy `status` | `status` (string or number) | `message`, `reason` | HubSpot, Twitch |
/// | `error_type` | `error_type` | `error_message` | Instagram |
/// | `reason` alone | `reason` | - | |
///
/// `status`, `error_type` and `reason` are read as codes only when the answer failed (an
/// error status, or `"ok"`/`"success"` false), since a token response may carry them.
pub(crate) fn provider_error(success: bool, fields: &Map<String, Value>) -> Option<OAuthError> {
    let (code, description) = error_parts(success, fields);
    let code = code?;
    // A code that is also the only text (`reason` alone) is not repeated as description.
    let description = description.filter(|d| *d != code);
    Some(
        OAuthError::new(&code)
            .with_description(description.as_deref())
            .with_uri(first_text(fields, &["error_uri"])),
    )
}

/// The code and the description of a provider's error, by the table at [`provider_error`].
fn error_parts(success: bool, fields: &Map<String, Value>) -> (Option<String>, Option<String>) {
    let description_keys = ["error_description", "message", "error_message", "reason"];
    let owned = |text: Option<&str>| text.map(str::to_owned);
    if let Some(Value::Object(obj)) = fields.get("error") {
        return (
            first_code(obj, &["code", "type", "error"]),
            owned(first_text(
                obj,
                &["message", "error_description", "description"],
            )),
        );
    }
    if let Some(code) = code_of(fields.get("error")) {
        return (Some(code), owned(first_text(fields, &description_keys)));
    }
    // WeChat: `errcode` 0 is success ("ok"); any other is the error.
    if let Some(code) = code_of(fields.get("errcode")).filter(|c| c != "0") {
        return (Some(code), owned(first_text(fields, &["errmsg"])));
    }
    if let Some(code) = code_of(fields.get("errorCode")) {
        return (Some(code), owned(first_text(fields, &["errorSummary"])));
    }
    match fields
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        Some(Value::Object(item)) => {
            let described = first_text(item, &["message", "error_description", "detail"])
                .map(str::to_owned)
                .or_else(|| {
                    // Strava names what was wrong by resource and field instead.
                    let words: Vec<&str> = ["resource", "field"]
                        .iter()
                        .filter_map(|k| first_text(item, &[k]))
                        .collect();
                    (!words.is_empty()).then(|| words.join(" "))
                });
            (
                first_code(item, &["errorType", "error", "code", "type"]),
                described,
            )
        }
        _ if !success || says_failed(fields) => (
            first_code(fields, &["error_type", "status", "reason"]),
            owned(first_text(fields, &description_keys)),
        ),
        _ => (None, None),
    }
}

/// What a rate-limiting answer (429, or 503 with a delay) says, from its body: the
/// provider's error, or, for a body with words but no code (Discord's `{"message": ...}`), the
/// status as the code and the words as the description; with the `interval` a `slow_down`
/// names. `None` for a body that is no JSON object or form, or says nothing.
pub(crate) fn rate_limit_error(status: u16, fields: &Map<String, Value>) -> Option<OAuthError> {
    let interval = fields
        .get("interval")
        .and_then(seconds)
        .and_then(Result::ok);
    provider_error(false, fields)
        .or_else(|| {
            first_text(
                fields,
                &["message", "error_description", "errmsg", "detail"],
            )
            .map(|w| OAuthError::new(status.to_string()).with_description(Some(w)))
        })
        .map(|e| e.with_status(Some(status)).with_interval(interval))
}

/// A duration in seconds sent as a number or a numeric string (Microsoft v1, PayPal).
pub(crate) fn seconds(value: &Value) -> Option<Result<Duration, ()>> {
    let secs = match value {
        Value::Null => return None,
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    Some(match secs {
        Some(s) if s.is_finite() && s >= 0.0 => {
            Ok(Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX))
        }
        _ => Err(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `Answer` has no `Debug` (its fields hold tokens), so no `unwrap_err`.
    fn failed(r: Result<Answer, Error>) -> Error {
        match r {
            Err(e) => e,
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn form_bodies_parse() {
        let f = parse_fields(b"access_token=x&scope=repo%2Cgist&token_type=bearer").unwrap();
        assert_eq!(f["scope"], "repo,gist");
    }

    #[test]
    fn the_body_decides_not_the_content_type() {
        let form = b"access_token=x&token_type=bearer";
        let json = br#"{"access_token":"x"}"#;
        for ct in ["application/json", "text/plain", "text/html", ""] {
            let a = answer_from_body(200, ct, form, &[]).unwrap();
            assert_eq!(a.str("access_token"), Some("x"), "form labelled {ct}");
            let a = answer_from_body(200, ct, json, &[]).unwrap();
            assert_eq!(a.str("access_token"), Some("x"), "JSON labelled {ct}");
        }
        // A UTF-8 BOM and surrounding whitespace do not matter.
        assert!(parse_fields(b"\xef\xbb\xbf {\"a\": 1}\n").is_some());
        // Not a form: plain text, HTML labelled JSON, JSON that is not an object.
        for body in [
            &b"Bad Gateway"[..],
            b"upstream connect error or disconnect/reset before headers",
            b"<html><body>a=b</body></html>",
            b"[1, 2]",
            b"{\"access_token\": ",
            b"=x",
            b"&&",
        ] {
            assert!(
                parse_fields(body).is_none(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let e = failed(answer_from_body(
            502,
            "application/json",
            b"<html>502</html>",
            &[],
        ));
        assert!(
            e.to_string()
                .contains("an HTML or XML page of 16 bytes (application/json)"),
            "{e}"
        );
    }

    fn provider_error_of(status: u16, v: Value) -> Error {
        let body = serde_json::to_vec(&v).unwrap();
        match answer_from_body(status, "application/json", &body, &[]) {
            Err(e) => e,
            Ok(_) => panic!("{v} was read as a success"),
        }
    }

    #[track_caller]
    fn assert_oauth(e: &Error, code: &str, description: Option<&str>, status: u16) {
        let o = e
            .oauth_error()
            .unwrap_or_else(|| panic!("not an OAuth error: {e:?}"));
        assert_eq!(
            (o.error.as_str(), o.description.as_deref(), o.status),
            (code, description, Some(status))
        );
    }

    #[test]
    fn every_error_shape_keeps_the_providers_code_and_description() {
        // RFC 6749 with Zoom's `reason`.
        let e = provider_error_of(
            400,
            json!({"reason": "Invalid Token!", "error": "invalid_request"}),
        );
        assert_oauth(&e, "invalid_request", Some("Invalid Token!"), 400);
        // A number (Reddit).
        let e = provider_error_of(401, json!({"message": "Unauthorized", "error": 401}));
        assert_oauth(&e, "401", Some("Unauthorized"), 401);
        // An object (Facebook Graph): its `code` is the error; 190 is a dead grant.
        let e = provider_error_of(
            400,
            json!({"error": {"message": "Error validating access token: Session has expired.",
                             "type": "OAuthException", "code": 190, "error_subcode": 463}}),
        );
        assert!(e.is_revoked());
        assert_oauth(
            &e,
            "190",
            Some("Error validating access token: Session has expired."),
            400,
        );
        let e = provider_error_of(400, json!({"error": {"code": 190}}));
        assert_oauth(&e, "190", None, 400);
        // An `errors` array (Fitbit).
        let e = provider_error_of(
            400,
            json!({"errors": [{"errorType": "invalid_grant", "message": "Refresh token invalid: x."}],
                   "success": false}),
        );
        assert!(e.is_revoked());
        assert_oauth(&e, "invalid_grant", Some("Refresh token invalid: x."), 400);
        // Legacy `status` / `message`, as a string (HubSpot) and a number (Twitch).
        let e = provider_error_of(
            400,
            json!({"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"}),
        );
        assert!(e.is_revoked());
        assert_oauth(
            &e,
            "BAD_REFRESH_TOKEN",
            Some("missing or unknown refresh token"),
            400,
        );
        let e = provider_error_of(
            400,
            json!({"status": 400, "message": "Invalid refresh token"}),
        );
        assert_oauth(&e, "400", Some("Invalid refresh token"), 400);
        // Instagram's `error_type`, and `reason` alone.
        let e = provider_error_of(
            400,
            json!({"error_type": "OAuthException", "code": 400, "error_message": "Invalid refresh token"}),
        );
        assert_oauth(&e, "OAuthException", Some("Invalid refresh token"), 400);
        let e = provider_error_of(403, json!({"reason": "forbidden"}));
        assert_oauth(&e, "forbidden", None, 403);
        // 2xx with `"ok": false` (Slack), and control characters replaced by a space.
        let e = provider_error_of(200, json!({"ok": false, "error": "invalid_refresh_token"}));
        assert!(e.is_revoked());
        let e = provider_error_of(
            200,
            json!({"ok": false, "error": "bad\r\nthing", "message": "line one\nline two"}),
        );
        assert_oauth(&e, "bad  thing", Some("line one line two"), 200);
        let e = provider_error_of(200, json!({"ok": false}));
        assert!(
            matches!(e, Error::MalformedResponse { status: 200, .. }),
            "{e:?}"
        );
        // Form-encoded errors are read the same way.
        let e = failed(answer_from_body(200, "text/plain", b"error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.", &[]));
        assert!(e.is_revoked());
        assert_oauth(
            &e,
            "bad_refresh_token",
            Some("The refresh token passed is incorrect or expired."),
            200,
        );
    }

    #[test]
    fn a_presets_codes_extend_the_revoked_table() {
        let body = br#"{"error": "interaction_required"}"#;
        let plain = failed(answer_from_body(400, "application/json", body, &[]));
        assert!(matches!(plain, Error::OAuth(_)));
        let extended = failed(answer_from_body(
            400,
            "application/json",
            body,
            &["INTERACTION_REQUIRED".into()],
        ));
        assert!(extended.is_revoked());
    }

    proptest::proptest! {
        #[test]
        fn no_json_error_shape_panics(v in proptest::arbitrary::any::<(Option<i64>, Option<String>, bool)>(),
                                      status in 100u16..600) {
            let (n, s, flag) = v;
            for body in [
                json!({"error": n, "message": s, "ok": flag}),
                json!({"error": {"type": s, "code": n}}),
                json!({"errors": [{"errorType": s, "code": n}], "success": flag}),
                json!({"status": n, "reason": s, "access_token": s}),
            ] {
                let bytes = serde_json::to_vec(&body).unwrap();
                let _ = answer_from_body(status, "", &bytes, &[]);
            }
        }
    }
}
