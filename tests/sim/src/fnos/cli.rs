//! `naslink-sim fnos ...`: the emulator as a command-line program.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{
    Account, Config, DEFAULT_FREE_SPACE, Faults, Health, KeySource, PoolCondition, Push, Redirect,
    Server, UpsCondition,
};

/// Command-line flags of `naslink-sim fnos`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The flags, boxed: the `naslink-sim` subcommand enum stays small
    /// whichever emulator has the longer list.
    #[command(flatten)]
    pub flags: Box<Flags>,
}

/// The flags of [`Args`].
#[derive(Debug, clap::Args)]
pub struct Flags {
    /// Address to listen on (port 0 picks a free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:5666")]
    pub listen: SocketAddr,
    /// Account name.
    #[arg(long, default_value = "admin")]
    pub user: String,
    /// Account password.
    #[arg(long, default_value = "admin")]
    pub password: String,
    /// Make the account a non-administrator (resmon answers errno 4352).
    #[arg(long)]
    pub not_admin: bool,
    /// Add a non-admin account, `NAME:PASSWORD` (uid 1001, 1002, ...).
    #[arg(long, value_name = "NAME:PASSWORD")]
    pub guest: Vec<String>,
    /// Host name reported by `appcgi.sysinfo.getHostName`.
    #[arg(long, default_value = "fnos-sim")]
    pub host_name: String,
    /// Use the committed test RSA key instead of generating one (faster).
    #[arg(long)]
    pub fixed_key: bool,
    /// Use this PKCS#8 PEM file as the RSA key.
    #[arg(long, value_name = "FILE", conflicts_with = "fixed_key")]
    pub key_pem: Option<PathBuf>,
    /// Never answer `{"req":"ping"}`.
    #[arg(long)]
    pub no_pong: bool,
    /// Require two-factor login; this code completes `user.2fa.loginVerify`.
    #[arg(long, value_name = "CODE")]
    pub two_factor_code: Option<String>,
    /// Answer every upgrade with a redirect to `https://HOST:PORT/websocket`.
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "5667")]
    pub https_redirect: Option<u16>,
    /// HTTP status of the HTTPS redirect (301–308).
    #[arg(long, default_value_t = 301, value_parser = clap::value_parser!(u16).range(301..=308))]
    pub redirect_status: u16,
    /// Gate the upgrade behind this access code (`/access_code_verify`).
    #[arg(long, value_name = "CODE")]
    pub access_code: Option<String>,
    /// Push `storageChanged` to signed-in connections every SECS seconds.
    #[arg(long, value_name = "SECS")]
    pub push_every: Option<f64>,
    /// Entries per `file.ls` frame.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..))]
    pub entries_per_frame: u64,
    /// Wait this many milliseconds before every answer frame.
    #[arg(long, default_value_t = 0)]
    pub answer_delay_ms: u64,
    /// Drop each connection after sending N frames.
    #[arg(long, value_name = "N")]
    pub drop_after_frames: Option<u64>,
    /// Send one non-JSON frame after N frames on each connection.
    #[arg(long, value_name = "N")]
    pub garbage_after_frames: Option<u64>,
    /// Free space in bytes: `file.checkUpload` refuses larger uploads (errno 4386).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_FREE_SPACE)]
    pub free_space: u64,
    /// Close each `/multiple-download` connection after N body bytes.
    #[arg(long, value_name = "N")]
    pub cut_download_after: Option<u64>,
    /// `file.rm` sends `sysNotify` taskId/taskInfo frames before its answer.
    #[arg(long)]
    pub task_frames: bool,
    /// Health knob: vol1's RAID1 pool is degraded (a member is missing).
    #[arg(long, conflicts_with = "rebuilding_pool")]
    pub degraded_pool: bool,
    /// Health knob: vol1's pool is rebuilding, PERCENT done.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub rebuilding_pool: Option<u8>,
    /// Health knob: disk `sda` runs at CELSIUS.
    #[arg(long, value_name = "CELSIUS")]
    pub hot_disk: Option<u32>,
    /// Health knob: disk `sdb` fails its SMART self-assessment.
    #[arg(long)]
    pub failing_disk: bool,
    /// Health knob: the CPU runs at CELSIUS.
    #[arg(long, value_name = "CELSIUS")]
    pub cpu_temp: Option<u32>,
    /// Health knob: a UPS is attached and runs on battery at PERCENT charge.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100), conflicts_with = "ups_online")]
    pub ups_on_battery: Option<u8>,
    /// Health knob: a UPS is attached, on mains, fully charged.
    #[arg(long)]
    pub ups_online: bool,
    /// Health knob: the `nextcloud` container is stopped.
    #[arg(long)]
    pub stopped_container: bool,
    /// Health knob: N unread system warnings.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub unread_warnings: u32,
    /// Long tokens stop working with `user.tokenLogin` SECS seconds after
    /// their login (default: never).
    #[arg(long, value_name = "SECS")]
    pub long_token_lifetime: Option<f64>,
    /// Push `{"sysNotify":"kicked"}` to every signed-in connection SECS
    /// seconds after the start (another login took the session over).
    #[arg(long, value_name = "SECS")]
    pub kick_after: Option<f64>,
    /// Health knob: vol1 is PERCENT full.
    #[arg(long, value_name = "PERCENT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub volume_full: Option<u8>,
}

