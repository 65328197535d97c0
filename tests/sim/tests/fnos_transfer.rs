//! File transfer: `file.checkUpload` then `POST /upload`, and
//! `file.download` then `GET /multiple-download`, spoken over raw TCP with
//! hand-built multipart bodies and a hand-computed `Trim-Sign`.

mod fnos_support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fnos_support::{Client, Credentials, Handle, start, start_default};
use hmac::{Hmac, Mac};
use naslink_sim::fnos::{Config, Faults, FileError};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Request headers as (name, value), in sending order.
type Headers = Vec<(String, String)>;

const BOUNDARY: &str = "----naslinkFormBoundary7MA4YWxkTrZu0gW";
const DOCUMENTS: &str = "vol1/1000/Documents";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

async fn signed_in(server: &Handle) -> (Client, Credentials) {
    let mut client = Client::connect(&server.url()).await;
    let credentials = client.login("admin", "admin").await;
    (client, credentials)
}

async fn check_upload(client: &mut Client, path: &str, size: u64, overwrite: Option<u64>) -> Value {
    let mut params = json!({"path": path, "size": size});
    if let Some(overwrite) = overwrite {
        params["overwrite"] = json!(overwrite);
    }
    client.call("file.checkUpload", params).await
}

/// base64(HMAC-SHA256(S, text)), the `Trim-Sign` of a `Trim-Path`.
fn trim_sign(secret: &[u8], text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(text.as_bytes());
    B64.encode(mac.finalize().into_bytes())
}

