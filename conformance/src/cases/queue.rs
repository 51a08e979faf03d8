//! The waiter queue ([`Capabilities::queue`](lock_core::Capabilities::queue)): waiters are
//! served in the order they queued, a release hands the lock to the first of them with the next
//! fence, a waiter that leaves or dies never blocks the others for longer than its claim, and a
//! try-once never takes the lock ahead of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lock_core::queue::{Leave, QueueStep, QueueTiming, Waiter};
use lock_core::{LockBackend, LockGuard, LockName, Release, Token, Ttl};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Fixture;

/// Long enough that no lock or place in these cases runs out unless the case lets it.
const LONG: Duration = Duration::from_secs(30);
/// How long a hand-over may take on a loaded machine.
const WAKE: Duration = Duration::from_secs(2);

/// A waiter the case drives by hand, through the backend's queue calls: it steps when the case
/// says so, and is dead otherwise. Its place lasts `lease`, a lock handed to it `claim`.
pub(crate) fn puppet(lease: Duration, claim: Duration) -> Waiter {
    let ttl = Ttl::new(LONG).unwrap();
    let mut timing = QueueTiming::for_ttl(ttl);
    timing.lease = lease;
    timing.claim = claim;
    Waiter::new(Token::generate().unwrap(), ttl, timing)
}

/// How many waiters queue for `name` (held by someone): a probe joins the queue, reads its
/// place, and leaves.
pub(crate) async fn queued(backend: &Arc<dyn LockBackend>, name: &LockName) -> u64 {
    let probe = puppet(LONG, LONG);
    let place = match backend.queue_step(name, &probe).await.unwrap() {
        QueueStep::Queued { position, .. } => position,
        QueueStep::Acquired { .. } => panic!("the probe took a lock the case holds"),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        backend.leave_queue(name, &probe, false).await.unwrap(),
        Leave::Left
    );
    place
}

