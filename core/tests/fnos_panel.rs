//! The panel views on the answers captured from real NASes
//! (`shared/protocol/fnos-panel.md`), and what they make of missing fields
//! and other shapes.

use naslink_core::fnos::Request;
use naslink_core::fnos::Status;
use naslink_core::fnos::panel::*;
use naslink_core::fnos::response::{Message, Push, Reply};

const R: &str = r#""reqid":"69868e2a69868e2a0000f8d3000e""#;

fn reply(text: &str) -> Reply<'_> {
    match Message::parse(text.as_bytes()).expect("JSON") {
        Message::Reply(r) => r,
        other => panic!("not a reply: {other:?}"),
    }
}

fn s(v: Option<naslink_core::json::JsonStr<'_>>) -> Option<String> {
    v.map(|s| s.chars().collect())
}

fn written(r: &Request<'_>) -> String {
    let mut buf = [0u8; 512];
    let n = r.write(None, &mut buf, 0).expect("fits");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn requests_carry_the_parameters_the_clients_send() {
    assert_eq!(
        written(&Request::list_disk(true)),
        r#"{"noHotSpare":true,"req":"stor.listDisk"}"#
    );
    assert_eq!(
        written(&Request::disk_health(&["sda", "nvme0n1"], true)),
        r#"{"disks":["sda","nvme0n1"],"wakeup":true,"req":"stor.diskHealth"}"#
    );
    assert_eq!(
        written(&Request::disk_smart("sda")),
        r#"{"disk":"sda","req":"stor.diskSmart"}"#
    );
    assert_eq!(
        written(&Request::stor_state(&["dm-1"], &["trim_x-0"])),
        r#"{"name":["dm-1"],"uuid":["trim_x-0"],"req":"stor.state"}"#
    );
    assert_eq!(
        written(&Request::container_list(true)),
        r#"{"all":true,"req":"appcgi.dockermgr.containerList"}"#
    );
    for (r, cmd) in [
        (Request::resmon_gpu(), "appcgi.resmon.gpu"),
        (Request::stor_general(), "stor.general"),
        (Request::list_stor(), "stor.listStor"),
        (Request::docker_stats(), "appcgi.dockermgr.stats"),
        (Request::ups_status(), "appcgi.sac.ups.v1.status"),
        (Request::unread_total(), "notify.unreadTotal"),
        (Request::sys_warn(), "appcgi.resmon.sysWarn"),
        (Request::hardware_info(), "appcgi.sysinfo.getHardwareInfo"),
    ] {
        assert_eq!(written(&r), format!(r#"{{"req":"{cmd}"}}"#));
    }
}

#[test]
fn cpu_reads_temperatures_load_and_busy() {
    let text = format!(
        r#"{{"data":{{"cpu":{{"name":"AMD Ryzen 7 5800H with Radeon Graphics","num":1,"core":8,"thread":16,
  "maxFreq":4463.0,"temp":[44],
  "busy":{{"all":3,"user":0,"system":0,"iowait":0,"other":0}},
  "loadavg":{{"avg1min":0.0799,"avg5min":0.1599,"avg15min":0.1299}}}}}},
 {R},"result":"succ","rev":"0.1","req":"appcgi.resmon.cpu"}}"#
    );
    let cpu = Cpu::from_reply(&reply(&text));
    assert_eq!(
        s(cpu.name()).as_deref(),
        Some("AMD Ryzen 7 5800H with Radeon Graphics")
    );
    assert_eq!((cpu.cores(), cpu.threads()), (Some(8), Some(16)));
    assert_eq!(cpu.temperatures().collect::<Vec<_>>(), [44]);
    assert_eq!(cpu.temperature(), Some(44));
    assert_eq!(cpu.busy_percent(), Some(3));
    assert_eq!(cpu.max_freq_mhz(), Some(4463.0));
    let load = cpu.load_average();
    assert_eq!(
        (load.one, load.five, load.fifteen),
        (Some(0.0799), Some(0.1599), Some(0.1299))
    );
    assert_eq!(cpu.fan_rpm(), None);

    let fan = format!(
        r#"{{"data":{{"cpu":{{"temp":[41,57.6],"fan":{{"fanSpeed":1155}}}}}},{R},"result":"succ"}}"#
    );
    let cpu = Cpu::from_reply(&reply(&fan));
    assert_eq!(cpu.temperature(), Some(58));
    assert_eq!(cpu.fan_rpm(), Some(1155));
}