/// A browser-like body: a text field first, then the file part.
fn multipart(filename: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"trim-upload-file\"; \
         filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The `Trim-*` headers of an upload to `trim_path` (sent as given).
fn trim_headers(credentials: &Credentials, trim_path: &str) -> Headers {
    [
        ("Trim-Path", trim_path.to_owned()),
        ("Trim-Sign", trim_sign(&credentials.secret, trim_path)),
        ("Trim-Token", credentials.token.clone()),
        ("Trim-Overwrite", "1".to_owned()),
        (
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn with(mut headers: Headers, name: &str, value: &str) -> Headers {
    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    headers.push((name.to_owned(), value.to_owned()));
    headers
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> Self {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..end]).expect("UTF-8 head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Self {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Status and errno of a refusal.
    fn refusal(&self) -> (u16, u64) {
        let body = self.json();
        assert_eq!(body["result"], "fail", "{body}");
        (self.status, body["errno"].as_u64().expect("errno"))
    }
}

async fn read_response(mut stream: TcpStream) -> Response {
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut raw))
        .await
        .expect("the answer ends in time")
        .expect("readable");
    Response::parse(&raw)
}

fn request_head(
    method: &str,
    target: &str,
    addr: SocketAddr,
    headers: &[(String, String)],
) -> String {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

/// `POST /upload` with `Content-Length`, head and body in one write.
async fn post(addr: SocketAddr, headers: &[(String, String)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = request_head("POST", "/upload", addr, headers);
    let mut request = format!("{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await.expect("write");
    read_response(stream).await
}

/// `POST /upload` with a chunked body, each chunk its own write.
async fn post_chunked(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: &[u8],
    chunk: usize,
) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = request_head("POST", "/upload", addr, headers);
    let head = format!("{head}Transfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    for (i, piece) in body.chunks(chunk).enumerate() {
        let mut framed = format!("{:x}\r\n", piece.len()).into_bytes();
        framed.extend_from_slice(piece);
        framed.extend_from_slice(b"\r\n");
        stream.write_all(&framed).await.expect("write");
        if i % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    stream.write_all(b"0\r\n\r\n").await.expect("write");
    read_response(stream).await
}

async fn get(addr: SocketAddr, target: &str, headers: &[(String, String)]) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = request_head("GET", target, addr, headers);
    stream
        .write_all(format!("{head}\r\n").as_bytes())
        .await
        .expect("write");
    read_response(stream).await
}

/// checkUpload then upload `content` as `name` in Documents; returns the answer.
async fn upload(server: &Handle, name: &str, content: &[u8]) -> Response {
    let (mut client, credentials) = signed_in(server).await;
    let path = format!("{DOCUMENTS}/{name}");
    let check = check_upload(&mut client, &path, content.len() as u64, Some(1)).await;
    assert_eq!(check["uploadName"], name, "{check}");
    post(
        server.addr(),
        &trim_headers(&credentials, &path),
        &multipart(name, content),
    )
    .await
}

async fn listing(client: &mut Client, folder: &str) -> Vec<Value> {
    client
        .call_frames("file.ls", json!({"path": folder}))
        .await
        .iter()
        .flat_map(|f| f["files"].as_array().cloned().unwrap_or_default())
        .collect()
}

async fn download_url(client: &mut Client, files: Value) -> Value {
    client.call("file.download", json!({"files": files})).await
}

// ---- file.checkUpload ----

#[tokio::test]
async fn check_upload_of_a_new_name_answers_that_name() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let answer = check_upload(&mut client, "vol1/1000/Documents/new.bin", 10, Some(0)).await;
    assert_eq!(answer["result"], "succ", "{answer}");
    assert_eq!(answer["uploadName"], "new.bin");
}

#[tokio::test]
async fn check_upload_of_an_existing_name_follows_overwrite() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let path = "vol1/1000/Documents/notes.txt";
    let skip = check_upload(&mut client, path, 10, Some(0)).await;
    assert_eq!(
        (skip["result"].as_str(), skip["errno"].as_u64()),
        (Some("fail"), Some(4102))
    );
    let replace = check_upload(&mut client, path, 10, Some(1)).await;
    assert_eq!(replace["uploadName"], "notes.txt", "{replace}");
    let keep_both = check_upload(&mut client, path, 10, Some(2)).await;
    assert_eq!(keep_both["uploadName"], "notes (1).txt", "{keep_both}");
    let default = check_upload(&mut client, path, 10, None).await;
    assert_eq!(
        default["uploadName"], "notes (1).txt",
        "keep both is the default"
    );
}

#[tokio::test]
async fn check_upload_keep_both_skips_names_already_numbered() {
    let server = start_default().await;
    server
        .put_file("vol1/1000/Documents/notes (1).txt", b"x".to_vec())
        .expect("seeded");
    let (mut client, _) = signed_in(&server).await;
    let answer = check_upload(&mut client, "vol1/1000/Documents/notes.txt", 1, Some(2)).await;
    assert_eq!(answer["uploadName"], "notes (2).txt", "{answer}");
}

#[tokio::test]
async fn check_upload_refuses_a_folder_even_with_overwrite() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let answer = check_upload(&mut client, "vol1/1000/Documents/Projects", 1, Some(1)).await;
    assert_eq!(answer["errno"], 4102, "{answer}");
}

#[tokio::test]
async fn check_upload_into_a_missing_folder_answers_4100() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let answer = check_upload(&mut client, "vol1/1000/Nope/a.bin", 1, Some(2)).await;
    assert_eq!(answer["errno"], 4100, "{answer}");
    let under_a_file =
        check_upload(&mut client, "vol1/1000/Documents/notes.txt/a.bin", 1, None).await;
    assert_eq!(under_a_file["errno"], 4100, "{under_a_file}");
}

#[tokio::test]
async fn check_upload_into_another_home_answers_4352() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let answer = check_upload(&mut client, "vol1/1001/a.bin", 1, None).await;
    assert_eq!(answer["errno"], 4352, "{answer}");
}

#[tokio::test]
async fn check_upload_beyond_the_free_space_answers_4386() {
    let server = start(Config {
        free_space: 1000,
        ..Config::default()
    })
    .await;
    let (mut client, _) = signed_in(&server).await;
    let fits = check_upload(&mut client, "vol1/1000/Documents/a.bin", 1000, None).await;
    assert_eq!(fits["result"], "succ", "{fits}");
    let too_big = check_upload(&mut client, "vol1/1000/Documents/a.bin", 1001, None).await;
    assert_eq!(too_big["errno"], 4386, "{too_big}");
}

