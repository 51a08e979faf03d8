//! The one list of cases, and what runs it: [`cases`] and [`run_case`], which the
//! [`suite!`](crate::suite) macro's tests call, and [`Capability`], which gates a case.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use lock_core::Capabilities;

use crate::Fixture;

/// Something a case needs that not every fixture offers: an optional feature of the backend
/// (see [`lock_core::Capabilities`]), or a Redis server of the case's own.
///
/// # Examples
///
/// ```
/// use conformance::{Capability, capability};
///
/// assert_eq!(capability::queue, Capability::Queue);
/// assert_eq!(Capability::Queue.name(), "queue");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    /// [`Capabilities::remaining_ttl`].
    RemainingTtl,
    /// [`Capabilities::notify`].
    Notify,
    /// [`Capabilities::fencing`].
    Fencing,
    /// [`Capabilities::queue`].
    Queue,
    /// A real Redis server of the case's own, which it may flush, pause, kill clients of or
    /// reconfigure, and the backend's connect function: what `redis::server_fixture` gives
    /// (with the `redis-server` feature), and `suite!(redis = connect)` uses.
    RedisServer,
}

impl Capability {
    /// Its name: the one `suite!(..., without = [...])` takes for a backend's capability.
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::Capability;
    ///
    /// assert_eq!(Capability::RemainingTtl.name(), "remaining_ttl");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Capability::RemainingTtl => "remaining_ttl",
            Capability::Notify => "notify",
            Capability::Fencing => "fencing",
            Capability::Queue => "queue",
            Capability::RedisServer => "redis_server",
        }
    }

    /// Whether `capabilities` include this one (never [`Capability::RedisServer`], which is
    /// not the backend's).
    ///
    /// # Examples
    ///
    /// ```
    /// use conformance::Capability;
    /// use lock_core::Capabilities;
    ///
    /// let capabilities = Capabilities { fencing: true, ..Default::default() };
    /// assert!(Capability::Fencing.is_in(&capabilities));
    /// assert!(!Capability::Queue.is_in(&capabilities));
    /// ```
    pub fn is_in(self, capabilities: &Capabilities) -> bool {
        match self {
            Capability::RemainingTtl => capabilities.remaining_ttl,
            Capability::Notify => capabilities.notify,
            Capability::Fencing => capabilities.fencing,
            Capability::Queue => capabilities.queue,
            Capability::RedisServer => false,
        }
    }

    /// Whether `fixture` offers this capability: its backend declares it, or, for
    /// [`Capability::RedisServer`], it has a Redis server of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use conformance::{Capability, Fixture};
    /// use lock_memory::MemoryBackend;
    ///
    /// let fixture = Fixture::new(Arc::new(MemoryBackend::new()));
    /// assert!(Capability::Notify.is_met_by(&fixture));
    /// assert!(!Capability::RedisServer.is_met_by(&fixture));
    /// ```
    pub fn is_met_by(self, fixture: &Fixture) -> bool {
        match self {
            #[cfg(feature = "redis-server")]
            Capability::RedisServer => crate::redis::RedisFixture::of(fixture).is_some(),
            #[cfg(not(feature = "redis-server"))]
            Capability::RedisServer => false,
            _ => self.is_in(&fixture.backend().capabilities()),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The names that `suite!(..., without = [...])` accepts, one per capability a backend may
/// lack.
#[allow(non_upper_case_globals)]
pub mod capability {
    use super::Capability;

    /// [`Capability::RemainingTtl`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conformance::capability::remaining_ttl.name(), "remaining_ttl");
    /// ```
    pub const remaining_ttl: Capability = Capability::RemainingTtl;
    /// [`Capability::Notify`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conformance::capability::notify.name(), "notify");
    /// ```
    pub const notify: Capability = Capability::Notify;
    /// [`Capability::Fencing`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conformance::capability::fencing.name(), "fencing");
    /// ```
    pub const fencing: Capability = Capability::Fencing;
    /// [`Capability::Queue`].
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(conformance::capability::queue.name(), "queue");
    /// ```
    pub const queue: Capability = Capability::Queue;
}

/// A case's future.
///
/// # Examples
///
/// ```
/// use conformance::{CaseFuture, Fixture};
///
/// fn expiry(fixture: &Fixture) -> CaseFuture<'_> {
///     Box::pin(conformance::cases::expiry(fixture))
/// }
/// ```
pub type CaseFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One case of the suite.
///
/// # Examples
///
/// ```
/// let case = conformance::cases().into_iter().find(|c| c.name == "expiry").unwrap();
/// assert_eq!(case.needs, None);
/// ```
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, as in [`mod@crate::cases`] or, for one that needs a Redis server,
    /// `conformance::redis`.
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
/// here runs everywhere. Each entry is `[name, always]` or `[name, capability]`; a
/// `redis_server` case is in `conformance::redis`, the others in [`mod@crate::cases`].
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
            [holds_answers_for_its_owner_only, always]
            [holds_extends_nothing, always]
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
            [with_lock_releases_after_the_work, always]
            [with_lock_cancelled_releases, always]
            [with_lock_stops_the_work_when_the_lock_is_lost, always]
            [fences_increase, fencing]
            [queue_serves_waiters_in_arrival_order, queue]
            [queue_skips_waiters_that_left, queue]
            [queue_try_once_does_not_barge, queue]
            [queue_dead_waiter_delays_the_next_by_its_claim, queue]
            [queue_leaving_after_a_hand_off_passes_it_on, queue]
            [queue_a_lapsed_place_lasts_until_its_queue_expires, queue]
            // redis::wire_format
            [a_node_lock_excludes_rust_and_rust_cannot_touch_it, redis_server]
            [a_rust_lock_excludes_node_with_the_plain_token_as_value, redis_server]
            [fencing_tokens_grow_on_the_wire_under_the_prefix, redis_server]
            [a_key_without_expiry_is_a_lock_held_by_another, redis_server]
            [a_key_of_another_type_is_a_wrong_type_error, redis_server]
            // redis::scripts
            [every_operation_survives_script_flush, redis_server]
            [a_flushed_script_costs_evalsha_then_eval_once, redis_server]
            [every_operation_is_one_round_trip, redis_server]
            // redis::connecting
            [connection_refused_is_a_connection_error_without_the_password, redis_server]
            [an_unanswering_server_times_out_within_the_connect_timeout, redis_server]
            [malformed_urls_are_config_errors_without_the_password, redis_server]
            [debug_output_hides_the_password, redis_server]
            [rediss_to_a_plain_text_server_is_a_config_error_at_once, redis_server]
            // redis::reconnect
            [a_stalled_server_gives_a_timeout_then_answers_stay_in_order, redis_server]
            [reconnects_after_the_connection_is_killed, redis_server]
            [an_outage_gives_connection_errors_then_the_backend_recovers, redis_server]
            [a_request_whose_reply_is_lost_is_sent_again_safely, redis_server]
            [a_waiter_waits_through_a_stall_and_a_dropped_connection, redis_server]
            // redis::notify
            [a_waiter_sends_only_its_heartbeat_while_it_waits, redis_server]
            [a_release_wakes_a_waiter_at_once, redis_server]
            [a_waiter_survives_its_pubsub_connection_being_killed, redis_server]
            [a_broken_pubsub_connection_fails_watches_promptly_then_recovers, redis_server]
            // redis::queue
            [waiters_of_separate_backends_take_turns_in_arrival_order, redis_server]
            [a_foreign_del_reaches_the_first_waiter_within_its_heartbeat, redis_server]
            [the_queue_leaves_no_keys_behind, redis_server]
            [a_lost_hand_off_is_confirmed_with_a_fence_even_without_the_counter, redis_server]
            // redis::acl
            [a_refused_subscribe_is_an_error_every_time, redis_server]
            [a_user_without_evalsha_gets_permission_denied_and_nothing_changes, redis_server]
            [a_wrong_password_is_a_config_error, redis_server]
            [a_release_that_cannot_publish_says_so_and_waiters_still_see_it, redis_server]
            // redis::guard_validity
            [a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires, redis_server]
            [a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it, redis_server]
            // redis::restart
            [a_new_server_grants_a_free_lock_only_after_the_restart_delay, redis_server]
        }
    };
}

