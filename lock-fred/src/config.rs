//! From a URL to a `fred` configuration, checked as the `redis-rs` backend checks it (the same
//! schemes, TLS only with the `tls` feature), and an application's client's configuration
//! described for messages, without its password.

use fred::prelude::{Config, ServerConfig};
use fred::types::RespVersion;
use lock_core::{Error, ErrorKind, Result};

/// Parses and checks a URL as the `redis-rs` backend does, into a `fred` configuration.
pub(crate) fn config_from_url(url: &str, target: &str) -> Result<Config> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis URL {target}: {why}"),
        )
    };
    if let Some(nodes) = lock_core::redis::cluster_nodes(url) {
        return cluster_config(url, nodes?.len(), target);
    }
    if let Some(checked) = lock_core::redis::sentinel_target(url) {
        checked?;
        return sentinel_config(url, target);
    }
    let parsed = url::Url::parse(url).map_err(|e| invalid("not a URL").with_source(e))?;
    let tls = match parsed.scheme() {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        other => {
            return Err(invalid(&format!(
                "unsupported scheme {other:?}; expected redis://, or rediss:// for TLS"
            )));
        }
    };
    // fred only logs a warning for rediss:// without TLS support, and connects in plaintext.
    if tls && !cfg!(feature = "tls") {
        return Err(invalid(
            "TLS (rediss://) needs lock-fred's `tls` feature; refusing to connect in plaintext",
        ));
    }
    let mut version = RespVersion::RESP2;
    for (name, value) in parsed.query_pairs() {
        if name == "protocol" {
            version = match &*value {
                "2" | "resp2" => RespVersion::RESP2,
                "3" | "resp3" => RespVersion::RESP3,
                _ => return Err(invalid("invalid protocol version, expected resp2 or resp3")),
            };
        }
    }
    #[cfg(feature = "tls")]
    if tls {
        // Before fred builds its TLS configuration.
        use_ring_unless_chosen();
    }
    let mut config = Config::from_url_centralized(url).map_err(|e| {
        let err = invalid("not a Redis URL");
        // fred's messages do not quote the URL; never pass one on that would show the password.
        match parsed.password() {
            Some(password) if e.details().contains(password) => err,
            _ => err.with_source(e),
        }
    })?;
    config.version = version;
    // Report the first connection's failure instead of retrying in the background: the
    // builder retries itself, within its connect timeout.
    config.fail_fast = true;
    Ok(config)
}

/// Refuses TLS without the `tls` feature (fred would connect in plain text), and with it makes
/// sure of a crypto provider; `invalid` words the error for the URL's kind.
fn allow_tls(tls: bool, scheme: &str, invalid: impl Fn(&str) -> Error) -> Result<()> {
    if tls && !cfg!(feature = "tls") {
        return Err(invalid(&format!(
            "TLS ({scheme}://) needs lock-fred's `tls` feature; refusing to connect in plaintext"
        )));
    }
    #[cfg(feature = "tls")]
    if tls {
        use_ring_unless_chosen();
    }
    Ok(())
}

/// A Sentinel URL, already checked by [`sentinel_target`](lock_core::redis::sentinel_target),
/// as `fred` reads it:
/// `redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port` (every host a
/// sentinel). fred asks the sentinels for the primary, and again after a disconnection.
fn sentinel_config(url: &str, target: &str) -> Result<Config> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis Sentinel URL {target}: {why}"),
        )
    };
    allow_tls(lock_core::redis::wants_tls(url), "rediss-sentinel", invalid)?;
    let mut config = Config::from_url_sentinel(url).map_err(|_| {
        // fred's messages may quote the URL, password included: none is passed on.
        invalid("expected redis-sentinel://host:port/db?sentinelServiceName=name&node=host:port")
    })?;
    config.version = RespVersion::RESP2;
    config.fail_fast = true;
    Ok(config)
}

/// A Redis Cluster URL (`redis-cluster://host:port?node=host:port`), already checked by
/// [`cluster_nodes`](lock_core::redis::cluster_nodes), into a clustered configuration with
/// `seeds` seed nodes.
fn cluster_config(url: &str, seeds: usize, target: &str) -> Result<Config> {
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("invalid Redis Cluster URL {target}: {why}"),
        )
    };
    allow_tls(lock_core::redis::wants_tls(url), "rediss-cluster", invalid)?;
    let mut config = Config::from_url_clustered(url).map_err(|_| {
        // fred's messages may quote the URL, password included: none is passed on.
        invalid("not a cluster URL fred reads")
    })?;
    if let ServerConfig::Clustered { hosts, .. } = &config.server
        && hosts.len() != seeds
    {
        return Err(invalid("fred read another list of seed nodes"));
    }
    // Sharded Pub/Sub and the scripts' routing need no more; RESP2 as on one server.
    config.version = RespVersion::RESP2;
    config.fail_fast = true;
    Ok(config)
}

/// Makes `ring` rustls's process-wide crypto provider, unless the application chose one: fred
/// builds the TLS configuration of a `rediss://` URL with that default, and rustls cannot pick
/// one by itself when other crates of the build switched on none or several of its providers.
#[cfg(feature = "tls")]
fn use_ring_unless_chosen() {
    use fred::rustls::crypto::{CryptoProvider, ring};
    if CryptoProvider::get_default().is_none() {
        // Fails only if another thread installed one meanwhile, which is then used.
        let _ = ring::default_provider().install_default();
    }
}

/// The server of an application's client, for messages: never its password.
pub(crate) fn describe(config: &Config) -> String {
    let hosts = |servers: &mut dyn Iterator<Item = String>| servers.collect::<Vec<_>>().join(",");
    let host = |host: &str, port: u16| {
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };
    match &config.server {
        ServerConfig::Centralized { server } => format!(
            "redis://{}/{}",
            host(&server.host, server.port),
            config.database.unwrap_or(0)
        ),
        ServerConfig::Clustered { hosts: servers, .. } => format!(
            "redis cluster {}",
            hosts(&mut servers.iter().map(|s| host(&s.host, s.port)))
        ),
        ServerConfig::Sentinel {
            hosts: servers,
            service_name,
            ..
        } => format!(
            "redis sentinel {} service {service_name}",
            hosts(&mut servers.iter().map(|s| host(&s.host, s.port)))
        ),
        #[allow(unreachable_patterns, reason = "variants behind fred's features")]
        _ => "redis (application's fred client)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_like_redis_rs_does() {
        let ok = config_from_url("redis://u:pw@h:6380/2?protocol=resp3", "t").unwrap();
        assert_eq!(ok.version, RespVersion::RESP3);
        assert_eq!(ok.database, Some(2));
        assert!(ok.fail_fast);
        assert!(config_from_url("valkey://h/", "t").is_ok());
        let cluster = config_from_url("redis-cluster://:pw@h:1?node=g:2", "t").unwrap();
        assert!(
            matches!(cluster.server, ServerConfig::Clustered { ref hosts, .. } if hosts.len() == 2)
        );
        for bad in [
            "http://h/",
            "redis-cluster://h:1/2",
            "redis-cluster://h:1?node=g",
            "redis+unix:///tmp/redis.sock",
            "redis://h/?protocol=4",
        ] {
            let err = config_from_url(bad, "t").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
        let tls = config_from_url("rediss://h:6380/", "t");
        if cfg!(feature = "tls") {
            assert!(tls.is_ok());
        } else {
            let err = tls.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("`tls` feature"), "{err}");
        }
    }
}
