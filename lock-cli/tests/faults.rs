//! The fault suite: what production does to a lock, done to real `process-lock` processes
//! talking to real `redis-server` processes that this suite starts itself (on loopback ports
//! below the ephemeral range, without persistence), on every backend, each scenario repeated.
//!
//! The program each `run` runs is a critical section that logs its start (with its fencing
//! token) and end with `date +%s%N` and increments a counter read-modify-write; every scenario
//! that runs sections checks that no two overlap, that the fencing tokens strictly increase in
//! the order the sections started, and that the counter lost no update (see
//! `harness::Case::check_exclusion`), besides its exit codes and timings.
//!
//! Faults: connections killed (`CLIENT KILL TYPE normal` and `pubsub`), a restart that loses
//! every key, an outage of 5 s, a stall (SIGSTOP) longer than the TTL, a key of another type,
//! ACL users without `PUBLISH`, `SUBSCRIBE` or `EVAL`/`EVALSHA`, a TTL too short to renew, a
//! wrong password; and a user allowed only the commands the README lists.
//!
//! The repetitions of a scenario on one backend run one after another; the backends (and the
//! two kinds of `CLIENT KILL`) run concurrently, each with servers of its own. A summary of
//! every lane, and the timings each run measured, are printed on stderr:
//! `cargo test -p lock-cli --test faults -- --nocapture` shows them for passing tests too.
//!
//! A server the suite starts has just started, and the delayed restart rule refuses a free
//! lock on such a server for one TTL: before the first acquisition, each scenario makes the
//! server look as if it had been up for a day (`Server::pretend_up_for_a_day`), as servers in
//! production are; the restart scenarios then check the rule after a real restart.

#[path = "faults/harness.rs"]
mod harness;

use std::time::Duration;

use conformance::redis_server::Resp;
use harness::{BACKENDS, Case, MS, Server, WITHIN, lane, ms_between, report, wait_for_waiters};

/// `TTL` as the CLI's `--ttl` and in nanoseconds.
const TTL_2S: (&str, u128) = ("2s", 2_000 * MS);
const TTL_3S: (&str, u128) = ("3s", 3_000 * MS);

/// How long a holder that is meant to be stopped works: far longer than any scenario waits.
const FOREVER: &str = "25";

/// Creates the file that opens a critical section's gate.
fn open_gate(gate: &std::path::Path) {
    std::fs::write(gate, "").expect("the gate file");
}

/// Asserts that `lock` is open, by `process-lock status`.
async fn assert_open(case: &Case, server: &Server) {
    let status = case
        .output("status", &server.url(), &["status", &case.name])
        .await;
    status.expect_code(0, case.backend);
    assert_eq!(
        status.stdout,
        format!("{}: open\n", case.name),
        "[{}] the lock was released",
        case.backend
    );
}

/// The elements of the list at `key`.
async fn lrange(server: &Server, key: &str) -> Vec<String> {
    match server.admin(&["LRANGE", key, "0", "-1"]).await {
        Resp::Array(Some(items)) => items
            .iter()
            .map(|item| item.as_str().expect("a string element").to_owned())
            .collect(),
        other => panic!("LRANGE answered {other:?}"),
    }
}

async fn dbsize(server: &Server) -> i64 {
    server
        .admin(&["DBSIZE"])
        .await
        .as_int()
        .expect("DBSIZE answers an integer")
}

// ---------------------------------------------------------------------------------------------
// 1. Connections killed.

/// `CLIENT KILL TYPE normal` (and, separately, `TYPE pubsub`) while one `run` holds (TTL 10 s)
/// and another waits: the holder's program ends normally and its release succeeds (retried on
/// a new connection), so the waiter starts well under the TTL after the holder's end (< 3 s);
/// both exit 0; no overlap; the lock is open afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_heal_and_the_lock_is_handed_over_promptly() {
    let mut lanes = Vec::new();
    for kind in ["normal", "pubsub"] {
        for &backend in BACKENDS {
            lanes.push(lane(
                format!("CLIENT KILL TYPE {kind} on {backend}"),
                5,
                move |_| client_kill(backend, kind),
            ));
        }
    }
    report("1. CLIENT KILL while one holds and one waits", lanes).await;
}

