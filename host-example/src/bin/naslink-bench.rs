//! `naslink-bench`: throughput of the tokio clients against the emulators
//! on loopback. Run it optimised:
//!
//! ```text
//! cargo run --release -p host-example --bin naslink-bench [-- --requests 5000 --mib 64]
//! ```
//!
//! It measures fnOS request round trips per second (signed
//! `appcgi.sysinfo.getHostName`) with 1 and with 64 requests in flight,
//! and the CFMS download rate of one file (encrypted by the emulator,
//! streamed to disk, decrypted and verified). The emulators run in the same
//! process, so the figures include their work too.
//!
//! Measured here (release build, 2 shared cores, 2026-11-22): about
//! 36 000 fnOS round trips/s with 1 and with 64 in flight (the emulator
//! answers one connection's requests in order), CFMS 64 MiB at about
//! 18 MB/s.
//!
//! Not done: the comparison with the PyPI `fnos` client in the same run.

use std::time::{Duration, Instant};

use clap::Parser;
use naslink_sim::{cfms, fnos};
use naslink_tokio::cfms::{CfmsClient, CfmsOptions};
use naslink_tokio::fnos::{FnosClient, FnosOptions};

/// Measure the tokio clients against the emulators on loopback.
#[derive(Debug, Parser)]
#[command(name = "naslink-bench", version, about)]
struct Args {
    /// fnOS requests per measurement.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
    /// Size of the CFMS download in MiB.
    #[arg(long, default_value_t = 64)]
    mib: usize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let sim = fnos::Server::start(fnos::Config {
        key: fnos::KeySource::Fixture,
        ..fnos::Config::default()
    })
    .await?;
    let nas = FnosClient::connect(FnosOptions::new(&sim.url(), "admin", "admin")).await?;
    for in_flight in [1usize, 64] {
        let per_task = args.requests.div_ceil(in_flight);
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..in_flight {
            let nas = nas.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_task {
                    nas.request("appcgi.sysinfo.getHostName", None).await?;
                }
                Ok::<_, naslink_tokio::FnosError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "fnos   {:>6} requests, {in_flight:>2} in flight: {:>9.0} round trips/s",
            per_task * in_flight,
            (per_task * in_flight) as f64 / secs
        );
    }
    sim.shutdown().await;

    let sim = cfms::Server::start(cfms::Config::default()).await?;
    let content: Vec<u8> = (0..args.mib * 1024 * 1024)
        .map(|i| (i % 251) as u8)
        .collect();
    let id = sim.put_document(None, "bench.bin", content);
    let mut options = CfmsOptions::new(&sim.url(), "admin", "admin");
    options.request_timeout = Duration::from_secs(120);
    let nas = CfmsClient::connect(options).await?;
    let dir = std::env::temp_dir().join(format!("naslink-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let target = dir.join("bench.bin");
    let start = Instant::now();
    let size = nas.download(&id, &target, |_, _| {}).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "cfms   download of {} MiB: {:.1} MB/s (stream to disk, decrypt, verify)",
        args.mib,
        size as f64 / secs / 1e6
    );
    std::fs::remove_dir_all(&dir)?;
    sim.shutdown().await;
    Ok(())
}
