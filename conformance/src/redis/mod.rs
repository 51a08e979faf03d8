//! The cases that need a Redis server of their own (the [`RedisServer`] capability): what every
//! Redis backend must do beyond the backend-agnostic cases, on a server the case may flush,
//! pause, kill clients of or reconfigure. Each is a plain `async fn(&RedisFixture)` that panics,
//! with a message saying what broke, when the backend misbehaves.
//!
//! A Redis backend runs them, with every other case, from one
//! [`suite!(redis = connect)`](crate::suite) call, given a function that connects the backend to
//! a URL with [`RedisOptions`]. On any other fixture they are reported as ignored, by name.
//!
//! [`RedisServer`]: crate::Capability::RedisServer
//!
//! | file | case | checks |
//! |---|---|---|
//! | `wire_format` | [`a_node_lock_excludes_rust_and_rust_cannot_touch_it`], [`a_rust_lock_excludes_node_with_the_plain_token_as_value`] | the key and value `process-lock-node` uses, both ways |
//! | | [`fencing_tokens_grow_on_the_wire_under_the_prefix`] | fencing tokens from the server's clock, strictly growing (a lost counter included), as a plain integer in an expiring fence key, under the prefix |
//! | | [`a_key_without_expiry_is_a_lock_held_by_another`] | a key another program `SET` without expiry is locked (no remaining time), never read as open, and left alone |
//! | | [`a_key_of_another_type_is_a_wrong_type_error`] | `ErrorKind::WrongType`, and the key left alone |
//! | `scripts` | [`every_operation_survives_script_flush`], [`a_flushed_script_costs_evalsha_then_eval_once`] | scripts sent again transparently, at the cost of one `EVAL` |
//! | | [`every_operation_is_one_round_trip`] | one command per operation (`MONITOR`) |
//! | `connecting` | [`connection_refused_is_a_connection_error_without_the_password`], [`an_unanswering_server_times_out_within_the_connect_timeout`] | connecting is bounded by the connect timeout, with typed errors |
//! | | [`malformed_urls_are_config_errors_without_the_password`], [`debug_output_hides_the_password`] | `ErrorKind::Config`, and the password never shown |
//! | | [`rediss_to_a_plain_text_server_is_a_config_error_at_once`] | `rediss://` to a plain-text server: `Config` within a second |
//! | `reconnect` | [`a_stalled_server_gives_a_timeout_then_answers_stay_in_order`] | `ErrorKind::Timeout` within the response timeout, and no late reply taken for another's |
//! | | [`reconnects_after_the_connection_is_killed`], [`an_outage_gives_connection_errors_then_the_backend_recovers`] | a request sent again on a new connection; `ErrorKind::Connection` through an outage, then reconnection |
//! | | [`a_request_whose_reply_is_lost_is_sent_again_safely`] | a request whose reply was lost is sent once more, harmlessly |
//! | | [`a_waiter_waits_through_a_stall_and_a_dropped_connection`] | waiting goes on through timeouts and connection errors |
//! | `notify` | [`a_waiter_sends_only_its_heartbeat_while_it_waits`], [`a_release_wakes_a_waiter_at_once`] | waiting by notification: `SUBSCRIBE`, one try, silence, woken by the release's `PUBLISH` at once |
//! | | [`a_waiter_survives_its_pubsub_connection_being_killed`], [`a_broken_pubsub_connection_fails_watches_promptly_then_recovers`] | the Pub/Sub connection reconnects, subscribes again and wakes its waiters; watching while it is down fails at once |
//! | `acl` | [`a_refused_subscribe_is_an_error_every_time`], [`a_user_without_evalsha_gets_permission_denied_and_nothing_changes`], [`a_wrong_password_is_a_config_error`] | ACL refusals: `PermissionDenied` every time, nothing changed; a refused password is `Config` |
//! | | [`a_release_that_cannot_publish_says_so_and_waiters_still_see_it`] | `ReleasedWithoutNotice`, and waiters' recheck |
//! | `guard_validity` | [`a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires`] | a guard reports `LostReason::Expired` before its lock could expire on the server |
//! | | [`a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it`] | with replies delayed past the drift allowance, a guard's validity counts from the request, never beyond the key's expiry on the server |
//! | `queue` | [`waiters_of_separate_backends_take_turns_in_arrival_order`] | the waiter queue across backends (as across processes): served in queue order, the releaser behind them |
//! | | [`a_foreign_del_reaches_the_first_waiter_within_its_heartbeat`], [`the_queue_leaves_no_keys_behind`], [`a_lost_hand_off_is_confirmed_with_a_fence_even_without_the_counter`] | a `DEL` by hand seen within a heartbeat; the queue's keys expire with their waiters; a lost hand-off is confirmed with a fence |
//! | `restart` | [`a_new_server_grants_a_free_lock_only_after_the_restart_delay`] | the delayed restart rule, by a fixed delay and by the lock's timeout |

