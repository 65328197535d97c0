//! End to end: the health panel. The core's fnOS session over a real TCP
//! socket (the support code's `ConnLink`) asks the fnOS emulator of
//! `naslink-sim` every panel command, reads each answer through the core's
//! `panel` views (multi-frame ones merged), and computes the `health`
//! verdict; the emulator's knobs make the NAS unhealthy one rule at a time.
//! Also: errno 4352 for a non-admin, the `storageChanged` push when a knob
//! changes, and the `kicked` / `tokenExpired` pushes as session events.

mod support;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use naslink_core::connection::Event;
use naslink_core::fnos::health::{self, Level, Thresholds};
use naslink_core::fnos::panel::*;
use naslink_core::fnos::response::{Message, Reply};
use naslink_core::fnos::{self, Errno, LoginMethod, Push, Request, Session, State, Status};
use naslink_core::random::Entropy;
use naslink_core::ws;
use naslink_sim::fnos::{
    Account, Config as SimConfig, Handle, Health, KeySource, PoolCondition, Push as SimPush,
    Server, UpsCondition,
};
use support::{Clock, ConnLink, os_entropy, unix_secs};

/// What arrived, owned.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    LoggedIn(LoginMethod),
    /// A reply frame: its reqid, whether it is the last, its text.
    Frame {
        reqid: String,
        last: bool,
        text: String,
    },
    Push(String),
    /// A `sysNotify` task frame, its text.
    Task(String),
    Other(String),
}

struct Nas<E: Entropy> {
    clock: Clock,
    link: ConnLink<Session<'static>, E>,
    seen: Vec<Seen>,
}

impl<E: Entropy> Nas<E> {
    fn connect(url: &str, user: &'static str, password: &'static str, entropy: E) -> Self {
        let clock = Clock::start();
        let mut session = Session::new(fnos::Config::new(user, password));
        session.set_unix_time(clock.now(), unix_secs());
        let link = ConnLink::connect(
            &clock,
            url,
            ws::Config::default(),
            entropy,
            256 * 1024,
            session,
        );
        let mut nas = Nas {
            clock,
            link,
            seen: Vec::new(),
        };
        nas.wait(|s| matches!(s, Seen::LoggedIn(_)));
        nas
    }

    fn pump(&mut self) {
        let seen = &mut self.seen;
        self.link
            .poll_once(&self.clock, StdDuration::from_millis(20), |event, text| {
                let text = text.unwrap_or_default().to_owned();
                seen.push(match event {
                    Event::Session(fnos::Event::LoggedIn { method, .. }) => Seen::LoggedIn(method),
                    Event::Session(fnos::Event::Reply(r)) => Seen::Frame {
                        reqid: r.reqid_text().as_unescaped().unwrap_or_default().to_owned(),
                        last: r.is_final(),
                        text,
                    },
                    Event::Session(fnos::Event::Push(p)) if TaskFrame::from_push(&p).is_some() => {
                        Seen::Task(text)
                    }
                    Event::Session(fnos::Event::Push(p)) => Seen::Push(format!("{p:?}")),
                    other => Seen::Other(format!("{other:?}")),
                });
            });
    }

    /// Pump until something matches `pred` (taking what came before it).
    fn wait(&mut self, mut pred: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
        loop {
            if let Some(i) = self.seen.iter().position(&mut pred) {
                return self.seen.drain(..=i).next_back().expect("matched");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out; saw {:#?}",
                self.seen
            );
            self.pump();
        }
    }

    /// Send `request` and gather its frames' texts up to the final one.
    fn call(&mut self, request: &Request<'_>) -> Vec<String> {
        let reqid = self
            .link
            .send(&self.clock, request)
            .expect("request fits")
            .to_string();
        let mut frames = Vec::new();
        loop {
            let Seen::Frame { last, text, .. } =
                self.wait(|s| matches!(s, Seen::Frame { reqid: r, .. } if *r == reqid))
            else {
                unreachable!()
            };
            frames.push(text);
            if last {
                return frames;
            }
        }
    }

    /// The final frame of `request`'s answer.
    fn final_text(&mut self, request: &Request<'_>) -> String {
        self.call(request).pop().expect("a final frame")
    }

    fn session(&self) -> &Session<'static> {
        self.link.conn.session()
    }
}

