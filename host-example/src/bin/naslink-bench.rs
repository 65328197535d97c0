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
//! In the same run, against the same emulator, it starts the PyPI `fnos`
//! client (pyfnos, an independent Python client) through
//! `scripts/fnos_python_bench.py`, which times the same signed request with
//! 1 and with 64 in flight and reports its process CPU time, and prints
//! both rates, both CPU costs and their ratios.
//! `scripts/bench-host.sh` creates the Python environment (`.venv-fnos`,
//! pinned `fnos`) and runs this binary; `--python` names another
//! interpreter. Without the interpreter the Python rows are reported as
//! skipped, with the command that creates it.
//!
//! Measured here (release build, 2 shared cores, 2026-12-01, three runs of
//! 2 s per figure): naslink 21 000 to 26 000 round trips/s with 1 in
//! flight and about 100 000 with 64, at 19 to 25 and 9 to 10 us of client
//! CPU per request; pyfnos 0.13.0 2 800 to 6 600 and 7 100 to 15 800 per
//! second at 147 to 353 and 63 to 141 us. Ratios 3x to 14x: short of the
//! 20x target. CFMS 64 MiB download at 28 MB/s (15 to 20 before the
//! batched CFB8 decryption), bound by the emulator's encryption.

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
            })
        })
        .collect();
    Ok((client, rates))
}

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

/// One fnOS measurement of naslink.
struct Rate {
    in_flight: u64,
    per_second: f64,
    /// Client CPU time per request.
    cpu_per_request: Duration,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let mut rates = Vec::new();
    for in_flight in [1usize, 64] {
        let cpu_before = thread_cpu();
        let start = Instant::now();
        let done = client.block_on(async {
            let deadline = start + Duration::from_secs_f64(args.seconds);
            let mut tasks = Vec::new();
            for _ in 0..in_flight {
                let nas = nas.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        nas.request("appcgi.sysinfo.getHostName", None).await?;
                        done += 1;
                    }
                    Ok::<_, naslink_tokio::FnosError>(done)
                }));
            }
            let mut done = 0;
            for task in tasks {
                done += task.await??;
            }
            Ok::<_, Box<dyn std::error::Error>>(done)
        })?;
        let per_second = done as f64 / start.elapsed().as_secs_f64();
        let cpu_per_request = (thread_cpu() - cpu_before) / done.max(1) as u32;
        println!(
            "fnos   {done:>7} requests, {in_flight:>2} in flight: {per_second:>9.0} round trips/s, \
             client CPU {:.1} us/request",
            cpu_per_request.as_secs_f64() * 1e6
        );
        rates.push(Rate {
            in_flight: in_flight as u64,
            per_second,
            cpu_per_request,
        });
    }
    drop(nas);
    // The Python client talks to the same emulator from its own process.
    let endpoint = sim.url();
    let endpoint = endpoint
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    match python_rates(&args, &endpoint) {
        Ok((name, python)) => {
            println!();
            println!(
                "fnOS getHostName  in flight   naslink req/s   {name} req/s   rate ratio   \
                 naslink CPU/req   {name} CPU/req   CPU ratio"
            );
            for rate in &rates {
                let Some(py) = python.iter().find(|p| p.in_flight == rate.in_flight) else {
                    continue;
                };
                let ours = rate.cpu_per_request.as_secs_f64() * 1e6;
                let theirs = py.cpu_per_request.as_secs_f64() * 1e6;
                println!(
                    "                  {:>9}   {:>13.0}   {:>w$.0}   {:>9.1}x   {:>12.1} us   {:>w2$.1} us   {:>8.1}x",
                    rate.in_flight,
                    rate.per_second,
                    py.per_second,
                    rate.per_second / py.per_second,
                    ours,
                    theirs,
                    theirs / ours.max(f64::MIN_POSITIVE),
                    w = name.len() + 6,
                    w2 = name.len() + 5,
                );
            }
            println!();
        }
        Err(why) => println!("python client skipped: {why}"),
    }
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
        Ok::<_, Box<dyn std::error::Error>>((size, start.elapsed().as_secs_f64()))
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
