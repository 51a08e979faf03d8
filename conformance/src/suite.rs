//! The list of cases and the machinery that turns it into tests: the [`suite!`](crate::suite)
//! macro for a backend's test file, and [`cases`] / [`run_case`] for running cases by hand.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use lock_core::Capabilities;

use crate::Fixture;

/// An optional feature a case needs from the backend (see [`lock_core::Capabilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// [`Capabilities::remaining_ttl`].
    RemainingTtl,
    /// [`Capabilities::notify`].
    Notify,
    /// [`Capabilities::fencing`].
    Fencing,
}

impl Capability {
    /// The name used in `suite!(..., without = [...])`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::RemainingTtl => "remaining_ttl",
            Capability::Notify => "notify",
            Capability::Fencing => "fencing",
        }
    }

    /// Whether `capabilities` include this one.
    pub fn is_in(self, capabilities: &Capabilities) -> bool {
        match self {
            Capability::RemainingTtl => capabilities.remaining_ttl,
            Capability::Notify => capabilities.notify,
            Capability::Fencing => capabilities.fencing,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names that `suite!(..., without = [...])` accepts, one per [`Capability`].
#[allow(non_upper_case_globals)]
pub mod capability {
    use super::Capability;

    /// [`Capability::RemainingTtl`].
    pub const remaining_ttl: Capability = Capability::RemainingTtl;
    /// [`Capability::Notify`].
    pub const notify: Capability = Capability::Notify;
    /// [`Capability::Fencing`].
    pub const fencing: Capability = Capability::Fencing;
}

/// A case's future.
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One case of the suite.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, as in [`mod@crate::cases`].
    pub name: &'static str,
    /// The capability the case needs, if any.
    pub needs: Option<Capability>,
    /// Runs the case; it panics when the backend misbehaves.
    pub run: for<'a> fn(&'a Fixture) -> CaseFuture<'a>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("needs", &self.needs)
            .finish()
    }
}

/// The one list of cases. Every backend's tests, and [`cases`], expand from it, so a case added
/// here runs everywhere. Each entry is `[name, always]` or `[name, capability]`.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:path { $($args:tt)* }) => {
        $callback! { $($args)*
            [lock_values, always]
            [update_values, always]
            [clear_values, always]
            [force_clear_values, always]
            [status_values, always]
            [original_scenario, always]
            [original_scenario_with_original_pauses, always]
            [expiry, always]
            [update_extends_expiry, always]
            [relock_resets_expiry, always]
            [expired_owner_is_powerless, always]
            [abandoned_locks_expire_by_themselves, always]
            [isolation, always]
            [contention_one_winner, always]
            [contention_counter, always]
            [bad_input, always]
            [model_based, always]
            [remaining_ttl, remaining_ttl]
            [failed_acquires_report_the_exact_remaining_time, remaining_ttl]
            [wait_wakes_on_release, always]
            [wait_wakes_at_expiry, always]
            [wait_deadline, always]
            [wait_cancelled_leaves_nothing, always]
            [wait_many_waiters_one_winner, always]
            [watch_wakes_on_release, notify]
            [guard_renews_in_the_background, always]
            [guard_lost_when_cleared, always]
            [guard_lost_when_taken_over, always]
            [guard_lost_when_store_unreachable, always]
            [guard_lost_hands_over_to_the_next_waiter, always]
            [guard_dropped_releases, always]
            [guard_keeps_its_lock_through_failed_renewals, always]
            [guard_validity_counts_from_the_request_not_the_reply, always]
            [fences_increase, fencing]
        }
    };
}

macro_rules! case_list {
    ($( [$name:ident, $needs:ident] )*) => {
        /// Every case of the suite, in order.
        pub fn cases() -> Vec<Case> {
            vec![$(
                Case {
                    name: stringify!($name),
                    needs: case_list!(@needs $needs),
                    run: |fx| Box::pin($crate::cases::$name(fx)),
                },
            )*]
        }
    };
    (@needs always) => { None };
    (@needs $cap:ident) => { Some($crate::capability::$cap) };
}

__with_cases!(case_list {});