#[test]
fn gpu_reads_temperature_memory_and_load() {
    let text = format!(
        r#"{{"data":{{"num":1,"gpu":[{{"index":1,"vendor":"Advanced Micro Devices, Inc. [AMD/ATI]","vendorId":4098,
  "device":"Radeon(TM) Graphics","deviceId":5688,"subDeviceId":197,"busy":0,
  "ram":{{"total":2147483648,"used":17502208,"free":2129981440}},"temp":48,"engine":{{"encoder":0}}}}]}},
 {R},"result":"succ","rev":"0.1","req":"appcgi.resmon.gpu"}}"#
    );
    let gpus = Gpus::from_reply(&reply(&text));
    let gpu = gpus.iter().next().expect("one GPU");
    assert_eq!(s(gpu.device()).as_deref(), Some("Radeon(TM) Graphics"));
    assert_eq!(gpu.temperature(), Some(48));
    assert_eq!(
        (gpu.ram_total(), gpu.ram_used()),
        (Some(2147483648), Some(17502208))
    );
    assert_eq!(
        (gpu.busy_percent(), gpu.encoder_percent(), gpu.index()),
        (Some(0), Some(0), Some(1))
    );
}

#[test]
fn resmon_disk_reads_live_figures_and_zero_temperature_is_unknown() {
    let text = format!(
        r#"{{"data":{{"num":3,"disk":[
  {{"name":"sda","temp":32,"standby":false,"busy":2,"read":0,"write":66560}},
  {{"name":"sdb","temp":0,"standby":true,"busy":3,"read":8388608,"write":0}},
  {{"name":"nvme0n1","standby":false,"busy":0,"read":0,"write":0}}]}},
 {R},"result":"succ","rev":"0.1","req":"appcgi.resmon.disk"}}"#
    );
    let disks = ResmonDisks::from_reply(&reply(&text));
    assert_eq!(disks.count(), Some(3));
    let all: Vec<_> = disks.iter().collect();
    assert_eq!(all.len(), 3);
    assert_eq!(s(all[0].name()).as_deref(), Some("sda"));
    assert_eq!(all[0].temperature(), Some(32));
    assert_eq!(all[0].write_rate(), Some(66560));
    assert_eq!(all[1].temperature(), None, "0 means unknown");
    assert_eq!(all[1].standby(), Some(true));
    assert_eq!(all[2].temperature(), None, "missing means unknown");
}

const LIST_DISK_FRAME_1: &str = r#"{"disk":[
 {"name":"nvme0n1","size":7681501126656,"modelName":"WUS4BB076D7P3E3","serialNumber":"A0******9",
  "type":"SSD","protocol":"NVMe","firmwareVersion":"R1110012","logicalBlockSize":4096,
  "nvmeVersion":"1.3","diskGroup":"SSD","diskGroupEx":"SSD",
  "storage":[{"arrState":"in_sync","storUuid":"trim_x-0","storId":2,"storName":"dm-0","level":"basic"}]},
 {"name":"sda","size":120034123776,"sys":1,"frsizeSys":48397590528,"fssizeSys":63770718208,
  "part":"sda3","partSize":51314163712,"type":"SSD","protocol":"SATA","modelFamily":"Samsung based SSDs",
  "sataVersion":"SATA 3.1","diskGroup":"sysSSD","partitions":[{"no":1,"name":"sda1","size":98566144,
  "mountName":"efi","fstype":"vfat","fssize":97046528,"frsize":88642560,"efi":1}],
  "storage":[]}],
 "reqid":"69868e2a69868e2a0000f8d3000e"}"#;

