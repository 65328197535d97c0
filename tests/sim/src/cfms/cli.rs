//! `naslink-sim cfms`: the emulator from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::config::{Config, UserSpec};
use super::{Server, store::hex};

/// Command-line flags of `naslink-sim cfms`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5104")]
    pub listen: SocketAddr,
    /// Host name the certificate is made for (and the URL names).
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// Administrator's user name.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// Administrator's password.
    #[arg(long, default_value = "admin")]
    pub password: String,
    /// Serve plain `ws://` instead of `wss://` with a self-signed certificate.
    #[arg(long)]
    pub plain: bool,
    /// `server_info.protocol_version` (3, 4, 5 and 13 behave differently:
    /// 13 speaks the binary stream framing; other values are only reported).
    #[arg(long, visible_alias = "protocol", default_value_t = 3)]
    pub protocol_version: u32,
    /// Seconds a token stays valid.
    #[arg(long, default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Delay before answering a wrong password or 2FA code, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub bad_password_delay_ms: u64,
    /// Start in lockdown.
    #[arg(long)]
    pub lockdown: bool,
    /// Require two-factor login (protocol ≥ 5) with this base32 TOTP secret.
    #[arg(long)]
    pub totp_secret: Option<String>,
    /// The administrator's password is expired (403 until `set_passwd`).
    #[arg(long)]
    pub password_expired: bool,
    /// Plaintext bytes per download chunk (the real server's default is
    /// 2 MiB; smaller chunks make resume tests quick).
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub chunk_size: usize,
    /// Write the certificate (PEM) to this file.
    #[arg(long)]
    pub cert_out: Option<PathBuf>,
}

impl Args {
    /// The server configuration these flags describe.
    pub fn config(&self) -> Config {
        let mut admin = UserSpec::admin(&self.password);
        admin.username.clone_from(&self.user);
        admin.password_expired = self.password_expired;
        admin.totp_secret.clone_from(&self.totp_secret);
        Config {
            listen: self.listen,
            host: self.host.clone(),
            tls: !self.plain,
            protocol_version: self.protocol_version,
            users: vec![admin],
            token_lifetime: Duration::from_secs(self.token_lifetime),
            bad_password_delay: Duration::from_millis(self.bad_password_delay_ms),
            lockdown: self.lockdown,
            chunk_size: self.chunk_size,
            ..Config::default()
        }
    }
}

/// Run the emulator from the command line until interrupted.
pub async fn run_cli(args: Args) -> anyhow::Result<()> {
    let server = Server::start(args.config()).await?;
    if let (Some(path), Some(pem)) = (&args.cert_out, server.cert_pem()) {
        std::fs::write(path, pem).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("certificate written to {}", path.display());
    }
    if let Some(pin) = server.cert_sha256() {
        eprintln!("certificate SHA-256: {}", hex(&pin));
    }
    eprintln!(
        "CFMS emulator (protocol {}) at {}, user {:?}",
        args.protocol_version,
        server.url(),
        args.user
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