async fn client_kill(backend: &'static str, kind: &'static str) {
    let server = Server::start().await;
    let case = Case::new(backend, "client-kill");
    server.pretend_up_for_a_day(&case.name).await;
    let url = server.url();
    let gate = case.file("gate");
    let mut holder = case.section("holder", &url, &["--ttl", "10s"], "0.3", Some(&gate));
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &url, &["--ttl", "10s", "--wait"], "0.2", None);
    wait_for_waiters(&server, &case.name, 1).await;

    let killed = server
        .admin(&["CLIENT", "KILL", "TYPE", kind])
        .await
        .as_int()
        .expect("CLIENT KILL answers a count");
    assert!(
        killed >= 1,
        "[{backend}] CLIENT KILL TYPE {kind} killed no connection"
    );
    // The holder ends 0.3 s later: its release is the first command after the kill.
    open_gate(&gate);

    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(0, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);
    let (h, w) = (case.one(&sections, "holder"), case.one(&sections, "waiter"));
    let hand_over = ms_between(h.end(), w.start);
    eprintln!(
        "[faults] [{backend}] CLIENT KILL TYPE {kind}: {killed} killed; hand-over {hand_over} ms"
    );
    assert!(
        hand_over < 3_000,
        "[{backend}] after CLIENT KILL TYPE {kind} ({killed} killed), the waiter started \
         {hand_over} ms after the holder ended (TTL 10 s): the lock was not released, or the \
         waiter was not woken; holder's stderr: {:?}; waiter's stderr: {:?}",
        holder.stderr,
        waiter.stderr
    );
    assert_open(&case, &server).await;
}

// ---------------------------------------------------------------------------------------------
// 2. A restart that loses every key.

/// Redis killed (SIGKILL) and started again at once on the same port, empty, while one `run`
/// holds (`--ttl 2s`, a long program) and another waits: the holder learns at its next
/// renewal that its lock is gone, its program gets SIGTERM (well before its TTL could have run
/// out) and it exits 70; the waiter gets the lock no sooner than one TTL after the restart
/// (the delayed restart rule) but not long after, runs and exits 0; no overlap; the waiter's
/// fencing token is greater than the holder's although the restart lost the counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_loses_data_is_a_loss_not_a_second_holder() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("restart on {backend}"), 5, move |_| {
                restart(backend)
            })
        })
        .collect();
    report("2. Redis restarted without its data", lanes).await;
}

async fn restart(backend: &'static str) {
    let (ttl, ttl_ns) = TTL_2S;
    let mut server = Server::start().await;
    let case = Case::new(backend, "restart");
    server.pretend_up_for_a_day(&case.name).await;
    let url = server.url();
    let mut holder = case.section("holder", &url, &["--ttl", ttl], FOREVER, None);
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &url, &["--ttl", ttl, "--wait"], "0.3", None);
    wait_for_waiters(&server, &case.name, 1).await;

    let killed_at = server.kill().await;
    let restarted_at = server.restart().await;

    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(70, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);
    let (h, w) = (case.one(&sections, "holder"), case.one(&sections, "waiter"));
    assert_eq!(
        h.how, "term",
        "[{backend}] the holder's program was stopped by SIGTERM: {h:?}"
    );
    let stopped = ms_between(killed_at, h.end());
    let granted = ms_between(restarted_at, w.start);
    eprintln!(
        "[faults] [{backend}] restart: holder's SIGTERM {stopped} ms after the kill; waiter \
         granted {granted} ms after the restart; fences {} then {}",
        h.fence_text, w.fence_text
    );
    assert!(
        stopped < ms(ttl_ns) + 500,
        "[{backend}] the holder's program got SIGTERM {stopped} ms after the restart, past \
         its TTL of {ttl}; holder's stderr: {:?}",
        holder.stderr
    );
    assert!(
        granted >= ms(ttl_ns) - 100,
        "[{backend}] DELAYED RESTART: the waiter got the lock {granted} ms after the restart, \
         sooner than one TTL ({ttl}); waiter's stderr: {:?}",
        waiter.stderr
    );
    assert!(
        granted < ms(ttl_ns) + 6_000,
        "[{backend}] the waiter got the lock only {granted} ms after the restart (TTL {ttl}); \
         waiter's stderr: {:?}",
        waiter.stderr
    );
    assert!(
        w.fence > h.fence,
        "[{backend}] the waiter's fencing token {} is not above the holder's {} after the \
         restart",
        w.fence_text,
        h.fence_text
    );
}