#[test]
fn list_disk_frames_without_result_merge_until_the_final_frame() {
    let first = reply(LIST_DISK_FRAME_1);
    assert_eq!(first.status(), Status::Partial);
    let view = DiskList::from_reply(&first);
    let nvme = view.iter().next().unwrap();
    assert_eq!(nvme.kind(), DiskKind::Ssd);
    assert_eq!(s(nvme.protocol()).as_deref(), Some("NVMe"));
    assert_eq!(nvme.pool_level(), Some(RaidLevel::Basic));
    assert_eq!(nvme.member_state(), Some(MemberState::InSync));
    assert!(!nvme.is_system());

    let mut inventory: DiskInventory<8> = DiskInventory::new();
    assert_eq!(inventory.absorb(&first), Merge::More);
    let second = format!(
        r#"{{"disk":[{{"name":"sdd","modelName":"ST33000650SS","vendor":"SEAGATE","type":"HDD","protocol":"SCSI",
           "rotationRate":7200,"size":3000592982016,"storage":[{{"level":"raid5","arrState":"in_sync"}}]}},
          {{"name":"sda","size":120034123776,"sys":1,"type":"SSD"}}],{R}}}"#
    );
    assert_eq!(inventory.absorb(&reply(&second)), Merge::More);
    let last = format!(r#"{{"result":"succ",{R}}}"#);
    assert_eq!(
        inventory.absorb(&reply(&last)),
        Merge::Done(Status::Success)
    );
    let names: Vec<&str> = inventory.disks().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["nvme0n1", "sda", "sdd"], "deduplicated by name");
    let sda = &inventory.disks()[1];
    assert!(sda.system);
    assert_eq!(sda.size, Some(120034123776));
    assert_eq!(inventory.disks()[2].kind, DiskKind::Hdd);
    assert_eq!(inventory.dropped(), 0);

    let mut small: DiskInventory<1> = DiskInventory::new();
    small.absorb(&first);
    assert_eq!((small.disks().len(), small.dropped()), (1, 1));
}

#[test]
fn disk_health_reads_smart_verdict_hours_and_temperature() {
    let text = format!(
        r#"{{"diskHealth":[
  {{"disk":"sda","smartSupport":{{"available":true,"enabled":true}},"smartStatus":{{"passed":true}},
   "powerOnTime":8904,"powerCycleCount":1354,"temperature":33}},
  {{"disk":"nvme0n1","smartSupport":{{"available":true,"enabled":true}},
   "smartStatus":{{"passed":true,"nvme":{{"value":0}}}},"powerOnTime":2772,"powerCycleCount":62,"temperature":48}},
  {{"disk":"sdc","smartStatus":{{"passed":false}}}},
  {{"disk":"nvme1n1","smartStatus":{{"nvme":{{"value":4}}}}}},
  {{"disk":"sdz"}}],
 "result":"succ",{R}}}"#
    );
    let r = reply(&text);
    let all: Vec<_> = DiskHealthList::from_reply(&r).iter().collect();
    assert_eq!(all.len(), 5);
    assert_eq!(s(all[0].disk()).as_deref(), Some("sda"));
    assert_eq!(all[0].verdict(), SmartVerdict::Passed);
    assert_eq!(
        (all[0].power_on_hours(), all[0].power_cycles()),
        (Some(8904), Some(1354))
    );
    assert_eq!(all[0].temperature(), Some(33));
    assert_eq!(all[0].smart_available(), Some(true));
    assert_eq!(all[1].nvme_critical_warning(), Some(0));
    assert_eq!(all[1].verdict(), SmartVerdict::Passed);
    assert_eq!(all[2].verdict(), SmartVerdict::Failing);
    assert_eq!(
        all[3].verdict(),
        SmartVerdict::Failing,
        "NVMe critical warning set"
    );
    assert_eq!(all[4].verdict(), SmartVerdict::Unknown);
    assert_eq!(all[4].temperature(), None);
}

