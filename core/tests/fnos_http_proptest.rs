//! Robustness of fnOS's HTTP side: whatever the server answers, the
//! access-code reader and the download-URL check answer a value or a named
//! refusal, never a panic; what the writers produce is one well-formed
//! request head whatever text goes in, or a named error.

use naslink_core::fnos::http::{
    self, AccessRefused, DownloadSize, HeadError, Multipart, Overwrite, UploadHead, UrlRefused,
};
use naslink_core::ws::Url;
use proptest::prelude::*;

/// Response-head-ish bytes: status lines, cookies and line ends mixed with
/// random bytes, so the parser meets complete heads as well as garbage.
fn headish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        Just(b"HTTP/1.1 401 Unauthorized\r\n".to_vec()),
        Just(b"Set-Cookie: ".to_vec()),
        Just(b"ac=".to_vec()),
        Just(b"; Path=/".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b":".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(atoms, 0..24).prop_map(|parts| parts.concat())
}

/// Parse a head as it arrives, `cuts` saying where the reads end: every
/// call answers, a complete answer stays the same as more bytes come, and
/// the last call answers the whole input.
fn read_in_pieces(bytes: &[u8], mut cuts: Vec<usize>) {
    cuts.sort_unstable();
    let mut settled: Option<Result<Option<String>, AccessRefused>> = None;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        let prefix = &bytes[..cut.min(bytes.len())];
        let answer = http::read_access_cookie(prefix).map(|c| c.map(|c| c.as_str().to_owned()));
        if let Some(Ok(Some(cookie))) = &settled {
            // A complete head does not change when body bytes follow.
            assert_eq!(
                answer.as_ref().ok().cloned().flatten().as_ref(),
                Some(cookie)
            );
        }
        if let Ok(Some(cookie)) = &answer {
            assert!(!cookie.is_empty() && !cookie.contains(['\r', '\n', ';']));
        }
        if !matches!(answer, Ok(None)) {
            settled.get_or_insert(answer);
        }
    }
}

fn request_is_well_formed(bytes: &[u8]) {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut request = httparse::Request::new(&mut headers);
    let parsed = request.parse(bytes).expect("a well-formed head");
    assert_eq!(parsed, httparse::Status::Complete(bytes.len()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn access_answers_split_anywhere_never_panic(
        bytes in headish(),
        cuts in proptest::collection::vec(0usize..512, 0..8),
    ) {
        read_in_pieces(&bytes, cuts);
    }

    #[test]
    fn random_access_answers_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(0usize..512, 0..8),
    ) {
        read_in_pieces(&bytes, cuts);
    }

    /// Any location: refused, or a URL on the WebSocket's host whose
    /// request head is well formed.
    #[test]
    fn download_locations_stay_home_or_are_refused(location in "\\PC{0,40}|https?://[a-z:@\\[\\]0-9]{0,12}[/?]?\\PC{0,12}") {
        let ws = Url::parse("wss://nas:5667/websocket?type=main").unwrap();
        match http::check_download_url(&ws, &location) {
            Ok(url) => {
                let origin = url.origin();
                prop_assert!(origin.host.eq_ignore_ascii_case("nas"));
                prop_assert!(origin.secure);
                prop_assert_eq!(origin.port, 5667);
                let mut out = [0u8; 512];
                let n = url.write_request(Some("ac=1"), &mut out).unwrap();
                request_is_well_formed(&out[..n]);
            }
            Err(UrlRefused::Unusable) => {}
            Err(UrlRefused::Origin { url, .. }) => {
                prop_assert!(
                    !url.host.eq_ignore_ascii_case("nas") || !url.secure || url.port != 5667
                );
            }
        }
    }

    /// Any token, cookie, path or name: a head httparse reads whole, or
    /// `InvalidHeader`; a short buffer names the exact size.
    #[test]
    fn upload_heads_are_well_formed_or_refused(
        folder in "\\PC{1,16}",
        name in "\\PC{1,16}",
        token in "\\PC{0,16}",
        cookie in proptest::option::of("\\PC{0,16}"),
        mtime in any::<u64>(),
        size in any::<u64>(),
        random in any::<[u8; 16]>(),
        short in 0usize..64,
    ) {
        let mut path = [0u8; 256];
        let n = http::write_trim_path(&folder, &name, &mut path).unwrap();
        let trim_path = core::str::from_utf8(&path[..n]).unwrap();
        prop_assert!(trim_path.bytes().all(|b| b.is_ascii_graphic()));
        let part = Multipart::new(random, &name);
        let head = UploadHead {
            trim_path,
            token: &token,
            sign: "c2lnbg==",
            overwrite: Overwrite::KeepBoth,
            mtime,
            cookie: cookie.as_deref(),
        };
        let ws = Url::parse("ws://nas:5666/websocket").unwrap();
        let mut out = [0u8; 1024];
        match head.write(&ws, &part, size, &mut out) {
            Ok(n) => {
                request_is_well_formed(&out[..n]);
                prop_assert_eq!(
                    head.write(&ws, &part, size, &mut out[..n.saturating_sub(short + 1)]),
                    Err(HeadError::BufferTooSmall { required: n })
                );
            }
            Err(e) => prop_assert_eq!(e, HeadError::InvalidHeader),
        }
        let mut framing = [0u8; 512];
        let h = part.write_head(&mut framing).unwrap();
        // The file name cannot add a line to the part head.
        prop_assert_eq!(framing[..h].windows(2).filter(|w| w == b"\r\n").count(), 4);
        prop_assert!(framing[..h].ends_with(b"\r\n\r\n"));
        let t = part.write_tail(&mut framing).unwrap();
        prop_assert_eq!(part.body_len(size), (h as u64 + t as u64).saturating_add(size));
    }

    #[test]
    fn download_sizes_never_pass_a_body_off_the_listing(
        listed in proptest::option::of(0u64..10_000),
        pieces in proptest::collection::vec(0usize..4000, 0..8),
    ) {
        let mut check = DownloadSize::new(listed);
        let mut kept = 0u64;
        for piece in pieces {
            match check.received(piece) {
                Ok(total) => kept = total,
                Err(_) => {
                    prop_assert!(listed.is_some_and(|l| kept + piece as u64 > l));
                    break;
                }
            }
        }
        match check.finish() {
            Ok(size) => prop_assert!(listed.is_none_or(|l| l == size)),
            Err(_) => prop_assert!(listed.is_some_and(|l| l != kept)),
        }
    }
}
