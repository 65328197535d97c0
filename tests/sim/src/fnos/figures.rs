//! Live system figures: CPU, memory, disk and network numbers that drift
//! over time the way a lightly used NAS does, so a front panel has something
//! moving to show.
//!
//! Every figure is a pure function of the seconds since the server started
//! (smooth waves plus a little noise), so two reads a second apart differ
//! while a test can still rely on their ranges.

use rand::Rng;
use serde_json::{Value, json};

/// Total memory of the emulated machine in bytes (8 GiB).
pub const MEM_TOTAL: u64 = 8 * 1024 * 1024 * 1024;

/// A snapshot of the moving figures.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// CPU busy percentage, 0–100.
    pub cpu_busy: u32,
    /// Memory in use, bytes.
    pub mem_used: u64,
    /// Disk read rate, bytes/s.
    pub store_read: u64,
    /// Disk write rate, bytes/s.
    pub store_write: u64,
    /// Network receive rate, bytes/s.
    pub net_receive: u64,
    /// Network transmit rate, bytes/s.
    pub net_transmit: u64,
    /// Disk temperature, °C.
    pub disk_temp: u32,
}

fn wave(t: f64, period: f64) -> f64 {
    0.5 + 0.5 * (t * std::f64::consts::TAU / period).sin()
}

impl Figures {
    /// The figures `elapsed_secs` after start-up.
    pub fn at(elapsed_secs: f64) -> Self {
        let mut rng = rand::thread_rng();
        let t = elapsed_secs;
        let noise = |rng: &mut rand::rngs::ThreadRng, span: f64| rng.gen_range(0.0..span);
        let cpu = 3.0 + 25.0 * wave(t, 47.0) + noise(&mut rng, 6.0);
        let mem = 0.31 + 0.08 * wave(t, 300.0) + noise(&mut rng, 0.01);
        Self {
            cpu_busy: cpu.min(100.0) as u32,
            mem_used: (MEM_TOTAL as f64 * mem) as u64,
            store_read: (40e6 * wave(t, 23.0) + noise(&mut rng, 2e6)) as u64,
            store_write: (12e6 * wave(t + 7.0, 31.0) + noise(&mut rng, 1e6)) as u64,
            net_receive: (9e6 * wave(t, 17.0) + noise(&mut rng, 5e5)) as u64,
            net_transmit: (3e6 * wave(t + 3.0, 13.0) + noise(&mut rng, 2e5)) as u64,
            disk_temp: 34 + (6.0 * wave(t, 600.0)) as u32,
        }
    }

    /// Memory in use as a percentage of [`MEM_TOTAL`].
    pub fn mem_percent(&self) -> u32 {
        (self.mem_used * 100 / MEM_TOTAL) as u32
    }

    /// `appcgi.resmon.gen`'s `data.item`, restricted to the requested items
    /// (all four when the request names none).
    pub fn gen_items(&self, wanted: &[&str]) -> Value {
        let mut item = serde_json::Map::new();
        let all = wanted.is_empty();
        let want = |name: &str| all || wanted.contains(&name);
        if want("storeSpeed") {
            item.insert(
                "storeSpeed".into(),
                json!({"read": self.store_read, "write": self.store_write}),
            );
        }
        if want("netSpeed") {
            item.insert(
                "netSpeed".into(),
                json!({"transmit": self.net_transmit, "receive": self.net_receive}),
            );
        }
        if want("cpuBusy") {
            item.insert("cpuBusy".into(), json!(self.cpu_busy));
        }
        if want("memPercent") {
            item.insert("memPercent".into(), json!(self.mem_percent()));
        }
        json!({ "item": item })
    }

    /// `appcgi.resmon.mem`'s `data`.
    pub fn mem(&self) -> Value {
        let cached = MEM_TOTAL / 5;
        let free = MEM_TOTAL - self.mem_used - cached;
        json!({"mem": {
            "total": MEM_TOTAL, "used": self.mem_used, "free": free,
            "available": free + cached, "cached": cached, "buffers": 64 * 1024 * 1024,
        }, "swap": {"total": 2u64 << 30, "used": 0, "free": 2u64 << 30}})
    }

    /// `appcgi.resmon.net`'s `data`.
    pub fn net(&self) -> Value {
        json!({"ifs": [
            {"name": "enp1s0", "receive": self.net_receive, "transmit": self.net_transmit},
            {"name": "enp2s0", "receive": 0, "transmit": 0},
        ]})
    }
}