/// Waits until `n` waiters queue for `name`.
pub(crate) async fn until_queued(backend: &Arc<dyn LockBackend>, name: &LockName, n: u64) {
    let deadline = Instant::now() + WAKE;
    loop {
        let now = queued(backend, name).await;
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} waiters queue, not {n}, after {WAKE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Who took the lock, in order, with the fence each got.
type Turns = Arc<Mutex<Vec<(usize, Option<u64>)>>>;

/// A task waiting for the lock, which records its turn and fence, then releases.
fn take_turn(lock: lock_core::Lock, id: usize, turns: Turns) -> JoinHandle<()> {
    tokio::spawn(async move {
        let guard = lock.lock().await.unwrap();
        turns.lock().unwrap().push((id, guard.fence()));
        assert_eq!(guard.release().await.unwrap(), Release::Released);
    })
}

/// Waiters are served in the order they queued: four waiters queue one after another behind a
/// holder; its release hands the lock to the first, whose release hands it to the second, and
/// so on. Fences strictly increase along the hand-offs.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_serves_waiters_in_arrival_order(&fixture).await;
/// # }
/// ```
pub async fn queue_serves_waiters_in_arrival_order(fx: &Fixture) {
    let name = fx.unique_name("queue-order");
    let lock_name = LockName::new(&name).unwrap();
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let turns = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for id in 0..4 {
        tasks.push(take_turn(fx.guarded(&name, LONG), id, turns.clone()));
        until_queued(fx.backend(), &lock_name, id as u64 + 1).await;
    }
    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
    for task in tasks {
        tokio::time::timeout(WAKE * 4, task)
            .await
            .expect("every waiter is served in turn")
            .unwrap();
    }
    let turns = turns.lock().unwrap().clone();
    let order: Vec<usize> = turns.iter().map(|(id, _)| *id).collect();
    assert_eq!(order, [0, 1, 2, 3], "served in the order they queued");
    let fences: Vec<u64> = turns.iter().map(|(_, f)| f.expect("a fence")).collect();
    assert!(
        fences.windows(2).all(|w| w[0] < w[1]),
        "fences grow along the hand-offs: {fences:?}"
    );
}

/// A waiter that leaves is skipped: of four waiters, one times out and one is cancelled (its
/// task aborted); the holder's release goes to the first, whose release goes to the fourth at
/// once, and no one is left queued.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_skips_waiters_that_left(&fixture).await;
/// # }
/// ```
pub async fn queue_skips_waiters_that_left(fx: &Fixture) {
    let name = fx.unique_name("queue-left");
    let lock_name = LockName::new(&name).unwrap();
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let turns = Arc::new(Mutex::new(Vec::new()));
    let first = take_turn(fx.guarded(&name, LONG), 0, turns.clone());
    until_queued(fx.backend(), &lock_name, 1).await;
    let impatient = fx.guarded(&name, LONG);
    let timeout = fx.ticks(3);
    let timing_out = tokio::spawn(async move { impatient.lock_timeout(timeout).await });
    until_queued(fx.backend(), &lock_name, 2).await;
    let cancelled = take_turn(fx.guarded(&name, LONG), 2, turns.clone());
    until_queued(fx.backend(), &lock_name, 3).await;
    let last = take_turn(fx.guarded(&name, LONG), 3, turns.clone());
    until_queued(fx.backend(), &lock_name, 4).await;

    cancelled.abort();
    let gave_up = tokio::time::timeout(WAKE, timing_out)
        .await
        .unwrap()
        .unwrap();
    assert!(gave_up.unwrap().is_none(), "the lock was held all along");
    until_queued(fx.backend(), &lock_name, 2).await;

    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
    for task in [first, last] {
        tokio::time::timeout(WAKE, task)
            .await
            .expect("the waiters that stayed are served at once")
            .unwrap();
    }
    let order: Vec<usize> = turns.lock().unwrap().iter().map(|(id, _)| *id).collect();
    assert_eq!(order, [0, 3]);
    assert!(holder.lock().await.unwrap(), "no one is left queued");
    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
}

/// No barging: with a live waiter queued, a lock that frees up by expiry goes to that waiter,
/// and a try-once (`ProcessLock::lock`, `Lock::try_lock`) is refused. Once the waiter has left
/// (releasing what it was handed), a try-once takes the lock as before.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_try_once_does_not_barge(&fixture).await;
/// # }
/// ```
pub async fn queue_try_once_does_not_barge(fx: &Fixture) {
    let name = fx.unique_name("queue-barge");
    let lock_name = LockName::new(&name).unwrap();
    let ttl = fx.ticks(4);
    let holder = fx.handle(&name, ttl);
    assert!(holder.lock().await.unwrap());
    let waiter = puppet(LONG, LONG);
    let step = fx.backend().queue_step(&lock_name, &waiter).await.unwrap();
    assert!(
        matches!(step, QueueStep::Queued { position: 0, .. }),
        "{step:?}"
    );
    fx.clock().advance(ttl + fx.tick()).await;

    let other = fx.handle(&name, LONG);
    assert!(
        !other.lock().await.unwrap(),
        "a try-once barged ahead of the queue"
    );
    assert!(
        fx.backend()
            .is_held_by(&lock_name, &waiter.token)
            .await
            .unwrap(),
        "the freed lock went to the queued waiter"
    );
    assert!(fx.guarded(&name, LONG).try_lock().await.unwrap().is_none());

    assert_eq!(
        fx.backend()
            .leave_queue(&lock_name, &waiter, false)
            .await
            .unwrap(),
        Leave::Released
    );
    assert!(other.lock().await.unwrap(), "free, with no one queued");
    assert_eq!(
        other.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
}

/// A dead waiter delays the next one by little more than its claim: a waiter that queued and
/// then stopped (never steps again) is handed the lock by the holder's release; once its claim
/// (3 ticks) runs out unconfirmed, the live waiter behind it takes the lock within its
/// heartbeat.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_dead_waiter_delays_the_next_by_its_claim(&fixture).await;
/// # }
/// ```
pub async fn queue_dead_waiter_delays_the_next_by_its_claim(fx: &Fixture) {
    let name = fx.unique_name("queue-dead");
    let lock_name = LockName::new(&name).unwrap();
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let claim = fx.ticks(3);
    let dead = puppet(LONG, claim);
    let step = fx.backend().queue_step(&lock_name, &dead).await.unwrap();
    assert!(matches!(step, QueueStep::Queued { .. }), "{step:?}");
    let live = fx.guarded(&name, LONG);
    let waiting = tokio::spawn(async move { live.lock().await });
    until_queued(fx.backend(), &lock_name, 2).await;

    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
    assert!(
        fx.backend()
            .is_held_by(&lock_name, &dead.token)
            .await
            .unwrap(),
        "the release handed the lock to the first waiter"
    );
    let released = Instant::now();
    fx.clock().advance(claim + fx.tick()).await;
    let bound = claim + QueueTiming::MAX_HEARTBEAT + WAKE;
    let guard: LockGuard = tokio::time::timeout(bound, waiting)
        .await
        .unwrap_or_else(|_| panic!("the live waiter waited over {bound:?} behind a dead one"))
        .unwrap()
        .unwrap();
    assert!(released.elapsed() < bound);
    assert!(guard.is_held());
    assert!(
        !fx.backend()
            .renew(&lock_name, &dead.token, dead.ttl)
            .await
            .unwrap(),
        "the dead waiter's claim is over"
    );
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// Leaving after a hand-off: a waiter handed the lock that leaves with `keep` keeps it (with
/// its fence); one that leaves without releases it and hands it on at once, so a waiter that
/// gives up at the moment of its turn never leaves the lock behind.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_leaving_after_a_hand_off_passes_it_on(&fixture).await;
/// # }
/// ```
pub async fn queue_leaving_after_a_hand_off_passes_it_on(fx: &Fixture) {
    let name = fx.unique_name("queue-leave");
    let lock_name = LockName::new(&name).unwrap();
    let backend = fx.backend();
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let (keeper, quitter) = (puppet(LONG, LONG), puppet(LONG, LONG));
    for waiter in [&keeper, &quitter] {
        let step = backend.queue_step(&lock_name, waiter).await.unwrap();
        assert!(matches!(step, QueueStep::Queued { .. }), "{step:?}");
    }
    let live = fx.guarded(&name, LONG);
    let waiting = tokio::spawn(async move { live.lock().await });
    until_queued(backend, &lock_name, 3).await;

    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
    let kept = backend
        .leave_queue(&lock_name, &keeper, true)
        .await
        .unwrap();
    let Leave::Kept { fence } = kept else {
        panic!("the first waiter was handed the lock: {kept:?}");
    };
    assert!(fence > 0);
    assert!(backend.is_held_by(&lock_name, &keeper.token).await.unwrap());
    let released = backend.release(&lock_name, &keeper.token).await.unwrap();
    assert_eq!(released, Release::Released);
    assert!(
        backend
            .is_held_by(&lock_name, &quitter.token)
            .await
            .unwrap(),
        "the release handed it to the second waiter"
    );
    assert_eq!(
        backend
            .leave_queue(&lock_name, &quitter, false)
            .await
            .unwrap(),
        Leave::Released
    );
    let guard = tokio::time::timeout(WAKE, waiting)
        .await
        .expect("the lock the second waiter gave up went on to the third")
        .unwrap()
        .unwrap();
    assert!(
        guard.fence() > Some(fence),
        "fences grow along the hand-offs"
    );
    assert_eq!(
        backend
            .leave_queue(&lock_name, &quitter, false)
            .await
            .unwrap(),
        Leave::Absent
    );
    assert_eq!(guard.release().await.unwrap(), Release::Released);
}

/// A place lasts as long as its queue: a waiter that stopped stepping keeps its place, lapsed,
/// until a step or a release evicts it or its queue expires, twice a lease after the last step.
/// Leaving in between finds it ([`Leave::Left`]); leaving after finds nothing
/// ([`Leave::Absent`]), as Redis drops the queue's keys with every place in them.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::queue_a_lapsed_place_lasts_until_its_queue_expires(&fixture).await;
/// # }
/// ```
pub async fn queue_a_lapsed_place_lasts_until_its_queue_expires(fx: &Fixture) {
    let name = fx.unique_name("queue-expiry");
    let lock_name = LockName::new(&name).unwrap();
    let holder = fx.handle(&name, LONG);
    assert!(holder.lock().await.unwrap());
    let lease = fx.ticks(2);
    let waiter = puppet(lease, LONG);
    let backend = fx.backend();
    let mut clock = fx.clock();

    let step = backend.queue_step(&lock_name, &waiter).await.unwrap();
    assert!(matches!(step, QueueStep::Queued { .. }), "{step:?}");
    clock.advance(fx.ticks(3)).await;
    assert_eq!(
        backend
            .leave_queue(&lock_name, &waiter, false)
            .await
            .unwrap(),
        Leave::Left,
        "a lapsed place no one evicted is still there"
    );

    let step = backend.queue_step(&lock_name, &waiter).await.unwrap();
    assert!(matches!(step, QueueStep::Queued { .. }), "{step:?}");
    clock.advance(fx.ticks(5)).await;
    assert_eq!(
        backend
            .leave_queue(&lock_name, &waiter, false)
            .await
            .unwrap(),
        Leave::Absent,
        "the queue expired twice a lease after the last step, and the place with it"
    );
    assert_eq!(
        holder.clear(false).await.unwrap(),
        lock_core::Cleared::Cleared
    );
}
