//! `naslink`: the command-line program for NAS owners.
//!
//! It talks to an fnOS NAS (front panel, files, any raw command) through
//! [`naslink_tokio::FnosClient`] and to a CFMS server through
//! [`naslink_tokio::CfmsClient`], and runs the emulators of `naslink-sim`
//! (`naslink demo`, `naslink sim`).
//!
//! Exit status: 0 success; 1 the server refused (its code and meaning are
//! printed); 2 usage error; 3 connection, TLS, protocol, timeout or local
//! file failure; 130 interrupted by SIGINT (143 by SIGTERM): the operation
//! in progress is dropped, which leaves no temporary file and the target
//! unchanged (except a CFMS protocol-13 `get`'s resumable partial,
//! `.NAME.naslink-partial` and `.NAME.naslink-partial-seals` beside the
//! target, which the next `get` of the same target resumes).
//!
//! The password variable (and the two-factor and access-code variables)
//! are removed from the environment as soon as they are read. Text that
//! comes from the server is printed with control characters escaped
//! ([`output::term`]).
//!
//! `naslink-bench` (src/bin) measures the clients against the emulators;
//! `naslink-peak` (src/bin) runs a command and reports its exit status and
//! peak memory, for the end-to-end tests against the hostile server.
//!
//! Two-factor logins take the code from `--2fa-code` / `NASLINK_2FA_CODE`,
//! or ask for it on the terminal.
//!
//! fnOS device tokens: `naslink login --device-token` logs in with the
//! password and prints an `nlt1.` token (its long token and secret) on
//! standard output; the other fnOS commands log in with a token instead of
//! the password when `NASLINK_TOKEN` (or the variable named by
//! `--token-env`) holds one. The token wins over a password; it is never
//! taken on the command line, and its variable is removed from the
//! environment once read, like the password's.

mod cfms_cmd;
mod demo;
mod exporter;
mod fnos_cmd;
mod output;
mod protocol_cache;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use naslink_tokio::cfms::CfmsOptions;
use naslink_tokio::core::fnos::DeviceToken;
use naslink_tokio::fnos::{FnosError, FnosOptions};
use naslink_tokio::{ConnectError, Trust, TwoFactor};
use zeroize::Zeroizing;

const EXAMPLES: &str = "\
Examples:
  naslink demo
  naslink --url ws://nas.local:5666/websocket?type=main --user admin status
  NASLINK_PASSWORD=... naslink --url wss://nas.local:5667/websocket?type=main \\
      --pin-sha256 3f:9a:... --json status
  naslink ls vol1/1000/Documents
  naslink raw appcgi.resmon.gen '{\"item\":[\"cpuBusy\"]}'
  naslink login --device-token > panel.token
  NASLINK_TOKEN=\"$(cat panel.token)\" naslink status
  naslink --url wss://cfms.example:5104/ --ca-file cfms.pem ls Projects
  naslink sim fnos --listen 127.0.0.1:5666 --fixed-key";

