//! The metrics layer records the documented metrics, with bounded labels unless per-name labels
//! are asked for.
#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Fake, name, ttl};
use lock_core::layer::LockBackendExt;
use lock_core::layers::{MetricsLayer, names};
use lock_core::{LockBackend, Token};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// Counters and histograms by name and sorted labels: `name{a=x,b=y}`.
#[derive(Default)]
struct TestRecorder {
    counters: Mutex<BTreeMap<String, Arc<Count>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    gauges: Mutex<BTreeMap<String, Arc<Level>>>,
}

#[derive(Default)]
struct Level(Mutex<f64>);

impl metrics::GaugeFn for Level {
    fn increment(&self, value: f64) {
        *self.0.lock().unwrap() += value;
    }

    fn decrement(&self, value: f64) {
        *self.0.lock().unwrap() -= value;
    }

    fn set(&self, value: f64) {
        *self.0.lock().unwrap() = value;
    }
}

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn series(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let count = self
            .counters
            .lock()
            .unwrap()
            .entry(series(key))
            .or_default()
            .clone();
        Counter::from_arc(count)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let level = self
            .gauges
            .lock()
            .unwrap()
            .entry(series(key))
            .or_default()
            .clone();
        Gauge::from_arc(level)
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let samples = self
            .histograms
            .lock()
            .unwrap()
            .entry(series(key))
            .or_default()
            .clone();
        Histogram::from_arc(samples)
    }
}

impl TestRecorder {
    fn counters(&self) -> BTreeMap<String, u64> {
        self.counters
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.load(Ordering::Relaxed)))
            .collect()
    }

    fn gauge(&self, series: &str) -> f64 {
        self.gauges
            .lock()
            .unwrap()
            .get(series)
            .map_or(0.0, |level| *level.0.lock().unwrap())
    }

    fn histogram_counts(&self) -> BTreeMap<String, usize> {
        self.histograms
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.0.lock().unwrap().len()))
            .collect()
    }
}

/// The same operations for both tests: two acquired, two contended, one failed acquire, one
/// renewed and two failed renewals, and releases of each outcome.
async fn exercise(backend: &dyn LockBackend) {
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let (jobs, report, broken) = (name("jobs"), name("report"), name("broken"));
    let _ = backend.try_acquire(&jobs, &a, ttl()).await.unwrap();
    let _ = backend
        .try_acquire_fenced(&report, &a, ttl())
        .await
        .unwrap();
    let _ = backend.try_acquire(&jobs, &b, ttl()).await.unwrap();
    let _ = backend.try_acquire(&report, &b, ttl()).await.unwrap();
    backend.try_acquire(&broken, &a, ttl()).await.unwrap_err();
    assert!(backend.renew(&jobs, &a, ttl()).await.unwrap());
    assert!(!backend.renew(&jobs, &b, ttl()).await.unwrap());
    backend.renew(&broken, &a, ttl()).await.unwrap_err();
    let _ = backend.release(&jobs, &b).await.unwrap();
    let _ = backend.release(&jobs, &a).await.unwrap();
    let _ = backend.release(&jobs, &a).await.unwrap();
    let _ = backend.force_release(&report).await.unwrap();
    backend.status(&jobs).await.unwrap();
}

fn map<V: Copy>(entries: &[(&str, V)]) -> BTreeMap<String, V> {
    entries.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
}

#[tokio::test]
async fn records_outcomes_without_names_by_default() {
    let recorder = TestRecorder::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    let backend = Fake::new().layer(MetricsLayer::new());
    exercise(&backend).await;

    assert_eq!(
        names::ACQUIRE_CONTENDED,
        "process_lock_acquire_contended_total"
    );
    assert_eq!(
        recorder.counters(),
        map(&[
            ("process_lock_acquire_contended_total{}", 2),
            (
                "process_lock_releases_total{forced=false,outcome=missing}",
                1
            ),
            (
                "process_lock_releases_total{forced=false,outcome=not_owner}",
                1
            ),
            (
                "process_lock_releases_total{forced=false,outcome=released}",
                1
            ),
            (
                "process_lock_releases_total{forced=true,outcome=released}",
                1
            ),
            ("process_lock_renewal_failures_total{reason=error}", 1),
            ("process_lock_renewal_failures_total{reason=not_held}", 1),
        ])
    );
    assert_eq!(
        recorder.histogram_counts(),
        map(&[
            ("process_lock_acquire_duration_seconds{outcome=acquired}", 2),
            ("process_lock_acquire_duration_seconds{outcome=error}", 1),
            ("process_lock_acquire_duration_seconds{outcome=held}", 2),
        ])
    );
}

