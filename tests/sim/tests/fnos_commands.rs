//! Front-panel commands: shapes, multi-frame answers, permissions.

mod fnos_support;

use fnos_support::{Client, start, start_default};
use naslink_sim::fnos::{Account, Config};
use serde_json::{Value, json};

async fn admin_client(url: &str) -> Client {
    let mut client = Client::connect(url).await;
    client.login("admin", "admin").await;
    client
}

fn names(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .flat_map(|f| f["files"].as_array().cloned().unwrap_or_default())
        .map(|e| e["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn file_ls_answers_in_several_frames_then_a_final_result() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let frames = client
        .call_frames("file.ls", json!({"path": "vol1/1000/Documents"}))
        .await;
    assert!(
        frames.len() >= 3,
        "5 entries at 4 per frame plus the final frame: {frames:?}"
    );
    let (last, partial) = frames.split_last().expect("frames");
    assert_eq!(last["result"], "succ");
    for frame in partial {
        assert!(
            frame.get("result").is_none(),
            "partial frames carry no result: {frame}"
        );
        assert!(frame["uver"].is_u64());
    }
    let entries: Vec<Value> = partial
        .iter()
        .flat_map(|f| f["files"].as_array().cloned().unwrap())
        .collect();
    let projects = entries
        .iter()
        .find(|e| e["name"] == "Projects")
        .expect("Projects folder");
    assert_eq!(projects["dir"], 1);
    assert!(projects.get("size").is_none());
    let notes = entries
        .iter()
        .find(|e| e["name"] == "notes.txt")
        .expect("notes.txt");
    assert_eq!(notes["size"], 5120);
    assert_eq!(notes["uid"], 1000);
    assert!(notes["mtim"].is_u64() && notes["btim"].is_u64());
    server.shutdown().await;
}

#[tokio::test]
async fn file_ls_without_path_is_the_home_view_with_volume_ids() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    for params in [json!({}), json!({"path": null})] {
        let frames = client.call_frames("file.ls", params).await;
        let entries: Vec<Value> = frames
            .iter()
            .flat_map(|f| f["files"].as_array().cloned().unwrap_or_default())
            .collect();
        let documents = entries
            .iter()
            .find(|e| e["name"] == "Documents")
            .expect("Documents");
        assert_eq!(documents["v"], 1);
        let backup = entries
            .iter()
            .find(|e| e["name"] == "Backup")
            .expect("Backup");
        assert_eq!(backup["v"], 2);
        assert!(entries.iter().all(|e| e["v"].is_u64() && e["dir"] == 1));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn file_changes_show_in_the_next_listing() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let ok = |answer: Value| assert_eq!(answer["result"], "succ", "{answer}");
    ok(client
        .call("file.mkdir", json!({"path": "vol1/1000/Documents/New"}))
        .await);
    ok(client
        .call(
            "file.rename",
            json!({"path": "vol1/1000/Documents/notes.txt", "newName": "todo.txt"}),
        )
        .await);
    ok(client
        .call("file.mv", json!({"files": ["vol1/1000/Documents/todo.txt"], "destination": "vol1/1000/Documents/New"}))
        .await);
    let listed = names(
        &client
            .call_frames("file.ls", json!({"path": "vol1/1000/Documents/New"}))
            .await,
    );
    assert_eq!(listed, ["todo.txt"]);
    ok(client
        .call(
            "file.rm",
            json!({"files": ["vol1/1000/Documents/New"], "moveToTrashbin": true}),
        )
        .await);
    let listed = names(
        &client
            .call_frames("file.ls", json!({"path": "vol1/1000/Documents"}))
            .await,
    );
    assert!(!listed.contains(&"New".to_owned()) && !listed.contains(&"notes.txt".to_owned()));
    let missing = client
        .call_frames("file.ls", json!({"path": "vol1/1000/Nope"}))
        .await;
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["errno"], 8192);
    let foreign = client
        .call_frames("file.ls", json!({"path": "vol1/1001"}))
        .await;
    assert_eq!(foreign[0]["errno"], 4352);
    server.shutdown().await;
}

#[tokio::test]
async fn moving_a_folder_into_itself_is_refused_and_loses_nothing() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let answer = client
        .call("file.mv", json!({"files": ["vol1/1000/Documents"], "destination": "vol1/1000/Documents/Projects"}))
        .await;
    assert_eq!(answer["errno"], 8192);
    let listed = names(
        &client
            .call_frames("file.ls", json!({"path": "vol1/1000/Documents/Projects"}))
            .await,
    );
    assert_eq!(listed.len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn appcgi_answers_carry_data_rev_and_req() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    for req in [
        "appcgi.sysinfo.getHostName",
        "appcgi.sysinfo.getUptime",
        "appcgi.sysinfo.getTrimVersion",
        "appcgi.sysinfo.getMachineId",
        "appcgi.sysinfo.getHardwareInfo",
        "appcgi.resmon.cpu",
        "appcgi.resmon.mem",
        "appcgi.resmon.net",
        "appcgi.resmon.disk",
    ] {
        let answer = client.call(req, json!({})).await;
        assert_eq!(answer["result"], "succ", "{req}: {answer}");
        assert_eq!(answer["rev"], "0.1");
        assert_eq!(answer["req"], req);
        assert!(answer["data"].is_object(), "{req}: {answer}");
    }
    let uptime = client.call("appcgi.sysinfo.getUptime", json!({})).await;
    assert!(uptime["data"]["uptime"].as_u64().is_some_and(|s| s > 0));
    let mem = client.call("appcgi.resmon.mem", json!({})).await;
    for field in ["total", "used", "free", "available"] {
        assert!(mem["data"]["mem"][field].is_u64(), "{field}");
    }
    let net = client.call("appcgi.resmon.net", json!({})).await;
    assert!(net["data"]["ifs"][0]["name"].is_string());
    let disk = client.call("appcgi.resmon.disk", json!({})).await;
    for field in ["name", "temp", "standby", "busy", "read", "write"] {
        assert!(!disk["data"]["disk"][0][field].is_null(), "{field}");
    }
    let hardware = client
        .call("appcgi.sysinfo.getHardwareInfo", json!({}))
        .await;
    assert!(hardware["data"]["cpu"].is_object() && hardware["data"]["mem"].is_object());
    server.shutdown().await;
}

#[tokio::test]
async fn resmon_gen_reports_the_requested_items() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let items = json!({"item": ["storeSpeed", "netSpeed", "cpuBusy", "memPercent"]});
    let answer = client.call("appcgi.resmon.gen", items).await;
    let item = &answer["data"]["item"];
    assert!(item["storeSpeed"]["read"].is_u64() && item["storeSpeed"]["write"].is_u64());
    assert!(item["netSpeed"]["transmit"].is_u64() && item["netSpeed"]["receive"].is_u64());
    assert!(item["cpuBusy"].as_u64().is_some_and(|c| c <= 100));
    assert!(item["memPercent"].as_u64().is_some_and(|m| m <= 100));
    let only_cpu = client
        .call("appcgi.resmon.gen", json!({"item": ["cpuBusy"]}))
        .await;
    assert_eq!(
        only_cpu["data"]["item"].as_object().map(|o| o.len()),
        Some(1)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn user_storage_reports_total_and_free_bytes() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let answer = client
        .call(
            "stor.getUserStorage",
            json!({"spaceInfo": true, "storInfo": true, "quotaInfo": true}),
        )
        .await;
    assert_eq!(answer["uid"], 1000);
    let stor = answer["stor"].as_array().expect("stor list");
    assert_eq!(stor.len(), 2);
    for volume in stor {
        let (total, free) = (
            volume["fssize"].as_u64().unwrap(),
            volume["frsize"].as_u64().unwrap(),
        );
        assert!(free < total);
        assert!(
            volume["id"].is_u64() && volume["comment"].is_string() && volume["fstype"].is_string()
        );
    }
    let space = client.call("stor.calcSpace", json!({})).await;
    assert_eq!(space["result"], "succ");
    server.shutdown().await;
}

#[tokio::test]
async fn list_disk_and_list_stor_answer_in_several_frames() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let disks = client
        .call_frames("stor.listDisk", json!({"noHotSpare": true}))
        .await;
    assert_eq!(disks.len(), 4, "three disks, then the final frame");
    assert!(
        disks[..3]
            .iter()
            .all(|f| f.get("result").is_none() && f["disk"][0]["name"].is_string())
    );
    assert_eq!(disks[3]["result"], "succ");
    let stors = client.call_frames("stor.listStor", json!({})).await;
    assert_eq!(stors.len(), 3);
    assert_eq!(stors[2]["result"], "succ");
    server.shutdown().await;
}