fn ms(ns: u128) -> i64 {
    i64::try_from(ns / MS).unwrap()
}

// ---------------------------------------------------------------------------------------------
// 3. An outage.

/// Redis down for 5 s (killed, started again empty on the same port) while one `run` holds
/// (`--ttl 2s`) and another waits: the holder's program is stopped once its validity runs out
/// (SIGTERM within its TTL of the outage's start, exit 70); the waiter rides through the
/// outage and takes the lock once the server is back and the restart delay (its TTL) has
/// passed, and exits 0; no overlap; fences increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_rides_through_an_outage() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("5 s outage on {backend}"), 3, move |_| {
                outage(backend)
            })
        })
        .collect();
    report("3. Redis down for 5 s", lanes).await;
}

async fn outage(backend: &'static str) {
    let (ttl, ttl_ns) = TTL_2S;
    let mut server = Server::start().await;
    let case = Case::new(backend, "outage");
    server.pretend_up_for_a_day(&case.name).await;
    let url = server.url();
    let mut holder = case.section("holder", &url, &["--ttl", ttl], FOREVER, None);
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &url, &["--ttl", ttl, "--wait"], "0.3", None);
    wait_for_waiters(&server, &case.name, 1).await;

    let down_at = server.kill().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let back_at = server.restart().await;

    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(70, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);
    let (h, w) = (case.one(&sections, "holder"), case.one(&sections, "waiter"));
    assert_eq!(
        h.how, "term",
        "[{backend}] the holder's program was stopped by SIGTERM: {h:?}"
    );
    let stopped = ms_between(down_at, h.end());
    let granted = ms_between(back_at, w.start);
    eprintln!(
        "[faults] [{backend}] outage: holder's SIGTERM {stopped} ms into the outage; waiter \
         granted {granted} ms after the server came back"
    );
    assert!(
        stopped < ms(ttl_ns) + 500,
        "[{backend}] the holder's program got SIGTERM {stopped} ms into the outage, past its \
         TTL of {ttl}; holder's stderr: {:?}",
        holder.stderr
    );
    assert!(
        granted >= ms(ttl_ns) - 100,
        "[{backend}] DELAYED RESTART: the waiter got the lock {granted} ms after the server \
         came back, sooner than one TTL ({ttl}); waiter's stderr: {:?}",
        waiter.stderr
    );
    assert!(
        granted < ms(ttl_ns) + 6_000,
        "[{backend}] the waiter got the lock only {granted} ms after the server came back \
         (TTL {ttl}); waiter's stderr: {:?}",
        waiter.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 4. A stall longer than the TTL.

/// Redis stalled by SIGSTOP for 6 s while one `run` holds (`--ttl 3s`) and another waits: the
/// holder's program gets SIGTERM about 2 s after the stall began (its validity, the TTL less
/// the clock drift, from its last renewal: between 1.5 and 3.5 s here, never after the
/// server resumes) and the holder exits 70; the waiter does not give up (no exit 69), takes
/// the lock after SIGCONT and exits 0; no overlap; fences increase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_stops_the_holder_in_time_and_the_waiter_waits_it_out() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("6 s SIGSTOP on {backend}"), 3, move |i| {
                stall(backend, i)
            })
        })
        .collect();
    report("4. Redis stalled (SIGSTOP) for 6 s", lanes).await;
}

