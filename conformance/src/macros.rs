//! [`suite!`](crate::suite): one test per case of [`cases`](crate::cases()) for a backend, in
//! one call.

/// Generates one test per conformance case for a backend: the whole suite in one call.
///
/// Two forms, for where the fixture comes from:
///
/// - `suite!(fixture)`, for any backend: `fixture` is a function (or closure) returning a
///   future of the [`Fixture`](crate::Fixture) to run each case on. The cases that need a
///   Redis server of their own ([`Capability::RedisServer`](crate::Capability)) are not
///   generated: they check Redis itself (its wire format, restarts, ACLs), which such a backend
///   does not have.
/// - `suite!(redis = connect)`, for a Redis backend (needs the `redis-server` feature):
///   `connect` is a function `(url: String, options: RedisOptions)` returning a future of
///   `lock_core::Result<Arc<dyn LockBackend>>`, the backend connected to `url` with every one
///   of the `RedisOptions` applied (the prefix too: a case checks it), or the error connecting
///   gives. Every case runs: those that need a Redis server on one of their own
///   (`redis::server_fixture`), the others on the backend connected with the default options
///   (`redis::backend_fixture`).
///
/// Each test calls its fixture inside its own multi-thread tokio runtime, so the backend's
/// connections belong to that runtime, and is named after its case, so `cargo test` lists them
/// and `cargo test expiry` runs one.
///
/// A case that needs a capability the backend lacks is named in `without = [...]`; its test is
/// then `#[ignore]`d with the reason, reported as ignored by name and never counted as passed.
/// Running ignored tests checks that the backend really lacks it, and a case the backend claims
/// to support fails if its capabilities say otherwise.
///
/// A case the backend is known to fail is named in `ignore = [case = "reason", ...]`, after
/// `without` if both are given: its test is `#[ignore]`d with the reason until the backend is
/// fixed; `cargo test -- --ignored` runs it. A name that is not a case is a compile error.
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
/// A backend that cannot report remaining time, with a known bug:
///
/// ```
/// # use std::sync::Arc;
/// # async fn fixture() -> conformance::Fixture {
/// #     conformance::Fixture::new(Arc::new(lock_memory::MemoryBackend::new()))
/// # }
/// conformance::suite!(
///     fixture,
///     without = [remaining_ttl],
///     ignore = [contention_counter = "two holders under load: issue #12"],
/// );
/// # fn main() {}
/// ```
///
/// A Redis backend (see `conformance::redis::RedisOptions` for `connect`):
///
/// ```ignore
/// conformance::suite!(redis = connect);
/// ```
///
/// A case name that is not one is a compile error:
///
/// ```compile_fail
/// # use std::sync::Arc;
/// # async fn fixture() -> conformance::Fixture {
/// #     conformance::Fixture::new(Arc::new(lock_memory::MemoryBackend::new()))
/// # }
/// conformance::suite!(fixture, ignore = [no_such_case = "a typo"]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! suite {
    (redis = $connect:expr $(, $($options:tt)*)?) => {
        $crate::__suite_options!([redis $connect] [] [] $($($options)*)?);
    };
    ($fixture:expr $(, $($options:tt)*)?) => {
        $crate::__suite_options!([backend $fixture] [] [] $($($options)*)?);
    };
}

/// Reads `without = [...]` and `ignore = [...]`, in that order, each optional.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite_options {
    ($target:tt $without:tt $ignore:tt) => {
        $crate::__suite!($target $without $ignore);
    };
    ($target:tt [] [] without = [$($cap:ident),* $(,)?] $(, $($rest:tt)*)?) => {
        $crate::__suite_options!($target [$($cap),*] [] $($($rest)*)?);
    };
    (
        $target:tt $without:tt []
        ignore = [$($case:ident = $reason:literal),* $(,)?] $(, $($rest:tt)*)?
    ) => {
        $crate::__suite_options!($target $without [$($case = $reason),*] $($($rest)*)?);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($target:tt [$($without:ident),*] $ignore:tt) => {
        // A misspelled capability is a compile error, not a silently ignored word.
        $( const _: $crate::Capability = $crate::capability::$without; )*
        // `$` is passed along for the macros the tests are generated with.
        $crate::__with_cases!($crate::__suite_tests { [$] $target [$($without),*] $ignore });
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    (
        [$d:tt] $target:tt $without:tt [$($ignored:ident = $reason:literal),*]
        $( [$name:ident, $needs:ident] )*
    ) => {
        // One arm per ignored case, then one for the others: `macro_rules` compares
        // identifiers only against literal ones.
        macro_rules! __conformance_case {
            $(
                ($ignored $d needs:ident) => {
                    $crate::__suite_test!($target $without $ignored $d needs [$reason]);
                };
            )*
            ($d case:ident $d needs:ident) => {
                $crate::__suite_test!($target $without $d case $d needs []);
            };
        }
        // A misspelled case in `ignore` is a compile error, not a silently ignored word.
        macro_rules! __conformance_known {
            $( ($name) => {}; )*
            ($d other:ident) => {
                compile_error!(concat!("no conformance case is named ", stringify!($d other)));
            };
        }
        $( __conformance_case!($name $needs); )*
        $( __conformance_known!($ignored); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_test {
    // A case about the Redis server itself (its wire format, restarts, ACLs) does not apply to
    // a backend that is not on Redis: no test, rather than a test that is always ignored.
    ([backend $fixture:expr] $without:tt $name:ident redis_server $reason:tt) => {};
    ([redis $connect:expr] $without:tt $name:ident redis_server [$($reason:literal)?]) => {
        #[test]
        $( #[ignore = $reason] )?
        fn $name() {
            $crate::run_case(|| $crate::redis::server_fixture($connect), stringify!($name));
        }
    };
    ($target:tt $without:tt $name:ident always [$($reason:literal)?]) => {
        #[test]
        $( #[ignore = $reason] )?
        fn $name() {
            $crate::run_case($crate::__fixture!($target), stringify!($name));
        }
    };
    ($target:tt $without:tt $name:ident $needs:ident $reason:tt) => {
        $crate::__if_listed!($needs $without {
            #[test]
            #[ignore = concat!("the backend lacks the ", stringify!($needs), " capability")]
            fn $name() {
                $crate::check_lacks($crate::__fixture!($target), $crate::capability::$needs);
            }
        } {
            $crate::__suite_test!($target $without $name always $reason);
        });
    };
}

/// The fixture the backend-agnostic cases run on.
#[doc(hidden)]
#[macro_export]
macro_rules! __fixture {
    ([backend $fixture:expr]) => {
        $fixture
    };
    ([redis $connect:expr]) => {
        || $crate::redis::backend_fixture($connect)
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
    (queue [queue $(, $rest:ident)*] { $($yes:tt)* } $no:tt) => { $($yes)* };
    ($cap:ident [$head:ident $(, $rest:ident)*] $yes:tt $no:tt) => {
        $crate::__if_listed!($cap [$($rest),*] $yes $no);
    };
}
