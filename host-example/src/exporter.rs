//! `naslink exporter`: a Prometheus exporter for an fnOS NAS.
//!
//! One session is kept open (the client reconnects by itself); each scrape
//! of `/metrics` takes a fresh [`Snapshot`](naslink_tokio::fnos::Snapshot)
//! and answers it in the OpenMetrics text format, written by the
//! `prometheus-client` crate into a registry made for that scrape (so a
//! disk or container that went away leaves no stale series). Names follow
//! the Prometheus conventions: `naslink_` prefix, base units (bytes,
//! seconds, celsius, ratios). `naslink_up` is 0 when the NAS could not be
//! reached or the snapshot failed; `naslink_scrape_duration_seconds` says
//! how long the snapshot took.
//!
//! The HTTP side is minimal on purpose: `GET /metrics` (anything else is
//! 404), one request per connection, the request head capped at 8 KiB and
//! read within 10 s, at most 16 connections at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use naslink_tokio::core::fnos::health::{Level, Thresholds};
use naslink_tokio::core::fnos::panel::{ContainerState, PoolState, SmartVerdict};
use naslink_tokio::fnos::{FnosClient, FnosOptions, Part, Snapshot};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore};

use crate::Failure;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Longest wait for a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// The content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Value = Gauge<f64, AtomicU64>;
type Labelled = Family<Vec<(String, String)>, Value>;

/// The session, opened at the first scrape and kept.
struct Exporter {
    options: FnosOptions,
    client: Mutex<Option<FnosClient>>,
}

/// Serve `/metrics` on `listen` until interrupted.
pub async fn run(listen: SocketAddr, options: FnosOptions) -> Result<(), Failure> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::Connection(format!("cannot listen on {listen}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Connection(e.to_string()))?;
    eprintln!("naslink: exporter on http://{local}/metrics");
    let exporter = Arc::new(Exporter {
        options,
        client: Mutex::new(None),
    });
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| Failure::Connection(format!("accept: {e}")))?;
        let Ok(permit) = slots.clone().acquire_owned().await else {
            continue;
        };
        let exporter = exporter.clone();
        tokio::spawn(async move {
            let _ = serve(stream, &exporter).await;
            drop(permit);
        });
    }
}

/// Answer one request on `stream`.
async fn serve(mut stream: TcpStream, exporter: &Exporter) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(HEAD_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => match absorb(&mut head, buf.get(..n).unwrap_or_default()) {
                    Head::More => {}
                    Head::Complete => return true,
                    Head::TooLarge => return false,
                },
            }
        }
    })
    .await;
    if read != Ok(true) {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            "bad request\n",
        )
        .await;
    }
    if !is_metrics_request(&head) {
        return respond(&mut stream, "404 Not Found", "text/plain", "try /metrics\n").await;
    }
    let body = exporter.scrape().await;
    respond(&mut stream, "200 OK", CONTENT_TYPE, &body).await
}

/// Where reading a request head stands.
#[derive(Debug, PartialEq, Eq)]
enum Head {
    /// No blank line yet.
    More,
    /// The blank line ending the head arrived.
    Complete,
    /// [`MAX_HEAD`] bytes without a blank line.
    TooLarge,
}

/// Add `chunk` to `head` (never beyond [`MAX_HEAD`]) and say whether the
/// head is complete.
fn absorb(head: &mut Vec<u8>, chunk: &[u8]) -> Head {
    let room = MAX_HEAD.saturating_sub(head.len());
    head.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or_default());
    if head.windows(4).any(|w| w == b"\r\n\r\n") {
        Head::Complete
    } else if head.len() >= MAX_HEAD {
        Head::TooLarge
    } else {
        Head::More
    }
}

/// Whether the request line is `GET /metrics ...`.
fn is_metrics_request(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|b| *b == b' ');
    words.next() == Some(b"GET") && words.next() == Some(b"/metrics")
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

impl Exporter {
    /// A fresh snapshot, as OpenMetrics text.
    async fn scrape(&self) -> String {
        let started = Instant::now();
        let snapshot = self.snapshot().await;
        let mut registry = Registry::with_prefix("naslink");
        gauge(
            &mut registry,
            "up",
            "Whether the NAS answered this scrape's snapshot (1) or not (0)",
            None,
            if snapshot.is_some() { 1.0 } else { 0.0 },
        );
        gauge(
            &mut registry,
            "scrape_duration",
            "Time taken by this scrape's snapshot",
            Some(Unit::Seconds),
            started.elapsed().as_secs_f64(),
        );
        if let Some(snapshot) = &snapshot {
            record(&mut registry, snapshot);
        }
        let mut out = String::new();
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    /// The snapshot, connecting first if needed; `None` on any failure.
    async fn snapshot(&self) -> Option<Snapshot> {
        let mut client = self.client.lock().await;
        if client.is_none() {
            match FnosClient::connect(self.options.clone()).await {
                Ok(c) => *client = Some(c),
                Err(e) => {
                    eprintln!("naslink: exporter: {e}");
                    return None;
                }
            }
        }
        let nas = client.as_ref()?.clone();
        drop(client);
        match nas.snapshot().await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("naslink: exporter: {e}");
                None
            }
        }
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>, value: f64) {
    let g = Value::default();
    g.set(value);
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, g),
        None => registry.register(name, help, g),
    }
}

fn family(registry: &mut Registry, name: &str, help: &str, unit: Option<Unit>) -> Labelled {
    let f = Labelled::default();
    match unit {
        Some(unit) => registry.register_with_unit(name, help, unit, f.clone()),
        None => registry.register(name, help, f.clone()),
    }
    f
}

