//! The tracing layer: one span per operation, with the lock's name (escaped), the outcome and
//! the duration, and never the token.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use common::{Fake, name, ttl};
use lock_core::layer::LockBackendExt;
use lock_core::layers::TracingLayer;
use lock_core::{LockBackend, Token};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

type Fields = BTreeMap<String, String>;

/// Every span (name and fields, in the order they closed) and every event's fields.
#[derive(Clone, Default)]
struct Capture {
    open: Arc<Mutex<BTreeMap<u64, (String, Fields)>>>,
    closed: Arc<Mutex<Vec<(String, Fields)>>>,
    events: Arc<Mutex<Vec<Fields>>>,
}

struct Collect<'a>(&'a mut Fields);

impl Visit for Collect<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut Collect(&mut fields));
        let name = attrs.metadata().name().to_owned();
        self.open
            .lock()
            .unwrap()
            .insert(id.into_u64(), (name, fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Collect(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut Collect(&mut fields));
        self.events.lock().unwrap().push(fields);
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(span);
        }
    }
}

#[tokio::test]
async fn one_span_per_operation_with_name_outcome_and_duration() {
    let capture = Capture::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let backend = Fake::new().layer(TracingLayer::new());
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let n = name("report\n\u{1b}[31m\"x\"");
    let _ = backend.try_acquire(&n, &a, ttl()).await.unwrap();
    let _ = backend.try_acquire_fenced(&n, &b, ttl()).await.unwrap();
    backend.renew(&n, &a, ttl()).await.unwrap();
    backend.status(&n).await.unwrap();
    let watch = backend.watch(&n).await.unwrap();
    let _ = backend.release(&n, &b).await.unwrap();
    let _ = backend.release(&n, &a).await.unwrap();
    let _ = backend.force_release(&n).await.unwrap();
    backend.renew(&name("broken"), &a, ttl()).await.unwrap_err();
    drop(watch);

    let closed = capture.closed.lock().unwrap().clone();
    let seen: Vec<(&str, &str)> = closed
        .iter()
        .map(|(span, fields)| (span.as_str(), fields["outcome"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("lock.acquire", "acquired"),
            ("lock.acquire", "held"),
            ("lock.renew", "renewed"),
            ("lock.status", "locked"),
            ("lock.watch", "watching"),
            ("lock.release", "not_owner"),
            ("lock.release", "released"),
            ("lock.force_release", "missing"),
            ("lock.renew", "error"),
        ]
    );
    for (span, fields) in &closed[..closed.len() - 1] {
        assert_eq!(
            fields["lock"], r#"report\n\u{1b}[31m\"x\""#,
            "{span}: {fields:?}"
        );
        let duration: f64 = fields["duration_ms"].parse().unwrap();
        assert!(duration >= 0.0, "{span}: {fields:?}");
        assert!(!fields.contains_key("error"), "{span}: {fields:?}");
    }
    assert_eq!(closed[0].1["fenced"], "false");
    assert_eq!(closed[1].1["fenced"], "true");
    assert_eq!(closed[0].1["ttl_ms"], "30000");
    let (_, failed) = &closed[closed.len() - 1];
    assert_eq!(failed["lock"], "broken");
    assert!(
        failed["error"].contains("the fake store is down"),
        "{failed:?}"
    );

    // One event per operation, and no token anywhere, whole or in part.
    let events = capture.events.lock().unwrap().clone();
    assert_eq!(events.len(), closed.len());
    let everything = format!("{closed:?}{events:?}");
    for token in [&a, &b] {
        assert!(!everything.contains(&token.as_str()[..8]), "{everything}");
    }
}

#[tokio::test]
async fn a_cancelled_operation_says_so() {
    let capture = Capture::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(capture.clone()));

    let backend = Fake::new().layer(TracingLayer::new());
    let slow = name("slow");
    let status = backend.status(&slow);
    tokio::time::timeout(std::time::Duration::from_millis(10), status)
        .await
        .unwrap_err();

    let closed = capture.closed.lock().unwrap().clone();
    assert_eq!(closed.len(), 1);
    let (span, fields) = &closed[0];
    assert_eq!(span, "lock.status");
    assert_eq!(fields["outcome"], "cancelled");
    assert!(fields.contains_key("duration_ms"));
    assert!(capture.events.lock().unwrap().is_empty());
}
