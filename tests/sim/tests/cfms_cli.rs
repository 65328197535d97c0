//! `naslink-sim cfms` flags map onto the emulator's configuration.

use std::time::Duration;

use clap::Parser;
use naslink_sim::cfms::Args;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

#[test]
fn defaults_are_wss_on_5104_with_admin_admin_at_protocol_3() {
    let config = Cli::parse_from(["cfms"]).args.config();
    assert_eq!(config.listen.to_string(), "127.0.0.1:5104");
    assert!(config.tls);
    assert_eq!(config.protocol_version, 3);
    assert_eq!(config.users[0].username, "admin");
    assert_eq!(config.users[0].password, "admin");
    assert!(!config.users[0].password_expired);
    assert_eq!(config.bad_password_delay, Duration::from_secs(3));
}

#[test]
fn every_flag_reaches_the_configuration() {
    let cli = Cli::parse_from([
        "cfms",
        "--listen",
        "127.0.0.1:0",
        "--user",
        "root",
        "--password",
        "pw",
        "--plain",
        "--protocol-version",
        "5",
        "--token-lifetime",
        "60",
        "--bad-password-delay-ms",
        "10",
        "--lockdown",
        "--totp-secret",
        "JBSWY3DPEHPK3PXP",
        "--password-expired",
    ]);
    let config = cli.args.config();
    assert!(!config.tls);
    assert_eq!(config.protocol_version, 5);
    assert_eq!(config.token_lifetime, Duration::from_secs(60));
    assert_eq!(config.bad_password_delay, Duration::from_millis(10));
    assert!(config.lockdown);
    let admin = &config.users[0];
    assert_eq!(
        (admin.username.as_str(), admin.password.as_str()),
        ("root", "pw")
    );
    assert!(admin.password_expired);
    assert_eq!(admin.totp_secret.as_deref(), Some("JBSWY3DPEHPK3PXP"));
}

#[test]
fn protocol_13_and_the_chunk_size_are_flags() {
    let cli = Cli::parse_from(["cfms", "--protocol", "13", "--chunk-size", "65536"]);
    let config = cli.args.config();
    assert_eq!(config.protocol_version, 13);
    assert_eq!(config.chunk_size, 65536);
    let defaults = Cli::parse_from(["cfms"]).args.config();
    assert_eq!(defaults.chunk_size, 2 * 1024 * 1024);
}