/// Run `i` stalls the server at a different point of the holder's renewal period (TTL / 3 =
/// 1 s): from about 0.2 s after the acquisition in run 1 to about 0.9 s in run 3.
async fn stall(backend: &'static str, i: usize) {
    let (ttl, _) = TTL_3S;
    let server = Server::start().await;
    let case = Case::new(backend, "stall");
    server.pretend_up_for_a_day(&case.name).await;
    let url = server.url();
    let mut holder = case.section("holder", &url, &["--ttl", ttl], FOREVER, None);
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &url, &["--ttl", ttl, "--wait"], "0.3", None);
    wait_for_waiters(&server, &case.name, 1).await;
    let phase = u64::try_from((i - 1) % 3 * 350).unwrap();
    tokio::time::sleep(Duration::from_millis(phase)).await;

    let stopped_at = server.stop();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let resumed_at = server.resume();

    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(70, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);
    let (h, w) = (case.one(&sections, "holder"), case.one(&sections, "waiter"));
    assert_eq!(
        h.how, "term",
        "[{backend}] the holder's program was stopped by SIGTERM: {h:?}"
    );
    let stopped = ms_between(stopped_at, h.end());
    let after_resume = ms_between(resumed_at, w.start);
    eprintln!(
        "[faults] [{backend}] stall: holder's SIGTERM {stopped} ms into the stall; waiter \
         started {after_resume} ms after SIGCONT"
    );
    assert!(
        (1_500..3_500).contains(&stopped),
        "[{backend}] the holder's program got SIGTERM {stopped} ms after the stall began \
         (expected about 2 s: TTL {ttl} less the drift, from its last renewal); holder's \
         stderr: {:?}",
        holder.stderr
    );
    assert!(
        (0..4_000).contains(&after_resume),
        "[{backend}] the waiter started {after_resume} ms after the server resumed; waiter's \
         stderr: {:?}",
        waiter.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A key that is not a lock.

/// A list under the lock's name: `clear --force`, `status` and `run` each exit 76, and the
/// list is intact after each; the program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_another_type_is_never_touched() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("a list on {backend}"), 3, move |_| {
                wrong_type(backend)
            })
        })
        .collect();
    report("5. A list stored under the lock's name", lanes).await;
}

async fn wrong_type(backend: &'static str) {
    let server = Server::start().await;
    let case = Case::new(backend, "wrong-type");
    let url = server.url();
    let name = case.name.clone();
    let list = ["a", "b", "c"];
    server
        .admin(&["RPUSH", &name, list[0], list[1], list[2]])
        .await;
    let ran = case.file("ran");
    let ran_text = ran.to_str().unwrap();

    let clear = case
        .output("clear", &url, &["clear", &name, "--force"])
        .await;
    clear.expect_code(76, backend);
    assert_eq!(
        lrange(&server, &name).await,
        list,
        "[{backend}] clear --force destroyed the list"
    );

    let status = case.output("status", &url, &["status", &name]).await;
    status.expect_code(76, backend);

    let run = case
        .output(
            "run",
            &url,
            &["run", "--name", &name, "--", "touch", ran_text],
        )
        .await;
    run.expect_code(76, backend);
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(
        lrange(&server, &name).await,
        list,
        "[{backend}] run changed the list"
    );
    assert_eq!(
        server.admin(&["TYPE", &name]).await.as_str(),
        Some("list"),
        "[{backend}]"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A user that may not publish.

/// An ACL user without `PUBLISH` holds with `run` (TTL 20 s) and its program ends while
/// another `run` (default user) waits: the release frees the lock and says that waiters were
/// not notified (not that it "expires within 20s"); the waiter, rechecking every 2 s without a
/// notification, starts within 4 s of the holder's end, not after the TTL; both exit 0; no
/// overlap. Then `clear --force` by that user clears a held lock, exit 0, with the same
/// warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_cannot_notify_says_so_and_waiters_still_learn_of_it() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("no PUBLISH on {backend}"), 3, move |_| {
                no_publish(backend)
            })
        })
        .collect();
    report("6. An ACL user without PUBLISH releases", lanes).await;
}

