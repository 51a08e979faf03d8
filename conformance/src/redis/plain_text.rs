//! A shared Redis case for a `rediss://` URL that names a plain-text server.

use std::time::{Duration, Instant};

use lock_core::ErrorKind;

use super::{RedisFixture, RedisOptions};

/// `rediss://` to this plain-text server is a configuration error within a second, not a wait
/// for the connect timeout (here 5 s): a backend without TLS support refuses the URL, naming
/// its `tls` feature; one with it finds that the server speaks plain text. Then the same once
/// the server requires a password (it answers `-NOAUTH`). The password is never shown.
pub async fn rediss_to_a_plain_text_server_is_a_config_error_at_once(fx: &RedisFixture) {
    let url = fx.url().replacen("redis://", "rediss://:s3cret-pw@", 1);
    let mut admin = fx.raw().await;
    for requirepass in [false, true] {
        if requirepass {
            admin
                .run(&["CONFIG", "SET", "requirepass", "s3cret-pw"])
                .await
                .unwrap();
        }
        for attempt in 0..5 {
            let options = RedisOptions::default().with_connect_timeout(Duration::from_secs(5));
            let started = Instant::now();
            let err = fx.connect(&url, options).await.unwrap_err();
            let elapsed = started.elapsed();
            let shown = format!("{err} {err:?}");
            let attempt = format!("requirepass {requirepass}, try {attempt}: {shown}");
            assert_eq!(err.kind(), ErrorKind::Config, "{attempt}");
            assert!(elapsed < Duration::from_secs(1), "{elapsed:?}, {attempt}");
            let message = err.to_string();
            assert!(
                message.contains("speaks plain text, not TLS: use redis://")
                    || message.contains("`tls` feature"),
                "{attempt}"
            );
            assert!(!shown.contains("s3cret-pw"), "{attempt}");
        }
    }
}