#[tokio::test]
async fn check_upload_with_bad_parameters_answers_8192() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    for params in [
        json!({"size": 1}),
        json!({"path": "vol1/1000/Documents/a", "size": "1"}),
        json!({"path": "vol1/1000/Documents/a", "size": 1, "overwrite": 3}),
        json!({"path": "nowhere", "size": 1}),
    ] {
        let answer = client.call("file.checkUpload", params.clone()).await;
        assert_eq!(answer["errno"], 8192, "{params}: {answer}");
    }
}

// ---- POST /upload ----

#[tokio::test]
async fn upload_stores_the_bytes_and_file_ls_shows_size_and_mtime() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let content = pattern(100_003);
    let path = format!("{DOCUMENTS}/fresh.bin");
    let check = check_upload(&mut client, &path, content.len() as u64, Some(0)).await;
    assert_eq!(check["uploadName"], "fresh.bin");
    let headers = with(trim_headers(&credentials, &path), "Trim-Mtim", "1700000000");
    let answer = post(server.addr(), &headers, &multipart("fresh.bin", &content)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.json(), json!({"result": "succ"}));

    assert_eq!(server.file_content(&path), Some(content.clone()));
    let entries = listing(&mut client, DOCUMENTS).await;
    let entry = entries
        .iter()
        .find(|e| e["name"] == "fresh.bin")
        .expect("listed");
    assert_eq!(entry["size"], content.len() as u64);
    assert_eq!(entry["mtim"], 1_700_000_000u64);
}

#[tokio::test]
async fn upload_replaces_an_existing_file_with_overwrite_1() {
    let server = start_default().await;
    let content = b"replaced".to_vec();
    let answer = upload(&server, "notes.txt", &content).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        server.file_content("vol1/1000/Documents/notes.txt"),
        Some(content)
    );
}

#[tokio::test]
async fn upload_under_a_keep_both_name_leaves_the_original() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let original = server
        .file_content("vol1/1000/Documents/budget.xlsx")
        .expect("sample file");
    let check = check_upload(&mut client, "vol1/1000/Documents/budget.xlsx", 4, None).await;
    let name = check["uploadName"].as_str().expect("uploadName");
    assert_eq!(name, "budget (1).xlsx");
    let path = format!("{DOCUMENTS}/{name}");
    let headers = with(trim_headers(&credentials, &path), "Trim-Overwrite", "2");
    let answer = post(server.addr(), &headers, &multipart(name, b"copy")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(server.file_content(&path).as_deref(), Some(&b"copy"[..]));
    assert_eq!(
        server.file_content("vol1/1000/Documents/budget.xlsx"),
        Some(original)
    );
}

#[tokio::test]
async fn trim_path_may_be_percent_encoded_and_is_signed_as_sent() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/报告 1.txt");
    let check = check_upload(&mut client, &path, 3, Some(0)).await;
    assert_eq!(check["uploadName"], "报告 1.txt");
    let encoded = "vol1%2F1000%2FDocuments%2F%E6%8A%A5%E5%91%8A%201.txt";
    let answer = post(
        server.addr(),
        &trim_headers(&credentials, encoded),
        &multipart("x", b"abc"),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(server.file_content(&path).as_deref(), Some(&b"abc"[..]));
}