/// Generates one test per conformance case for a backend: the whole suite in one call.
///
/// The first argument is a function (or closure) returning a future of the [`Fixture`] to run
/// each case on; it is called once per test, inside that test's own multi-thread tokio
/// runtime, so the backend's connections belong to that runtime. Each test is named after its
/// case, so `cargo test` lists them and `cargo test expiry` runs one.
///
/// A case that needs a capability the backend lacks is named in `without = [...]`; its test is
/// then `#[ignore]`d with the reason, reported as ignored by name and never counted as passed.
/// Running ignored tests checks that the backend really lacks it, and a case the backend claims
/// to support fails if its capabilities say otherwise.
///
/// # Examples
///
/// In a backend crate's `tests/conformance.rs`:
///
/// ```
/// use std::sync::Arc;
/// use conformance::Fixture;
/// use lock_memory::{ManualClock, MemoryBackend};
///
/// async fn fixture() -> Fixture {
///     let clock = ManualClock::new();
///     let backend = Arc::new(MemoryBackend::with_clock(clock.clone()));
///     Fixture::new(backend).with_manual_time(move |by| clock.advance(by))
/// }
///
/// conformance::suite!(fixture);
/// # fn main() {}
/// ```
///
/// A backend that cannot report remaining time:
///
/// ```ignore
/// conformance::suite!(fixture, without = [remaining_ttl]);
/// ```
#[macro_export]
macro_rules! suite {
    ($fixture:expr $(,)?) => {
        $crate::suite!($fixture, without = []);
    };
    ($fixture:expr, without = [$($without:ident),* $(,)?] $(,)?) => {
        // A misspelled capability is a compile error, not a silently ignored word.
        $( const _: $crate::Capability = $crate::capability::$without; )*
        $crate::__with_cases!($crate::__suite_tests { ($fixture) [$($without),*] });
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($fixture:tt $without:tt $( [$name:ident, $needs:ident] )*) => {
        $( $crate::__suite_test!($fixture $without $name $needs); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_test {
    ($fixture:tt $without:tt $name:ident always) => {
        #[test]
        fn $name() {
            $crate::run_case($fixture, stringify!($name));
        }
    };
    ($fixture:tt $without:tt $name:ident $needs:ident) => {
        $crate::__if_listed!($needs $without {
            #[test]
            #[ignore = concat!("the backend lacks the ", stringify!($needs), " capability")]
            fn $name() {
                $crate::check_lacks($fixture, $crate::capability::$needs);
            }
        } {
            #[test]
            fn $name() {
                $crate::run_case($fixture, stringify!($name));
            }
        });
    };
}

/// Expands to the first block if the capability is in the list, else to the second. One arm per
/// capability, because `macro_rules` compares identifiers only against literal ones.
#[doc(hidden)]
#[macro_export]
macro_rules! __if_listed {
    ($cap:ident [] { $($yes:tt)* } { $($no:tt)* }) => { $($no)* };
    (remaining_ttl [remaining_ttl $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (notify [notify $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    (fencing [fencing $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    ($cap:ident [$head:ident $(, $rest:ident)*] $yes:tt $no:tt) => {
        $crate::__if_listed!($cap [$($rest),*] $yes $no);
    };
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for the conformance case")
}

/// Runs the case `name` on a fixture from `fixture`, in a fresh multi-thread tokio runtime, as
/// `#[tokio::test(flavor = "multi_thread")]` would. This is what [`suite!`](crate::suite)'s
/// tests call.
///
/// # Panics
///
/// When the case fails, when `name` is not a case, and when the case needs a capability the
/// backend does not declare.
pub fn run_case<F, Fut>(fixture: F, name: &str)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Fixture>,
{
    let case = cases()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no conformance case is named {name:?}"));
    runtime().block_on(async {
        let fx = fixture().await;
        if let Some(cap) = case.needs {
            assert!(
                cap.is_in(&fx.backend().capabilities()),
                "case {name} needs the {cap} capability, which {:?} does not declare: \
                 add `without = [{cap}]` to its conformance::suite! call",
                fx.backend()
            );
        }
        (case.run)(&fx).await;
    });
}

/// The body of a skipped case's test: checks that the backend really lacks `capability`, so a
/// `without = [...]` list cannot hide a case the backend should pass.
///
/// # Panics
///
/// If the backend declares `capability`.
pub fn check_lacks<F, Fut>(fixture: F, capability: Capability)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Fixture>,
{
    runtime().block_on(async {
        let fx = fixture().await;
        assert!(
            !capability.is_in(&fx.backend().capabilities()),
            "{:?} declares the {capability} capability: remove it from `without`",
            fx.backend()
        );
    });
}
