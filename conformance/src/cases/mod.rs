//! The cases: each is a plain `async fn(&Fixture)` that panics, with a message saying which
//! documented behaviour broke, when the backend misbehaves.
//!
//! Every case makes its own names with [`Fixture::unique_name`](crate::Fixture::unique_name), so
//! cases run in parallel against one store.

mod contention;
mod exact_remaining;
mod expiry;
mod fencing;
mod guard;
mod input;
mod isolation;
mod left_behind;
mod original_pauses;
mod ownership;
pub(crate) mod queue;
mod remaining;
mod renewal_faults;
mod scenario;
mod values;
mod waiting;

pub use crate::model::model_based;
pub use contention::{contention_counter, contention_one_winner};
pub use exact_remaining::failed_acquires_report_the_exact_remaining_time;
pub use expiry::{expired_owner_is_powerless, expiry, relock_resets_expiry, update_extends_expiry};
pub use fencing::fences_increase;
pub use guard::{
    guard_dropped_releases, guard_lost_hands_over_to_the_next_waiter, guard_lost_when_cleared,
    guard_lost_when_store_unreachable, guard_lost_when_taken_over, guard_renews_in_the_background,
};
pub use input::bad_input;
pub use isolation::isolation;
pub use left_behind::abandoned_locks_expire_by_themselves;
pub use original_pauses::original_scenario_with_original_pauses;
pub use ownership::{
    holds_answers_for_its_owner_only, holds_extends_nothing, with_lock_cancelled_releases,
    with_lock_releases_after_the_work, with_lock_stops_the_work_when_the_lock_is_lost,
};
pub use queue::{
    queue_a_lapsed_place_lasts_until_its_queue_expires,
    queue_dead_waiter_delays_the_next_by_its_claim, queue_leaving_after_a_hand_off_passes_it_on,
    queue_serves_waiters_in_arrival_order, queue_skips_waiters_that_left,
    queue_try_once_does_not_barge,
};
pub use remaining::remaining_ttl;
pub use renewal_faults::{
    guard_keeps_its_lock_through_failed_renewals,
    guard_validity_counts_from_the_request_not_the_reply,
};
pub use scenario::original_scenario;
pub use values::{clear_values, force_clear_values, lock_values, status_values, update_values};
pub use waiting::{
    wait_cancelled_leaves_nothing, wait_deadline, wait_many_waiters_one_winner,
    wait_wakes_at_expiry, wait_wakes_on_release, watch_wakes_on_release,
};