/// Talk to a NAS over its WebSocket API.
#[derive(Debug, Parser)]
#[command(name = "naslink", version, about, after_help = EXAMPLES)]
struct Cli {
    /// The NAS: `ws://HOST:5666/websocket?type=main` (fnOS) or `wss://...`.
    #[arg(long, env = "NASLINK_URL")]
    url: Option<String>,
    /// Which protocol the URL speaks (default: a `/websocket` path is fnOS, anything else CFMS).
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// User name.
    #[arg(long, env = "NASLINK_USER", default_value = "admin")]
    user: String,
    /// Read the password from this environment variable (default NASLINK_PASSWORD).
    #[arg(long, value_name = "VAR", conflicts_with = "password_stdin")]
    password_env: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
    /// fnOS: read a device token (`naslink login --device-token`) from this
    /// environment variable (default NASLINK_TOKEN) and log in with it
    /// instead of the password.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["password_env", "password_stdin"])]
    token_env: Option<String>,
    /// Trust the CA certificates in this PEM file (a NAS's self-signed certificate).
    /// Without --ca-file, --pin-sha256 or --insecure, the system's trust store is used.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["pin_sha256", "insecure"])]
    ca_file: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (hex, colons allowed).
    #[arg(long, value_name = "HEX", conflicts_with = "insecure")]
    pin_sha256: Option<String>,
    /// Do not verify the server's certificate at all (anyone on the path can read and change the traffic).
    #[arg(long)]
    insecure: bool,
    /// Follow an HTTPS redirect of the WebSocket upgrade instead of reporting it.
    #[arg(long)]
    follow_redirect: bool,
    /// The two-factor code (TOTP or backup code) when the account needs one;
    /// without it, naslink asks on the terminal.
    #[arg(
        long = "2fa-code",
        value_name = "CODE",
        env = "NASLINK_2FA_CODE",
        hide_env_values = true
    )]
    two_factor_code: Option<String>,
    /// The fnOS access code, when the NAS asks for one.
    #[arg(long, env = "NASLINK_ACCESS_CODE", hide_env_values = true)]
    access_code: Option<String>,
    /// CFMS: the server's protocol version (3, 4, 5 or 13), when known, so
    /// that naslink speaks it at once. Without it, naslink finds out by
    /// itself (a protocol-13 request first; a 3–5 server closes the
    /// connection and naslink reconnects speaking text).
    #[arg(
        long,
        value_name = "N",
        env = "NASLINK_PROTOCOL_VERSION",
        value_parser = parse_protocol_version
    )]
    protocol_version: Option<u32>,
    /// CFMS: neither read nor write the protocol version remembered per
    /// server (in `$NASLINK_CACHE_DIR`, else `$XDG_CACHE_HOME/naslink`,
    /// else `~/.cache/naslink`).
    #[arg(
        long,
        env = "NASLINK_NO_CACHE",
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    no_cache: bool,
    /// Print exactly one JSON document on standard output (`watch`: one per line).
    #[arg(long, global = true)]
    json: bool,
    /// Deadline in seconds for connecting and logging in, and for each request
    /// (more than 0, at most a week).
    #[arg(long, value_name = "SECS", default_value_t = 30.0, value_parser = parse_timeout)]
    timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    Fnos,
    Cfms,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// No NAS needed: start the emulators on loopback and run the front-panel flow.
    Demo,
    /// Server identity (fnOS host name and version / CFMS server_info).
    Info,
    /// fnOS: log in with the password; with --device-token, print a long-lived
    /// device token (only the token, on standard output) for NASLINK_TOKEN.
    Login {
        /// Print a device token: the login's long token and secret as one
        /// `nlt1.` line that logs in without the password until revoked.
        #[arg(long)]
        device_token: bool,
    },
    /// Front-panel snapshot: fnOS health verdict and its reasons first, then host,
    /// uptime, CPU %, memory %, volumes, network rates, temperatures, disks, pools,
    /// containers, UPS; CFMS server, version, lockdown, user.
    Status,
    /// fnOS: Nagios/Icinga plugin. One status line with performance data; exit 0 OK,
    /// 1 WARNING, 2 CRITICAL, 3 UNKNOWN (no connection, login refused, usage).
    Check(CheckArgs),
    /// fnOS: Prometheus exporter; each scrape of /metrics takes a fresh snapshot
    /// over one session kept open.
    Exporter {
        /// Address to serve /metrics on.
        #[arg(long, default_value = "127.0.0.1:9633")]
        listen: std::net::SocketAddr,
    },
    /// List a folder (fnOS: the home view without a path; CFMS: the root).
    Ls {
        /// Folder path (`vol1/1000/Documents`, CFMS `a/b`) or a CFMS folder id.
        path: Option<String>,
    },
    /// Download a file (fnOS: full path; CFMS: path from the root or document id).
    Get {
        /// Remote file: fnOS `vol1/1000/Documents/a.pdf`; CFMS `folder/title` or a document id.
        remote: String,
        /// Local file to write (replaced only when the whole file arrived and checked out).
        local: PathBuf,
        /// CFMS protocol 13: discard the partial download kept beside the
        /// target (`.NAME.naslink-partial`) and start over, instead of
        /// resuming it.
        #[arg(long)]
        no_resume: bool,
    },
    /// Upload a file (fnOS: over HTTP; CFMS: as a new document).
    Put {
        /// Local file.
        local: PathBuf,
        /// Remote `folder/name`; `folder/` keeps the local file name (CFMS: empty is the root).
        #[arg(default_value = "")]
        remote: String,
        /// fnOS: replace an existing file of that name (default: keep both,
        /// the server picks a new name for the upload).
        #[arg(long)]
        replace: bool,
    },
    /// Create a folder.
    Mkdir {
        /// Folder path.
        path: String,
    },
    /// Delete a file or folder (not to the recycle bin).
    Rm {
        /// Path.
        path: String,
    },
    /// Live panel that refreshes, prints pushes and reconnects by itself.
    Watch {
        /// Seconds between refreshes.
        #[arg(long, default_value_t = 2.0)]
        every: f64,
        /// Stop after this many refreshes (default: run until interrupted).
        #[arg(long)]
        count: Option<u64>,
    },
    /// Send any command and print the answer.
    Raw {
        /// The command (`req`), e.g. `appcgi.sysinfo.getHostName`.
        req: String,
        /// Parameters as a JSON object.
        #[arg(value_name = "JSON")]
        params: Option<String>,
    },
    /// Run an emulator (same flags as naslink-sim).
    #[command(subcommand)]
    Sim(Sim),
}