#[test]
fn disk_smart_reads_ata_and_nvme_temperatures_with_fallbacks() {
    let ata = format!(
        r#"{{"smart":{{"device":{{"name":"/dev/sda","type":"sat","protocol":"ATA"}},"model_name":"Samsung SSD 870",
  "smart_status":{{"passed":true}},"temperature":{{"current":33}},"power_on_time":{{"hours":8642}},"power_cycle_count":446,
  "ata_smart_attributes":{{"table":[{{"id":194,"name":"Temperature_Celsius","value":67,"worst":44,"thresh":0,
   "raw":{{"value":240521789473,"string":"33 (Min/Max 0/56)"}}}}]}}}},"result":"succ",{R}}}"#
    );
    let smart_reply = reply(&ata);
    let smart = Smart::from_reply(&smart_reply);
    assert_eq!(s(smart.protocol()).as_deref(), Some("ATA"));
    assert_eq!(smart.temperature(), Some(33));
    assert_eq!(smart.verdict(), SmartVerdict::Passed);
    assert_eq!(
        (smart.power_on_hours(), smart.power_cycles()),
        (Some(8642), Some(446))
    );
    assert!(!smart.standby());

    // Without temperature.current: attribute 194's raw value (low byte).
    let attr_only = format!(
        r#"{{"smart":{{"smart_status":{{"passed":false}},"ata_smart_attributes":{{"table":[
        {{"id":9,"raw":{{"value":100}}}},{{"id":194,"raw":{{"value":240521789475}}}}]}}}},"result":"succ",{R}}}"#
    );
    let attr_reply = reply(&attr_only);
    let smart = Smart::from_reply(&attr_reply);
    assert_eq!(smart.temperature(), Some(35));
    assert_eq!(smart.verdict(), SmartVerdict::Failing);

    let nvme = format!(
        r#"{{"smart":{{"device":{{"name":"/dev/nvme0n1","type":"nvme","protocol":"NVMe"}},
  "smart_status":{{"passed":true,"nvme":{{"value":0}}}},
  "nvme_smart_health_information_log":{{"critical_warning":0,"temperature":49,"available_spare":100,
   "percentage_used":3,"media_errors":0,"power_on_hours":2772}},"power_on_time":{{"hours":2772}},"power_cycle_count":62}},
 "result":"succ",{R}}}"#
    );
    let nvme_reply = reply(&nvme);
    let smart = Smart::from_reply(&nvme_reply);
    assert_eq!(smart.temperature(), Some(49), "NVMe log fallback");
    assert_eq!(smart.percentage_used(), Some(3));
    assert_eq!(smart.media_errors(), Some(0));
    assert_eq!(disk_temperature(None, Some(&smart)), Some(49));
    assert_eq!(disk_temperature(Some(0), Some(&smart)), Some(49));
    assert_eq!(disk_temperature(Some(40), Some(&smart)), Some(40));

    let asleep = format!(r#"{{"diskStandby":true,"result":"succ",{R}}}"#);
    let asleep_reply = reply(&asleep);
    let smart = Smart::from_reply(&asleep_reply);
    assert!(smart.standby());
    assert_eq!(
        (smart.temperature(), smart.verdict()),
        (None, SmartVerdict::Unknown)
    );
}

