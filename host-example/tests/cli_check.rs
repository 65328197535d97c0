//! `naslink check` (the Nagios/Icinga plugin) and the health part of
//! `naslink status`, end to end: the binary against the fnOS emulator with
//! its health knobs, one test per plugin exit code.

use std::time::Duration;

use assert_cmd::Command;
use naslink_sim::fnos::{Account, Config, Health, PoolCondition, UpsCondition};
use serde_json::Value;

mod support;

use support::FnosSim as Sim;

/// The emulator with `health` and otherwise the defaults.
fn with(health: Health) -> Sim {
    Sim::start(Config {
        health,
        ..Config::default()
    })
}

fn naslink(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("naslink").unwrap();
    cmd.env_remove("NASLINK_URL")
        .env_remove("NASLINK_USER")
        .env("NASLINK_PASSWORD", "admin")
        .args(["--url", url, "--timeout", "10"])
        .timeout(Duration::from_secs(30));
    cmd
}

/// Run `check` with `args`; its exit code and its one stdout line.
fn check(url: &str, args: &[&str]) -> (i32, String) {
    let out = naslink(url).arg("check").args(args).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one status line: {text:?}");
    (out.status.code().unwrap(), text.trim_end().to_owned())
}

#[test]
fn check_of_a_healthy_nas_is_ok_with_performance_data() {
    let sim = with(Health::default());
    let (code, line) = check(&sim.url(), &[]);
    assert_eq!(code, 0, "{line}");
    let (status, perf) = line.split_once(" | ").expect("performance data");
    assert_eq!(status, "NASLINK OK - no problems");
    assert!(perf.contains("'vol1 used'="), "{perf}");
    assert!(perf.contains(";80;90;0;100"), "{perf}");
    assert!(perf.contains("'sda temperature'="), "{perf}");
    assert!(perf.contains("'cpu temperature'="), "{perf}");
    // Every item is 'label'=value[UOM];warn;crit...
    for item in perf.split(" '") {
        let (label, rest) = item.trim_start_matches('\'').split_once("'=").expect(item);
        assert!(!label.is_empty());
        let value = rest.split(';').next().unwrap().trim_end_matches('%');
        assert!(value.parse::<f64>().is_ok(), "{item}");
    }
}

#[test]
fn check_warns_on_a_rebuild_and_thresholds_come_from_the_flags() {
    let sim = with(Health {
        pool: PoolCondition::Rebuilding { percent: 40 },
        ..Health::default()
    });
    let (code, line) = check(&sim.url(), &[]);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("NASLINK WARNING - pool vol1 rebuilding 40%"),
        "{line}"
    );

    let sim = with(Health {
        hot_disk: Some(55),
        ..Health::default()
    });
    assert_eq!(check(&sim.url(), &[]).0, 1, "55 C is a warning by default");
    let (code, line) = check(&sim.url(), &["--disk-temp-critical", "54"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("'sda temperature'=55;50;54"), "{line}");
    let (code, line) = check(
        &sim.url(),
        &["--disk-temp-warning", "70", "--disk-temp-critical", "80"],
    );
    assert_eq!(code, 0, "{line}");
}

#[test]
fn check_is_critical_for_a_degraded_pool_and_a_failing_disk() {
    let sim = with(Health {
        pool: PoolCondition::Degraded,
        failing_disk: true,
        ..Health::default()
    });
    let (code, line) = check(&sim.url(), &[]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("NASLINK CRITICAL - "), "{line}");
    assert!(line.contains("pool vol1 degraded"), "{line}");
    assert!(line.contains("disk sdb SMART failing"), "{line}");
}

#[test]
fn check_is_unknown_without_a_connection_or_with_a_refused_login() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/websocket?type=main", closed.local_addr().unwrap());
    drop(closed);
    let (code, line) = check(&url, &[]);
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("NASLINK UNKNOWN - "), "{line}");

    let sim = with(Health::default());
    let out = naslink(&sim.url())
        .env("NASLINK_PASSWORD", "wrong")
        .arg("check")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{line}");
    assert!(
        line.starts_with("NASLINK UNKNOWN - login refused"),
        "{line}"
    );
}

#[test]
fn status_shows_the_verdict_first_and_json_carries_the_panel() {
    let sim = with(Health {
        pool: PoolCondition::Degraded,
        ups: UpsCondition::OnBattery { charge: 80 },
        stopped_container: true,
        ..Health::default()
    });
    let out = naslink(&sim.url()).arg("status").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("health    CRITICAL"), "{text}");
    assert!(
        lines.next().unwrap().contains("pool vol1 degraded"),
        "{text}"
    );
    for row in [
        "cpu temp  ",
        "disk      sda",
        "pool      vol1",
        "container nextcloud  exited",
        "ups       on battery, 80 %",
    ] {
        assert!(text.contains(row), "{row:?} in {text}");
    }

    let out = naslink(&sim.url())
        .args(["--json", "status"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["health"]["level"], "CRITICAL");
    assert_eq!(s["health"]["reasons"][0]["text"], "pool vol1 degraded");
    assert_eq!(s["pools"][0]["state"], "degraded");
    assert_eq!(s["disks"].as_array().unwrap().len(), 3);
    assert!(s["disks"][1]["temperature_celsius"].is_i64());
    assert_eq!(s["containers"][1]["state"], "exited");
    assert_eq!(s["ups"]["on_battery"], true);
    assert_eq!(s["ups"]["battery_percent"], 80);
    assert!(s["cpu"]["temperature_celsius"].is_i64());
    assert_eq!(s["host"], "fnos-sim", "the older fields stay");
}

#[test]
fn status_of_a_non_admin_marks_the_parts_it_may_not_see() {
    let sim = Sim::start(Config {
        accounts: vec![
            Account::new("admin", "admin", 1000, true),
            Account::new("guest", "guest", 1001, false),
        ],
        ..Config::default()
    });
    let out = naslink(&sim.url())
        .env("NASLINK_PASSWORD", "guest")
        .args(["--user", "guest", "--json", "status"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["disks"], "needs admin");
    assert_eq!(s["pools"], "needs admin");
    assert!(s["ups"].is_object());
    let needs: Vec<&str> = s["health"]["needs_admin"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(needs.contains(&"disks"), "{needs:?}");
}
