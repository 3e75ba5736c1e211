//! Rich authorization requests (RFC 9396): one entry of `authorization_details`, what a client
//! asks for beyond scopes (a payment of a certain amount, read access to one account) and what
//! the provider says it granted. On the ground floor: tokens carry the granted ones.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

/// One entry of `authorization_details` (RFC 9396 §2): its `type`, the common fields of
/// §2.2 (`locations`, `actions`, `datatypes`, `identifier`, `privileges`), and any fields its
/// type defines.
///
/// Ask for them with
/// [`AuthorizationCodeBuilder::authorization_details`](crate::AuthorizationCodeBuilder::authorization_details)
/// (sent on the authorization request, pushed with PAR, or signed into a request object),
/// [`ClientCredentialsBuilder::authorization_details`](crate::ClientCredentialsBuilder::authorization_details)
/// and [`RefreshTokenSourceBuilder::authorization_details`](crate::RefreshTokenSourceBuilder::authorization_details);
/// read what was granted with [`Token::authorization_details`](crate::Token::authorization_details).
///
/// Your own types go in and out through serde: [`from_typed`](Self::from_typed) and
/// [`to_typed`](Self::to_typed).
///
/// ```
/// use authed::AuthorizationDetail;
/// use serde_json::json;
///
/// let payment = AuthorizationDetail::new("payment_initiation")
///     .with_actions(["initiate", "status"])
///     .with_locations(["https://bank.example.com/payments"])
///     .with_field("instructedAmount", json!({"currency": "EUR", "amount": "123.50"}));
/// assert_eq!(payment.detail_type(), "payment_initiation");
/// assert_eq!(payment.get("instructedAmount").unwrap()["currency"], "EUR");
///
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "camelCase")]
/// struct Payment { instructed_amount: serde_json::Value }
/// let typed: Payment = payment.to_typed().unwrap();
/// assert_eq!(typed.instructed_amount["amount"], "123.50");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationDetail {
    #[serde(rename = "type")]
    detail_type: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    locations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    datatypes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    privileges: Vec<String>,
    /// The fields the type defines.
    #[serde(flatten)]
    fields: Map<String, Value>,
}

/// The common fields of RFC 9396 §2.2, which [`AuthorizationDetail::with_field`] leaves to
/// their own setters.
const COMMON: [&str; 6] = [
    "type",
    "locations",
    "actions",
    "datatypes",
    "identifier",
    "privileges",
];

impl AuthorizationDetail {
    /// An entry of type `detail_type` (its `type` field), with no other field yet.
    pub fn new(detail_type: impl Into<String>) -> Self {
        AuthorizationDetail {
            detail_type: detail_type.into(),
            locations: Vec::new(),
            actions: Vec::new(),
            datatypes: Vec::new(),
            identifier: None,
            privileges: Vec::new(),
            fields: Map::new(),
        }
    }

    /// An entry from your own type, which serializes to a JSON object with a string `type`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `value` does not serialize to such an object.
    pub fn from_typed(value: &impl Serialize) -> Result<Self, Error> {
        let json = serde_json::to_value(value)
            .map_err(|e| Error::config(format!("authorization detail: {e}")))?;
        Self::from_json(json).ok_or_else(|| {
            Error::config(
                "an authorization detail is a JSON object with a string type (RFC 9396 §2)",
            )
        })
    }

    /// This entry as your own type.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the entry does not deserialize into `T`.
    pub fn to_typed<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let json = serde_json::to_value(self)
            .map_err(|e| Error::config(format!("authorization detail: {e}")))?;
        serde_json::from_value(json)
            .map_err(|e| Error::config(format!("authorization detail of unexpected shape: {e}")))
    }

    /// The entry's `type`.
    pub fn detail_type(&self) -> &str {
        &self.detail_type
    }

    /// `locations`: where the resources are (URIs of resource servers).
    pub fn locations(&self) -> &[String] {
        &self.locations
    }

    /// `actions`: what may be done with them.
    pub fn actions(&self) -> &[String] {
        &self.actions
    }

    /// `datatypes`: which kinds of data may be read.
    pub fn datatypes(&self) -> &[String] {
        &self.datatypes
    }

    /// `identifier`: the one resource meant.
    pub fn identifier(&self) -> Option<&str> {
        self.identifier.as_deref()
    }

    /// `privileges`: the level of access.
    pub fn privileges(&self) -> &[String] {
        &self.privileges
    }

    /// A field the type defines, by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// Every field the type defines (not the common ones).
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Sets `locations`.
    pub fn with_locations<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.locations = v.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `actions`.
    pub fn with_actions<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.actions = v.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `datatypes`.
    pub fn with_datatypes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.datatypes = v.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `identifier`.
    pub fn with_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.identifier = Some(identifier.into());
        self
    }

    /// Sets `privileges`.
    pub fn with_privileges<I: IntoIterator<Item = S>, S: Into<String>>(mut self, v: I) -> Self {
        self.privileges = v.into_iter().map(Into::into).collect();
        self
    }

    /// Sets a field the type defines. The common fields have their own setters: a `name`
    /// among them is ignored, so that it cannot be set twice.
    pub fn with_field(mut self, name: impl Into<String>, value: Value) -> Self {
        let name = name.into();
        if !COMMON.contains(&name.as_str()) {
            self.fields.insert(name, value);
        }
        self
    }

    /// An entry from JSON: an object whose `type` is a non-empty string, and whose common
    /// fields have their RFC 9396 §2.2 shapes.
    fn from_json(json: Value) -> Option<Self> {
        let detail: AuthorizationDetail = serde_json::from_value(json).ok()?;
        (!detail.detail_type.is_empty()).then_some(detail)
    }
}

/// The `authorization_details` form parameter: the entries as a JSON array.
pub(crate) fn to_param(details: &[AuthorizationDetail]) -> String {
    // A Vec of plain data with string keys always serializes.
    serde_json::to_string(details).unwrap_or_else(|_| "[]".to_owned())
}

/// The entries of an `authorization_details` value from a provider: `None` unless it is an
/// array of well-formed entries.
pub(crate) fn from_value(value: &Value) -> Option<Vec<AuthorizationDetail>> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|item| AuthorizationDetail::from_json(item.clone()))
            .collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_with_common_and_type_fields() {
        let d = AuthorizationDetail::new("account_information")
            .with_actions(["read"])
            .with_identifier("acc-1")
            .with_field("type", json!("forged"))
            .with_field("limit", json!(5));
        let param = to_param(std::slice::from_ref(&d));
        let back = from_value(&serde_json::from_str(&param).unwrap()).unwrap();
        assert_eq!(back, vec![d]);
        assert_eq!(back[0].detail_type(), "account_information");
        assert!(!param.contains("forged"));
        assert!(
            !param.contains("locations"),
            "empty fields are left out: {param}"
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            json!({"type": 1}),
            json!([{"type": ""}]),
            json!([{"actions": ["read"]}]),
            json!([{"type": "t", "actions": "read"}]),
            json!("payment"),
        ] {
            assert_eq!(from_value(&bad), None, "{bad}");
        }
        assert_eq!(from_value(&json!([])), Some(vec![]));
    }
}