fn set(family: &Labelled, label: &str, name: &str, value: f64) {
    family
        .get_or_create(&vec![(label.to_owned(), name.to_owned())])
        .set(value);
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The snapshot's figures as metrics.
fn record(registry: &mut Registry, s: &Snapshot) {
    let report = s.health(&Thresholds::default());
    gauge(
        registry,
        "health_status",
        "The core's health verdict: 0 OK, 1 WARNING, 2 CRITICAL",
        None,
        match report.level {
            Level::Ok => 0.0,
            Level::Warning => 1.0,
            Level::Critical => 2.0,
        },
    );
    let denied = family(
        registry,
        "needs_admin",
        "Panel parts the account may not read (administrators only)",
        None,
    );
    for part in &report.needs_admin {
        set(&denied, "part", part, 1.0);
    }
    let refused = family(
        registry,
        "part_refused",
        "Panel parts the server refused for another reason (a command this firmware lacks)",
        None,
    );
    for part in &report.refused {
        set(&refused, "part", part, 1.0);
    }
    if let Part::Known(cpu) = &s.cpu {
        if let Some(t) = cpu.temperature {
            gauge(
                registry,
                "cpu_temperature",
                "CPU temperature",
                Some(Unit::Celsius),
                f64::from(t),
            );
        }
        if let Some(b) = cpu.busy_percent {
            gauge(
                registry,
                "cpu_busy_ratio",
                "CPU busy, all cores",
                None,
                f64::from(b) / 100.0,
            );
        }
    }
    if let Part::Known(disks) = &s.disks {
        let temp = family(
            registry,
            "disk_temperature",
            "Disk temperature",
            Some(Unit::Celsius),
        );
        let size = family(registry, "disk_size", "Disk size", Some(Unit::Bytes));
        let healthy = family(
            registry,
            "disk_smart_healthy",
            "SMART self-assessment passed (1) or failing (0); absent when unknown",
            None,
        );
        for d in disks {
            if let Some(t) = d.temperature {
                set(&temp, "disk", &d.name, f64::from(t));
            }
            if let Some(b) = d.size {
                set(&size, "disk", &d.name, b as f64);
            }
            match d.smart {
                SmartVerdict::Passed => set(&healthy, "disk", &d.name, 1.0),
                SmartVerdict::Failing => set(&healthy, "disk", &d.name, 0.0),
                SmartVerdict::Unknown => {}
            }
        }
    }
    if let Part::Known(pools) = &s.pools {
        let size = family(registry, "volume_size", "Volume size", Some(Unit::Bytes));
        let free = family(
            registry,
            "volume_free",
            "Volume free space",
            Some(Unit::Bytes),
        );
        let degraded = family(
            registry,
            "pool_degraded",
            "Pool degraded with no rebuild running",
            None,
        );
        let rebuilding = family(registry, "pool_rebuilding", "Pool rebuild running", None);
        for p in pools {
            if let Some(b) = p.size {
                set(&size, "volume", &p.name, b as f64);
            }
            if let Some(b) = p.free {
                set(&free, "volume", &p.name, b as f64);
            }
            set(
                &degraded,
                "pool",
                &p.name,
                flag(p.state == PoolState::Degraded),
            );
            set(
                &rebuilding,
                "pool",
                &p.name,
                flag(matches!(p.state, PoolState::Rebuilding(_))),
            );
        }
    }
    if let Part::Known(containers) = &s.containers {
        let running = family(
            registry,
            "container_running",
            "Docker container running",
            None,
        );
        for c in containers {
            set(
                &running,
                "container",
                &c.name,
                flag(c.state == ContainerState::Running),
            );
        }
    }
    if let Part::Known(ups) = &s.ups {
        if let Some(b) = ups.on_battery {
            gauge(
                registry,
                "ups_on_battery",
                "UPS running on battery",
                None,
                flag(b),
            );
        }
        if let Some(p) = ups.battery_percent {
            gauge(
                registry,
                "ups_battery_charge_ratio",
                "UPS battery charge",
                None,
                f64::from(p) / 100.0,
            );
        }
        if let Some(r) = ups.runtime_secs {
            gauge(
                registry,
                "ups_runtime",
                "UPS runtime left on battery",
                Some(Unit::Seconds),
                r as f64,
            );
        }
    }
    if let Part::Known(Some(n)) = &s.unread_warnings {
        gauge(
            registry,
            "unread_warnings",
            "Unread system warnings",
            None,
            *n as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Random bytes split at random points: no panic, the head never
        /// outgrows its cap, and it ends once complete or full.
        #[test]
        fn request_heads_of_random_bytes_in_random_pieces(
            bytes in proptest::collection::vec(any::<u8>(), 0..20_000),
            cuts in proptest::collection::vec(1usize..3000, 1..16),
        ) {
            let mut head = Vec::new();
            let mut rest = bytes.as_slice();
            let mut state = Head::More;
            for cut in cuts.iter().cycle() {
                if rest.is_empty() || state != Head::More {
                    break;
                }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                rest = tail;
                state = absorb(&mut head, chunk);
                prop_assert!(head.len() <= MAX_HEAD);
            }
            let _ = is_metrics_request(&head);
            if state == Head::More {
                prop_assert!(head.len() < MAX_HEAD);
            }
        }

        /// A `GET /metrics` head arrives complete however it is split.
        #[test]
        fn a_metrics_request_in_any_pieces_is_routed(cut in 1usize..60) {
            let request = b"GET /metrics HTTP/1.1\r\nHost: nas\r\n\r\n";
            let mut head = Vec::new();
            let mut state = Head::More;
            for chunk in request.chunks(cut) {
                state = absorb(&mut head, chunk);
            }
            prop_assert_eq!(state, Head::Complete);
            prop_assert!(is_metrics_request(&head));
        }
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert!(is_metrics_request(b"GET /metrics HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b"POST /metrics HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b"GET /metricsx HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b""));
    }
}
