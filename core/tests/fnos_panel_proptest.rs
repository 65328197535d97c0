//! The panel views never panic: on arbitrary text that parses as a reply,
//! and on arbitrary JSON put where each view looks (`data.cpu`,
//! `disk[]`, `smart`, `array[]`, `rsp`, …). Every accessor answers a value
//! or "unknown".

mod json_support;

use naslink_core::fnos::health::{self, Thresholds};
use naslink_core::fnos::panel::*;
use naslink_core::fnos::response::{Message, Reply};
use proptest::prelude::*;

/// Call every accessor of every view on `r`.
fn exercise(r: &Reply<'_>) {
    let cpu = Cpu::from_reply(r);
    let _ = (
        cpu.name(),
        cpu.cores(),
        cpu.threads(),
        cpu.max_freq_mhz(),
        cpu.temperature(),
    );
    let _ = (
        cpu.busy_percent(),
        cpu.load_average(),
        cpu.fan_rpm(),
        cpu.temperatures().count(),
    );
    for g in Gpus::from_reply(r).iter() {
        let _ = (
            g.index(),
            g.vendor(),
            g.device(),
            g.busy_percent(),
            g.temperature(),
        );
        let _ = (g.ram_total(), g.ram_used(), g.encoder_percent());
    }
    let disks = ResmonDisks::from_reply(r);
    let _ = disks.count();
    for d in disks.iter() {
        let _ = (
            d.name(),
            d.temperature(),
            d.standby(),
            d.busy_percent(),
            d.read_rate(),
            d.write_rate(),
        );
    }
    for d in DiskList::from_reply(r).iter() {
        let _ = (
            d.name(),
            d.size(),
            d.model(),
            d.serial(),
            d.vendor(),
            d.kind(),
            d.protocol(),
        );
        let _ = (
            d.rotation_rate(),
            d.is_system(),
            d.is_external(),
            d.pool_level(),
            d.member_state(),
        );
    }
    let mut inventory: DiskInventory<4> = DiskInventory::new();
    let _ = inventory.absorb(r);
    assert!(inventory.disks().len() <= 4);
    for h in DiskHealthList::from_reply(r).iter() {
        let _ = (
            h.disk(),
            h.smart_available(),
            h.smart_enabled(),
            h.passed(),
            h.verdict(),
        );
        let _ = (
            h.nvme_critical_warning(),
            h.power_on_hours(),
            h.power_cycles(),
            h.temperature(),
        );
    }
    let smart = Smart::from_reply(r);
    let _ = (
        smart.standby(),
        smart.protocol(),
        smart.model(),
        smart.passed(),
        smart.verdict(),
    );
    let _ = (
        smart.temperature(),
        smart.power_on_hours(),
        smart.power_cycles(),
    );
    let _ = (
        smart.percentage_used(),
        smart.media_errors(),
        disk_temperature(None, Some(&smart)),
    );
    for p in Pools::from_reply(r).iter() {
        let _ = (
            p.name(),
            p.uuid(),
            p.mountpoint(),
            p.stor_id(),
            p.comment(),
            p.level(),
        );
        let _ = (
            p.size(),
            p.free(),
            p.used_percent(),
            p.fix_need_disks(),
            p.degraded(),
        );
        if let PoolState::Rebuilding(Some(progress)) | PoolState::Checking(Some(progress)) =
            p.state()
        {
            assert!(progress.percent() <= 100);
        }
        for md in p.arrays() {
            let _ = (
                md.name(),
                md.raid_disks(),
                md.level(),
                md.array_state(),
                md.sync_action(),
            );
            let _ = (md.progress().map(|p| p.percent()), md.degraded());
            for m in md.members() {
                let _ = (m.name(), m.slot(), m.state());
            }
        }
    }
    for c in Containers::from_reply(r).iter() {
        let _ = (
            c.id(),
            c.raw_name(),
            c.name(),
            c.image(),
            c.state(),
            c.status(),
            c.project(),
            c.created(),
        );
    }
    let stats = DockerStats::from_reply(r);
    let _ = stats.get("x");
    for s in stats.iter() {
        let _ = (
            s.id(),
            s.cpu_usage(),
            s.memory(),
            s.network_rx(),
            s.network_tx(),
        );
    }
    let ups = Ups::from_reply(r);
    let _ = (
        ups.enabled(),
        ups.type_name(),
        ups.connected(),
        ups.model(),
        ups.battery_percent(),
    );
    let _ = (ups.runtime_secs(), ups.power_supply(), ups.on_battery());
    if let Some(p) = ups.battery_percent() {
        assert!(p <= 100);
    }
    let _ = unread_total(r);
    let warn = SysWarn::from_reply(r);
    let _ = warn.count();
    for w in warn.iter() {
        let _ = (w.text(), w.level());
    }
    let hw = HardwareInfo::from_reply(r);
    let _ = (
        hw.cpu_name(),
        hw.cpu_cores(),
        hw.cpu_threads(),
        hw.memory(),
        hw.memory_type(),
    );
    let _ = (
        hw.memory_mhz(),
        hw.gpus().count(),
        hw.product(),
        hw.bios_vendor(),
        hw.bios_version(),
        hw.system_disk(),
    );
    if let Some(d) = DoingFrame::from_reply(r) {
        let _ = (d.percent(), d.data());
    }
    let _ = task_outcome(r);
    let _ = health::verdict(&health::Snapshot::default(), &Thresholds::default());
}

