//! The hostile bytes themselves: what goes out right after the upgrade,
//! and the rewritten CFMS and fnOS messages.

use serde_json::{Value, json};

use super::Mode;
use super::frame::{OP_BINARY, OP_CONTINUATION, OP_PING, OP_TEXT, encode, header};

/// Payload bytes that follow the impossible length headers: enough for a
/// client that trusts the length to start buffering.
const TAIL: usize = 1024;
/// One continuation frame of the flood.
pub(crate) const CONTINUATION_PIECE: usize = 64 * 1024;
/// Frames of the continuation flood: 160 x 64 KiB = 10 MiB.
pub(crate) const CONTINUATION_FRAMES: usize = 160;
/// PINGs of the flood at most.
pub(crate) const FLOOD_PINGS: u32 = 200_000;
/// PINGs of the burst ([`Mode::PingBurst`]).
pub(crate) const BURST_PINGS: u32 = 100;
/// Partial answer frames of the endless fnOS answer at most (16 GiB, so
/// [`super::HOLD`] is what ends it).
pub(crate) const ENDLESS_FRAMES: u32 = 262_144;
/// The number that replaces CFMS download numbers: 200 digits.
const HUGE_NUMBER_DIGITS: usize = 200;

/// The frame-level bytes a mode sends right after the 101 response, if it
/// is one that acts there (then nothing else is relayed).
pub(crate) fn after_upgrade(mode: Mode) -> Option<Vec<u8>> {
    let mut out = match mode {
        Mode::Length62 => header(true, OP_BINARY, 1 << 62),
        Mode::Length63 => header(true, OP_BINARY, 1 << 63),
        Mode::MaskedFrame => masked_text(b"{\"hostile\":\"masked\"}"),
        Mode::BadUtf8 => encode(true, OP_TEXT, &[0x7b, 0xff, 0xfe, 0xfd, 0x7d]),
        // 'H' is 0x48: RSV1 set on a close opcode without FIN, nonsense;
        // long enough to cover the length 'T' announces (84 bytes), for a
        // reader that checks a frame only once it has all of it.
        Mode::GarbageAfterUpgrade => {
            let mut garbage = b"HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n".to_vec();
            garbage.extend(b"garbage ".iter().cycle().take(400));
            return Some(garbage);
        }
        _ => return None,
    };
    if matches!(mode, Mode::Length62 | Mode::Length63) {
        out.extend_from_slice(&[0u8; TAIL]);
    }
    Some(out)
}

