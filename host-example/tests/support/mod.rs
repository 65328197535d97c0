//! Running the `naslink` binary as a child whose exit status and wall time
//! are measured, with an optional signal sent mid-run ([`run`]), or through
//! `naslink-peak` ([`measured`]), which also reports its peak memory: a
//! child spawned straight from this (large) test process would be charged
//! this process's peak as its own `ru_maxrss`.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How one run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit status when the child exited by itself.
    pub code: Option<i32>,
    /// The signal that ended it otherwise.
    pub signal: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    /// The child's peak resident set size in bytes.
    pub peak_rss: u64,
    /// The child ran past its limit and was killed.
    pub killed: bool,
}

/// The most memory a run may use, whatever the server does.
pub const MEMORY_LIMIT: u64 = 64 << 20;

/// What to send the child, and when.
pub struct Interrupt<'a> {
    /// Signal number (`libc::SIGINT`).
    pub signal: i32,
    /// Polled every 20 ms; the signal goes out the first time it is true.
    pub when: &'a dyn Fn() -> bool,
}

/// A `naslink` command with the password in its environment and nothing
/// inherited that would change its behaviour.
pub fn naslink(url: &str, timeout_secs: u32) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("naslink"));
    cmd.env_remove("NASLINK_URL")
        .env_remove("NASLINK_USER")
        .env_remove("NASLINK_2FA_CODE")
        .env_remove("NASLINK_ACCESS_CODE")
        // Each run finds the protocol by itself (tests reuse ports).
        .env("NASLINK_NO_CACHE", "1")
        .env("NASLINK_PASSWORD", "admin")
        .args(["--url", url, "--timeout", &timeout_secs.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Run `cmd` to its end, killing it after `limit`.
// The child is reaped with `wait4` (for its status), not `Child::wait`.
#[allow(clippy::zombie_processes)]
pub fn run(cmd: &mut Command, limit: Duration, interrupt: Option<Interrupt<'_>>) -> Outcome {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("naslink starts");
    let pid = child.id() as libc::pid_t;
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let mut interrupt = interrupt;
    let mut killed = false;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data for which all-zero bytes are valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own unreaped child; both pointers are valid
        // for the duration of the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break (status, usage);
        }
        if let Some(i) = interrupt.as_ref().filter(|i| (i.when)()) {
            // SAFETY: plain kill(2) of our own child, not yet reaped.
            unsafe { libc::kill(pid, i.signal) };
            interrupt = None;
        }
        if start.elapsed() > limit && !killed {
            // Not reaped yet, so the pid is still this child's.
            let _ = child.kill();
            killed = true;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = start.elapsed();
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed,
        // Linux reports kilobytes.
        peak_rss: u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024,
        killed,
    }
}

/// Run `cmd` through `naslink-peak` (killed after `limit`), with its own
/// peak memory in the outcome.
pub fn measured(cmd: &Command, limit: Duration) -> Outcome {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut peak = Command::new(assert_cmd::cargo::cargo_bin("naslink-peak"));
    peak.arg(report.path())
        .arg(limit.as_secs_f64().to_string())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => peak.env(key, value),
            None => peak.env_remove(key),
        };
    }
    peak.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // naslink-peak kills the command at `limit`; this bound is for
    // naslink-peak itself.
    let outer = run(&mut peak, limit + Duration::from_secs(10), None);
    let text = std::fs::read_to_string(report.path()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("naslink-peak gave no report ({e}): {outer:?}"));
    let number = |key: &str| json[key].as_i64();
    Outcome {
        code: number("code").and_then(|c| i32::try_from(c).ok()),
        signal: number("signal").and_then(|c| i32::try_from(c).ok()),
        stdout: outer.stdout,
        stderr: outer.stderr,
        elapsed: Duration::from_millis(json["elapsed_ms"].as_u64().unwrap_or(u64::MAX)),
        peak_rss: json["peak_rss_kib"].as_u64().unwrap_or(u64::MAX / 2048) * 1024,
        killed: json["killed"] == true,
    }
}

fn drain(mut from: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The names in `dir` other than `keep`, sorted.
pub fn strangers(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !keep.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A folder with a target file that holds `original`.
pub fn target_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.bin");
    std::fs::write(&target, b"original").unwrap();
    (dir, target)
}

/// An fnOS emulator on a runtime of its own (the committed test key),
/// alive while a test runs the binary against it.
pub struct FnosSim {
    /// The emulator's runtime, for a test that acts on it (a shutdown).
    pub runtime: tokio::runtime::Runtime,
    /// The emulator's handle: its URL and knobs.
    pub handle: naslink_sim::fnos::Handle,
}

impl FnosSim {
    /// Starts the emulator with `config` and the fixture key.
    pub fn start(config: naslink_sim::fnos::Config) -> FnosSim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the emulator");
        let handle = runtime
            .block_on(naslink_sim::fnos::Server::start(
                naslink_sim::fnos::Config {
                    key: naslink_sim::fnos::KeySource::Fixture,
                    ..config
                },
            ))
            .expect("the fnOS emulator starts");
        FnosSim { runtime, handle }
    }

    /// Its `ws://` URL.
    pub fn url(&self) -> String {
        self.handle.url()
    }
}

/// The CFMS emulator over `wss://` on a runtime of its own, with the
/// fingerprint its certificate is pinned by.
pub struct CfmsSim {
    /// The emulator's runtime (kept alive with it).
    pub runtime: tokio::runtime::Runtime,
    /// The emulator's handle: its URL and knobs.
    pub handle: naslink_sim::cfms::Handle,
    /// Its certificate's SHA-256, lower-case hex (`--pin-sha256`).
    pub pin: String,
}

impl CfmsSim {
    /// Starts the emulator with `config`, TLS on.
    pub fn start(config: naslink_sim::cfms::Config) -> CfmsSim {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the emulator");
        let handle = runtime
            .block_on(naslink_sim::cfms::Server::start(
                naslink_sim::cfms::Config {
                    tls: true,
                    ..config
                },
            ))
            .expect("the CFMS emulator starts");
        let pin = handle
            .cert_sha256()
            .expect("a TLS emulator has a certificate")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        CfmsSim {
            runtime,
            handle,
            pin,
        }
    }

    /// `naslink` against it as `admin`, pinned to `pin`, with `--timeout
    /// timeout` and nothing inherited that would change its behaviour.
    pub fn naslink(&self, pin: &str, timeout: &str) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("naslink").expect("the naslink binary");
        cmd.env_remove("NASLINK_URL")
            .env_remove("NASLINK_USER")
            .env_remove("NASLINK_PROTOCOL_VERSION")
            .env_remove("NASLINK_CACHE_DIR")
            // Each run finds the protocol by itself (tests reuse ports).
            .env("NASLINK_NO_CACHE", "1")
            .env("NASLINK_PASSWORD", "admin")
            .args(["--url", &self.handle.url(), "--pin-sha256", pin])
            .args(["--timeout", timeout])
            .timeout(Duration::from_secs(30));
        cmd
    }
}