/// Where `naslink check` draws its lines (defaults: the core's table).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Volume percent used for WARNING.
    #[arg(long, default_value_t = 80)]
    pub volume_warning: u8,
    /// Volume percent used for CRITICAL.
    #[arg(long, default_value_t = 90)]
    pub volume_critical: u8,
    /// Disk temperature (°C) for WARNING.
    #[arg(long, default_value_t = 50)]
    pub disk_temp_warning: i32,
    /// Disk temperature (°C) for CRITICAL.
    #[arg(long, default_value_t = 60)]
    pub disk_temp_critical: i32,
    /// CPU temperature (°C) for WARNING.
    #[arg(long, default_value_t = 85)]
    pub cpu_temp_warning: i32,
    /// CPU temperature (°C) for CRITICAL.
    #[arg(long, default_value_t = 95)]
    pub cpu_temp_critical: i32,
    /// UPS on battery with this charge (percent) or less is CRITICAL.
    #[arg(long, default_value_t = 30)]
    pub ups_critical: u8,
}

#[derive(Debug, Subcommand)]
enum Sim {
    /// Emulate an fnOS NAS.
    Fnos(naslink_sim::fnos::Args),
    /// Emulate a CFMS v3 server.
    Cfms(naslink_sim::cfms::Args),
}

/// How a command failed, and so the exit status.
#[derive(Debug)]
pub enum Failure {
    /// The server refused (exit 1).
    Refused(String),
    /// The command line is wrong (exit 2).
    Usage(String),
    /// Connection, TLS, protocol, timeout or local file failure (exit 3).
    Connection(String),
    /// `naslink check` printed its status line; exit with its code
    /// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
    Check(u8),
    /// A signal ended the command (exit 128 + the signal number).
    Interrupted {
        /// `SIGINT` or `SIGTERM`.
        signal: &'static str,
        /// The exit status: 130 or 143.
        code: u8,
    },
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Connection(_) => 3,
            Failure::Interrupted { code, .. } | Failure::Check(code) => *code,
        }
    }

    /// The message on one line, for a plugin's status line.
    fn message_for_plugin(&self) -> String {
        self.message().replace(['\n', '|'], " ")
    }

    fn message(&self) -> String {
        match self {
            Failure::Refused(m) | Failure::Usage(m) | Failure::Connection(m) => output::term(m),
            Failure::Interrupted { signal, .. } => format!("interrupted by {signal}"),
            Failure::Check(_) => String::new(),
        }
    }
}

