//! What the fnOS test files share: the emulator with its fixture key,
//! client options with short deadlines and backoff, and a bound on every
//! test so a hang fails instead of blocking the suite.

use std::time::Duration;

use naslink_sim::fnos::{Config, Handle, KeySource, Server};
use naslink_tokio::fnos::{Backoff, FnosOptions};

/// The emulator on an ephemeral loopback port, with the fixture RSA key.
pub async fn emulator(config: Config) -> Handle {
    Server::start(Config {
        key: KeySource::Fixture,
        ..config
    })
    .await
    .expect("emulator starts")
}

/// `admin` with `password`, 5 s requests, quick reconnects.
pub fn options(url: &str, password: &str) -> FnosOptions {
    let mut options = FnosOptions::new(url, "admin", password);
    options.request_timeout = Duration::from_secs(5);
    options.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    options
}

/// Run `f`, failing the test if it takes longer than `secs` seconds.
pub async fn bounded<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test finished in time")
}