const GENERAL: &str = r#"{"array":[{"name":"dm-1","uuid":"trim_7cdec818_x-0","mountpoint":"/vol1",
   "frsize":2190473261056,"fssize":9000668856320,
   "md":[{"name":"md1","uuid":"d52fce79-x","raidDisks":4,"level":"raid5",
          "arrayState":"clean","syncAction":"idle","syncCompleted":"none"}],
   "level":"raid5","storId":1,"comment":""}],
 "block":[{"name":"md1","holders":["dm-1"],"raidDisks":4,"level":"raid5","arrayState":"clean",
   "syncAction":"idle","syncCompleted":"none",
   "arr-devices":[{"name":"sde","arrSlot":"2","arrState":"in_sync"},{"name":"sdd","arrSlot":"0","arrState":"in_sync"},
                  {"name":"sdf","arrSlot":"1","arrState":"in_sync"},{"name":"sdg","arrSlot":"3","arrState":"in_sync"}]},
  {"name":"sdd","modelName":"ST33000650SS","vendor":"SEAGATE","type":"HDD","protocol":"SCSI","rotationRate":7200,
   "partitions":[{"no":1,"name":"sdd1"}]}],
 "result":"succ","reqid":"69868e2a69868e2a0000f8d3000e"}"#;

#[test]
fn stor_general_reads_pool_level_space_and_a_clean_array() {
    let r = reply(GENERAL);
    let pools: Vec<_> = Pools::from_reply(&r).iter().collect();
    assert_eq!(pools.len(), 1);
    let pool = pools[0];
    assert_eq!(s(pool.name()).as_deref(), Some("dm-1"));
    assert_eq!(s(pool.mountpoint()).as_deref(), Some("/vol1"));
    assert_eq!(pool.stor_id(), Some(1));
    assert_eq!(pool.level(), RaidLevel::Raid5);
    assert_eq!(pool.comment(), None, "an empty comment is no comment");
    assert_eq!(pool.used_percent(), Some(75));
    let md = pool.arrays().next().unwrap();
    assert_eq!(md.raid_disks(), Some(4));
    assert_eq!(md.sync_action(), SyncAction::Idle);
    assert_eq!(md.progress(), None);
    assert_eq!(md.members().count(), 4, "members from block[]");
    assert_eq!(md.members().next().unwrap().slot(), Some(2));
    assert_eq!(pool.degraded(), Some(false));
    assert_eq!(pool.state(), PoolState::Normal);
}

#[test]
fn a_pool_with_a_missing_member_is_degraded_and_a_recovering_one_rebuilding() {
    let missing = GENERAL.replace(r#",{"name":"sdg","arrSlot":"3","arrState":"in_sync"}"#, "");
    let r = reply(&missing);
    let pool = Pools::from_reply(&r).iter().next().unwrap();
    assert_eq!(pool.degraded(), Some(true));
    assert_eq!(pool.state(), PoolState::Degraded);

    let recovering = missing.replace(
        r#""syncAction":"idle","syncCompleted":"none"}]"#,
        r#""syncAction":"recover","syncCompleted":"2929721344 / 5859442688"}]"#,
    );
    let r = reply(&recovering);
    let pool = Pools::from_reply(&r).iter().next().unwrap();
    let progress = Progress {
        done: 2929721344,
        total: 5859442688,
    };
    assert_eq!(pool.state(), PoolState::Rebuilding(Some(progress)));
    assert_eq!(progress.percent(), 50);
}

#[test]
fn list_stor_and_state_read_members_and_the_degraded_field() {
    let text = format!(
        r#"{{"state":[{{"name":"dm-0","uuid":"trim_x-0","frsize":100,"fssize":1000,"level":"raid1","storId":2,
  "md":[{{"name":"md0","raidDisks":2,"level":"raid1","arrayState":"clean","syncAction":"check","syncCompleted":"10 / 40",
   "disk":[{{"name":"sda","arrSlot":"0","arrState":"in_sync"}},{{"name":"sdb","arrSlot":"1","arrState":"in_sync"}}]}}]}}],
 "result":"succ",{R}}}"#
    );
    let r = reply(&text);
    let pool = Pools::from_reply(&r).iter().next().unwrap();
    assert_eq!(pool.level(), RaidLevel::Raid1);
    assert_eq!(pool.used_percent(), Some(90));
    assert_eq!(pool.degraded(), Some(false));
    assert_eq!(
        pool.state(),
        PoolState::Checking(Some(Progress {
            done: 10,
            total: 40
        }))
    );

    let flagged = format!(
        r#"{{"array":[{{"name":"dm-0","level":"raid1","degraded":true,"fixNeedDisks":1,"md":[]}}],{R}}}"#
    );
    let r = reply(&flagged);
    let pool = Pools::from_reply(&r).iter().next().unwrap();
    assert_eq!(pool.degraded(), Some(true));
    assert_eq!(pool.fix_need_disks(), Some(1));
    assert_eq!(pool.state(), PoolState::Degraded);

    let bare = format!(
        r#"{{"state":[{{"name":"dm-1","uuid":"u","frsize":1,"fssize":2}}],"result":"succ",{R}}}"#
    );
    let r = reply(&bare);
    let pool = Pools::from_reply(&r).iter().next().unwrap();
    assert_eq!(
        pool.state(),
        PoolState::Normal,
        "no md list: nothing says degraded"
    );
    assert_eq!(pool.level(), RaidLevel::Unknown);
}