fn exercise_text(text: &[u8]) {
    match Message::parse(text) {
        Ok(Message::Reply(r)) => exercise(&r),
        Ok(Message::Push(p)) => {
            if let Some(t) = TaskFrame::from_push(&p) {
                let _ = (
                    t.is_progress(),
                    t.task_id(),
                    t.reqid(),
                    t.percent(),
                    t.size(),
                );
                let _ = (t.size_total(), t.speed(), t.time());
            }
        }
        _ => {}
    }
}

/// Where the views look, each with arbitrary JSON put there.
const PLACES: &[&str] = &[
    r#"{"data":{"cpu":V},"reqid":"r","result":"succ"}"#,
    r#"{"data":{"gpu":V,"disk":V,"num":V},"reqid":"r","result":"succ"}"#,
    r#"{"disk":V,"reqid":"r"}"#,
    r#"{"disk":[{"name":"sda","storage":V,"size":V,"sys":V}],"reqid":"r"}"#,
    r#"{"diskHealth":V,"reqid":"r","result":"succ"}"#,
    r#"{"diskHealth":[{"disk":"sda","smartStatus":V,"temperature":V}],"reqid":"r","result":"succ"}"#,
    r#"{"smart":V,"diskStandby":V,"reqid":"r","result":"succ"}"#,
    r#"{"smart":{"temperature":V,"nvme_smart_health_information_log":V,"ata_smart_attributes":{"table":V}},"reqid":"r","result":"succ"}"#,
    r#"{"array":V,"block":V,"reqid":"r","result":"succ"}"#,
    r#"{"state":[{"md":V,"degraded":V,"fssize":V,"frsize":V}],"reqid":"r","result":"succ"}"#,
    r#"{"array":[{"md":[{"name":"md1","syncCompleted":V,"syncAction":V,"raidDisks":V,"disk":V}]}],"block":V,"reqid":"r","result":"succ"}"#,
    r#"{"rsp":V,"reqid":"r","result":"succ"}"#,
    r#"{"rsp":{"id":V},"reqid":"r","result":"succ"}"#,
    r#"{"data":{"upsEnabled":V,"currentUps":V},"reqid":"r","result":"succ"}"#,
    r#"{"data":{"currentUps":{"batteryCharge":V,"powerSupplyType":V,"runtime":V}},"reqid":"r","result":"succ"}"#,
    r#"{"unreadTotal":V,"reqid":"r","result":"succ"}"#,
    r#"{"data":V,"reqid":"r","result":"doing","percent":V}"#,
    r#"{"data":{"warn":V,"total":V},"reqid":"r","result":"succ"}"#,
    r#"{"data":{"cpu":V,"mem":V,"gpu":V,"bios":V,"sysdisk":V},"reqid":"r","result":"succ"}"#,
    r#"{"sysNotify":"taskInfo","taskInfo":V,"percent":V,"reqid":"r"}"#,
];