fn reply(text: &str) -> Reply<'_> {
    match Message::parse(text.as_bytes()).expect("JSON") {
        Message::Reply(r) => r,
        other => panic!("not a reply: {other:?}"),
    }
}

fn s(v: Option<naslink_core::json::JsonStr<'_>>) -> String {
    v.map(|s| s.chars().collect()).unwrap_or_default()
}

async fn emulator(config: SimConfig) -> Arc<Handle> {
    Arc::new(
        Server::start(SimConfig {
            key: KeySource::Fixture,
            ..config
        })
        .await
        .expect("emulator starts"),
    )
}

async fn with_health(health: Health) -> Arc<Handle> {
    emulator(SimConfig {
        health,
        ..SimConfig::default()
    })
    .await
}

/// Run blocking client code beside the emulator's runtime.
async fn client<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("client thread")
}

fn admin(url: &str) -> Nas<impl Entropy> {
    Nas::connect(url, "admin", "admin", os_entropy())
}

// ----- every command -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resmon_cpu_gpu_and_disk_read_through_the_views() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let text = nas.final_text(&Request::resmon_cpu());
        let cpu = Cpu::from_reply(&reply(&text));
        assert!(s(cpu.name()).contains("N5105"));
        assert!(cpu.temperature().is_some_and(|t| (40..=50).contains(&t)));
        assert!(cpu.busy_percent().is_some());
        assert!(cpu.load_average().one.is_some());

        let text = nas.final_text(&Request::resmon_gpu());
        let gpus = Gpus::from_reply(&reply(&text));
        let gpu = gpus.iter().next().expect("a GPU");
        assert!(gpu.temperature().is_some() && gpu.ram_total() > gpu.ram_used());

        let text = nas.final_text(&Request::resmon_disk());
        let disks = ResmonDisks::from_reply(&reply(&text));
        assert_eq!(disks.count(), Some(3));
        let names: Vec<String> = disks.iter().map(|d| s(d.name())).collect();
        assert_eq!(names, ["nvme0n1", "sda", "sdb"]);
        assert!(disks.iter().all(|d| d.temperature().is_some()));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_disk_frames_merge_into_one_inventory() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let frames = nas.call(&Request::list_disk(true));
        assert_eq!(frames.len(), 4, "three data frames, then the final one");
        let mut inventory: DiskInventory<8> = DiskInventory::new();
        let mut merges = Vec::new();
        for text in &frames {
            merges.push(inventory.absorb(&reply(text)));
        }
        assert_eq!(merges[..3], [Merge::More; 3]);
        assert_eq!(merges[3], Merge::Done(Status::Success));
        let names: Vec<&str> = inventory.disks().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "sda", "sdb"]);
        assert_eq!(inventory.disks()[0].kind, DiskKind::Ssd);
        assert_eq!(inventory.disks()[1].kind, DiskKind::Hdd);
        let first = reply(&frames[0]);
        let nvme = DiskList::from_reply(&first).iter().next().unwrap();
        assert_eq!(s(nvme.protocol()), "NVMe");
        assert_eq!(nvme.pool_level(), Some(RaidLevel::Basic));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_health_and_smart_for_ata_and_nvme_disks() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let text = nas.final_text(&Request::disk_health(&["sda", "nvme0n1"], false));
        let r = reply(&text);
        let health: Vec<_> = DiskHealthList::from_reply(&r).iter().collect();
        assert_eq!(health.len(), 2);
        assert!(health.iter().all(|h| h.verdict() == SmartVerdict::Passed));
        assert!(health.iter().all(|h| h.temperature().is_some()));

        let text = nas.final_text(&Request::disk_smart("sda"));
        let r = reply(&text);
        let ata = Smart::from_reply(&r);
        assert_eq!(s(ata.protocol()), "ATA");
        assert!(ata.temperature().is_some());
        assert_eq!(ata.verdict(), SmartVerdict::Passed);

        let text = nas.final_text(&Request::disk_smart("nvme0n1"));
        let r = reply(&text);
        let nvme = Smart::from_reply(&r);
        assert_eq!(s(nvme.protocol()), "NVMe");
        assert_eq!(nvme.percentage_used(), Some(3));
        assert!(nvme.temperature().is_some());

        let text = nas.final_text(&Request::disk_smart("sdq"));
        assert_eq!(reply(&text).errno(), Some(Errno::BadParameter));
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stor_general_list_stor_and_state_describe_the_pools() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let text = nas.final_text(&Request::stor_general());
        let r = reply(&text);
        let pools: Vec<_> = Pools::from_reply(&r).iter().collect();
        assert_eq!(pools.len(), 2);
        assert_eq!(pools[0].level(), RaidLevel::Raid1);
        assert_eq!(pools[1].level(), RaidLevel::Basic);
        assert_eq!(pools[0].state(), PoolState::Normal);
        let md0 = pools[0].arrays().next().unwrap();
        assert_eq!(md0.members().count(), 2, "members from block[]");
        assert!(pools[0].used_percent().is_some_and(|p| p < 80));

        let frames = nas.call(&Request::list_stor());
        assert_eq!(frames.len(), 3, "one frame per pool, then the final one");
        let first = reply(&frames[0]);
        assert_eq!(first.status(), Status::Partial);
        let pool = Pools::from_reply(&first).iter().next().unwrap();
        assert_eq!(s(pool.mountpoint()), "/vol1");
        assert_eq!(pool.degraded(), Some(false));

        let text = nas.final_text(&Request::stor_state(&["dm-1"], &["trim_sim2-0"]));
        let r = reply(&text);
        let pools: Vec<_> = Pools::from_reply(&r).iter().collect();
        assert_eq!(pools.len(), 1);
        assert_eq!(s(pools[0].name()), "dm-1");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_containers_and_stats_with_a_stopped_container() {
    let sim = with_health(Health {
        stopped_container: true,
        ..Health::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let text = nas.final_text(&Request::container_list(true));
        let r = reply(&text);
        let all: Vec<_> = Containers::from_reply(&r).iter().collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name(), Some("jellyfin"));
        assert_eq!(all[0].state(), ContainerState::Running);
        assert_eq!(all[1].name(), Some("nextcloud"));
        assert_eq!(all[1].state(), ContainerState::Exited);
        let running = nas.final_text(&Request::container_list(false));
        assert_eq!(Containers::from_reply(&reply(&running)).iter().count(), 1);

        let text = nas.final_text(&Request::docker_stats());
        let r = reply(&text);
        let stats = DockerStats::from_reply(&r);
        let id = s(all[0].id());
        assert!(stats.get(&id).and_then(|c| c.memory()).is_some());
        assert!(stats.get(&s(all[1].id())).is_none(), "stopped: no stats");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ups_unread_total_sys_warn_and_hardware_info() {
    let sim = with_health(Health {
        ups: UpsCondition::Online { charge: 100 },
        unread_warnings: 2,
        ..Health::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let text = nas.final_text(&Request::ups_status());
        let r = reply(&text);
        let ups = Ups::from_reply(&r);
        assert_eq!(ups.enabled(), Some(true));
        assert_eq!(ups.on_battery(), Some(false));
        assert_eq!(ups.battery_percent(), Some(100));
        assert!(ups.runtime_secs().is_some());

        let text = nas.final_text(&Request::unread_total());
        assert_eq!(unread_total(&reply(&text)), Some(2));
        let text = nas.final_text(&Request::sys_warn());
        let r = reply(&text);
        let warn = SysWarn::from_reply(&r);
        assert_eq!(warn.count(), Some(2));
        assert!(s(warn.iter().next().and_then(|w| w.text())).contains("warning"));

        let text = nas.final_text(&Request::hardware_info());
        let r = reply(&text);
        let hw = HardwareInfo::from_reply(&r);
        assert_eq!(hw.cpu_cores(), Some(4));
        assert_eq!(s(hw.memory_type()), "DDR4");
        assert_eq!(s(hw.product()), "fnOS emulator");
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doing_frames_are_progress_before_the_final_answer() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let search =
            Request::new("appcgi.finder.fileSearch").param("keyword", fnos::Param::Str("report"));
        let frames = nas.call(&search);
        assert_eq!(frames.len(), 4);
        let percents: Vec<Option<u8>> = frames[..3]
            .iter()
            .map(|t| DoingFrame::from_reply(&reply(t)).and_then(|d| d.percent()))
            .collect();
        assert_eq!(percents, [Some(25), Some(50), Some(75)]);
        assert_eq!(task_outcome(&reply(&frames[3])), TaskOutcome::Succeeded);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_frames_carry_the_task_id_and_progress_before_the_answer() {
    let sim = emulator(SimConfig {
        task_frames: true,
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = admin(&url);
        let files = ["vol1/1000/Documents/notes.txt"];
        let reqid = nas
            .link
            .send(&nas.clock, &Request::file_rm(&files, false))
            .expect("fits")
            .to_string();
        let mut tasks = Vec::new();
        loop {
            let seen = nas.wait(|s| matches!(s, Seen::Task(_) | Seen::Frame { .. }));
            match seen {
                Seen::Task(text) => tasks.push(text),
                Seen::Frame {
                    reqid: r,
                    last: true,
                    text,
                } if r == reqid => {
                    assert_eq!(task_outcome(&reply(&text)), TaskOutcome::Succeeded);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(tasks.len(), 3, "{tasks:?}");
        let frames: Vec<(bool, Option<u8>, Option<String>)> = tasks
            .iter()
            .map(|text| {
                let Ok(Message::Push(push)) = Message::parse(text.as_bytes()) else {
                    panic!("a push: {text}")
                };
                let task = TaskFrame::from_push(&push).expect("a task frame");
                assert_eq!(s(task.reqid()), reqid);
                let id = task.task_id().and_then(|v| v.as_str()).map(|v| s(Some(v)));
                (task.is_progress(), task.percent(), id)
            })
            .collect();
        assert!(frames[0].2.is_some(), "taskId first");
        assert!(frames.iter().all(|f| f.2 == frames[0].2), "one task id");
        let progress: Vec<_> = frames.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(
            progress,
            [(false, None), (true, Some(50)), (true, Some(100))]
        );
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_admin_accounts_get_errno_4352_for_admin_commands() {
    let sim = emulator(SimConfig {
        accounts: vec![
            Account::new("admin", "admin", 1000, true),
            Account::new("guest", "guest", 1001, false),
        ],
        ..SimConfig::default()
    })
    .await;
    let url = sim.url();
    client(move || {
        let mut nas = Nas::connect(&url, "guest", "guest", os_entropy());
        for request in [
            Request::resmon_cpu(),
            Request::resmon_gpu(),
            Request::resmon_disk(),
            Request::sys_warn(),
            Request::list_disk(true),
            Request::disk_health(&["sda"], false),
            Request::disk_smart("sda"),
            Request::stor_general(),
            Request::list_stor(),
            Request::stor_state(&[], &[]),
            Request::container_list(true),
            Request::docker_stats(),
        ] {
            let text = nas.final_text(&request);
            assert_eq!(
                reply(&text).errno(),
                Some(Errno::PermissionDenied),
                "{}",
                request.command()
            );
            // And the views read it as unknown, not as a failure.
            assert_eq!(Pools::from_reply(&reply(&text)).iter().count(), 0);
        }
        for request in [
            Request::ups_status(),
            Request::unread_total(),
            Request::hardware_info(),
        ] {
            let text = nas.final_text(&request);
            assert_eq!(
                reply(&text).status(),
                Status::Success,
                "{}",
                request.command()
            );
        }
    })
    .await;
    sim.shutdown().await;
}

// ----- pushes ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_changed_is_pushed_when_a_storage_knob_changes() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    let knobs = Arc::clone(&sim);
    client(move || {
        let mut nas = admin(&url);
        knobs.update_health(|h| h.stopped_container = true);
        knobs.update_health(|h| h.pool = PoolCondition::Degraded);
        let push = nas.wait(|s| matches!(s, Seen::Push(_)));
        assert_eq!(push, Seen::Push("StorageChanged".into()));
        assert!(
            !nas.seen.iter().any(|s| matches!(s, Seen::Push(_))),
            "one push, for the storage knob only"
        );
        let text = nas.final_text(&Request::stor_general());
        let r = reply(&text);
        let pool = Pools::from_reply(&r).iter().next().unwrap();
        assert_eq!(pool.state(), PoolState::Degraded);
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expired_push_leads_to_a_fresh_login_and_kicked_stops_the_session() {
    let sim = with_health(Health::default()).await;
    let url = sim.url();
    let pusher = Arc::clone(&sim);
    client(move || {
        let mut nas = admin(&url);
        pusher.push(SimPush::TokenExpired);
        assert_eq!(
            nas.wait(|s| matches!(s, Seen::Push(_))),
            Seen::Push(format!("{:?}", Push::TokenExpired))
        );
        assert_eq!(
            nas.wait(|s| matches!(s, Seen::LoggedIn(_))),
            Seen::LoggedIn(LoginMethod::TokenLogin)
        );
        let text = nas.final_text(&Request::unread_total());
        assert_eq!(reply(&text).status(), Status::Success, "signed in again");

        pusher.push(SimPush::Kicked);
        assert_eq!(
            nas.wait(|s| matches!(s, Seen::Push(_))),
            Seen::Push(format!("{:?}", Push::Kicked))
        );
        assert!(nas.session().kicked());
        assert_eq!(nas.session().state(), State::LoginFailed);
    })
    .await;
    sim.shutdown().await;
}

// ----- one test per verdict rule -------------------------------------------------

/// The panel, gathered over the connection and owned.
struct Panel {
    volumes: Vec<(String, u64, u64)>,
    pools: Vec<(String, PoolState)>,
    disks: Vec<(String, Option<i32>, SmartVerdict)>,
    cpu: Option<i32>,
    ups: Option<health::Ups>,
    unread: Option<u64>,
}

impl Panel {
    fn gather<E: Entropy>(nas: &mut Nas<E>) -> Panel {
        let text = nas.final_text(&Request::stor_general());
        let r = reply(&text);
        let mut volumes = Vec::new();
        let mut pools = Vec::new();
        for pool in Pools::from_reply(&r).iter() {
            let name = s(pool.mountpoint()).trim_start_matches('/').to_owned();
            if let (Some(size), Some(free)) = (pool.size(), pool.free()) {
                volumes.push((name.clone(), size, free));
            }
            pools.push((name, pool.state()));
        }
        let text = nas.final_text(&Request::resmon_disk());
        let live = ResmonDisks::from_reply(&reply(&text))
            .iter()
            .map(|d| (s(d.name()), d.temperature()))
            .collect::<Vec<_>>();
        let names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
        let text = nas.final_text(&Request::disk_health(&names, false));
        let r = reply(&text);
        let disks = DiskHealthList::from_reply(&r)
            .iter()
            .map(|h| {
                let name = s(h.disk());
                let temp = live
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|(_, t)| *t)
                    .or(h.temperature());
                (name, temp, h.verdict())
            })
            .collect();
        let text = nas.final_text(&Request::resmon_cpu());
        let cpu = Cpu::from_reply(&reply(&text)).temperature();
        let text = nas.final_text(&Request::ups_status());
        let r = reply(&text);
        let view = Ups::from_reply(&r);
        let ups = view.on_battery().map(|on_battery| health::Ups {
            on_battery,
            battery_percent: view.battery_percent(),
        });
        let text = nas.final_text(&Request::sys_warn());
        let unread = SysWarn::from_reply(&reply(&text)).count();
        Panel {
            volumes,
            pools,
            disks,
            cpu,
            ups,
            unread,
        }
    }

    /// The verdict's level and its reasons in words.
    fn verdict(&self) -> (Level, Vec<String>) {
        let volumes: Vec<health::Volume<'_>> = self
            .volumes
            .iter()
            .map(|(name, size, free)| health::Volume {
                name,
                size: *size,
                free: *free,
            })
            .collect();
        let pools: Vec<health::Pool<'_>> = self
            .pools
            .iter()
            .map(|(name, state)| health::Pool {
                name,
                state: *state,
            })
            .collect();
        let disks: Vec<health::Disk<'_>> = self
            .disks
            .iter()
            .map(|(name, temperature, smart)| health::Disk {
                name,
                temperature: *temperature,
                smart: *smart,
            })
            .collect();
        let snapshot = health::Snapshot {
            volumes: &volumes,
            pools: &pools,
            disks: &disks,
            cpu_temperature: self.cpu,
            ups: self.ups,
            unread_warnings: self.unread,
        };
        let v = health::verdict(&snapshot, &Thresholds::default());
        let reasons = v.findings().iter().map(|f| f.reason.to_string()).collect();
        (v.level(), reasons)
    }
}

/// The verdict of an emulator with `health`.
async fn verdict_of(health: Health) -> (Level, Vec<String>) {
    let sim = with_health(health).await;
    let url = sim.url();
    let verdict = client(move || Panel::gather(&mut admin(&url)).verdict()).await;
    sim.shutdown().await;
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_nas_is_ok() {
    assert_eq!(verdict_of(Health::default()).await, (Level::Ok, vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_80_percent_full_is_a_warning_and_90_critical() {
    let full = |p| Health {
        volume_used_percent: Some(p),
        ..Health::default()
    };
    assert_eq!(
        verdict_of(full(85)).await,
        (Level::Warning, vec!["vol1 85% full".to_owned()])
    );
    assert_eq!(
        verdict_of(full(95)).await,
        (Level::Critical, vec!["vol1 95% full".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_degraded_is_critical() {
    let health = Health {
        pool: PoolCondition::Degraded,
        ..Health::default()
    };
    assert_eq!(
        verdict_of(health).await,
        (Level::Critical, vec!["pool vol1 degraded".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_rebuilding_is_a_warning_with_its_progress() {
    let health = Health {
        pool: PoolCondition::Rebuilding { percent: 40 },
        ..Health::default()
    };
    assert_eq!(
        verdict_of(health).await,
        (Level::Warning, vec!["pool vol1 rebuilding 40%".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_smart_failing_is_critical() {
    let health = Health {
        failing_disk: true,
        ..Health::default()
    };
    assert_eq!(
        verdict_of(health).await,
        (Level::Critical, vec!["disk sdb SMART failing".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_temperature_over_thresholds_warns_then_is_critical() {
    let hot = |t| Health {
        hot_disk: Some(t),
        ..Health::default()
    };
    assert_eq!(
        verdict_of(hot(55)).await,
        (Level::Warning, vec!["disk sda 55 C".to_owned()])
    );
    assert_eq!(
        verdict_of(hot(63)).await,
        (Level::Critical, vec!["disk sda 63 C".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_temperature_over_thresholds_warns_then_is_critical() {
    let hot = |t| Health {
        cpu_temperature: Some(t),
        ..Health::default()
    };
    assert_eq!(
        verdict_of(hot(88)).await,
        (Level::Warning, vec!["CPU 88 C".to_owned()])
    );
    assert_eq!(
        verdict_of(hot(97)).await,
        (Level::Critical, vec!["CPU 97 C".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ups_on_battery_warns_and_is_critical_when_low() {
    let on_battery = |charge| Health {
        ups: UpsCondition::OnBattery { charge },
        ..Health::default()
    };
    assert_eq!(
        verdict_of(on_battery(80)).await,
        (Level::Warning, vec!["UPS on battery 80%".to_owned()])
    );
    assert_eq!(
        verdict_of(on_battery(20)).await,
        (Level::Critical, vec!["UPS on battery 20%".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_system_warnings_are_a_warning() {
    let health = Health {
        unread_warnings: 3,
        ..Health::default()
    };
    assert_eq!(
        verdict_of(health).await,
        (Level::Warning, vec!["3 unread system warnings".to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasons_come_worst_first_when_several_rules_fire() {
    let health = Health {
        unread_warnings: 1,
        failing_disk: true,
        pool: PoolCondition::Rebuilding { percent: 10 },
        ..Health::default()
    };
    let (level, reasons) = verdict_of(health).await;
    assert_eq!(level, Level::Critical);
    assert_eq!(
        reasons,
        [
            "disk sdb SMART failing",
            "pool vol1 rebuilding 10%",
            "1 unread system warning"
        ]
    );
}