impl From<FnosError> for Failure {
    fn from(e: FnosError) -> Self {
        let text = e.to_string();
        match e {
            FnosError::LoginRefused { .. } | FnosError::Server { .. } => Failure::Refused(text),
            FnosError::DeviceTokenRefused { .. } => Failure::Refused(format!(
                "{text}; make a new one with `naslink login --device-token`"
            )),
            FnosError::TwoFactorRequired => Failure::Refused(format!(
                "{text}: pass it with --2fa-code or NASLINK_2FA_CODE"
            )),
            FnosError::Request(_) => Failure::Usage(text),
            FnosError::Transfer(_) => Failure::Connection(text),
            FnosError::Connect(ConnectError::Url(_)) => Failure::Usage(text),
            _ => Failure::Connection(text),
        }
    }
}

/// Variables holding secrets, besides the password variable itself.
const SECRET_VARIABLES: [&str; 2] = ["NASLINK_2FA_CODE", "NASLINK_ACCESS_CODE"];

/// The longest `--timeout`: beyond a week a deadline means nothing, and
/// far beyond it a `Duration` cannot hold it.
const MAX_TIMEOUT_SECS: f64 = 7.0 * 86_400.0;

fn main() -> ExitCode {
    // Single-threaded until the runtime below starts: clap reads the
    // environment without spawning anything.
    let cli = Cli::parse();
    let check = matches!(cli.command, Command::Check(_));
    let env_token = take_token(&cli);
    let env_password = take_secrets(&cli);
    // The password prompt comes before the signal handlers: Ctrl-C there
    // ends the program the ordinary way.
    let job = match prepare(cli, env_password, env_token) {
        Ok(job) => job,
        Err(failure) if check => return exit(fnos_cmd::unknown(failure)),
        Err(failure) => return exit(failure),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("naslink: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let terminal = Terminal::save();
    let outcome = runtime.block_on(async {
        // The emulators handle Ctrl-C themselves and stop cleanly.
        if matches!(job, Job::Sim(_)) {
            return execute(job).await;
        }
        // Dropping `execute` drops the operation in progress: the adapter
        // removes a transfer's temporary file at drop.
        tokio::select! {
            outcome = execute(job) => outcome,
            signal = interrupted() => Err(signal),
        }
    });
    if matches!(outcome, Err(Failure::Interrupted { .. })) {
        // A two-factor prompt may have turned echo off.
        terminal.restore();
    }
    // A blocking file thread may still be finishing a write to a temporary
    // file that is already unlinked, or a prompt waiting for a line: do not
    // wait for them.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if check => exit(fnos_cmd::unknown(failure)),
        Err(failure) => exit(failure),
    }
}

fn exit(failure: Failure) -> ExitCode {
    // `check` printed its status line already.
    if !matches!(failure, Failure::Check(_)) {
        eprintln!("naslink: {}", failure.message());
    }
    ExitCode::from(failure.exit_code())
}

/// The settings of the terminal on standard input at start.
struct Terminal(#[cfg(unix)] Option<libc::termios>);

impl Terminal {
    fn save() -> Self {
        #[cfg(unix)]
        {
            if !std::io::stdin().is_terminal() {
                return Terminal(None);
            }
            // SAFETY: termios is plain data for which all-zero bytes are valid.
            let mut settings: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: fd 0 is open (it is a terminal) and the pointer is
            // valid for the call.
            let read = unsafe { libc::tcgetattr(0, &mut settings) } == 0;
            Terminal(read.then_some(settings))
        }
        #[cfg(not(unix))]
        Terminal()
    }

    fn restore(&self) {
        #[cfg(unix)]
        if let Some(settings) = &self.0 {
            // SAFETY: fd 0 is the terminal the settings were read from, and
            // the pointer is valid for the call.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, settings) };
        }
    }
}

/// Read the password variable, then remove it and the other secret
/// variables from this process's environment, so that nothing started
/// later (or reading the environment later) finds them.
fn take_secrets(cli: &Cli) -> Result<Option<Zeroizing<String>>, Failure> {
    let var = cli
        .password_env
        .clone()
        .unwrap_or_else(|| "NASLINK_PASSWORD".to_owned());
    let value = std::env::var_os(&var);
    for name in std::iter::once(var.as_str()).chain(SECRET_VARIABLES) {
        // SAFETY: called from `main` right after argument parsing, before
        // the tokio runtime or any other thread exists, so nothing reads or
        // writes the environment at the same time.
        unsafe { std::env::remove_var(name) };
    }
    match value {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(|s| Some(Zeroizing::new(s)))
            .map_err(|v| {
                drop(Zeroizing::new(v.into_encoded_bytes()));
                Failure::Usage(format!("the environment variable {var} is not valid UTF-8"))
            }),
    }
}

/// Read the device token variable (`--token-env`, else `NASLINK_TOKEN`),
/// then remove it from this process's environment.
fn take_token(cli: &Cli) -> Result<Option<Zeroizing<String>>, Failure> {
    let var = cli.token_env.as_deref().unwrap_or("NASLINK_TOKEN");
    let value = std::env::var_os(var);
    // SAFETY: called from `main` right after argument parsing, before the
    // tokio runtime or any other thread exists.
    unsafe { std::env::remove_var(var) };
    match value {
        None if cli.token_env.is_some() => Err(Failure::Usage(format!(
            "the environment variable {var} is not set"
        ))),
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(|s| Some(Zeroizing::new(s)))
            .map_err(|v| {
                drop(Zeroizing::new(v.into_encoded_bytes()));
                Failure::Usage(format!("the environment variable {var} is not valid UTF-8"))
            }),
    }
}

/// Wait for SIGINT or SIGTERM.
async fn interrupted() -> Failure {
    let sigint = Failure::Interrupted {
        signal: "SIGINT",
        code: 130,
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => sigint,
                _ = term.recv() => Failure::Interrupted { signal: "SIGTERM", code: 143 },
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    sigint
}

/// `--timeout`: a number of seconds, more than 0 and at most a week.
fn parse_timeout(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS {
        Ok(secs)
    } else {
        Err(format!(
            "wants more than 0 and at most {MAX_TIMEOUT_SECS} seconds, not {text}"
        ))
    }
}

/// A CFMS protocol version naslink speaks (3 to 5, or 13).
fn parse_protocol_version(text: &str) -> Result<u32, String> {
    let version: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a protocol version number"))?;
    match naslink_tokio::core::cfms::p13::Wire::for_version(version) {
        Ok(_) => Ok(version),
        Err(_) => Err(format!(
            "naslink speaks CFMS protocol 3 to 5 and 13, not protocol {version}"
        )),
    }
}

type EnvPassword = Result<Option<Zeroizing<String>>, Failure>;

/// What to run, with everything asked on the terminal already asked.
enum Job {
    Demo { json: bool },
    Sim(Sim),
    Fnos(Box<Cli>, Box<FnosOptions>),
    Cfms(Box<Cli>, CfmsOptions),
}

/// Decide what to run and gather its options (the password prompt
/// included).
fn prepare(
    mut cli: Cli,
    env_password: EnvPassword,
    env_token: EnvPassword,
) -> Result<Job, Failure> {
    match std::mem::replace(&mut cli.command, Command::Info) {
        Command::Demo => return Ok(Job::Demo { json: cli.json }),
        Command::Sim(sim) => return Ok(Job::Sim(sim)),
        command => cli.command = command,
    }
    let url = cli
        .url
        .clone()
        .ok_or_else(|| Failure::Usage("no NAS given: use --url or NASLINK_URL".into()))?;
    let protocol = match cli.protocol {
        Some(p) => p,
        None => protocol_of(&url)?,
    };
    Ok(match protocol {
        Protocol::Fnos => {
            // `login` makes tokens from the password; everything else logs
            // in with a token when one is given.
            let token = match (&cli.command, env_token?) {
                (Command::Login { .. }, _) | (_, None) => None,
                (_, Some(text)) => Some(device_token(&cli, &text)?),
            };
            let options = match token {
                Some(token) => token_options(&cli, &url, token)?,
                None => fnos_options(&cli, &url, env_password)?,
            };
            Job::Fnos(Box::new(cli), Box::new(options))
        }
        Protocol::Cfms => {
            if matches!(env_token, Ok(Some(_))) || cli.token_env.is_some() {
                return Err(Failure::Usage("device tokens are for fnOS only".into()));
            }
            let options = cfms_options(&cli, &url, env_password)?;
            Job::Cfms(Box::new(cli), options)
        }
    })
}

/// An emulator that could not start (`{:#}` shows the causes too).
fn emulator(e: impl std::fmt::Display) -> Failure {
    Failure::Connection(format!("emulator: {e:#}"))
}

async fn execute(job: Job) -> Result<(), Failure> {
    match job {
        Job::Demo { json } => demo::run(json).await,
        Job::Sim(Sim::Fnos(args)) => naslink_sim::fnos::run_cli(args).await.map_err(emulator),
        Job::Sim(Sim::Cfms(args)) => naslink_sim::cfms::run_cli(args).await.map_err(emulator),
        Job::Fnos(cli, options) => match &cli.command {
            Command::Check(args) => Err(fnos_cmd::check(args, *options).await),
            Command::Exporter { listen } => exporter::run(*listen, *options).await,
            _ => fnos_cmd::run(&cli, *options).await,
        },
        Job::Cfms(cli, options) => cfms_cmd::run(&cli, options).await,
    }
}

/// A `/websocket` path is fnOS, anything else CFMS.
fn protocol_of(url: &str) -> Result<Protocol, Failure> {
    let parsed = naslink_tokio::core::ws::Url::parse(url)
        .map_err(|e| Failure::Usage(format!("{url} is not a ws:// or wss:// URL ({e:?})")))?;
    let path = parsed.resource.split('?').next().unwrap_or("");
    Ok(if path.trim_end_matches('/') == "/websocket" {
        Protocol::Fnos
    } else {
        Protocol::Cfms
    })
}

fn trust(cli: &Cli) -> Result<Trust, Failure> {
    Ok(match (&cli.ca_file, &cli.pin_sha256, cli.insecure) {
        (Some(path), _, _) => Trust::CaFile(path.clone()),
        (_, Some(hex), _) => Trust::pin_from_hex(hex).map_err(|e| Failure::Usage(e.to_string()))?,
        (_, _, true) => {
            eprintln!(
                "naslink: warning: --insecure: the server's certificate is not checked; \
                 anyone on the path can read and change this connection"
            );
            Trust::InsecureSkipVerification
        }
        _ => Trust::SystemRoots,
    })
}

/// `--timeout` as a duration; [`parse_timeout`] has bounded it already.
fn timeout(cli: &Cli) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(cli.timeout)
        .map_err(|e| Failure::Usage(format!("--timeout {}: {e}", cli.timeout)))
}

/// Warn when a password is about to cross a network in the clear: plain
/// `ws://` to a host that is not this machine (CFMS sends the password as
/// it is; fnOS's RSA key is unauthenticated without TLS).
fn warn_plain_password(url: &str) {
    let Ok(parsed) = naslink_tokio::core::ws::Url::parse(url) else {
        return;
    };
    if !parsed.secure && !is_loopback(parsed.host) {
        eprintln!(
            "naslink: warning: logging in over plain ws:// to {}: anyone on the network \
             path can read or replace the password; use wss://",
            output::term(parsed.host)
        );
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn password(cli: &Cli, env_password: EnvPassword) -> Result<Zeroizing<String>, Failure> {
    if cli.password_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::Usage(format!("cannot read the password from stdin: {e}")))?;
        let trimmed = line.trim_end_matches(['\r', '\n']).to_owned();
        return Ok(Zeroizing::new(trimmed));
    }
    let var = cli.password_env.as_deref().unwrap_or("NASLINK_PASSWORD");
    if let Some(value) = env_password? {
        return Ok(value);
    }
    if cli.password_env.is_some() {
        return Err(Failure::Usage(format!(
            "the environment variable {var} is not set"
        )));
    }
    if std::io::stdin().is_terminal() {
        let typed = rpassword::prompt_password(format!("Password for {}: ", cli.user))
            .map_err(|e| Failure::Usage(format!("cannot read the password: {e}")))?;
        return Ok(Zeroizing::new(typed));
    }
    Err(Failure::Usage(
        "no password: set NASLINK_PASSWORD, or use --password-env or --password-stdin".into(),
    ))
}

/// The two-factor code from the command line or environment, else a
/// prompt on the terminal (without echo), else none.
fn two_factor(cli: &Cli) -> Option<TwoFactor> {
    if let Some(code) = &cli.two_factor_code {
        return Some(TwoFactor::fixed(code));
    }
    if !std::io::stdin().is_terminal() {
        return None;
    }
    Some(TwoFactor::from_fn(|attempt| async move {
        let prompt = if attempt == 1 {
            "Two-factor code: ".to_owned()
        } else {
            format!("Code refused. Two-factor code (try {attempt}): ")
        };
        tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt).ok())
            .await
            .ok()
            .flatten()
            .map(|code| code.trim().to_owned())
            .filter(|code| !code.is_empty())
    }))
}