macro_rules! case_list {
    ($( [$name:ident, $needs:ident] )*) => {
        /// Every case of the suite, in order, those that need a Redis server included (they
        /// run only on `conformance::redis::server_fixture`).
        ///
        /// # Examples
        ///
        /// ```
        /// let names: Vec<&str> = conformance::cases().iter().map(|c| c.name).collect();
        /// assert!(names.contains(&"lock_values"));
        /// ```
        pub fn cases() -> Vec<Case> {
            vec![$(
                Case {
                    name: stringify!($name),
                    needs: case_list!(@needs $needs),
                    run: case_list!(@run $name $needs),
                },
            )*]
        }
    };
    (@needs always) => { None };
    (@needs redis_server) => { Some(Capability::RedisServer) };
    (@needs $cap:ident) => { Some($crate::capability::$cap) };
    (@run $name:ident redis_server) => { redis_case!($name) };
    (@run $name:ident $needs:ident) => { |fx| Box::pin($crate::cases::$name(fx)) };
}

#[cfg(feature = "redis-server")]
macro_rules! redis_case {
    ($name:ident) => {
        |fx| {
            let redis = crate::redis::RedisFixture::of(fx)
                .expect("a case that needs a Redis server runs on redis::server_fixture");
            Box::pin(crate::redis::$name(redis))
        }
    };
}