#[tokio::test]
async fn non_admins_get_errno_4352_for_admin_commands() {
    let config = Config {
        accounts: vec![
            Account::new("admin", "admin", 1000, true),
            Account::new("guest", "guest", 1001, false),
        ],
        ..Config::default()
    };
    let server = start(config).await;
    let mut client = Client::connect(&server.url()).await;
    client.login("guest", "guest").await;
    for req in [
        "appcgi.resmon.gen",
        "appcgi.resmon.cpu",
        "stor.listDisk",
        "stor.calcSpace",
    ] {
        assert_eq!(client.call(req, json!({})).await["errno"], 4352, "{req}");
    }
    let storage = client.call("stor.getUserStorage", json!({})).await;
    assert_eq!(storage["uid"], 1001, "user storage works for non-admins");
    assert_eq!(client.call("user.isAdmin", json!({})).await["admin"], false);
    let home = client
        .call_frames("file.ls", json!({"path": "vol1/1001/Photos"}))
        .await;
    assert_eq!(home.last().unwrap()["result"], "succ");
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_command_answers_errno_10000002() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let answer = client.call("appcgi.nosuch.thing", json!({})).await;
    assert_eq!(answer["errno"], 10000002);
    assert_eq!(answer["result"], "fail");
    server.shutdown().await;
}

#[tokio::test]
async fn live_figures_change_over_time() {
    let server = start_default().await;
    let mut client = admin_client(&server.url()).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..5 {
        let answer = client
            .call("appcgi.resmon.gen", json!({"item": ["netSpeed"]}))
            .await;
        seen.insert(
            answer["data"]["item"]["netSpeed"]["receive"]
                .as_u64()
                .unwrap(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(seen.len() > 1, "network rate never moved: {seen:?}");
    server.shutdown().await;
}
