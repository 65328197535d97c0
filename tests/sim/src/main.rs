//! `naslink-sim`: run an fnOS or CFMS emulator on loopback.

use clap::{Parser, Subcommand};

/// NAS emulators for naslink's tests and for developers without a NAS.
#[derive(Debug, Parser)]
#[command(name = "naslink-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    protocol: Protocol,
}

#[derive(Debug, Subcommand)]
enum Protocol {
    /// Emulate an fnOS NAS (`ws://HOST:5666/websocket?type=main`).
    Fnos(naslink_sim::fnos::Args),
    /// Emulate a CFMS v3 server (`wss://HOST:5104/`).
    Cfms(naslink_sim::cfms::Args),
    /// A hostile server: an emulator behind a proxy that misbehaves one way.
    Hostile(naslink_sim::hostile::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().protocol {
        Protocol::Fnos(args) => naslink_sim::fnos::run_cli(args).await,
        Protocol::Cfms(args) => naslink_sim::cfms::run_cli(args).await,
        Protocol::Hostile(args) => naslink_sim::hostile::run_cli(args).await,
    }
}
