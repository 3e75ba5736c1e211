//! A `tracing` layer that records every span: its name, target, parent and fields (given at
//! creation and recorded later), as text. For tests/observability.rs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One span as recorded.
#[derive(Debug, Clone, Default)]
pub struct SpanRecord {
    pub name: &'static str,
    pub target: &'static str,
    /// The parent's name and its index in the list.
    pub parent: Option<&'static str>,
    pub parent_index: Option<usize>,
    pub fields: BTreeMap<String, String>,
    /// Returned by [`Spans::take`] already.
    pub taken: bool,
}

impl SpanRecord {
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Records every span with the fields given when it was made and recorded later.
#[derive(Clone, Default)]
pub struct Spans(pub Arc<Mutex<Vec<SpanRecord>>>);

/// Where a span's record is in the list.
struct Index(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("the span exists");
        let parent = span.parent();
        let mut record = SpanRecord {
            name: attrs.metadata().name(),
            target: attrs.metadata().target(),
            parent: parent.as_ref().map(|p| p.name()),
            parent_index: parent
                .as_ref()
                .and_then(|p| p.extensions().get::<Index>().map(|i| i.0)),
            ..SpanRecord::default()
        };
        attrs.record(&mut Fields(&mut record.fields));
        let mut spans = self.0.lock().unwrap();
        span.extensions_mut().insert(Index(spans.len()));
        spans.push(record);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).expect("the span exists");
        let extensions = span.extensions();
        let Some(Index(i)) = extensions.get::<Index>() else {
            return;
        };
        values.record(&mut Fields(&mut self.0.lock().unwrap()[*i].fields));
    }
}

impl Spans {
    /// Every span recorded so far.
    pub fn all(&self) -> Vec<SpanRecord> {
        self.0.lock().unwrap().clone()
    }

    pub fn named(&self, name: &str) -> Vec<SpanRecord> {
        let spans = self.0.lock().unwrap();
        spans.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// The spans of this name made since the last call, oldest first.
    pub fn take(&self, name: &str) -> Vec<SpanRecord> {
        let mut spans = self.0.lock().unwrap();
        let new = spans.iter_mut().filter(|s| s.name == name && !s.taken);
        new.map(|s| {
            s.taken = true;
            s.clone()
        })
        .collect()
    }

    /// Every recorded field value, for secrets checks.
    pub fn values(&self) -> Vec<String> {
        let spans = self.0.lock().unwrap();
        spans
            .iter()
            .flat_map(|s| s.fields.values().cloned())
            .collect()
    }
}

/// Records the spans of this thread until the guard is dropped.
pub fn capture() -> (Spans, tracing::subscriber::DefaultGuard) {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    (spans, tracing::subscriber::set_default(subscriber))
}
