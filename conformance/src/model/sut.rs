//! The system under test: real handles on the fixture's backend, run by proptest on a blocking
//! thread and checked after every call against the reference model.

use std::cell::RefCell;
use std::time::Duration;

use lock_core::queue::{Leave, QueueStep, QueueTiming, Waiter};
use lock_core::{LockName, LockState, ProcessLock, Token, Ttl};
use proptest::test_runner::{Config, TestRunner};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};
use tokio::runtime::Handle;

use super::reference::{
    Answer, CLAIM, Call, HANDLES, LEASE, Model, NAMES, WAITER_TTL, WAITERS, name_of,
};
use super::strategies::LockMachine;
use crate::{Fixture, TestClock};

/// Longest sequence of calls in one case.
const MAX_CALLS: usize = 32;

thread_local! {
    /// proptest-state-machine builds the system under test from a static function, so the
    /// fixture reaches it through the thread the runner runs on.
    static CONTEXT: RefCell<Option<(Fixture, Handle)>> = const { RefCell::new(None) };
}

/// Random sequences of lock, update, clear, force clear, status, queue steps and leaves, and
/// time moving forward, from four handles and four queued waiters on two names, each call's
/// answer checked against the reference model ([`Fixture::model_cases`] sequences of up to 32
/// calls). A waiter that stops stepping is a dead one: the model forgets it after its lease.
///
/// # Examples
///
/// ```no_run
/// # async fn check(backend: std::sync::Arc<dyn lock_core::LockBackend>) {
/// let fixture = conformance::Fixture::new(backend);
/// conformance::cases::model_based(&fixture).await;
/// # }
/// ```
pub async fn model_based(fx: &Fixture) {
    let fixture = fx.clone();
    let runtime = Handle::current();
    let run = tokio::task::spawn_blocking(move || {
        let cases = fixture.model_cases();
        let queue = fixture.backend().capabilities().queue;
        super::strategies::WITH_QUEUE.with(|q| q.set(queue));
        CONTEXT.with(|c| *c.borrow_mut() = Some((fixture, runtime)));
        let config = Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config.clone());
        let result = runner.run(
            &LockMachine::sequential_strategy(1..MAX_CALLS),
            |(model, calls, seen)| {
                LockTest::test_sequential(config.clone(), model, calls, seen);
                Ok(())
            },
        );
        CONTEXT.with(|c| c.borrow_mut().take());
        if let Err(failure) = result {
            panic!("the backend departed from the model: {failure}");
        }
    });
    if let Err(e) = run.await {
        std::panic::resume_unwind(e.into_panic());
    }
}

struct LockTest;

struct System {
    handles: Vec<ProcessLock>,
    waiters: Vec<(LockName, Waiter)>,
    model: Model,
    clock: TestClock,
    fixture: Fixture,
    runtime: Handle,
}

impl System {
    async fn perform(&mut self, call: Call) -> Answer {
        let answer = match call {
            Call::Lock(h) => self.handles[h].lock().await.map(Answer::Bool),
            Call::Update(h) => self.handles[h].update().await.map(Answer::Bool),
            Call::Clear(h) => self.handles[h]
                .clear(false)
                .await
                .map(|c| Answer::Cleared(c.as_option())),
            Call::ForceClear(h) => self.handles[h]
                .clear(true)
                .await
                .map(|c| Answer::Cleared(c.as_option())),
            Call::Status(h) => self.handles[h]
                .status()
                .await
                .map(|s| Answer::Locked(s == LockState::Locked)),
            Call::Step(w) => {
                let (name, waiter) = &self.waiters[w];
                let backend = self.fixture.backend();
                backend
                    .queue_step(name, waiter)
                    .await
                    .map(|step| match step {
                        QueueStep::Acquired { .. } => Answer::Step(None),
                        QueueStep::Queued { position, .. } => Answer::Step(Some(position)),
                        other => panic!("unexpected {other:?}"),
                    })
            }
            Call::Leave(w) => {
                let (name, waiter) = &self.waiters[w];
                let backend = self.fixture.backend();
                backend
                    .leave_queue(name, waiter, false)
                    .await
                    .map(|left| match left {
                        Leave::Left => Answer::Leave("Left"),
                        Leave::Absent => Answer::Leave("Absent"),
                        Leave::Released => Answer::Leave("Released"),
                        other => panic!("unexpected {other:?}"),
                    })
            }
            Call::Advance(ticks) => {
                self.clock.advance(self.ticks(ticks)).await;
                Ok(Answer::Nothing)
            }
        };
        answer.unwrap_or_else(|e| panic!("{call:?} failed: {e}"))
    }

    fn ticks(&self, n: u64) -> Duration {
        self.fixture.tick() * u32::try_from(n).expect("few ticks")
    }
}

impl StateMachineTest for LockTest {
    type SystemUnderTest = System;
    type Reference = LockMachine;

    fn init_test(model: &Model) -> System {
        let (fixture, runtime) = CONTEXT.with(|c| {
            c.borrow()
                .clone()
                .expect("the model runs inside model_based")
        });
        let names: Vec<String> = (0..NAMES)
            .map(|n| fixture.unique_name(&format!("model-{n}")))
            .collect();
        let mut system = System {
            handles: Vec::with_capacity(HANDLES),
            waiters: Vec::with_capacity(WAITERS),
            model: model.clone(),
            clock: fixture.clock(),
            runtime,
            fixture: fixture.clone(),
        };
        for h in 0..HANDLES {
            let timeout = system.ticks(model.ttls[h]);
            system
                .handles
                .push(fixture.handle(&names[name_of(h)], timeout));
        }
        for w in 0..WAITERS {
            let ttl = Ttl::new(system.ticks(WAITER_TTL)).expect("a valid timeout");
            let mut timing = QueueTiming::for_ttl(ttl);
            timing.lease = system.ticks(LEASE);
            timing.claim = system.ticks(CLAIM);
            let token = Token::generate().expect("the system random generator works");
            let name = LockName::new(&names[name_of(w)]).expect("a valid name");
            system.waiters.push((name, Waiter::new(token, ttl, timing)));
        }
        system
    }

    fn apply(mut system: System, _: &Model, call: Call) -> System {
        let expected = system.model.step(call);
        let runtime = system.runtime.clone();
        let actual = runtime.block_on(system.perform(call));
        assert_eq!(
            actual, expected,
            "{call:?} at tick {} answered {actual:?}, Redis would answer {expected:?}",
            system.model.now
        );
        system
    }

    fn teardown(system: System, _: Model) {
        // Leave nothing behind on a shared store.
        let runtime = system.runtime.clone();
        runtime.block_on(async {
            if system.fixture.backend().capabilities().queue {
                for (name, waiter) in &system.waiters {
                    let _ = system
                        .fixture
                        .backend()
                        .leave_queue(name, waiter, false)
                        .await;
                }
            }
            for handle in &system.handles[..NAMES] {
                let _ = handle.clear(true).await;
            }
        });
    }
}
