//! The standard claims of OpenID Connect Core §5.1, read the same way from an ID token
//! ([`IdTokenClaims`](crate::IdTokenClaims)) and a UserInfo answer
//! ([`UserInfo`](crate::UserInfo)): one set of typed getters over the claims' JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

/// A postal address (OpenID Connect Core §5.1.1), the `address` claim. Every member is
/// optional; members of the wrong type are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Address {
    /// The full address, formatted for display (may contain line breaks).
    pub formatted: Option<String>,
    /// House number, street name, P.O. box (may contain line breaks).
    pub street_address: Option<String>,
    /// City or locality.
    pub locality: Option<String>,
    /// State, province, prefecture or region.
    pub region: Option<String>,
    /// Zip or postal code.
    pub postal_code: Option<String>,
    /// Country name.
    pub country: Option<String>,
}

pub(crate) fn string<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A boolean claim. AWS Cognito sends `email_verified` as the string `"true"`: read too.
pub(crate) fn boolean(claims: &Map<String, Value>, name: &str) -> Option<bool> {
    match claims.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

pub(crate) fn address(claims: &Map<String, Value>) -> Option<Address> {
    let Value::Object(a) = claims.get("address")? else {
        return None;
    };
    let member = |name: &str| string(a, name).map(str::to_owned);
    Some(Address {
        formatted: member("formatted"),
        street_address: member("street_address"),
        locality: member("locality"),
        region: member("region"),
        postal_code: member("postal_code"),
        country: member("country"),
    })
}

/// `updated_at`: seconds since the epoch. Negative, fractional or absurd values are no time.
pub(crate) fn time(claims: &Map<String, Value>, name: &str) -> Option<SystemTime> {
    let secs = claims.get(name)?.as_u64()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The getters of OpenID Connect Core §5.1 for a type with a `claims: Map<String, Value>`
/// field. A claim that is missing or of the wrong type is `None`.
macro_rules! standard_claims {
    () => {
        $crate::claims::standard_claims!(@str
            name "`name`: the full name, for display.",
            given_name "`given_name`: given or first name(s).",
            family_name "`family_name`: surname or last name(s).",
            middle_name "`middle_name`: middle name(s).",
            nickname "`nickname`: a casual name.",
            preferred_username "`preferred_username`: the name the user wants to be called by. Not unique and not stable: never a key (use the subject).",
            profile "`profile`: the URL of the user's profile page.",
            picture "`picture`: the URL of the user's picture.",
            website "`website`: the URL of the user's web page or blog.",
            email "`email`: the preferred e-mail address. Not unique and not stable: never a key (use the subject); check the verified flag before trusting it.",
            gender "`gender`: `female`, `male`, or another value.",
            birthdate "`birthdate`: `YYYY-MM-DD`, or `YYYY` (year only), or `0000-MM-DD` (year withheld).",
            zoneinfo "`zoneinfo`: the time zone, as an IANA database name (`Europe/Paris`).",
            locale "`locale`: a BCP 47 language tag (`en-US`).",
            phone_number "`phone_number`: the preferred telephone number (E.164 recommended).",
        );

        /// `email_verified`: whether the provider verified the e-mail address. A string
        /// `"true"` / `"false"` (AWS Cognito) reads as the boolean.
        pub fn email_verified(&self) -> Option<bool> {
            $crate::claims::boolean(&self.claims, "email_verified")
        }

        /// `phone_number_verified`: whether the provider verified the telephone number.
        pub fn phone_number_verified(&self) -> Option<bool> {
            $crate::claims::boolean(&self.claims, "phone_number_verified")
        }

        /// `address`: the preferred postal address.
        pub fn address(&self) -> Option<$crate::claims::Address> {
            $crate::claims::address(&self.claims)
        }

        /// `updated_at`: when the user's information was last updated.
        pub fn updated_at(&self) -> Option<std::time::SystemTime> {
            $crate::claims::time(&self.claims, "updated_at")
        }

        /// One claim by name, as JSON (for claims beyond the standard ones).
        pub fn get(&self, claim: &str) -> Option<&serde_json::Value> {
            self.claims.get(claim)
        }

        /// Every claim, as JSON.
        pub fn claims(&self) -> &serde_json::Map<String, serde_json::Value> {
            &self.claims
        }
    };
    (@str $($name:ident $doc:literal,)*) => {
        $(
            #[doc = $doc]
            pub fn $name(&self) -> Option<&str> {
                $crate::claims::string(&self.claims, stringify!($name))
            }
        )*
    };
}
pub(crate) use standard_claims;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_of_the_wrong_type_are_none() {
        let c = json!({
            "email_verified": "TRUE",
            "phone_number_verified": 1,
            "address": {"locality": "Paris", "country": 33},
            "updated_at": -5,
        });
        let c = c.as_object().unwrap();
        assert_eq!(boolean(c, "email_verified"), Some(true));
        assert_eq!(boolean(c, "phone_number_verified"), None);
        let a = address(c).unwrap();
        assert_eq!(a.locality.as_deref(), Some("Paris"));
        assert_eq!(a.country, None);
        assert_eq!(time(c, "updated_at"), None);
    }
}
