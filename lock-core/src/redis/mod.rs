//! The Redis protocol of process-lock, written once for every client: the Lua [`scripts`], the
//! [names](keys) a lock uses, the [`calls`] each operation makes (script, keys and arguments in
//! order), the reading of their [answers](reply), the [configuration](config) every builder
//! shares, the [`errors`] and the [TLS](tls) check.
//!
//! A client backend (`lock-redis-rs`, `lock-fred`) keeps only its transport: connecting (plain,
//! TLS; later Cluster, Sentinel), running a script, subscribing. It implements
//! [`RedisTransport`] for it, and [`RedisBackend`] does the rest: so does anything built on
//! transports (a waiter queue, Redlock over several servers), once for every client.
//!
//! ```text
//!   RedisBackend<T>            calls::acquire(..) -> Call<Acquire>     (calls, keys, scripts)
//!        | run(call)                   | script(): ScriptCall
//!        v                            v
//!   T: RedisTransport  ----- eval(ScriptCall, Deadline) -> Reply ----> Call::read (reply)
//! ```
//!
//! For backend authors; users meet these through the backends' builders.

mod arg;
mod backend;
pub mod calls;
pub mod config;
pub mod errors;
pub mod keys;
mod refresh;
pub mod reply;
pub mod scripts;
pub mod tls;
mod transport;

pub use arg::Arg;
pub use backend::RedisBackend;
pub use calls::{Call, ScriptCall};
pub use config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_RECONNECT_ATTEMPTS, DEFAULT_RESPONSE_TIMEOUT, REDIS_URL_ENV,
    ReplicaAck, SWITCH_MASTER, SentinelTarget, Settings, SwitchAnnouncements, announced_primary,
    cluster_nodes, sentinel_target, url_from_env, wants_tls,
};
pub use errors::{error_message, no_connection, no_reply, server_error_kind, unexpected};
pub use keys::key;
pub use refresh::{RefreshGate, RefreshPermit};
pub use reply::Reply;
pub use scripts::Script;
pub use tls::{PLAIN_TEXT_PROBE_DELAY, unless_plain_text};
pub use transport::{Deadline, RedisTransport};

#[doc(inline)]
pub use crate::{__redis_backend_api as backend_api, __redis_builder_api as builder_api};