#[tokio::test]
async fn per_name_labels_are_opt_in() {
    let recorder = TestRecorder::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    let backend = Fake::new().layer(MetricsLayer::new().with_name_labels(true));
    exercise(&backend).await;

    let counters = recorder.counters();
    assert_eq!(
        counters["process_lock_acquire_contended_total{lock=jobs}"],
        1
    );
    assert_eq!(
        counters["process_lock_acquire_contended_total{lock=report}"],
        1
    );
    assert_eq!(
        counters["process_lock_renewal_failures_total{lock=broken,reason=error}"],
        1
    );
    assert_eq!(
        recorder.histogram_counts()["process_lock_acquire_duration_seconds{lock=jobs,outcome=acquired}"],
        1
    );
}

#[tokio::test]
async fn a_guard_counts_the_lock_it_lost() {
    let recorder = TestRecorder::default();
    let _local = metrics::set_default_local_recorder(&recorder);
    let backend = Arc::new(Fake::new().layer(MetricsLayer::new()));
    let lock = lock_core::Lock::new(backend.clone(), "jobs", Duration::from_millis(300)).unwrap();
    // Released and dropped guards gave their locks up: not losses.
    let _ = lock.lock().await.unwrap().release().await.unwrap();
    drop(lock.lock().await.unwrap());
    let guard = lock.lock().await.unwrap();
    let _ = backend.force_release(&name("jobs")).await.unwrap();
    let lost = guard.lost().await;
    assert_eq!(lost.reason(), lock_core::LostReason::NotOwner);

    let counters = recorder.counters();
    assert_eq!(
        counters["process_lock_locks_lost_total{reason=not_owner}"],
        1
    );
    assert_eq!(
        counters["process_lock_renewal_failures_total{reason=not_held}"],
        1
    );
}

/// What no backend call can see is recorded by the lock and its guards, without a layer: how
/// long each wait took and how it ended, the waiters now waiting, hold durations and the
/// hand-over latency of a wait that was woken by a release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_records_waits_waiters_holds_and_handovers() {
    let recorder = Arc::new(TestRecorder::default());
    // A multi-threaded runtime: the recorder must be global to see the spawned tasks' records.
    // This test binary installs no other global recorder.
    metrics::set_global_recorder(RecorderRef(recorder.clone())).unwrap();
    let backend: Arc<dyn LockBackend> = Arc::new(Fake::new());
    let lock = lock_core::Lock::new(backend, "jobs", Duration::from_secs(30)).unwrap();

    let held = lock.lock().await.unwrap();
    let waiter = lock.clone();
    let waiting = tokio::spawn(async move { waiter.lock().await });
    let timing_out = lock.lock_timeout(Duration::from_millis(100));
    assert!(timing_out.await.unwrap().is_none());
    // The spawned waiter is still waiting: the gauge counts it.
    while recorder.gauge("process_lock_waiters{}") < 1.0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(recorder.gauge("process_lock_waiters{}"), 1.0);
    let _ = held.release().await.unwrap();
    let second = waiting.await.unwrap().unwrap();
    drop(second);

    let histograms = recorder.histogram_counts();
    assert_eq!(
        histograms.get("process_lock_wait_duration_seconds{outcome=acquired}"),
        Some(&2)
    );
    assert_eq!(
        histograms.get("process_lock_wait_duration_seconds{outcome=timeout}"),
        Some(&1)
    );
    assert_eq!(
        histograms.get("process_lock_handover_seconds{}"),
        Some(&1),
        "{histograms:?}"
    );
    // The released guard's hold is recorded at once; the dropped one's as it is dropped.
    assert!(histograms.get("process_lock_hold_duration_seconds{}") >= Some(&1));
    assert_eq!(
        recorder.gauge("process_lock_waiters{}"),
        0.0,
        "every waiter is done"
    );
    assert_eq!(names::WAITERS, "process_lock_waiters");
}

/// A recorder shared with the test that reads it.
struct RecorderRef(Arc<TestRecorder>);

impl Recorder for RecorderRef {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, metadata)
    }
}
