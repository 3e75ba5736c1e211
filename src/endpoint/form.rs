//! The form of a provider request.

/// Form parameters of one request. Deliberately not `Debug`: values include secrets.
#[derive(Default, Clone)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub(crate) fn new() -> Self {
        Form::default()
    }

    pub(crate) fn grant_type(grant_type: &str) -> Self {
        Form::new().with("grant_type", grant_type)
    }

    pub(crate) fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.pairs.push((key.into(), value.into()));
        self
    }

    pub(crate) fn extend<'a>(
        mut self,
        pairs: impl IntoIterator<Item = &'a (String, String)>,
    ) -> Self {
        self.pairs.extend(pairs.into_iter().cloned());
        self
    }

    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            s.append_pair(k, v);
        }
        s.finish()
    }
}