async fn no_publish(backend: &'static str) {
    let server = Server::start().await;
    server
        .admin(&[
            "ACL", "SETUSER", "nopub", "on", ">pw", "~*", "&*", "+@all", "-publish",
        ])
        .await;
    let case = Case::new(backend, "no-publish");
    server.pretend_up_for_a_day(&case.name).await;
    let (url, nopub) = (server.url(), server.url_as("nopub", "pw"));
    let gate = case.file("gate");
    let mut holder = case.section("holder", &nopub, &["--ttl", "20s"], "0.2", Some(&gate));
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &url, &["--ttl", "20s", "--wait"], "0.2", None);
    wait_for_waiters(&server, &case.name, 1).await;
    open_gate(&gate);

    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(0, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);
    let (h, w) = (case.one(&sections, "holder"), case.one(&sections, "waiter"));
    let hand_over = ms_between(h.end(), w.start);
    eprintln!("[faults] [{backend}] no PUBLISH: hand-over {hand_over} ms");
    assert!(
        hand_over < 4_000,
        "[{backend}] the waiter started {hand_over} ms after a holder that may not publish \
         ended (TTL 20 s; waiters recheck every 2 s); waiter's stderr: {:?}",
        waiter.stderr
    );
    assert!(
        holder.stderr.to_lowercase().contains("notif"),
        "[{backend}] the holder's release did not say that waiters were not notified: {:?}",
        holder.stderr
    );
    assert!(
        !holder.stderr.contains("expires within"),
        "[{backend}] the holder's release claims the lock is still there: {:?}",
        holder.stderr
    );
    assert_open(&case, &server).await;

    server
        .admin(&["SET", &case.name, "someone", "PX", "60000"])
        .await;
    let clear = case
        .output("clear", &nopub, &["clear", &case.name, "--force"])
        .await;
    clear.expect_code(0, backend);
    assert!(
        clear.stderr.to_lowercase().contains("notif"),
        "[{backend}] clear --force without PUBLISH did not warn that waiters were not \
         notified: stdout {:?}, stderr {:?}",
        clear.stdout,
        clear.stderr
    );
    assert_eq!(
        server.admin(&["EXISTS", &case.name]).await.as_int(),
        Some(0),
        "[{backend}] clear --force cleared the lock"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A user that may not subscribe.

/// An ACL user that may not subscribe to the lock's channel waits (`run --wait`) for a held
/// lock: exit 77 (permission denied), every time (8 runs per backend), without running the
/// program or touching the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscribe_is_an_error_every_time() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("no SUBSCRIBE on {backend}"), 8, move |_| {
                no_subscribe(backend)
            })
        })
        .collect();
    report("7. An ACL user without SUBSCRIBE waits", lanes).await;
}

async fn no_subscribe(backend: &'static str) {
    let server = Server::start().await;
    server
        .admin(&[
            "ACL",
            "SETUSER",
            "nosub",
            "on",
            ">pw",
            "~*",
            "resetchannels",
            "&other",
            "+@all",
        ])
        .await;
    let case = Case::new(backend, "no-subscribe");
    server
        .admin(&["SET", &case.name, "someone", "PX", "60000"])
        .await;
    let ran = case.file("ran");
    let run = case
        .output(
            "run",
            &server.url_as("nosub", "pw"),
            &[
                "run",
                "--name",
                &case.name,
                "--wait",
                "--timeout",
                "5s",
                "--",
                "touch",
                ran.to_str().unwrap(),
            ],
        )
        .await;
    run.expect_code(77, backend);
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(
        server.raw().await.get(&case.name).await.unwrap().as_deref(),
        Some("someone"),
        "[{backend}] the held lock was left alone"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. A user that may not run scripts.

/// An ACL user without `EVALSHA` and `EVAL`: `run` exits 77 on a free lock and on a held one,
/// and so does `clear --force`; nothing changes (no key written, the held lock intact), the
/// program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_scripts_is_denied_and_nothing_changes() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("no EVAL on {backend}"), 3, move |_| {
                no_eval(backend)
            })
        })
        .collect();
    report("8. An ACL user without EVALSHA/EVAL", lanes).await;
}

async fn no_eval(backend: &'static str) {
    let server = Server::start().await;
    server
        .admin(&[
            "ACL", "SETUSER", "noeval", "on", ">pw", "~*", "&*", "+@all", "-evalsha", "-eval",
        ])
        .await;
    let case = Case::new(backend, "no-eval");
    let noeval = server.url_as("noeval", "pw");
    let ran = case.file("ran");
    let run_args = [
        "run",
        "--name",
        &case.name,
        "--",
        "touch",
        ran.to_str().unwrap(),
    ];

    let free = case.output("run-free", &noeval, &run_args).await;
    free.expect_code(77, backend);
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(
        dbsize(&server).await,
        0,
        "[{backend}] a denied run wrote keys"
    );

    server
        .admin(&["SET", &case.name, "someone", "PX", "60000"])
        .await;
    let held = case.output("run-held", &noeval, &run_args).await;
    held.expect_code(77, backend);
    let clear = case
        .output("clear", &noeval, &["clear", &case.name, "--force"])
        .await;
    clear.expect_code(77, backend);
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(
        server.raw().await.get(&case.name).await.unwrap().as_deref(),
        Some("someone"),
        "[{backend}] the held lock was left alone"
    );
    assert_eq!(dbsize(&server).await, 1, "[{backend}] keys were written");
}