#[test]
fn docker_container_list_and_stats() {
    let list = format!(
        r#"{{{R},"result":"succ","rsp":[
 {{"Id":"8345185c","Names":["/minecraft-server-12111-fabric-mc-1"],"Image":"itzg/minecraft-server:java21-graalvm",
  "State":"running","Status":"Up 5 days (healthy)","Created":1768044861,"Project":"minecraft-server-12111-fabric",
  "Icon":"","HostConfig":{{"NetworkMode":"x_default"}},
  "Ports":[{{"PublicPort":25566,"PrivatePort":25565,"Type":"tcp","IP":"0.0.0.2"}}]}},
 {{"Id":"73408a9b","Names":["/minecraft-server-12111-fabric-exp-mc-1"],"State":"error","Status":"255"}}]}}"#
    );
    let r = reply(&list);
    let all: Vec<_> = Containers::from_reply(&r).iter().collect();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].name(), Some("minecraft-server-12111-fabric-mc-1"));
    assert_eq!(all[0].state(), ContainerState::Running);
    assert_eq!(all[0].created(), Some(1768044861));
    assert_eq!(
        s(all[0].project()).as_deref(),
        Some("minecraft-server-12111-fabric")
    );
    assert_eq!(all[1].state(), ContainerState::Error);
    assert_eq!(s(all[1].status()).as_deref(), Some("255"));

    let stats = format!(
        r#"{{{R},"result":"succ","rsp":{{
  "8345185c":{{"cpuUsage":0.011553884711779448,"usedMem":259833856,"networkRx":0,"networkTx":0}}}}}}"#
    );
    let r = reply(&stats);
    let stats = DockerStats::from_reply(&r);
    let one = stats.get("8345185c").expect("running container");
    assert_eq!(one.memory(), Some(259833856));
    assert_eq!(one.cpu_usage(), Some(0.011553884711779448));
    assert!(
        stats.get("73408a9b").is_none(),
        "stats list running containers only"
    );
}

