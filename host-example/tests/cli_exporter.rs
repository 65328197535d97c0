//! `naslink exporter` end to end: the binary serves `/metrics` on
//! loopback for the fnOS emulator; each scrape is a fresh snapshot (a
//! health knob changed between scrapes shows in the next one), the
//! exposition is checked line by line against the OpenMetrics text format
//! (promtool is not installed in CI, so this test validates the format
//! itself), and `naslink_up` drops to 0 when the NAS is gone.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use naslink_sim::fnos::{Config, Health, PoolCondition, UpsCondition};

mod support;

use support::FnosSim as Sim;

/// The emulator with `health` and otherwise the defaults.
fn start(health: Health) -> Sim {
    Sim::start(Config {
        health,
        ..Config::default()
    })
}

/// The exporter child, killed when dropped.
struct Exporter {
    child: Child,
    addr: String,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Exporter {
    fn start(url: &str) -> Exporter {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = free.local_addr().unwrap().to_string();
        drop(free);
        let child = StdCommand::new(env!("CARGO_BIN_EXE_naslink"))
            .env_remove("NASLINK_URL")
            .env_remove("NASLINK_USER")
            .env("NASLINK_PASSWORD", "admin")
            .args([
                "--url",
                url,
                "--timeout",
                "3",
                "exporter",
                "--listen",
                &addr,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the exporter did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Exporter { child, addr }
    }

    /// `GET path`: the status line, headers and body.
    fn get(&self, path: &str) -> (String, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
        (head.to_owned(), body.to_owned())
    }

    fn metrics(&self) -> String {
        let (head, body) = self.get("/metrics");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.contains("application/openmetrics-text"), "{head}");
        validate(&body);
        body
    }
}

/// `promtool check metrics` (Prometheus's own linter) on a scrape: the
/// exposition must parse and follow the naming conventions. CI installs
/// promtool and sets `NASLINK_REQUIRE_PROMTOOL=1`, so there a missing
/// promtool fails the test instead of skipping the check.
fn promtool_accepts(body: &str) {
    let required = std::env::var_os("NASLINK_REQUIRE_PROMTOOL").is_some_and(|v| v == "1");
    let child = StdCommand::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("promtool not installed: `promtool check metrics` skipped");
            return;
        }
        Err(e) => panic!("promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes())
        .expect("write the scrape to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics refused the scrape:\n{}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample `series` (name with labels, as written).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

fn metric_name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The OpenMetrics text format: HELP/TYPE/UNIT before a family's samples,
/// units as name suffixes, valid names and label sets, float values, and
/// `# EOF` last.
fn validate(body: &str) {
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{body}");
    let mut typed: Vec<String> = Vec::new();
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, text) = (parts.next().unwrap(), parts.next().unwrap(), parts.next());
            assert!(metric_name_ok(name), "{line}");
            assert!(name.starts_with("naslink_"), "{line}");
            match kind {
                "HELP" => assert!(text.is_some_and(|t| !t.is_empty()), "{line}"),
                "TYPE" => {
                    assert_eq!(text, Some("gauge"), "{line}");
                    assert!(
                        !typed.contains(&name.to_owned()),
                        "one TYPE per family: {line}"
                    );
                    typed.push(name.to_owned());
                }
                "UNIT" => {
                    let unit = text.unwrap();
                    assert!(["bytes", "seconds", "celsius"].contains(&unit), "{line}");
                    assert!(name.ends_with(&format!("_{unit}")), "{line}");
                }
                _ => panic!("unknown comment {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(metric_name_ok(name), "{line}");
        assert_eq!(
            typed.last().map(String::as_str),
            Some(name),
            "TYPE first: {line}"
        );
        let labels = series.strip_prefix(name).unwrap_or_default();
        if !labels.is_empty() {
            let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
            let inner = inner.expect(line);
            for pair in inner.split(',') {
                let (k, v) = pair.split_once('=').expect(line);
                assert!(metric_name_ok(k), "{line}");
                assert!(v.starts_with('"') && v.ends_with('"'), "{line}");
            }
        }
    }
}

#[test]
fn each_scrape_is_a_fresh_snapshot_in_the_openmetrics_format() {
    let sim = start(Health {
        ups: UpsCondition::Online { charge: 100 },
        ..Health::default()
    });
    let exporter = Exporter::start(&sim.handle.url());
    let body = exporter.metrics();
    assert_eq!(sample(&body, "naslink_up"), Some(1.0), "{body}");
    promtool_accepts(&body);
    assert!(sample(&body, "naslink_scrape_duration_seconds").is_some_and(|s| s > 0.0 && s < 10.0));
    assert_eq!(sample(&body, "naslink_health_status"), Some(0.0));
    assert!(sample(&body, "naslink_cpu_temperature_celsius").is_some());
    assert!(sample(&body, "naslink_disk_temperature_celsius{disk=\"sda\"}").is_some());
    assert_eq!(
        sample(&body, "naslink_disk_size_bytes{disk=\"sda\"}"),
        Some(4_000_787_030_016.0)
    );
    assert_eq!(
        sample(&body, "naslink_disk_smart_healthy{disk=\"sdb\"}"),
        Some(1.0)
    );
    assert!(sample(&body, "naslink_volume_free_bytes{volume=\"vol1\"}").is_some());
    assert_eq!(
        sample(&body, "naslink_pool_degraded{pool=\"vol1\"}"),
        Some(0.0)
    );
    assert_eq!(
        sample(&body, "naslink_container_running{container=\"nextcloud\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&body, "naslink_ups_on_battery"), Some(0.0));
    assert_eq!(sample(&body, "naslink_ups_battery_charge_ratio"), Some(1.0));

    // A knob changed between scrapes shows in the next one.
    sim.handle.set_health(Health {
        pool: PoolCondition::Degraded,
        stopped_container: true,
        ..Health::default()
    });
    let body = exporter.metrics();
    assert_eq!(sample(&body, "naslink_health_status"), Some(2.0), "{body}");
    promtool_accepts(&body);
    assert_eq!(
        sample(&body, "naslink_pool_degraded{pool=\"vol1\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, "naslink_container_running{container=\"nextcloud\"}"),
        Some(0.0)
    );

    let (head, _) = exporter.get("/");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");

    // The NAS gone: up is 0, the scrape still answers.
    sim.runtime.block_on(sim.handle.shutdown());
    let body = exporter.metrics();
    assert_eq!(sample(&body, "naslink_up"), Some(0.0), "{body}");
    assert_eq!(sample(&body, "naslink_health_status"), None);
}