proptest! {
    #[test]
    fn arbitrary_text_never_panics_a_panel_view(
        text in json_support::jsonish(&[
            b"\"reqid\":\"r\"", b"\"result\"", b"\"data\"", b"\"rsp\"", b"\"disk\"", b"\"array\"",
            b"\"md\"", b"\"smart\"", b"\"temperature\"", b"\"syncCompleted\"", b"\"1 / 0\"",
            b"\"cpu\"", b"\"temp\"", b"\"currentUps\"", b"\"doing\"", b"\"sysNotify\"",
        ])
    ) {
        exercise_text(&text);
    }

    #[test]
    fn arbitrary_json_where_a_view_looks_never_panics_it(
        place in prop::sample::select(PLACES),
        value in json_support::json_value(),
    ) {
        let text = place.replace('V', &value.to_string());
        exercise_text(text.as_bytes());
    }

    #[test]
    fn progress_text_of_any_form_reads_within_bounds(done in any::<u64>(), total in any::<u64>(), f in any::<f64>()) {
        for sync in [format!("{done} / {total}"), format!("{f}%"), format!("{done}/{total}")] {
            let text = format!(
                r#"{{"array":[{{"md":[{{"syncAction":"recover","syncCompleted":"{sync}"}}]}}],"reqid":"r","result":"succ"}}"#
            );
            exercise_text(text.as_bytes());
        }
    }

    #[test]
    fn list_disk_frames_split_anywhere_merge_without_panic(
        names in prop::collection::vec("[a-z0-9]{0,20}", 0..12),
        cut in 0usize..12,
    ) {
        let mut inventory: DiskInventory<6> = DiskInventory::new();
        let (first, second) = names.split_at(cut.min(names.len()));
        for part in [first, second] {
            let disks: Vec<String> = part.iter().map(|n| format!(r#"{{"name":"{n}","size":1}}"#)).collect();
            let text = format!(r#"{{"disk":[{}],"reqid":"r"}}"#, disks.join(","));
            let Ok(Message::Reply(r)) = Message::parse(text.as_bytes()) else { panic!("valid") };
            prop_assert_eq!(inventory.absorb(&r), Merge::More);
        }
        let Ok(Message::Reply(end)) = Message::parse(br#"{"result":"succ","reqid":"r"}"#) else { panic!() };
        prop_assert!(matches!(inventory.absorb(&end), Merge::Done(_)));
        let mut distinct: Vec<&String> = names
            .iter()
            .filter(|n| !n.is_empty() && n.len() <= 16 && *n != "none" && *n != "unknown")
            .collect();
        distinct.sort();
        distinct.dedup();
        prop_assert_eq!(inventory.disks().len(), distinct.len().min(6));
        let mut kept: Vec<&str> = inventory.disks().iter().map(|d| d.name.as_str()).collect();
        kept.sort();
        kept.dedup();
        prop_assert_eq!(kept.len(), inventory.disks().len(), "deduplicated by name");
    }
}

/// The proptest's first find: a large negative percentage (Rust prints
/// `-3.3639222792991667e18` without an exponent) was multiplied by 10
/// before its range check was applied, and overflowed.
#[test]
fn a_huge_negative_percentage_is_unknown_not_an_overflow() {
    let f = -3.363_922_279_299_166_7e18_f64;
    let text = format!(
        r#"{{"array":[{{"md":[{{"syncAction":"recover","syncCompleted":"{f}%"}}]}}],"reqid":"r","result":"succ"}}"#
    );
    exercise_text(text.as_bytes());
}