#[tokio::test]
async fn a_wrong_trim_sign_is_refused_with_403_and_65534() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/signed.bin");
    check_upload(&mut client, &path, 3, Some(0)).await;
    let forged = trim_sign(b"not the secret", &path);
    let headers = with(trim_headers(&credentials, &path), "Trim-Sign", &forged);
    let answer = post(server.addr(), &headers, &multipart("signed.bin", b"abc")).await;
    assert_eq!(answer.refusal(), (403, 65534));
    // Signed over the decoded path while the header carries the encoded one.
    let encoded = "vol1%2F1000%2FDocuments%2Fsigned.bin";
    let headers = with(
        trim_headers(&credentials, encoded),
        "Trim-Sign",
        &trim_sign(&credentials.secret, &path),
    );
    let answer = post(server.addr(), &headers, &multipart("signed.bin", b"abc")).await;
    assert_eq!(answer.refusal(), (403, 65534));
    assert_eq!(server.file_content(&path), None);
}

#[tokio::test]
async fn an_unknown_trim_token_is_refused_with_401_and_135168() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/token.bin");
    check_upload(&mut client, &path, 3, Some(0)).await;
    let headers = with(
        trim_headers(&credentials, &path),
        "Trim-Token",
        "bm90IGEgdG9rZW4=",
    );
    let answer = post(server.addr(), &headers, &multipart("token.bin", b"abc")).await;
    assert_eq!(answer.refusal(), (401, 135168));
    let mut missing = trim_headers(&credentials, &path);
    missing.retain(|(k, _)| k != "Trim-Token");
    let answer = post(server.addr(), &missing, &multipart("token.bin", b"abc")).await;
    assert_eq!(answer.refusal(), (401, 135168));
}

#[tokio::test]
async fn a_body_of_another_size_than_announced_is_refused_with_400() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/short.bin");
    check_upload(&mut client, &path, 10, Some(0)).await;
    for content in [&b"nine byte"[..], b"eleven byte"] {
        let answer = post(
            server.addr(),
            &trim_headers(&credentials, &path),
            &multipart("short.bin", content),
        )
        .await;
        assert_eq!(answer.refusal(), (400, 8192));
    }
    // A Content-Length far beyond the announced size is refused unread.
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let head = request_head(
        "POST",
        "/upload",
        server.addr(),
        &trim_headers(&credentials, &path),
    );
    stream
        .write_all(format!("{head}Content-Length: 999999999\r\n\r\n").as_bytes())
        .await
        .expect("write");
    assert_eq!(read_response(stream).await.refusal(), (400, 8192));
    assert_eq!(server.file_content(&path), None);
}

#[tokio::test]
async fn an_upload_without_a_matching_check_is_refused_with_400() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    check_upload(&mut client, &format!("{DOCUMENTS}/checked.bin"), 3, Some(0)).await;
    let path = format!("{DOCUMENTS}/unchecked.bin");
    let answer = post(
        server.addr(),
        &trim_headers(&credentials, &path),
        &multipart("unchecked.bin", b"abc"),
    )
    .await;
    assert_eq!(answer.refusal(), (400, 8192));
}