// ---------------------------------------------------------------------------------------------
// 9. A TTL too short to renew.

/// `--ttl 1ms`: exit 64 with one line saying the TTL is too short; nothing is taken, the
/// program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_too_short_to_renew_is_bad_input() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("--ttl 1ms on {backend}"), 3, move |_| {
                tiny_ttl(backend)
            })
        })
        .collect();
    report("9. --ttl 1ms", lanes).await;
}

async fn tiny_ttl(backend: &'static str) {
    let server = Server::start().await;
    let case = Case::new(backend, "tiny-ttl");
    let ran = case.file("ran");
    let run = case
        .output(
            "run",
            &server.url(),
            &[
                "run",
                "--name",
                &case.name,
                "--ttl",
                "1ms",
                "--",
                "touch",
                ran.to_str().unwrap(),
            ],
        )
        .await;
    run.expect_code(64, backend);
    let stderr = run.stderr.to_lowercase();
    assert!(
        (stderr.contains("ttl") || stderr.contains("1ms"))
            && ["short", "at least", "minimum", "below", "too small"]
                .iter()
                .any(|word| stderr.contains(word)),
        "[{backend}] the message does not say the TTL is too short: {:?}",
        run.stderr
    );
    assert!(
        run.stderr.starts_with("process-lock: ") && run.stderr.lines().count() == 1,
        "[{backend}] not one process-lock: line: {:?}",
        run.stderr
    );
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(dbsize(&server).await, 0, "[{backend}] keys were written");
}

// ---------------------------------------------------------------------------------------------
// 10. A wrong password.

/// A wrong password (for an existing user, and for a user that does not exist): `run` and
/// `status` exit 78, without showing the password; the program never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_a_configuration_error() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("wrong password on {backend}"), 3, move |_| {
                wrong_password(backend)
            })
        })
        .collect();
    report("10. A wrong password", lanes).await;
}

async fn wrong_password(backend: &'static str) {
    const WRONG: &str = "Wr0ngPassw0rd";
    let server = Server::start().await;
    server
        .admin(&[
            "ACL", "SETUSER", "alice", "on", ">right", "~*", "&*", "+@all",
        ])
        .await;
    let case = Case::new(backend, "wrong-password");
    let ran = case.file("ran");
    for user in ["alice", "nobody"] {
        let url = server.url_as(user, WRONG);
        let run = case
            .output(
                "run",
                &url,
                &[
                    "run",
                    "--name",
                    &case.name,
                    "--",
                    "touch",
                    ran.to_str().unwrap(),
                ],
            )
            .await;
        let status = case.output("status", &url, &["status", &case.name]).await;
        for exit in [&run, &status] {
            exit.expect_code(78, backend);
            assert!(
                !exit.stderr.contains(WRONG) && !exit.stdout.contains(WRONG),
                "[{backend}] {} showed the password: {:?}",
                exit.tag,
                exit.stderr
            );
        }
    }
    assert!(!ran.exists(), "[{backend}] the program ran");
    assert_eq!(dbsize(&server).await, 0, "[{backend}] keys were written");
}

// ---------------------------------------------------------------------------------------------
// 11. A user allowed only what a lock needs.

/// The commands a lock user needs on a standalone server, as the README lists them (`ACL
/// SETUSER ... -@all` then these): the scripts (`EVALSHA`, and `EVAL` after a restart or a
/// `SCRIPT FLUSH`), what the scripts call, the Pub/Sub commands of the waiters, and what the
/// clients send when they connect.
const LOCK_COMMANDS: &[&str] = &[
    "+evalsha",
    "+eval",
    "+get",
    "+mget",
    "+set",
    "+del",
    "+exists",
    "+pexpire",
    "+pttl",
    "+type",
    "+time",
    "+info",
    "+zadd",
    "+zrange",
    "+zrangebyscore",
    "+zrank",
    "+zrem",
    "+zscore",
    "+publish",
    "+subscribe",
    "+unsubscribe",
    "+ping",
    "+client|id",
];