#[test]
fn ups_without_a_ups_is_unknown_and_on_battery_is_read_from_the_supply() {
    let none = format!(
        r#"{{"result":"succ",{R},"data":{{"upsEnabled":false,"upsType":"","upsTypeName":"",
 "shutdownUpsEnabled":false,
 "currentUps":{{"name":"","vendor":"","product":"","vendorId":"","productId":"","status":false,
   "batteryCharge":"","powerSupplyType":"","runtime":"","shutdownPolicyType":"",
   "shutdownPolicyOnBattValue":0,"shutdownPolicyLowBattValue":0,"shutdownPolicyUnit":"",
   "batteryCapacity":""}}}}}}"#
    );
    let r = reply(&none);
    let ups = Ups::from_reply(&r);
    assert_eq!(ups.enabled(), Some(false));
    assert_eq!(
        (ups.on_battery(), ups.battery_percent(), ups.model()),
        (None, None, None)
    );

    let on_battery = format!(
        r#"{{"result":"succ",{R},"data":{{"upsEnabled":true,"upsTypeName":"USB",
 "currentUps":{{"name":"ups","product":"Back-UPS ES 700G","status":true,"batteryCharge":"64","runtime":"1260",
   "powerSupplyType":"battery"}}}}}}"#
    );
    let r = reply(&on_battery);
    let ups = Ups::from_reply(&r);
    assert_eq!(ups.on_battery(), Some(true));
    assert_eq!(ups.battery_percent(), Some(64));
    assert_eq!(ups.runtime_secs(), Some(1260));
    assert_eq!(s(ups.model()).as_deref(), Some("Back-UPS ES 700G"));
    let on_line = on_battery.replace(r#""battery"}"#, r#""OL"}"#);
    assert_eq!(Ups::from_reply(&reply(&on_line)).on_battery(), Some(false));
}

