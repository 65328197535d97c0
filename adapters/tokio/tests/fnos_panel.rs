//! `FnosClient`'s typed panel helpers against the fnOS emulator: the owned
//! figures of a healthy NAS, the core's verdict over a snapshot with the
//! emulator's health knobs, and a non-admin account's snapshot with the
//! refused parts marked "needs admin".

use naslink_core::fnos::health::{Level, Thresholds};
use naslink_core::fnos::panel::{ContainerState, DiskKind, PoolState, SmartVerdict};
use naslink_sim::fnos::{Account, Config, Health, PoolCondition, UpsCondition};
use naslink_tokio::fnos::{FnosClient, Part};

mod fnos_support;
use fnos_support::{bounded, emulator, options};

async fn admin_of(health: Health) -> (naslink_sim::fnos::Handle, FnosClient) {
    let sim = emulator(Config {
        health,
        ..Config::default()
    })
    .await;
    let client = FnosClient::connect(options(&sim.url(), "admin"))
        .await
        .expect("login");
    (sim, client)
}

#[tokio::test]
async fn the_helpers_return_owned_figures_of_a_healthy_nas() {
    bounded(20, async {
        let (sim, client) = admin_of(Health::default()).await;
        let cpu = client.cpu().await.unwrap();
        assert!(cpu.name.as_deref().is_some_and(|n| n.contains("N5105")));
        assert!(cpu.temperature.is_some_and(|t| (40..=50).contains(&t)));
        assert!(cpu.load_average[0].is_some());

        let disks = client.disks().await.unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "sdb"]);
        assert_eq!(disks[0].kind, DiskKind::Ssd);
        assert!(disks.iter().all(|d| d.temperature.is_some()));
        assert!(disks.iter().all(|d| d.smart == SmartVerdict::Passed));
        assert!(disks.iter().all(|d| d.size.is_some()));

        let pools = client.pools().await.unwrap();
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].name, "vol1");
        assert_eq!(pools[0].level, "raid1");
        assert_eq!(pools[0].state, PoolState::Normal);
        assert!(pools[0].used_percent().is_some_and(|p| p < 80));

        let containers = client.containers().await.unwrap();
        assert_eq!(containers.len(), 2);
        assert!(
            containers
                .iter()
                .all(|c| c.state == ContainerState::Running)
        );

        let ups = client.ups().await.unwrap();
        assert_ne!(ups.on_battery, Some(true));

        let snapshot = client.snapshot().await.unwrap();
        let report = snapshot.health(&Thresholds::default());
        assert_eq!(report.level, Level::Ok, "{report:?}");
        assert!(report.reasons.is_empty() && report.needs_admin.is_empty());
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn the_snapshot_verdict_comes_from_the_core_rules() {
    bounded(20, async {
        let (sim, client) = admin_of(Health {
            pool: PoolCondition::Degraded,
            hot_disk: Some(55),
            ups: UpsCondition::OnBattery { charge: 80 },
            stopped_container: true,
            ..Health::default()
        })
        .await;
        let snapshot = client.snapshot().await.unwrap();
        let report = snapshot.health(&Thresholds::default());
        assert_eq!(report.level, Level::Critical);
        let texts: Vec<&str> = report.reasons.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts[0], "pool vol1 degraded", "{texts:?}");
        assert!(texts.contains(&"disk sda 55 C"), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.starts_with("UPS on battery")),
            "{texts:?}"
        );
        let containers = snapshot.containers.known().unwrap();
        assert!(
            containers
                .iter()
                .any(|c| c.name == "nextcloud" && c.state == ContainerState::Exited)
        );
        let ups = snapshot.ups.known().unwrap();
        assert_eq!(
            (ups.on_battery, ups.battery_percent),
            (Some(true), Some(80))
        );
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn rebuilding_is_a_warning_with_its_progress() {
    bounded(20, async {
        let (sim, client) = admin_of(Health {
            pool: PoolCondition::Rebuilding { percent: 40 },
            ..Health::default()
        })
        .await;
        let report = client
            .snapshot()
            .await
            .unwrap()
            .health(&Thresholds::default());
        assert_eq!(report.level, Level::Warning);
        assert_eq!(report.reasons[0].text, "pool vol1 rebuilding 40%");
        sim.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_non_admin_gets_the_parts_it_may_see_and_the_rest_marked() {
    bounded(20, async {
        let sim = emulator(Config {
            accounts: vec![
                Account::new("admin", "admin", 1000, true),
                Account::new("guest", "guest", 1001, false),
            ],
            health: Health {
                ups: UpsCondition::OnBattery { charge: 20 },
                ..Health::default()
            },
            ..Config::default()
        })
        .await;
        let mut opts = options(&sim.url(), "guest");
        opts.user = "guest".into();
        let client = FnosClient::connect(opts).await.expect("login");
        let snapshot = client.snapshot().await.expect("not an error");
        assert_eq!(snapshot.cpu, Part::NeedsAdmin);
        assert_eq!(snapshot.disks, Part::NeedsAdmin);
        assert_eq!(snapshot.pools, Part::NeedsAdmin);
        assert_eq!(snapshot.containers, Part::NeedsAdmin);
        assert_eq!(snapshot.unread_warnings, Part::NeedsAdmin);
        let ups = snapshot.ups.known().expect("the UPS is for everyone");
        assert_eq!(ups.battery_percent, Some(20));
        let report = snapshot.health(&Thresholds::default());
        assert_eq!(report.level, Level::Critical, "UPS on battery at 20 %");
        assert_eq!(
            report.needs_admin,
            ["cpu", "disks", "pools", "containers", "warnings"]
        );
        sim.shutdown().await;
    })
    .await;
}