#[cfg(not(feature = "redis-server"))]
macro_rules! redis_case {
    ($name:ident) => {
        |_| Box::pin(async { without_redis_server(stringify!($name)) })
    };
}

/// What a case that needs a Redis server does when conformance is built without one.
#[cfg(not(feature = "redis-server"))]
fn without_redis_server(name: &str) {
    panic!("{name} needs conformance's redis-server feature");
}

__with_cases!(case_list {});

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
/// fixture does not offer.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conformance::{Fixture, run_case};
/// use lock_memory::MemoryBackend;
///
/// // What `conformance::suite!(memory = ...)` expands to, for one case.
/// run_case(|| async { Fixture::new(Arc::new(MemoryBackend::new())) }, "lock_values");
/// ```
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
        match case.needs {
            Some(Capability::RedisServer) => assert!(
                Capability::RedisServer.is_met_by(&fx),
                "case {name} needs a Redis server of its own, which {fx:?} does not have: \
                 only `conformance::suite!(redis = connect)` runs it"
            ),
            Some(cap) => assert!(
                cap.is_met_by(&fx),
                "case {name} needs the {cap} capability, which {:?} does not declare: \
                 add `without = [{cap}]` to its conformance::suite! call",
                fx.backend()
            ),
            None => {}
        }
        (case.run)(&fx).await;
    });
}

/// The body of a skipped case's test: checks that the fixture really lacks `capability`, so a
/// `without = [...]` list cannot hide a case the backend should pass.
///
/// # Panics
///
/// If the fixture offers `capability`.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use conformance::{Capability, Fixture, check_lacks};
/// use lock_memory::MemoryBackend;
///
/// // A fixture without a Redis server of its own really lacks one.
/// check_lacks(|| async { Fixture::new(Arc::new(MemoryBackend::new())) }, Capability::RedisServer);
/// ```
pub fn check_lacks<F, Fut>(fixture: F, capability: Capability)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Fixture>,
{
    runtime().block_on(async {
        let fx = fixture().await;
        match capability {
            Capability::RedisServer => assert!(
                !capability.is_met_by(&fx),
                "{fx:?} has a Redis server of its own: run its cases"
            ),
            _ => assert!(
                !capability.is_met_by(&fx),
                "{:?} declares the {capability} capability: remove it from `without`",
                fx.backend()
            ),
        }
    });
}