fn cfms_options(cli: &Cli, url: &str, env_password: EnvPassword) -> Result<CfmsOptions, Failure> {
    let password = password(cli, env_password)?;
    warn_plain_password(url);
    let mut options = CfmsOptions::new(url, &cli.user, &password);
    options.two_factor = two_factor(cli);
    options.link.trust = trust(cli)?;
    options.link.connect_timeout = Some(timeout(cli)?);
    options.connect_timeout = timeout(cli)?;
    options.request_timeout = timeout(cli)?;
    options.protocol_version = cli.protocol_version;
    Ok(options)
}

/// A device token read from its variable.
fn device_token(cli: &Cli, text: &str) -> Result<DeviceToken, Failure> {
    let var = cli.token_env.as_deref().unwrap_or("NASLINK_TOKEN");
    DeviceToken::parse(text).map_err(|e| Failure::Usage(format!("{var}: {e}")))
}

/// Options that log in with `token` (its user; no password, no prompt).
fn token_options(cli: &Cli, url: &str, token: DeviceToken) -> Result<FnosOptions, Failure> {
    let mut options = FnosOptions::with_device_token(url, token);
    link_options(cli, &mut options)?;
    Ok(options)
}

fn fnos_options(cli: &Cli, url: &str, env_password: EnvPassword) -> Result<FnosOptions, Failure> {
    let password = password(cli, env_password)?;
    warn_plain_password(url);
    let mut options = FnosOptions::new(url, &cli.user, &password);
    link_options(cli, &mut options)?;
    Ok(options)
}

/// Everything but the credentials.
fn link_options(cli: &Cli, options: &mut FnosOptions) -> Result<(), Failure> {
    options.two_factor = two_factor(cli);
    options.link.trust = trust(cli)?;
    options.link.follow_redirect = cli.follow_redirect;
    options.link.access_code = cli.access_code.clone();
    options.link.connect_timeout = Some(timeout(cli)?);
    options.connect_timeout = timeout(cli)?;
    options.request_timeout = timeout(cli)?;
    Ok(())
}