fn masked_text(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = header(true, OP_TEXT, payload.len() as u64);
    out[1] |= 0x80;
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Frame `index` of the continuation flood: a text frame without FIN,
/// then continuations, none with FIN.
pub(crate) fn continuation(index: usize) -> Vec<u8> {
    let opcode = if index == 0 { OP_TEXT } else { OP_CONTINUATION };
    encode(false, opcode, &[b'a'; CONTINUATION_PIECE])
}

/// One PING of the flood.
pub(crate) fn ping() -> Vec<u8> {
    encode(true, OP_PING, &[b'p'; 125])
}

/// `req` and `reqid` of an fnOS request frame (the JSON may follow a
/// base64 signature).
pub(crate) fn fnos_request(text: &str) -> Option<(String, Value)> {
    let json = &text[text.find('{')?..];
    let value: Value = serde_json::from_str(json).ok()?;
    let req = value.get("req")?.as_str()?.to_owned();
    Some((req, value.get("reqid").cloned().unwrap_or(Value::Null)))
}

/// A partial frame of a multi-frame fnOS answer (no `result`), about 64 KiB.
pub(crate) fn endless_part(reqid: &Value) -> Vec<u8> {
    let entry = json!({"name": "x".repeat(200), "size": 1, "dir": 0, "mtim": 0});
    let files = vec![entry; 256];
    let text = json!({"files": files, "reqid": reqid}).to_string();
    encode(true, OP_TEXT, text.as_bytes())
}

/// The replacement of a CFMS server message in the CFMS download and
/// upload modes, or `None` to relay it as it is. `done` records that the
/// one-time rewrite happened.
pub(crate) fn cfms_rewrite(mode: Mode, text: &str, done: &mut bool) -> Option<Vec<u8>> {
    if *done {
        return None;
    }
    let rewritten = match mode {
        Mode::HugeReady if text.starts_with("ready") => "ready 4294967295".to_owned(),
        Mode::AesKeyDigits if text.contains("\"aes_key\"") => {
            format!(
                r#"{{"action":"aes_key","data":{{"key":{}}}}}"#,
                huge_number()
            )
        }
        Mode::ChunkIndexDigits | Mode::LongKeyEscape | Mode::LongHashEscape
            if text.contains("\"file_chunk\"") =>
        {
            file_chunk(mode, text)?
        }
        _ => return None,
    };
    *done = true;
    Some(encode(true, OP_TEXT, rewritten.as_bytes()))
}

fn huge_number() -> String {
    let mut digits = "9".repeat(HUGE_NUMBER_DIGITS);
    digits.replace_range(0..1, "1");
    digits
}

/// The emulator's `file_chunk` written out again with the hostile field
/// first, so that a streaming reader meets it before anything else.
fn file_chunk(mode: Mode, text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    let data = value.get("data")?;
    let index = data.get("index")?.as_u64()?;
    let hash = data.get("hash")?.as_str()?;
    let chunk = data.get("chunk")?.as_str()?;
    let iv = match data.get("iv").and_then(Value::as_str) {
        Some(iv) => format!(r#","iv":"{iv}""#),
        None => String::new(),
    };
    let rest = format!(r#""chunk":"{chunk}"{iv}"#);
    Some(match mode {
        Mode::ChunkIndexDigits => format!(
            r#"{{"action":"file_chunk","data":{{"index":{},"hash":"{hash}",{rest}}}}}"#,
            huge_number()
        ),
        Mode::LongKeyEscape => format!(
            r#"{{"action":"file_chunk","data":{{"index_of_this_\u0063hunk_xy":{index},"index":{index},"hash":"{hash}",{rest}}}}}"#
        ),
        _ => format!(
            r#"{{"action":"file_chunk","data":{{"hash":"{}\u0041","index":{index},{rest}}}}}"#,
            "a".repeat(100)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: &str =
        r#"{"action":"file_chunk","data":{"chunk":"AAEC","hash":"ab12","index":0,"iv":"SVY="}}"#;

    #[test]
    fn every_download_rewrite_stays_valid_json_with_the_hostile_field() {
        for mode in [
            Mode::ChunkIndexDigits,
            Mode::LongKeyEscape,
            Mode::LongHashEscape,
        ] {
            let mut done = false;
            let frame = cfms_rewrite(mode, CHUNK, &mut done).unwrap();
            assert!(done);
            // An unmasked header: 2 bytes, or 4 with a 16-bit length.
            let start = if frame[1] == 126 { 4 } else { 2 };
            let text = std::str::from_utf8(&frame[start..]).unwrap();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(value["data"]["chunk"], "AAEC", "{mode:?}");
            assert_eq!(value["data"]["iv"], "SVY=", "{mode:?}");
            match mode {
                Mode::ChunkIndexDigits => assert!(text.contains(&huge_number())),
                Mode::LongKeyEscape => {
                    assert_eq!(value["data"]["index_of_this_chunk_xy"], 0);
                }
                _ => assert_eq!(value["data"]["hash"].as_str().unwrap().len(), 101),
            }
            assert!(cfms_rewrite(mode, CHUNK, &mut done).is_none(), "only once");
        }
    }

    #[test]
    fn huge_ready_rewrites_only_the_ready() {
        let mut done = false;
        assert!(cfms_rewrite(Mode::HugeReady, CHUNK, &mut done).is_none());
        let frame = cfms_rewrite(Mode::HugeReady, "ready 65536", &mut done).unwrap();
        assert_eq!(&frame[2..], b"ready 4294967295");
    }

    #[test]
    fn the_signed_fnos_request_is_found_after_its_signature() {
        let (req, reqid) = fnos_request(r#"c2lnbmF0dXJl{"req":"file.ls","reqid":"r1"}"#).unwrap();
        assert_eq!(req, "file.ls");
        assert_eq!(reqid, "r1");
    }

    #[test]
    fn the_length_headers_say_what_the_mode_names() {
        let l62 = after_upgrade(Mode::Length62).unwrap();
        assert_eq!(l62[1], 127);
        assert_eq!(u64::from_be_bytes(l62[2..10].try_into().unwrap()), 1 << 62);
        let l63 = after_upgrade(Mode::Length63).unwrap();
        assert_eq!(l63[2], 0x80);
        let masked = after_upgrade(Mode::MaskedFrame).unwrap();
        assert_ne!(masked[1] & 0x80, 0);
    }
}