#[tokio::test]
async fn a_check_is_used_up_by_its_upload() {
    let server = start_default().await;
    let content = b"once".to_vec();
    assert_eq!(upload(&server, "once.bin", &content).await.status, 200);
    let (_, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/once.bin");
    let again = post(
        server.addr(),
        &trim_headers(&credentials, &path),
        &multipart("once.bin", &content),
    )
    .await;
    assert_eq!(again.refusal(), (400, 8192));
}

#[tokio::test]
async fn a_chunked_body_arriving_in_many_reads_is_accepted() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let content = pattern(300_001);
    let path = format!("{DOCUMENTS}/chunked.bin");
    check_upload(&mut client, &path, content.len() as u64, Some(0)).await;
    let answer = post_chunked(
        server.addr(),
        &trim_headers(&credentials, &path),
        &multipart("chunked.bin", &content),
        4093,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(server.file_content(&path), Some(content));
}

#[tokio::test]
async fn a_64_mib_upload_is_stored_whole() {
    let server = start_default().await;
    let content = pattern(64 << 20);
    let answer = upload(&server, "big.bin", &content).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let stored = server
        .file_content("vol1/1000/Documents/big.bin")
        .expect("stored");
    assert!(stored == content, "64 MiB stored byte for byte");
}

#[tokio::test]
async fn expect_100_continue_gets_its_interim_answer() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/continue.bin");
    check_upload(&mut client, &path, 5, Some(0)).await;
    let body = multipart("continue.bin", b"12345");
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let head = request_head(
        "POST",
        "/upload",
        server.addr(),
        &trim_headers(&credentials, &path),
    );
    let head = format!(
        "{head}Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut got = vec![0; interim.len()];
    stream.read_exact(&mut got).await.expect("interim answer");
    assert_eq!(got, interim);
    stream.write_all(&body).await.expect("write");
    assert_eq!(read_response(stream).await.status, 200);
}

#[tokio::test]
async fn malformed_uploads_answer_400_and_the_server_lives_on() {
    let server = start_default().await;
    let (mut client, credentials) = signed_in(&server).await;
    let path = format!("{DOCUMENTS}/malformed.bin");
    check_upload(&mut client, &path, 3, Some(0)).await;
    let headers = trim_headers(&credentials, &path);
    let good = multipart("malformed.bin", b"abc");
    let cases: Vec<(Headers, Vec<u8>)> = vec![
        (
            with(headers.clone(), "Content-Type", "application/octet-stream"),
            good.clone(),
        ),
        (with(headers.clone(), "Trim-Overwrite", "7"), good.clone()),
        (
            with(headers.clone(), "Trim-Mtim", "yesterday"),
            good.clone(),
        ),
        (headers.clone(), b"no multipart framing at all".to_vec()),
        (headers.clone(), without_closing(&good)),
        (
            with(
                headers.clone(),
                "Content-Type",
                "multipart/form-data; boundary=other",
            ),
            good.clone(),
        ),
    ];
    for (headers, body) in cases {
        let answer = post(server.addr(), &headers, &body).await;
        assert_eq!(answer.refusal(), (400, 8192), "{answer:?}");
    }
    // Broken chunked framing.
    let mut stream = TcpStream::connect(server.addr()).await.expect("connect");
    let head = request_head("POST", "/upload", server.addr(), &headers);
    stream
        .write_all(format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\n").as_bytes())
        .await
        .expect("write");
    assert_eq!(read_response(stream).await.refusal(), (400, 8192));
    // Not a POST.
    let answer = get(server.addr(), "/upload", &headers).await;
    assert_eq!(answer.refusal(), (405, 8192));
    // Still serving: the real upload goes through.
    let answer = post(server.addr(), &headers, &good).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// `body` with its closing boundary line cut off.
fn without_closing(body: &[u8]) -> Vec<u8> {
    let closing = format!("\r\n--{BOUNDARY}--\r\n");
    body[..body.len() - closing.len()].to_vec()
}

// ---- file.download and GET /multiple-download ----

#[tokio::test]
async fn download_of_a_seeded_file_is_byte_for_byte() {
    let server = start_default().await;
    let content = pattern(200_017);
    let path = format!("{DOCUMENTS}/seeded.bin");
    server.put_file(&path, content.clone()).expect("seeded");
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!([path])).await;
    assert_eq!(answer["result"], "succ", "{answer}");
    let url = answer["url"].as_str().expect("url");
    assert!(url.starts_with("/multiple-download?token="), "{url}");
    let response = get(server.addr(), url, &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(response.header("content-length"), Some("200017"));
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"seeded.bin\"")
    );
    assert!(response.body == content, "the bytes put are the bytes got");
}

#[tokio::test]
async fn download_of_a_sample_file_gives_its_synthetic_content() {
    let server = start_default().await;
    let path = "vol1/1000/Documents/Projects/naslink.md";
    let expected = server.file_content(path).expect("sample file");
    assert_eq!(expected.len(), 12_288);
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!([path])).await;
    let response = get(server.addr(), answer["url"].as_str().expect("url"), &[]).await;
    assert!(response.body == expected);
}