mod acl;
mod cluster;
mod connecting;
mod fixture;
mod guard_validity;
mod notify;
mod options;
mod queue;
mod quorum;
mod reconnect;
mod restart;
mod scripts;
mod wire_format;

pub use acl::{
    a_refused_subscribe_is_an_error_every_time,
    a_release_that_cannot_publish_says_so_and_waiters_still_see_it,
    a_user_without_evalsha_gets_permission_denied_and_nothing_changes,
    a_wrong_password_is_a_config_error,
};
pub use cluster::{
    REPLICA_ACK_CASE, SENTINEL_FOLLOW, a_sentinel_failover_is_followed, cluster_suite,
    replica_suite, sentinel_suite,
};
pub use connecting::{
    an_unanswering_server_times_out_within_the_connect_timeout,
    connection_refused_is_a_connection_error_without_the_password, debug_output_hides_the_password,
    malformed_urls_are_config_errors_without_the_password,
    rediss_to_a_plain_text_server_is_a_config_error_at_once,
};
pub use fixture::{ConnectFuture, RedisFixture, backend_fixture, server_fixture};
pub use guard_validity::{
    a_guard_behind_a_slow_link_trusts_its_lock_no_longer_than_the_server_keeps_it,
    a_paused_server_makes_a_guard_report_its_loss_before_the_lock_expires,
};
pub use notify::{
    a_broken_pubsub_connection_fails_watches_promptly_then_recovers,
    a_release_wakes_a_waiter_at_once, a_waiter_sends_only_its_heartbeat_while_it_waits,
    a_waiter_survives_its_pubsub_connection_being_killed,
};
pub use options::RedisOptions;
pub use queue::{
    a_foreign_del_reaches_the_first_waiter_within_its_heartbeat,
    a_lost_hand_off_is_confirmed_with_a_fence_even_without_the_counter,
    the_queue_leaves_no_keys_behind, waiters_of_separate_backends_take_turns_in_arrival_order,
};
pub use quorum::quorum_suite;
pub use reconnect::{
    a_request_whose_reply_is_lost_is_sent_again_safely,
    a_stalled_server_gives_a_timeout_then_answers_stay_in_order,
    a_waiter_waits_through_a_stall_and_a_dropped_connection,
    an_outage_gives_connection_errors_then_the_backend_recovers,
    reconnects_after_the_connection_is_killed,
};
pub use restart::a_new_server_grants_a_free_lock_only_after_the_restart_delay;
pub use scripts::{
    a_flushed_script_costs_evalsha_then_eval_once, every_operation_is_one_round_trip,
    every_operation_survives_script_flush,
};
pub use wire_format::{
    a_key_of_another_type_is_a_wrong_type_error, a_key_without_expiry_is_a_lock_held_by_another,
    a_node_lock_excludes_rust_and_rust_cannot_touch_it,
    a_rust_lock_excludes_node_with_the_plain_token_as_value,
    fencing_tokens_grow_on_the_wire_under_the_prefix,
};
