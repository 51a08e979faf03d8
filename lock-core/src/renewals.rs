//! When guards start renewing: a guard's renewal task is spawned only once its first renewal
//! is due, so that a lock held for less than that (most critical sections are short) costs
//! neither a task nor a timer of its own.
//!
//! One scheduler task per tokio runtime keeps the due times in a heap and sleeps until the
//! earliest. Scheduling a later time than the one it sleeps until touches nothing but the heap
//! (a mutex, no wake-up), which is what makes a short hold cheap: spawning and aborting a task
//! per hold was measured at a fifth of an uncontended lock-and-release cycle's rate (redis-rs,
//! one task, Redis on loopback). Entries of guards dropped before their time stay in the heap
//! until then, or until a sweep drops them (the heap is swept when it has doubled since the
//! last sweep), so it holds at most about twice the live guards plus the last sweep's floor.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use tokio::runtime::{Handle, Id};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Something that starts work at a due time: a guard whose first renewal is due.
pub(crate) trait Due: Send + Sync + 'static {
    /// Called once, at or after the time it was scheduled for, if it is still alive.
    fn due(self: Arc<Self>, at: Instant);
}

/// Calls `due.due(at)` at `at`, on the current runtime, unless every `Arc` of it was dropped
/// by then.
///
/// # Panics
///
/// Outside a tokio runtime, as `tokio::spawn` does.
pub(crate) fn schedule(due: Weak<dyn Due>, at: Instant) {
    let handle = Handle::current();
    let id = handle.id();
    // The thread's last scheduler, while its task runs: no global lock on the common path.
    let cached = LAST.with_borrow(|last| {
        last.as_ref()
            .filter(|(of, scheduler)| *of == id && scheduler.running())
            .map(|(_, scheduler)| scheduler.clone())
    });
    let scheduler = cached.unwrap_or_else(|| {
        let scheduler = SCHEDULERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| {
                let scheduler = Arc::new(Scheduler::default());
                handle.spawn(run(scheduler.clone(), id));
                scheduler
            })
            .clone();
        LAST.with_borrow_mut(|last| *last = Some((id, scheduler.clone())));
        scheduler
    });
    scheduler.add(Entry { at, due });
}

thread_local! {
    /// The scheduler this thread last used, and its runtime.
    static LAST: std::cell::RefCell<Option<(Id, Arc<Scheduler>)>> = const { std::cell::RefCell::new(None) };
}

/// The scheduler of each runtime that has one.
static SCHEDULERS: LazyLock<Mutex<HashMap<Id, Arc<Scheduler>>>> = LazyLock::new(Default::default);

#[derive(Default)]
struct Scheduler {
    state: Mutex<State>,
    wake: Notify,
    /// Set when its task ends (its runtime shut down): a cached handle to it is stale.
    stopped: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct State {
    heap: BinaryHeap<Reverse<Entry>>,
    /// What the scheduler task sleeps until (`None`: until it is woken).
    sleeps_until: Option<Instant>,
    /// The heap's size after the last sweep of dropped entries.
    swept: usize,
}

struct Entry {
    at: Instant,
    due: Weak<dyn Due>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

impl Scheduler {
    fn running(&self) -> bool {
        !self.stopped.load(std::sync::atomic::Ordering::Acquire)
    }

    fn add(&self, entry: Entry) {
        let at = entry.at;
        let wake = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.heap.len() >= 2 * state.swept.max(32) {
                state.heap.retain(|Reverse(e)| e.due.strong_count() > 0);
                state.swept = state.heap.len();
            }
            state.heap.push(Reverse(entry));
            let earlier = state.sleeps_until.is_none_or(|t| at < t);
            if earlier {
                state.sleeps_until = Some(at);
            }
            earlier
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// Takes the entries due by `now`; returns them and the next due time.
    fn take_due(&self, now: Instant) -> (Vec<Entry>, Option<Instant>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due = Vec::new();
        while state.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(entry)) = state.heap.pop() {
                due.push(entry);
            }
        }
        let next = state.heap.peek().map(|Reverse(e)| e.at);
        state.sleeps_until = next;
        (due, next)
    }
}

/// The scheduler task of runtime `id`: forgotten when the runtime drops it (at shutdown).
async fn run(scheduler: Arc<Scheduler>, id: Id) {
    struct Forget(Id, Arc<Scheduler>);
    impl Drop for Forget {
        fn drop(&mut self) {
            self.1
                .stopped
                .store(true, std::sync::atomic::Ordering::Release);
            SCHEDULERS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.0);
        }
    }
    let _forget = Forget(id, scheduler.clone());
    loop {
        let (due, next) = scheduler.take_due(Instant::now());
        for entry in due {
            if let Some(due) = entry.due.upgrade() {
                due.due(entry.at);
            }
        }
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = scheduler.wake.notified() => {}
                }
            }
            None => scheduler.wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::time::Duration;

    use super::*;

    struct Counter(AtomicUsize);

    impl Due for Counter {
        fn due(self: Arc<Self>, _at: Instant) {
            self.0.fetch_add(1, AtomicOrdering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_at_the_time_and_only_the_living() {
        let kept = Arc::new(Counter(AtomicUsize::new(0)));
        let dropped = Arc::new(Counter(AtomicUsize::new(0)));
        let at = Instant::now() + Duration::from_secs(10);
        let weak_kept: Weak<dyn Due> = Arc::downgrade(&kept) as Weak<dyn Due>;
        schedule(weak_kept, at);
        let weak_dropped: Weak<dyn Due> = Arc::downgrade(&dropped) as Weak<dyn Due>;
        schedule(weak_dropped, at);
        let witness = Arc::downgrade(&dropped);
        drop(dropped);
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(kept.0.load(AtomicOrdering::SeqCst), 0, "not due yet");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(kept.0.load(AtomicOrdering::SeqCst), 1, "due");
        assert!(witness.upgrade().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_time_wakes_the_scheduler() {
        let late = Arc::new(Counter(AtomicUsize::new(0)));
        let early = Arc::new(Counter(AtomicUsize::new(0)));
        let now = Instant::now();
        schedule(
            Arc::downgrade(&late) as Weak<dyn Due>,
            now + Duration::from_secs(60),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
        schedule(
            Arc::downgrade(&early) as Weak<dyn Due>,
            now + Duration::from_secs(1),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(early.0.load(AtomicOrdering::SeqCst), 1);
        assert_eq!(late.0.load(AtomicOrdering::SeqCst), 0);
    }

    #[tokio::test]
    async fn dropped_entries_are_swept() {
        let at = Instant::now() + Duration::from_secs(3600);
        for _ in 0..10_000 {
            let gone = Arc::new(Counter(AtomicUsize::new(0)));
            schedule(Arc::downgrade(&gone) as Weak<dyn Due>, at);
        }
        let scheduler = SCHEDULERS
            .lock()
            .unwrap()
            .get(&Handle::current().id())
            .cloned()
            .unwrap();
        let len = scheduler.state.lock().unwrap().heap.len();
        assert!(len <= 64, "{len} entries kept for 0 living guards");
    }
}