#[tokio::test]
async fn a_download_token_is_single_use() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!(["vol1/1000/Music/playlist.m3u"])).await;
    let url = answer["url"].as_str().expect("url");
    assert_eq!(get(server.addr(), url, &[]).await.status, 200);
    assert_eq!(get(server.addr(), url, &[]).await.refusal(), (404, 4100));
    let unknown = get(server.addr(), "/multiple-download?token=nope", &[]).await;
    assert_eq!(unknown.refusal(), (404, 4100));
}

#[tokio::test]
async fn download_refusals_name_the_fault() {
    let server = start_default().await;
    let (mut client, _) = signed_in(&server).await;
    let missing = download_url(&mut client, json!(["vol1/1000/Documents/none.bin"])).await;
    assert_eq!(missing["errno"], 4100, "{missing}");
    let folder = download_url(&mut client, json!(["vol1/1000/Documents"])).await;
    assert_eq!(folder["errno"], 8192, "{folder}");
    let two = download_url(
        &mut client,
        json!([
            "vol1/1000/Documents/notes.txt",
            "vol1/1000/Documents/budget.xlsx"
        ]),
    )
    .await;
    assert_eq!(two["errno"], 8192, "{two}");
    let none = download_url(&mut client, json!([])).await;
    assert_eq!(none["errno"], 8192, "{none}");
    let foreign = download_url(&mut client, json!(["vol1/1001/x"])).await;
    assert_eq!(foreign["errno"], 4352, "{foreign}");
}

#[tokio::test]
async fn a_non_ascii_name_gets_an_rfc_5987_filename() {
    let server = start_default().await;
    let path = format!("{DOCUMENTS}/报告.txt");
    server.put_file(&path, b"x".to_vec()).expect("seeded");
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!([path])).await;
    let response = get(server.addr(), answer["url"].as_str().expect("url"), &[]).await;
    assert_eq!(
        response.header("content-disposition"),
        Some("attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt")
    );
}

#[tokio::test]
async fn a_range_header_is_ignored() {
    let server = start_default().await;
    let path = format!("{DOCUMENTS}/range.bin");
    server.put_file(&path, pattern(1000)).expect("seeded");
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!([path])).await;
    let range = [("Range".to_owned(), "bytes=100-199".to_owned())];
    let response = get(server.addr(), answer["url"].as_str().expect("url"), &range).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, pattern(1000));
}

#[tokio::test]
async fn cut_download_after_ends_the_connection_mid_body() {
    let server = start(Config {
        faults: Faults {
            cut_download_after: Some(100_000),
            ..Faults::default()
        },
        ..Config::default()
    })
    .await;
    let path = format!("{DOCUMENTS}/cut.bin");
    let content = pattern(300_000);
    server.put_file(&path, content.clone()).expect("seeded");
    let (mut client, _) = signed_in(&server).await;
    let answer = download_url(&mut client, json!([path])).await;
    let response = get(server.addr(), answer["url"].as_str().expect("url"), &[]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("300000"));
    assert_eq!(
        response.body,
        content[..100_000],
        "exactly the bytes before the cut"
    );
}

// ---- Handle::put_file ----

#[tokio::test]
async fn put_file_needs_an_existing_parent_and_never_replaces_a_folder() {
    let server = start_default().await;
    assert!(matches!(
        server.put_file("vol1/1000/Nope/a.bin", vec![1]),
        Err(FileError::NotFound(_))
    ));
    assert!(matches!(
        server.put_file("vol1/1000/Documents/Projects", vec![1]),
        Err(FileError::IsFolder(_))
    ));
    assert!(matches!(
        server.put_file("vol1/4242/a.bin", vec![1]),
        Err(FileError::NotFound(_))
    ));
    assert!(matches!(
        server.put_file("elsewhere", vec![1]),
        Err(FileError::BadPath(_))
    ));
    assert_eq!(server.file_content("vol1/1000/Documents"), None);
}