impl Args {
    /// The [`Config`] these flags describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        self.flags.config()
    }
}

impl Flags {
    /// The [`Health`] the knob flags describe.
    pub fn health(&self) -> Health {
        let pool = match (self.degraded_pool, self.rebuilding_pool) {
            (_, Some(percent)) => PoolCondition::Rebuilding { percent },
            (true, None) => PoolCondition::Degraded,
            (false, None) => PoolCondition::Healthy,
        };
        let ups = match (self.ups_on_battery, self.ups_online) {
            (Some(charge), _) => UpsCondition::OnBattery { charge },
            (None, true) => UpsCondition::Online { charge: 100 },
            (None, false) => UpsCondition::Absent,
        };
        Health {
            pool,
            hot_disk: self.hot_disk,
            failing_disk: self.failing_disk,
            cpu_temperature: self.cpu_temp,
            ups,
            stopped_container: self.stopped_container,
            unread_warnings: self.unread_warnings,
            volume_used_percent: self.volume_full,
        }
    }

    /// The [`Config`] these flags describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut accounts = vec![Account::new(
            &self.user,
            &self.password,
            1000,
            !self.not_admin,
        )];
        for (i, guest) in self.guest.iter().enumerate() {
            let (name, password) = guest
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--guest wants NAME:PASSWORD, got `{guest}`"))?;
            accounts.push(Account::new(name, password, 1001 + i as u32, false));
        }
        let key = match (&self.key_pem, self.fixed_key) {
            (Some(path), _) => KeySource::Pem(std::fs::read_to_string(path)?),
            (None, true) => KeySource::Fixture,
            (None, false) => KeySource::Generate,
        };
        let push_every = match self.push_every {
            Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => anyhow::bail!("--push-every wants a positive number, got {secs}"),
            None => None,
        };
        let long_token_lifetime = match self.long_token_lifetime {
            Some(secs) if secs.is_finite() && secs >= 0.0 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => anyhow::bail!("--long-token-lifetime wants seconds, got {secs}"),
            None => None,
        };
        Ok(Config {
            listen: self.listen,
            long_token_lifetime,
            accounts,
            key,
            host_name: self.host_name.clone(),
            pong: !self.no_pong,
            two_factor_code: self.two_factor_code.clone(),
            https_redirect: self.https_redirect.map(|https_port| Redirect {
                status: self.redirect_status,
                https_port,
            }),
            access_code: self.access_code.clone(),
            push_every,
            entries_per_frame: usize::try_from(self.entries_per_frame)?,
            free_space: self.free_space,
            health: self.health(),
            task_frames: self.task_frames,
            faults: Faults {
                answer_delay: Duration::from_millis(self.answer_delay_ms),
                drop_after_frames: self.drop_after_frames,
                garbage_after_frames: self.garbage_after_frames,
                cut_download_after: self.cut_download_after,
            },
            ..Config::default()
        })
    }
}

/// Run the emulator from the command line until interrupted (Ctrl-C).
/// Prints `listening <url>` once the port is bound.
pub async fn run_cli(args: Args) -> anyhow::Result<()> {
    let kick_after = match args.flags.kick_after {
        Some(secs) if secs.is_finite() && secs >= 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => anyhow::bail!("--kick-after wants a number of seconds, got {secs}"),
        None => None,
    };
    let handle = Server::start(args.config()?).await?;
    println!("listening {}", handle.url());
    {
        let kick = async {
            if let Some(delay) = kick_after {
                tokio::time::sleep(delay).await;
                handle.push(Push::Kicked);
                println!("kicked every signed-in connection");
            }
            std::future::pending::<()>().await
        };
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            () = kick => {}
        }
    }
    handle.shutdown().await;
    Ok(())
}
