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
