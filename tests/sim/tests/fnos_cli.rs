//! `naslink-sim fnos` flags map onto the emulator's configuration.

use std::time::Duration;

use clap::Parser;
use naslink_sim::fnos::{Args, DEFAULT_FREE_SPACE};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

#[test]
fn defaults_are_1_tib_free_and_no_faults() {
    let config = Cli::parse_from(["fnos"]).args.config().expect("config");
    assert_eq!(config.listen.to_string(), "127.0.0.1:5666");
    assert_eq!(config.free_space, DEFAULT_FREE_SPACE);
    assert_eq!(DEFAULT_FREE_SPACE, 1 << 40);
    assert_eq!(config.faults.cut_download_after, None);
    assert_eq!(config.faults.answer_delay, Duration::ZERO);
}

#[test]
fn transfer_flags_reach_the_configuration() {
    let cli = Cli::parse_from([
        "fnos",
        "--free-space",
        "4096",
        "--cut-download-after",
        "1000",
        "--answer-delay-ms",
        "5",
        "--drop-after-frames",
        "7",
        "--garbage-after-frames",
        "3",
    ]);
    let config = cli.args.config().expect("config");
    assert_eq!(config.free_space, 4096);
    assert_eq!(config.faults.cut_download_after, Some(1000));
    assert_eq!(config.faults.answer_delay, Duration::from_millis(5));
    assert_eq!(config.faults.drop_after_frames, Some(7));
    assert_eq!(config.faults.garbage_after_frames, Some(3));
}

#[test]
fn health_knob_flags_reach_the_configuration() {
    use naslink_sim::fnos::{Health, PoolCondition, UpsCondition};
    let healthy = Cli::parse_from(["fnos"]).args.config().expect("config");
    assert_eq!(healthy.health, Health::default());
    let cli = Cli::parse_from([
        "fnos",
        "--rebuilding-pool",
        "40",
        "--hot-disk",
        "63",
        "--failing-disk",
        "--cpu-temp",
        "97",
        "--ups-on-battery",
        "20",
        "--stopped-container",
        "--unread-warnings",
        "3",
        "--volume-full",
        "92",
    ]);
    let health = cli.args.config().expect("config").health;
    assert_eq!(
        health,
        Health {
            pool: PoolCondition::Rebuilding { percent: 40 },
            hot_disk: Some(63),
            failing_disk: true,
            cpu_temperature: Some(97),
            ups: UpsCondition::OnBattery { charge: 20 },
            stopped_container: true,
            unread_warnings: 3,
            volume_used_percent: Some(92),
        }
    );
    let degraded = Cli::parse_from(["fnos", "--degraded-pool", "--ups-online"]);
    let health = degraded.args.config().expect("config").health;
    assert_eq!(health.pool, PoolCondition::Degraded);
    assert_eq!(health.ups, UpsCondition::Online { charge: 100 });
    assert!(Cli::try_parse_from(["fnos", "--degraded-pool", "--rebuilding-pool", "5"]).is_err());
}
