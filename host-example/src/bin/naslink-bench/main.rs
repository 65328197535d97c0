//! `naslink-bench`: throughput of the tokio clients against the emulators
//! on loopback. Run it optimised:
//!
//! ```text
//! cargo run --release -p host-example --bin naslink-bench [-- --seconds 2 --mib 64]
//! ```
//!
//! It measures fnOS request round trips per second (signed
//! `appcgi.sysinfo.getHostName`) with 1 and with 64 requests in flight,
//! and the CFMS download rate of one file (encrypted by the emulator,
//! streamed to disk, decrypted and verified). The emulators run on a
//! runtime of their own, on other threads; the client runs on a
//! single-threaded runtime on the main thread, so that thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`) is the client's CPU cost per request.
//!
//! In the same run, against the same emulator, it measures two other
//! clients doing the same signed request with 1 and with 64 in flight:
//!
//! - `handwritten` ([`handwritten`]): the baseline of issue 10, an fnOS
//!   client a Rust programmer would write by hand with tokio-tungstenite,
//!   `serde_json`, RustCrypto and `base64` (its own password login, no
//!   naslink-core), on the same single-threaded runtime and measured the
//!   same way;
//! - the PyPI `fnos` client (pyfnos, an independent Python client) through
//!   `scripts/fnos_python_bench.py`, which reports its process CPU time.
//!   `scripts/bench-host.sh` creates the Python environment (`.venv-fnos`,
//!   pinned `fnos`) and runs this binary; `--python` names another
//!   interpreter. Without the interpreter the Python rows are reported as
//!   skipped, with the command that creates it.
//!
//! It prints every client's rate and CPU per request, then naslink's
//! ratios to each (rate and CPU per request, naslink / other). Figures
//! measured on this machine are in the README's "Speed" section (the
//! CFMS download of 64 MiB ran at 28 MB/s there, bound by the emulator's
//! encryption).

mod handwritten;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use naslink_sim::{cfms, fnos};
use naslink_tokio::cfms::{CfmsClient, CfmsOptions};
use naslink_tokio::fnos::{FnosClient, FnosOptions};

/// Measure the tokio clients against the emulators on loopback.
#[derive(Debug, Clone, Parser)]
#[command(name = "naslink-bench", version, about)]
struct Args {
    /// Seconds each fnOS measurement runs (naslink and the Python client alike).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Size of the CFMS download in MiB.
    #[arg(long, default_value_t = 64)]
    mib: usize,
    /// Python interpreter with the PyPI `fnos` package installed.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv-fnos/bin/python"))]
    python: PathBuf,
}

/// The Python client's script, beside this crate in the repository.
const PYTHON_BENCH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../scripts/fnos_python_bench.py"
);

/// Run the Python client against `endpoint` (`HOST:PORT`) and return its
/// name and measurements, or why it could not run.
fn python_rates(args: &Args, endpoint: &str) -> Result<(String, Vec<Rate>), String> {
    if !args.python.exists() {
        return Err(format!(
            "{} not found: run scripts/bench-host.sh (or scripts/fnos-python-check.sh) \
             to create .venv-fnos with the PyPI fnos client",
            args.python.display()
        ));
    }
    let output = std::process::Command::new(&args.python)
        .arg(PYTHON_BENCH)
        .args([
            "--endpoint",
            endpoint,
            "--user",
            "admin",
            "--password",
            "admin",
        ])
        .args(["--seconds", &args.seconds.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start {}: {e}", args.python.display()))?;
    if !output.status.success() {
        return Err(format!("{PYTHON_BENCH} failed: {}", output.status));
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{PYTHON_BENCH} printed no JSON: {e}"))?;
    let client = report["client"].as_str().unwrap_or("pyfnos").to_owned();
    let rates = report["results"]
        .as_array()
        .ok_or_else(|| format!("{PYTHON_BENCH}: no results in {report}"))?
        .iter()
        .filter_map(|r| {
            let requests = r["requests"].as_u64()?.max(1);
            Some(Rate {
                in_flight: r["in_flight"].as_u64()?,
                per_second: r["requests_per_second"].as_f64()?,
                cpu_per_request: Duration::from_secs_f64(
                    r["cpu_seconds"].as_f64()? / requests as f64,
                ),
                user_kernel: None,
            })
        })
        .collect();
    Ok((client, rates))
}

/// A request's failure, from either Rust client.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a
    // constant Linux defines; the call only writes into `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User and kernel CPU time this thread has used (`RUSAGE_THREAD`), to
/// tell a client's own work from its system calls' and the loopback TCP
/// stack's.
fn thread_user_kernel() -> (Duration, Duration) {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable; the call only writes into it.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return (Duration::ZERO, Duration::ZERO);
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (time(usage.ru_utime), time(usage.ru_stime))
}

/// One fnOS measurement of a client.
struct Rate {
    in_flight: u64,
    per_second: f64,
    /// Client CPU time per request.
    cpu_per_request: Duration,
    /// That time split into user and kernel time (Rust clients only).
    user_kernel: Option<(Duration, Duration)>,
}

/// Run `request` on the client runtime from `in_flight` tasks, each
/// looping until `seconds` have passed, and measure the rate and this
/// thread's CPU time per request.
fn measure<C, F, Fut>(
    runtime: &tokio::runtime::Runtime,
    client: &C,
    in_flight: u64,
    seconds: f64,
    request: F,
) -> Result<Rate, BoxError>
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let (user_before, kernel_before) = thread_user_kernel();
    let cpu_before = thread_cpu();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let done = runtime.block_on(async {
        let tasks: Vec<_> = (0..in_flight)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        request(client.clone()).await?;
                        done += 1;
                    }
                    Ok::<_, BoxError>(done)
                })
            })
            .collect();
        let mut done = 0;
        for task in tasks {
            done += task.await??;
        }
        Ok::<_, BoxError>(done)
    })?;
    Ok(Rate {
        in_flight,
        per_second: done as f64 / start.elapsed().as_secs_f64(),
        cpu_per_request: (thread_cpu() - cpu_before) / done.max(1) as u32,
        user_kernel: {
            let (user, kernel) = thread_user_kernel();
            let per_request = |d: Duration| d / done.max(1) as u32;
            Some((
                per_request(user - user_before),
                per_request(kernel - kernel_before),
            ))
        },
    })
}