#[test]
fn unread_total_sys_warn_and_hardware_info() {
    assert_eq!(
        unread_total(&reply(&format!(
            r#"{{"unreadTotal":21,"result":"succ",{R}}}"#
        ))),
        Some(21)
    );
    assert_eq!(
        unread_total(&reply(&format!(r#"{{"result":"succ",{R}}}"#))),
        None
    );

    let warn = format!(
        r#"{{"data":{{"warn":[{{"level":2,"msg":"disk sda is hot"}},{{"level":3,"msg":"pool degraded"}}]}},{R},"result":"succ"}}"#
    );
    let r = reply(&warn);
    let w = SysWarn::from_reply(&r);
    assert_eq!(w.count(), Some(2));
    assert_eq!(
        s(w.iter().next().unwrap().text()).as_deref(),
        Some("disk sda is hot")
    );
    let listed = format!(r#"{{"data":["a","b","c"],{R},"result":"succ"}}"#);
    assert_eq!(SysWarn::from_reply(&reply(&listed)).count(), Some(3));
    let counted = format!(r#"{{"data":{{"total":4}},{R},"result":"succ"}}"#);
    assert_eq!(SysWarn::from_reply(&reply(&counted)).count(), Some(4));
    let empty = format!(r#"{{{R},"result":"succ"}}"#);
    assert_eq!(SysWarn::from_reply(&reply(&empty)).count(), None);

    let hw = format!(
        r#"{{"data":{{"cpu":{{"name":"AMD Ryzen 7 5800H with Radeon Graphics","num":1,"core":8,"thread":16}},
 "mem":{{"num":1,"total":34359738368,"frequency":3200,"type":"DDR4","vendor":"Unknown"}},
 "gpu":[{{"vendor":"Advanced Micro Devices, Inc. [AMD/ATI]","vendorId":4098,"device":"Radeon(TM) Graphics"}}],
 "vm":{{"available":0,"iommu":0,"sriov":0}},
 "bios":{{"vendor":"American Megatrends International, LLC.","version":"DS2308.A..002",
   "baseboard":{{"vendor":"x","productName":"Dinson","version":"x","serialNumber":"x"}},
   "system":{{"vendor":"x","productName":"DS2308","version":"x","serialNumber":"x","sku":"x","uuid":"x","family":"x"}}}},
 "sysdisk":{{"size":0,"model":"Unknown","protocol":"Unknown","serialNumber":"Unknown"}}}},{R},"result":"succ"}}"#
    );
    let r = reply(&hw);
    let hw = HardwareInfo::from_reply(&r);
    assert_eq!(hw.cpu_cores(), Some(8));
    assert_eq!(hw.memory(), Some(34359738368));
    assert_eq!(s(hw.memory_type()).as_deref(), Some("DDR4"));
    assert_eq!(hw.memory_mhz(), Some(3200));
    assert_eq!(s(hw.product()).as_deref(), Some("DS2308"));
    assert_eq!(hw.gpus().count(), 1);
    assert_eq!(hw.system_disk(), None, "\"Unknown\" is unknown");
}

#[test]
fn doing_frames_are_partial_and_task_frames_carry_progress() {
    let doing = format!(r#"{{"result":"doing","percent":42,{R}}}"#);
    let r = reply(&doing);
    assert_eq!(r.status(), Status::Partial, "doing is not a failure");
    assert_eq!(
        DoingFrame::from_reply(&r).and_then(|d| d.percent()),
        Some(42)
    );
    assert_eq!(task_outcome(&r), TaskOutcome::Running);
    let cancel = format!(r#"{{"result":"cancel",{R}}}"#);
    assert_eq!(task_outcome(&reply(&cancel)), TaskOutcome::Cancelled);
    let done = format!(r#"{{"result":"succ",{R}}}"#);
    assert!(DoingFrame::from_reply(&reply(&done)).is_none());
    assert_eq!(task_outcome(&reply(&done)), TaskOutcome::Succeeded);

    let first = br#"{"sysNotify":"taskId","taskId":"k6kOFt5xS6eebPbxKZAJAw==","reqid":"1770435393928054cbb78ffd9"}"#;
    let Message::Push(push) = Message::parse(first).unwrap() else {
        panic!()
    };
    let task = TaskFrame::from_push(&push).unwrap();
    assert!(!task.is_progress());
    assert!(
        task.task_id()
            .unwrap()
            .as_str()
            .unwrap()
            .eq_str("k6kOFt5xS6eebPbxKZAJAw==")
    );
    assert!(task.reqid().unwrap().eq_str("1770435393928054cbb78ffd9"));
    let info = br#"{"sysNotify":"taskInfo","reqid":"x","taskInfo":{"percent":42,"time":3,"size":420,"sizeTotal":1000,"speed":140}}"#;
    let Message::Push(push) = Message::parse(info).unwrap() else {
        panic!()
    };
    let task = TaskFrame::from_push(&push).unwrap();
    assert!(task.is_progress());
    assert_eq!(
        (
            task.percent(),
            task.size(),
            task.size_total(),
            task.speed(),
            task.time()
        ),
        (Some(42), Some(420), Some(1000), Some(140), Some(3))
    );
    assert!(TaskFrame::from_push(&Push::Kicked).is_none());
}

#[test]
fn other_shapes_read_as_unknown_not_as_errors() {
    for text in [
        format!(r#"{{"data":[],{R},"result":"succ"}}"#),
        format!(r#"{{"data":{{"cpu":7,"gpu":{{}},"disk":"x"}},{R},"result":"succ"}}"#),
        format!(r#"{{"errno":4352,"result":"fail",{R}}}"#),
        format!(r#"{{"array":3,"disk":[1,null,{{}}],"smart":[],"diskHealth":{{}},"rsp":"x",{R}}}"#),
    ] {
        let r = reply(&text);
        let cpu = Cpu::from_reply(&r);
        assert_eq!(
            (cpu.temperature(), cpu.busy_percent(), cpu.name()),
            (None, None, None)
        );
        assert_eq!(Gpus::from_reply(&r).iter().count(), 0);
        assert_eq!(ResmonDisks::from_reply(&r).iter().count(), 0);
        assert!(DiskList::from_reply(&r).iter().all(|d| d.name().is_none()));
        assert_eq!(DiskHealthList::from_reply(&r).iter().count(), 0);
        assert_eq!(Smart::from_reply(&r).verdict(), SmartVerdict::Unknown);
        assert_eq!(Pools::from_reply(&r).iter().count(), 0);
        assert_eq!(Containers::from_reply(&r).iter().count(), 0);
        assert!(
            DockerStats::from_reply(&r)
                .iter()
                .all(|c| c.memory().is_none())
        );
        assert_eq!(Ups::from_reply(&r).on_battery(), None);
        assert_eq!(HardwareInfo::from_reply(&r).cpu_name(), None);
    }
}
