//! The panel firmware on Linux: embassy's std executor and time driver, an
//! embassy-net stack on a TAP device (see `scripts/firmware.sh host-test`,
//! which makes one in a private network namespace).
//!
//! Runtime settings (host only): `NASLINK_TAP` (default `tap0`),
//! `NASLINK_IP` (default `192.168.69.2`, a /24 whose `.1` is the host side),
//! `NASLINK_RUN_SECS` (stop after this long; default: run forever),
//! `NASLINK_PNG` (after every refresh, write the panel as the 128×64
//! display would show it to this PNG file, replaced atomically).
//!
//! Heap check: every poll of the panel task (naslink-embassy, naslink-core
//! and the panel code, down to the embassy-net socket calls) runs with a
//! thread-local flag set, and a global allocator counts allocations made
//! while it is set. At the end the count is printed, and a non-zero count
//! fails the run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::fs::File;
use std::future::{Future, poll_fn};
use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use embassy_executor::Spawner;
use embassy_futures::select::{Either, select};
use embassy_net::{Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Timer;
use naslink_core::random::Entropy;
use naslink_firmware_example::app::{self, Panel, Resources};
use naslink_firmware_example::display::{self, Frame};
use naslink_firmware_example::panel::{Line, ROWS};
use naslink_firmware_example::picture::write_png;
use static_cell::StaticCell;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter and the const-initialised thread-local never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Poll `f` with the allocation counter armed.
async fn armed<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    poll_fn(|cx| {
        ARMED.with(|a| a.set(true));
        let r = f.as_mut().poll(cx);
        ARMED.with(|a| a.set(false));
        r
    })
    .await
}

struct Stdout {
    /// Where to draw each refresh (`NASLINK_PNG`).
    png: Option<std::path::PathBuf>,
}

impl Panel for Stdout {
    fn show(&mut self, lines: &[Line; ROWS]) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "panel ---------------------");
        for l in lines {
            let _ = writeln!(out, "panel | {l}");
        }
        let _ = out.flush();
        if let Some(path) = &self.png {
            picture(lines, path);
        }
    }

    fn note(&mut self, text: &str) {
        note(text);
    }
}

fn note(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "note  | {text}");
    let _ = out.flush();
}

/// Draw `lines` as the display would (the firmware's own drawing code) and
/// write the PNG. The file writing is the host's, not the panel's: the heap
/// count is paused around it.
fn picture(lines: &[Line; ROWS], path: &std::path::Path) {
    let armed = ARMED.with(|a| a.replace(false));
    let mut frame = Frame::new();
    let Ok(()) = display::draw(lines, &mut frame);
    let tmp = path.with_extension("png.part");
    let written = File::create(&tmp)
        .map_err(|e| e.to_string())
        .and_then(|f| write_png(&frame, std::io::BufWriter::new(f)).map_err(|e| e.to_string()))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string()));
    if let Err(e) = written {
        eprintln!("panel-host: {}: {e}", path.display());
    }
    ARMED.with(|a| a.set(armed));
}

struct Urandom(File);

impl Entropy for Urandom {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.0.read_exact(dest).is_err() {
            // A host without a working /dev/urandom cannot log in safely.
            std::process::abort();
        }
    }
}

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info || m.target().starts_with("naslink")
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{:<5} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
    // First use of stdout allocates its buffer; do it before counting.
    note("naslink panel (host build)");

    let tap = env_or("NASLINK_TAP", "tap0");
    let ip: Ipv4Addr = match env_or("NASLINK_IP", "192.168.69.2").parse() {
        Ok(ip) => ip,
        Err(e) => fail(&format!("NASLINK_IP: {e}")),
    };
    let gateway = Ipv4Addr::from(u32::from(ip) & 0xffff_ff00 | 1);
    let run_secs: Option<u64> = std::env::var("NASLINK_RUN_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let device = match TunTapDevice::new(&tap) {
        Ok(d) => d,
        Err(e) => fail(&format!(
            "TAP device {tap}: {e} (see scripts/firmware.sh host-test)"
        )),
    };
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip, 24),
        gateway: Some(gateway),
        dns_servers: Default::default(),
    });
    let mut rng = match File::open("/dev/urandom") {
        Ok(f) => Urandom(f),
        Err(e) => fail(&format!("/dev/urandom: {e}")),
    };
    let mut seed = [0u8; 8];
    rng.fill_bytes(&mut seed);
    static STACK: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config,
        STACK.init(StackResources::new()),
        u64::from_le_bytes(seed),
    );
    match net_task(runner) {
        Ok(task) => spawner.spawn(task),
        Err(_) => fail("net task already running"),
    }

    static RESOURCES: StaticCell<Resources> = StaticCell::new();
    let resources = RESOURCES.init(Resources::new());
    let mut panel = Stdout {
        png: std::env::var_os("NASLINK_PNG").map(Into::into),
    };
    let panel_loop = armed(app::run(stack, rng, resources, &mut panel));
    let stop = async {
        match run_secs {
            Some(secs) => Timer::after_secs(secs).await,
            None => core::future::pending().await,
        }
    };
    // The panel loop never ends; only the stop timer gets here.
    let Either::Second(()) = select(panel_loop, stop).await;
    let n = ALLOCATIONS.load(Ordering::Relaxed);
    note(&format!("heap allocations in the panel task: {n}"));
    std::process::exit(if n == 0 { 0 } else { 3 });
}

fn fail(message: &str) -> ! {
    eprintln!("panel-host: {message}");
    std::process::exit(2)
}