/// Print every client's rows, then naslink's ratios to each other client
/// (rate: naslink / other, higher is better; CPU per request: naslink /
/// other, lower is better), with issue 10's targets against the
/// handwritten baseline.
fn print_table(clients: &[(String, Vec<Rate>)]) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!();
    println!(
        "fnOS getHostName  client          in flight       req/s   client CPU/request   (user + kernel)"
    );
    for in_flight in [1, 64] {
        for (name, rates) in clients {
            if let Some(r) = rates.iter().find(|r| r.in_flight == in_flight) {
                let split = r.user_kernel.map_or(String::new(), |(user, kernel)| {
                    format!("   ({:.1} + {:.1} us)", us(user), us(kernel))
                });
                println!(
                    "                  {name:<14}  {in_flight:>9}  {:>10.0}   {:>15.1} us{split}",
                    r.per_second,
                    us(r.cpu_per_request)
                );
            }
        }
    }
    println!();
    let Some((_, ours)) = clients.first() else {
        return;
    };
    for (name, theirs) in &clients[1..] {
        for rate in ours {
            let Some(other) = theirs.iter().find(|o| o.in_flight == rate.in_flight) else {
                continue;
            };
            let target = match (name.as_str(), rate.in_flight) {
                ("handwritten", 1) => "   (targets >= 1.0x, <= 0.6x)",
                ("handwritten", _) => "   (targets >= 1.5x, <= 0.6x)",
                _ => "",
            };
            println!(
                "naslink / {name:<14} {:>2} in flight: rate {:>6.2}x   CPU/request {:>5.2}x{target}",
                rate.in_flight,
                rate.per_second / other.per_second,
                us(rate.cpu_per_request) / us(other.cpu_per_request).max(f64::MIN_POSITIVE),
            );
        }
    }
    println!();
}

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    // The emulators run on a runtime of their own, on other threads; the
    // client runs on a single-threaded runtime on this thread (as the
    // Python client runs on one asyncio loop), so this thread's CPU time
    // is the client's alone.
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sim = servers.block_on(fnos::Server::start(fnos::Config {
        key: fnos::KeySource::Fixture,
        ..fnos::Config::default()
    }))?;
    let nas = client.block_on(FnosClient::connect(FnosOptions::new(
        &sim.url(),
        "admin",
        "admin",
    )))?;
    let baseline = client.block_on(handwritten::Client::connect(&sim.url(), "admin", "admin"))?;
    // Each baseline measurement right after naslink's with the same number
    // in flight, so that both see the same load on this shared machine.
    let mut naslink = Vec::new();
    let mut baseline_rates = Vec::new();
    for in_flight in [1, 64] {
        naslink.push(measure(
            &client,
            &nas,
            in_flight,
            args.seconds,
            |nas| async move {
                nas.request("appcgi.sysinfo.getHostName", None).await?;
                Ok::<_, BoxError>(())
            },
        )?);
        baseline_rates.push(measure(
            &client,
            &baseline,
            in_flight,
            args.seconds,
            |c| async move {
                c.request("appcgi.sysinfo.getHostName").await?;
                Ok::<_, BoxError>(())
            },
        )?);
    }
    drop(nas);
    drop(baseline);
    // The Python client talks to the same emulator from its own process.
    let endpoint = sim.url();
    let endpoint = endpoint
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let mut clients = vec![
        ("naslink".to_owned(), naslink),
        ("handwritten".to_owned(), baseline_rates),
    ];
    match python_rates(&args, &endpoint) {
        Ok((name, python)) => clients.push((name, python)),
        Err(why) => println!("python client skipped: {why}"),
    }
    print_table(&clients);
    servers.block_on(sim.shutdown());

    let sim = servers.block_on(cfms::Server::start(cfms::Config::default()))?;
    let content: Vec<u8> = (0..args.mib * 1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect();
    let id = sim.put_document(None, "bench.bin", content);
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(120);
    let dir = std::env::temp_dir().join(format!("naslink-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let target = dir.join("bench.bin");
    let (size, secs) = client.block_on(async {
        let nas = CfmsClient::connect(options).await?;
        let start = Instant::now();
        let size = nas.download(&id, &target, |_, _| {}).await?;
        Ok::<_, BoxError>((size, start.elapsed().as_secs_f64()))
    })?;
    println!(
        "cfms   download of {} MiB: {:.1} MB/s (stream to disk, decrypt, verify)",
        args.mib,
        size as f64 / secs / 1e6
    );
    std::fs::remove_dir_all(&dir)?;
    servers.block_on(sim.shutdown());
    Ok(())
}
