//! Every server message recorded from real CFMS servers (protocols 3 and 5)
//! parses, and is classified as the protocol document says.

use naslink_core::cfms::{Incoming, MessageKind, Status};

const TRANSCRIPTS: [&str; 4] = [
    "cfms-v3.jsonl",
    "cfms-v3-edge.jsonl",
    "cfms-p5.jsonl",
    "cfms-p5-2fa.jsonl",
];

fn lines(name: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "{}/../../shared/transcripts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("transcript line is JSON"))
        .collect()
}

#[test]
fn every_recorded_server_message_parses() {
    let mut responses = 0;
    for name in TRANSCRIPTS {
        for line in lines(name) {
            if line["dir"] != "<<" {
                continue;
            }
            if let Some(json) = line.get("json") {
                let bytes = serde_json::to_vec(json).unwrap();
                let parsed = Incoming::parse(MessageKind::Text, &bytes)
                    .unwrap_or_else(|e| panic!("{name}: {e}: {json}"));
                match parsed {
                    Incoming::Response(r) => {
                        responses += 1;
                        assert_eq!(r.code(), json["code"].as_i64().unwrap());
                        assert_eq!(
                            r.message().map(|m| m.chars().collect::<String>()),
                            json["message"].as_str().map(String::from)
                        );
                        assert_eq!(r.timestamp(), json["timestamp"].as_f64());
                        if r.status() == Status::BadRequest
                            && json["data"].get("validator").is_some()
                        {
                            let v = r.validator().expect("validator details");
                            assert_eq!(
                                v.name.chars().collect::<String>(),
                                json["data"]["validator"].as_str().unwrap()
                            );
                        }
                    }
                    Incoming::Action(a) => {
                        assert_eq!(
                            a.action().chars().collect::<String>(),
                            json["action"].as_str().unwrap()
                        )
                    }
                    other => panic!("{name}: JSON classified as {other:?}"),
                }
            } else if let Some(text) = line.get("text").and_then(|t| t.as_str()) {
                let parsed = Incoming::parse(MessageKind::Text, text.as_bytes()).unwrap();
                assert!(
                    matches!(parsed, Incoming::Ready { .. } | Incoming::Stop),
                    "{text}"
                );
            } else if let Some(len) = line.get("binary_len").and_then(|l| l.as_u64()) {
                // The log keeps the first 32 bytes; the push is exactly this JSON.
                let head = line["binary_head_hex"].as_str().unwrap();
                let on = len == 38;
                let push = format!("{{\"action\": \"lockdown\", \"status\": {on}}}");
                assert_eq!(push.len() as u64, len);
                let hex: String = push.bytes().take(32).map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, head);
                let parsed = Incoming::parse(MessageKind::Binary, push.as_bytes()).unwrap();
                assert!(matches!(parsed, Incoming::Lockdown { on: o } if o == on));
            }
        }
    }
    assert!(responses > 100, "only {responses} responses found");
}

#[test]
fn escaped_forms_of_recorded_responses_decode_to_the_same_text() {
    // Python's default `ensure_ascii=True` writes `\uXXXX` and may write `\/`:
    // the decoded strings must not change.
    for line in lines("cfms-p5.jsonl") {
        let Some(json) = line.get("json").filter(|_| line["dir"] == "<<") else {
            continue;
        };
        if json.get("code").is_none() {
            continue;
        }
        let plain = serde_json::to_string(json).unwrap();
        let mut escaped = String::new();
        for ch in plain.chars() {
            match ch {
                '/' => escaped.push_str("\\/"),
                c if (c as u32) > 0x7f => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        escaped.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => escaped.push(c),
            }
        }
        let Ok(Incoming::Response(r)) = Incoming::parse(MessageKind::Text, escaped.as_bytes())
        else {
            panic!("{escaped}")
        };
        if let Some(nick) = json["data"].get("nickname").and_then(|n| n.as_str()) {
            let got: String = r
                .data()
                .get("nickname")
                .unwrap()
                .as_str()
                .unwrap()
                .chars()
                .collect();
            assert_eq!(got, nick);
        }
        assert_eq!(
            r.message().map(|m| m.chars().collect::<String>()),
            json["message"].as_str().map(String::from)
        );
    }
}

fn response_for(name: &str, note: &str) -> Vec<u8> {
    let line = lines(name)
        .into_iter()
        .find(|l| l["dir"] == "<<" && l["note"] == note)
        .unwrap_or_else(|| panic!("{note}"));
    serde_json::to_vec(&line["json"]).unwrap()
}

#[test]
fn typed_views_read_recorded_answers() {
    use naslink_core::cfms::Response;
    use naslink_core::cfms::ops::{Listing, LoginInfo, ServerInfo, task_id};

    let bytes = response_for("cfms-v3.jsonl", "list_directory testdir");
    let r = Response::parse(&bytes).unwrap();
    let listing = Listing::new(&r);
    assert!(listing.parent_id().unwrap().eq_str("/"));
    let docs: Vec<_> = listing.documents().collect();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].title.eq_str("hello.txt"));
    assert_eq!(docs[0].size, Some(10800));
    assert_eq!(docs[0].sha256.unwrap()[0], 0xb0);
    assert_eq!(listing.folders().count(), 0);

    let bytes = response_for("cfms-p5.jsonl", "list_directory null");
    let r = Response::parse(&bytes).unwrap();
    let docs: Vec<_> = Listing::new(&r).documents().collect();
    assert_eq!((docs[0].sha256, docs[0].size), (None, Some(4720)));
    assert!(Listing::new(&r).parent_id().is_none());

    let bytes = response_for("cfms-v3.jsonl", "get_document");
    let r = Response::parse(&bytes).unwrap();
    assert!(
        task_id(&r)
            .unwrap()
            .eq_str("368c706363cb4ded6fa9726db55fbba210f2f78a1f9bf223944aaae402072f97")
    );

    let bytes = response_for("cfms-v3.jsonl", "login admin (new password)");
    let r = Response::parse(&bytes).unwrap();
    let info = LoginInfo::new(&r);
    assert!(info.nickname().unwrap().eq_str("管理员"));
    assert!(info.has_permission("shutdown"));
    assert!(info.groups().any(|g| g.eq_str("sysop")));
    assert_eq!(info.exp(), Some(1795308447.4919195));

    let bytes = response_for("cfms-p5.jsonl", "server_info");
    let r = Response::parse(&bytes).unwrap();
    assert!(
        ServerInfo::new(&r)
            .version()
            .unwrap()
            .eq_str("0.1.0.251226_alpha")
    );
}
