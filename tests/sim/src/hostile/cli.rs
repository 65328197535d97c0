//! `naslink-sim hostile`: the hostile server from the command line.

use std::net::SocketAddr;

use super::{Config, Mode, Server, Upstream};

/// Command-line flags of `naslink-sim hostile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How to misbehave.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// The emulator behind the proxy (default: the one the mode needs, else fnOS).
    #[arg(long, value_enum)]
    pub upstream: Option<Upstream>,
    /// The CFMS emulator's protocol version.
    #[arg(long, default_value_t = 3)]
    pub cfms_protocol: u32,
    /// Bytes per second each way in `--mode throttle`.
    #[arg(long, default_value_t = 256 * 1024)]
    pub throttle: u64,
}

/// Run the hostile server until interrupted.
pub async fn run_cli(args: Args) -> anyhow::Result<()> {
    let upstream = args
        .upstream
        .or(args.mode.needs())
        .unwrap_or(Upstream::Fnos);
    let server = Server::start(Config {
        mode: args.mode,
        upstream,
        listen: args.listen,
        cfms_protocol: args.cfms_protocol,
        throttle: args.throttle,
    })
    .await?;
    eprintln!(
        "hostile server ({:?} in front of {upstream:?}) at {}, user admin/admin",
        args.mode,
        server.url()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