/// A user allowed the README's commands only, on the keys and channels of names under one
/// prefix (`~PREFIX* ~{PREFIX* ~process-lock:boot:*`, `&process-lock:released:PREFIX* &{PREFIX*`):
/// one `run` holds (`--ttl 2s`, so it renews), another waits in line and is handed the lock,
/// both exit 0 without overlap; `status` says open, `clear --force` clears a held lock; and
/// the server's `ACL LOG` records no command refused, the scripts' own included (a refused
/// `INFO` inside a script would pass unseen otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_allowed_only_the_lock_commands_does_everything() {
    let lanes = BACKENDS
        .iter()
        .map(|&backend| {
            lane(format!("least privilege on {backend}"), 3, move |_| {
                least_privilege(backend)
            })
        })
        .collect();
    report("11. A user allowed only what a lock needs", lanes).await;
}

async fn least_privilege(backend: &'static str) {
    let server = Server::start().await;
    let case = Case::new(backend, "acl");
    let prefix = case
        .name
        .rsplit_once(':')
        .map(|(head, _)| format!("{head}:"))
        .expect("a case's name has parts");
    let (keys, boot) = (format!("~{prefix}*"), "~process-lock:boot:*");
    let slot_keys = format!("~{{{prefix}*");
    let (released, slot_channels) = (
        format!("&process-lock:released:{prefix}*"),
        format!("&{{{prefix}*"),
    );
    let mut setuser = vec![
        "ACL",
        "SETUSER",
        "locker",
        "reset",
        "on",
        ">pw",
        &keys,
        &slot_keys,
        boot,
        &released,
        &slot_channels,
    ];
    setuser.extend_from_slice(LOCK_COMMANDS);
    server.admin(&setuser).await;
    server.admin(&["ACL", "LOG", "RESET"]).await;
    server.pretend_up_for_a_day(&case.name).await;
    let locker = server.url_as("locker", "pw");

    let mut holder = case.section("holder", &locker, &["--ttl", "2s"], "1.2", None);
    case.wait_started(&mut holder).await;
    let waiter = case.section("waiter", &locker, &["--ttl", "2s", "--wait"], "0.2", None);
    wait_for_waiters(&server, &case.name, 1).await;
    let holder = holder.finish(WITHIN).await;
    let waiter = waiter.finish(WITHIN).await;
    holder.expect_code(0, backend);
    waiter.expect_code(0, backend);
    let sections = case.sections(&[&holder, &waiter]);
    case.check_exclusion(&sections);

    let status = case
        .output("status", &locker, &["status", &case.name])
        .await;
    status.expect_code(0, backend);
    assert_eq!(
        status.stdout,
        format!("{}: open\n", case.name),
        "[{backend}]"
    );
    server
        .admin(&["SET", &case.name, "someone", "PX", "60000"])
        .await;
    let clear = case
        .output("clear", &locker, &["clear", &case.name, "--force"])
        .await;
    clear.expect_code(0, backend);
    assert_eq!(
        server.admin(&["EXISTS", &case.name]).await.as_int(),
        Some(0),
        "[{backend}] clear --force cleared the lock"
    );

    let refused = acl_log(&server).await;
    assert!(
        refused.is_empty(),
        "[{backend}] the server refused commands of the lock user (ACL LOG): {refused:#?}"
    );
}

/// The server's `ACL LOG`, an entry a line (`field value` pairs).
async fn acl_log(server: &Server) -> Vec<String> {
    fn text(resp: &Resp) -> String {
        match resp {
            Resp::Simple(s) | Resp::Error(s) => s.clone(),
            Resp::Int(n) => n.to_string(),
            Resp::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Resp::Bulk(None) | Resp::Array(None) => "nil".to_owned(),
            Resp::Array(Some(items)) => items.iter().map(text).collect::<Vec<_>>().join(" "),
        }
    }
    match server.admin(&["ACL", "LOG"]).await {
        Resp::Array(Some(entries)) => entries.iter().map(text).collect(),
        other => panic!("ACL LOG answered {other:?}"),
    }
}
