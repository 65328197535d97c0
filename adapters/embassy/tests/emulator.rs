//! The drivers against the fnOS and CFMS emulators over real loopback TCP:
//! login, requests, re-authentication after a dropped connection, refused
//! upgrades and logins, a dead heartbeat, CFMS downloads into a store
//! over protocols 3–5 and 13 (a corrupted chunk or a forged tag refused by
//! index, a block too small for a protocol-13 chunk refused with the size
//! it needs), and no heap use while the driver runs.
//!
//! The emulator runs on its own multi-threaded runtime; the driver runs on
//! a current-thread runtime with embassy-time's std driver. A counting
//! global allocator is armed (per thread) while the driver's futures are
//! polled and disarmed inside the tokio socket calls, so the count covers
//! naslink-embassy and naslink-core only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::pin;

use naslink_core::fnos::{self, Config, Event, LoginFailure, LoginMethod, Request, Session};
use naslink_core::random;
use naslink_core::time::Duration;
use naslink_core::ws::{self, Url};
use naslink_embassy::fnos::{Buffers, Connection, Error};
use naslink_sim::fnos::{self as sim, KeySource, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: forwards to the system allocator; the thread-locals are
// const-initialised without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.try_with(Cell::get).unwrap_or(false) {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Poll `f` with allocation counting set to `on`, restoring the previous
/// setting around every poll.
async fn counting<F: Future>(on: bool, f: F) -> F::Output {
    let mut f = pin!(f);
    poll_fn(|cx| {
        let before = ARMED.with(|a| a.replace(on));
        let r = f.as_mut().poll(cx);
        ARMED.with(|a| a.set(before));
        r
    })
    .await
}

fn allocations() -> usize {
    COUNT.with(Cell::get)
}

/// A tokio TCP stream as an embedded-io-async transport.
mod io_support;
use io_support::IoError;

struct Tcp(tokio::net::TcpStream);

impl embedded_io_async::ErrorType for Tcp {
    type Error = IoError;
}

impl embedded_io_async::Read for Tcp {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        counting(false, self.0.read(buf)).await.map_err(|_| IoError)
    }
}

impl embedded_io_async::Write for Tcp {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        counting(false, self.0.write(buf))
            .await
            .map_err(|_| IoError)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        counting(false, self.0.flush()).await.map_err(|_| IoError)
    }
}

struct Emulator {
    runtime: tokio::runtime::Runtime,
    handle: sim::Handle,
    url: String,
}

fn emulator(config: sim::Config) -> Emulator {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime
        .block_on(Server::start(sim::Config {
            key: KeySource::Fixture,
            ..config
        }))
        .unwrap();
    let url = handle.url();
    Emulator {
        runtime,
        handle,
        url,
    }
}

/// Run the client side on this thread's own runtime.
fn client<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            // The embassy-time std driver starts its thread on first use.
            embassy_time::Timer::after_millis(1).await;
            f.await
        })
}

async fn connect(addr: &str) -> Tcp {
    Tcp(tokio::net::TcpStream::connect(addr).await.unwrap())
}

fn rng() -> RefCell<impl naslink_core::random::Entropy> {
    // Deterministic but varied; these tests check plumbing, not secrecy.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    RefCell::new(random::from_fn(move |buf: &mut [u8]| {
        for b in buf {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
    }))
}

type Buf = Buffers<2048, 2200>;

/// What the next event was, owned.
#[derive(Debug, PartialEq)]
enum Seen {
    LoggedIn(LoginMethod),
    LoginFailed(LoginFailure),
    /// A `hostName` reply; `true` if it is the emulator's `fnos-sim`.
    HostNameIsFnosSim(bool),
    Other,
}

fn seen(event: Event<'_>) -> Seen {
    match event {
        Event::LoggedIn { method, .. } => Seen::LoggedIn(method),
        Event::LoginFailed(f) => Seen::LoginFailed(f),
        Event::Reply(reply) => match reply.data().and_then(|d| d.get("hostName")) {
            // Compared in place: the closure runs inside the counted region.
            Some(v) => Seen::HostNameIsFnosSim(v.as_str().is_some_and(|s| s.eq_str("fnos-sim"))),
            None => Seen::Other,
        },
        _ => Seen::Other,
    }
}

#[test]
fn password_login_then_a_request_is_answered_without_heap() {
    let emu = emulator(sim::Config::default());
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut session: Session<'_, 4> = Session::new(Config::new("admin", "admin"));
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        let io = connect(&addr).await;
        let before = allocations();
        let (login, reply) = counting(true, async {
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            let login = conn.next_event(seen).await.unwrap();
            conn.send(&Request::get_host_name()).await.unwrap();
            let reply = conn.next_event(seen).await.unwrap();
            conn.close().await;
            (login, reply)
        })
        .await;
        assert_eq!(allocations() - before, 0, "heap allocations in the driver");
        assert_eq!(login, Seen::LoggedIn(LoginMethod::Password));
        assert_eq!(reply, Seen::HostNameIsFnosSim(true));
    });
    drop(emu.runtime);
}

#[test]
fn a_kicked_session_ends_the_connection_and_refuses_to_reconnect() {
    let emu = emulator(sim::Config::default());
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut session: Session<'_, 4> = Session::new(Config::new("admin", "admin"));
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        {
            let io = connect(&addr).await;
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            assert_eq!(
                conn.next_event(seen).await.unwrap(),
                Seen::LoggedIn(LoginMethod::Password)
            );
            emu.handle.push(sim::Push::Kicked);
            // The push itself reaches the application first...
            let push = conn
                .next_event(|e| matches!(e, Event::Push(fnos::Push::Kicked)))
                .await
                .unwrap();
            assert!(push, "the kicked push was not handed over");
            // ...then the connection ends, naming why.
            let err = conn.next_event(seen).await.unwrap_err();
            assert_eq!(err, Error::Kicked);
        }
        assert!(session.kicked());
        // A reconnect is refused before the transport is used.
        let io = connect(&addr).await;
        let err = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
            .await
            .err();
        assert_eq!(err, Some(Error::Kicked));
    });
    drop(emu.runtime);
}

#[test]
fn after_a_dropped_connection_the_token_logs_in_again() {
    let emu = emulator(sim::Config::default());
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut session: Session<'_, 4> = Session::new(Config::new("admin", "admin"));
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        {
            let io = connect(&addr).await;
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            assert_eq!(
                conn.next_event(seen).await.unwrap(),
                Seen::LoggedIn(LoginMethod::Password)
            );
            emu.handle.drop_connections();
            let err = conn.next_event(seen).await.unwrap_err();
            assert!(
                matches!(err, Error::Closed(ws::Closed::Abnormal) | Error::Io(_)),
                "{err:?}"
            );
        }
        assert_eq!(session.state(), fnos::State::Disconnected);
        let io = connect(&addr).await;
        let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
            .await
            .unwrap();
        assert_eq!(
            conn.next_event(seen).await.unwrap(),
            Seen::LoggedIn(LoginMethod::AuthToken)
        );
    });
    drop(emu.runtime);
}

#[test]
fn an_upgrade_answered_with_a_redirect_is_rejected_with_its_status() {
    let emu = emulator(sim::Config {
        https_redirect: Some(sim::Redirect::default()),
        ..sim::Config::default()
    });
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut session: Session<'_, 4> = Session::new(Config::new("admin", "admin"));
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        let io = connect(&addr).await;
        let err = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
            .await
            .err()
            .unwrap();
        assert_eq!(err, Error::Rejected { status: 301 });
    });
    drop(emu.runtime);
}

#[test]
fn a_wrong_password_is_a_login_failure_event() {
    let emu = emulator(sim::Config::default());
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut session: Session<'_, 4> = Session::new(Config::new("admin", "wrong"));
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        let io = connect(&addr).await;
        let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
            .await
            .unwrap();
        match conn.next_event(seen).await.unwrap() {
            Seen::LoginFailed(LoginFailure::Rejected { method, errno }) => {
                assert_eq!(method, LoginMethod::Password);
                assert!(errno.is_some());
            }
            other => panic!("{other:?}"),
        }
    });
    drop(emu.runtime);
}

#[test]
fn a_server_that_stops_answering_pings_is_declared_dead() {
    let emu = emulator(sim::Config {
        pong: false,
        ..sim::Config::default()
    });
    let url = Url::parse(&emu.url).unwrap();
    let addr = emu.handle.addr().to_string();
    client(async {
        let mut config = Config::new("admin", "admin");
        config.heartbeat.interval = Duration::from_millis(100);
        config.heartbeat.missed_pong_limit = 2;
        let mut session: Session<'_, 4> = Session::new(config);
        let mut rng = rng().into_inner();
        let mut buffers = Buf::new();
        let io = connect(&addr).await;
        let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
            .await
            .unwrap();
        let err = loop {
            match conn.next_event(seen).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::ConnectionDead { missed_pongs: 2.. }),
            "{err:?}"
        );
    });
    drop(emu.runtime);
}

mod cfms {
    use naslink_core::cfms::session::{self, Session};
    use naslink_core::cfms::{
        ConnectionEvent as Event, Credentials, DecryptError, DownloadError, State, ops,
    };
    use naslink_embassy::cfms::download::{DownloadFailure, Downloaded};
    use naslink_embassy::cfms::{Buffers, Connection};
    use naslink_sim::cfms::{self as sim, Server};

    use super::*;

    fn emulator(config: sim::Config) -> (tokio::runtime::Runtime, String, String) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = runtime.block_on(Server::start(config)).unwrap();
        let (url, addr) = (handle.url(), handle.addr().to_string());
        std::mem::forget(handle); // lives as long as the runtime
        (runtime, url, addr)
    }

    /// The emulator's administrator, logged in by the session itself.
    fn admin() -> session::Config {
        session::Config {
            login: Some(Credentials::new("admin", "admin").unwrap()),
            ..session::Config::default()
        }
    }

    /// What the next event was, owned.
    #[derive(Debug, PartialEq)]
    enum Seen {
        ServerInfo {
            protocol_version: u32,
            lockdown: bool,
            /// `server_name` is the emulator's.
            named: bool,
        },
        LoggedIn,
        Reply,
        Other,
    }

    fn seen(event: Event<'_>) -> Seen {
        match event {
            Event::ServerInfo {
                protocol_version,
                lockdown,
                response,
                ..
            } => Seen::ServerInfo {
                protocol_version,
                lockdown,
                // Compared in place: the closure runs inside the counted region.
                named: ops::ServerInfo::new(&response)
                    .server_name()
                    .is_some_and(|s| s.eq_str("CFMS WebSocket Server")),
            },
            Event::LoggedIn { .. } => Seen::LoggedIn,
            Event::Reply { .. } => Seen::Reply,
            _ => Seen::Other,
        }
    }

    #[test]
    fn opening_exchange_then_login_without_heap() {
        let (runtime, url, addr) = emulator(sim::Config::default());
        let url = Url::parse(&url).unwrap();
        client(async {
            let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 1]);
            let mut session: Session<'_, 4> = Session::new(
                admin(),
                session::Buffers {
                    rx: &mut rx,
                    chunk_hashes: &mut hashes,
                },
            );
            let mut rng = rng().into_inner();
            let mut buffers = Buffers::<4096, 1024>::new();
            let io = connect(&addr).await;
            let before = allocations();
            let (info, login, state) = counting(true, async {
                let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                    .await
                    .unwrap();
                let info = conn.next_event(seen).await.unwrap();
                let login = conn.next_event(seen).await.unwrap();
                let state = conn.session().state();
                conn.close().await;
                (info, login, state)
            })
            .await;
            assert_eq!(allocations() - before, 0, "heap allocations in the driver");
            match info {
                Seen::ServerInfo {
                    protocol_version,
                    lockdown,
                    named,
                } => {
                    assert!((3..=5).contains(&protocol_version));
                    assert!(!lockdown);
                    assert!(named);
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(login, Seen::LoggedIn);
            assert_eq!(state, State::Ready);
        });
        drop(runtime);
    }

    /// An in-memory store of fixed capacity, allocated before the download.
    struct MemStore {
        bytes: Vec<u8>,
        at: usize,
    }

    impl MemStore {
        fn new(capacity: usize) -> Self {
            MemStore {
                bytes: vec![0xA5; capacity],
                at: 0,
            }
        }
    }

    impl embedded_io_async::ErrorType for MemStore {
        type Error = IoError;
    }

    impl embedded_io_async::Read for MemStore {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
            let src = self.bytes.get(self.at..).unwrap_or_default();
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            self.at += n;
            Ok(n)
        }
    }

    impl embedded_io_async::Write for MemStore {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
            let dst = self.bytes.get_mut(self.at..).unwrap_or_default();
            let n = dst.len().min(buf.len());
            dst[..n].copy_from_slice(&buf[..n]);
            self.at += n;
            Ok(n)
        }

        async fn flush(&mut self) -> Result<(), IoError> {
            Ok(())
        }
    }

    impl embedded_io_async::Seek for MemStore {
        async fn seek(&mut self, pos: embedded_io_async::SeekFrom) -> Result<u64, IoError> {
            use embedded_io_async::SeekFrom;
            let at = match pos {
                SeekFrom::Start(n) => Some(n),
                SeekFrom::Current(d) => (self.at as u64).checked_add_signed(d),
                SeekFrom::End(d) => (self.bytes.len() as u64).checked_add_signed(d),
            };
            self.at = at.ok_or(IoError)? as usize;
            Ok(self.at as u64)
        }
    }

    /// Plaintext bytes per `file_chunk` on the emulator: chunk messages
    /// (about 4 KB of base64) outgrow the WebSocket's 2 KB receive buffer
    /// and stream in pieces.
    const CHUNK: usize = 3000;

    type FileBuffers = Buffers<2048, 1024>;

    fn file_server() -> (tokio::runtime::Runtime, sim::Handle) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = sim::Config {
            chunk_size: CHUNK,
            ..sim::Config::default()
        };
        let handle = runtime.block_on(Server::start(config)).unwrap();
        (runtime, handle)
    }

    fn content(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// Wait for the session's own login on a fresh connection.
    async fn logged_in<R: naslink_core::random::Entropy, const Q: usize>(
        conn: &mut Connection<'_, '_, Tcp, R, Q>,
    ) {
        assert!(matches!(
            conn.next_event(seen).await.unwrap(),
            Seen::ServerInfo { .. }
        ));
        assert_eq!(conn.next_event(seen).await.unwrap(), Seen::LoggedIn);
        assert_eq!(conn.session().state(), State::Ready);
    }

    type Outcome = Result<Downloaded, DownloadFailure<IoError, IoError>>;

    /// `get_document`, then the download into `store`.
    async fn fetch<R: naslink_core::random::Entropy, const Q: usize>(
        conn: &mut Connection<'_, '_, Tcp, R, Q>,
        document_id: &str,
        store: &mut MemStore,
    ) -> Outcome {
        conn.request(|s, now, buf| s.get_document(now, document_id, buf))
            .await
            .unwrap();
        let mut id = [0u8; 128];
        let task_id = conn
            .next_event(|e| match e {
                Event::Reply { response, .. } => {
                    ops::task_id(&response).and_then(|t| t.decode_into(&mut id).ok().map(str::len))
                }
                _ => None,
            })
            .await
            .unwrap()
            .expect("get_document answered with a task_id");
        let task_id = std::str::from_utf8(&id[..task_id]).unwrap();
        let mut block = [0u8; 512];
        conn.download(task_id, store, &mut block).await
    }

    #[test]
    fn downloads_land_in_the_store_byte_for_byte_without_heap() {
        let (runtime, handle) = file_server();
        let url = handle.url();
        let url = Url::parse(&url).unwrap();
        // Empty, a few bytes, whole chunks, and a short last chunk.
        let files: Vec<(String, Vec<u8>)> = [0, 5, 3 * CHUNK, 3 * CHUNK + 1007]
            .into_iter()
            .map(|len| (handle.put_document(None, "f", content(len)), content(len)))
            .collect();
        let mut stores: Vec<MemStore> = files.iter().map(|_| MemStore::new(16 * 1024)).collect();
        let mut outcomes: [Option<Outcome>; 4] = [None, None, None, None];
        client(async {
            let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 8]);
            let mut session: Session<'_, 4> = Session::new(
                admin(),
                session::Buffers {
                    rx: &mut rx,
                    chunk_hashes: &mut hashes,
                },
            );
            let mut rng = rng().into_inner();
            let mut buffers = FileBuffers::new();
            let io = connect(&handle.addr().to_string()).await;
            let before = allocations();
            counting(true, async {
                let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                    .await
                    .unwrap();
                logged_in(&mut conn).await;
                for ((file, store), outcome) in files.iter().zip(&mut stores).zip(&mut outcomes) {
                    *outcome = Some(fetch(&mut conn, &file.0, store).await);
                }
                conn.close().await;
            })
            .await;
            assert_eq!(allocations() - before, 0, "heap allocations in the driver");
        });
        for (((id, data), store), outcome) in files.iter().zip(&stores).zip(outcomes) {
            let done = outcome.unwrap().unwrap();
            assert_eq!(done.size, data.len() as u64);
            assert_eq!(
                &store.bytes[..data.len()],
                &data[..],
                "{} bytes",
                data.len()
            );
            assert_eq!(
                &store.bytes[..data.len()],
                handle.document_content(id).unwrap()
            );
            assert_eq!(done.sha256, naslink_core::cfms::sha256_of(data));
        }
        std::mem::forget(handle);
        drop(runtime);
    }

    #[test]
    fn a_corrupted_chunk_fails_by_its_index_and_the_connection_goes_on() {
        let (runtime, handle) = file_server();
        let url = handle.url();
        let url = Url::parse(&url).unwrap();
        let data = content(3 * CHUNK + 1007);
        let id = handle.put_document(None, "f", data.clone());
        handle.set_download_fault(Some(sim::DownloadFault::FlipCiphertext { index: 1 }));
        client(async {
            let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 8]);
            let mut session: Session<'_, 4> = Session::new(
                admin(),
                session::Buffers {
                    rx: &mut rx,
                    chunk_hashes: &mut hashes,
                },
            );
            let mut rng = rng().into_inner();
            let mut buffers = FileBuffers::new();
            let io = connect(&handle.addr().to_string()).await;
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            logged_in(&mut conn).await;
            let mut store = MemStore::new(16 * 1024);
            let failure = fetch(&mut conn, &id, &mut store).await.unwrap_err();
            assert_eq!(
                failure,
                DownloadFailure::Decrypt(DecryptError::ChunkHashMismatch { index: 1 })
            );
            assert!(!failure.ends_connection());
            handle.set_download_fault(None);
            let done = fetch(&mut conn, &id, &mut store).await.unwrap();
            assert_eq!(done.size, data.len() as u64);
            assert_eq!(&store.bytes[..data.len()], &data[..]);
        });
        std::mem::forget(handle);
        drop(runtime);
    }

    #[test]
    fn an_unknown_task_is_refused_by_the_server_and_the_connection_goes_on() {
        let (runtime, handle) = file_server();
        let url = handle.url();
        let url = Url::parse(&url).unwrap();
        let data = content(5);
        let id = handle.put_document(None, "f", data.clone());
        client(async {
            let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 8]);
            let mut session: Session<'_, 4> = Session::new(
                admin(),
                session::Buffers {
                    rx: &mut rx,
                    chunk_hashes: &mut hashes,
                },
            );
            let mut rng = rng().into_inner();
            let mut buffers = FileBuffers::new();
            let io = connect(&handle.addr().to_string()).await;
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            logged_in(&mut conn).await;
            let mut store = MemStore::new(64);
            let failure = conn
                .download("no-such-task", &mut store, &mut [0u8; 512])
                .await
                .unwrap_err();
            assert!(
                matches!(failure, DownloadFailure::Transfer(DownloadError::Server(s)) if s.code() == 404),
                "{failure:?}"
            );
            assert!(!failure.ends_connection());
            let done = fetch(&mut conn, &id, &mut store).await.unwrap();
            assert_eq!(&store.bytes[..done.size as usize], &data[..]);
        });
        std::mem::forget(handle);
        drop(runtime);
    }

    #[test]
    fn lockdown_shows_in_the_opening_answer() {
        let (runtime, url, addr) = emulator(sim::Config {
            lockdown: true,
            ..sim::Config::default()
        });
        let url = Url::parse(&url).unwrap();
        client(async {
            let (mut rx, mut hashes) = ([0u8; 4096], [[0u8; 32]; 1]);
            let mut session: Session<'_, 4> = Session::new(
                session::Config::default(),
                session::Buffers {
                    rx: &mut rx,
                    chunk_hashes: &mut hashes,
                },
            );
            let mut rng = rng().into_inner();
            let mut buffers = Buffers::<4096, 1024>::new();
            let io = connect(&addr).await;
            let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                .await
                .unwrap();
            let info = conn.next_event(seen).await.unwrap();
            assert!(
                matches!(info, Seen::ServerInfo { lockdown: true, .. }),
                "{info:?}"
            );
            assert_eq!(conn.session().lockdown(), Some(true));
        });
        drop(runtime);
    }

    /// Protocol 13 (`cfms-13.md` §10): AES-256-GCM per chunk, opened whole
    /// in the caller's block once the key arrived.
    mod p13 {
        use naslink_core::cfms::p13::transfer::TransferError;
        use naslink_embassy::cfms::download::MIN_BLOCK;

        use super::*;

        /// Plaintext bytes per chunk: 64 KiB files end on a chunk boundary,
        /// and every chunk message (about 22 KB of base64) streams through
        /// the WebSocket's 2 KB receive buffer in pieces.
        const CHUNK: usize = 16 * 1024;
        /// Blocks far smaller than a chunk: the two-pass opener reads each
        /// chunk back in pieces of this size.
        const BLOCKS: [usize; 2] = [512, 4096];
        /// The largest file here: 300 KiB, 19 chunks.
        const LARGEST: usize = 300 * 1024;
        /// Seal slots: one per chunk.
        const SLOTS: usize = LARGEST.div_ceil(CHUNK);

        fn file_server() -> (tokio::runtime::Runtime, sim::Handle) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let config = sim::Config {
                protocol_version: 13,
                chunk_size: CHUNK,
                ..sim::Config::default()
            };
            let handle = runtime.block_on(Server::start(config)).unwrap();
            (runtime, handle)
        }

        /// The emulator's administrator, on the framed wire.
        fn admin13() -> session::Config {
            session::Config {
                protocol_version: Some(13),
                ..admin()
            }
        }

        /// `get_document`, then the download into `store` through `block`.
        async fn fetch_with<R: naslink_core::random::Entropy, const Q: usize>(
            conn: &mut Connection<'_, '_, Tcp, R, Q>,
            document_id: &str,
            store: &mut MemStore,
            block: &mut [u8],
        ) -> Outcome {
            conn.request(|s, now, buf| s.get_document(now, document_id, buf))
                .await
                .unwrap();
            let mut id = [0u8; 128];
            let task_id = conn
                .next_event(|e| match e {
                    Event::Reply { response, .. } => ops::task_id(&response)
                        .and_then(|t| t.decode_into(&mut id).ok().map(str::len)),
                    _ => None,
                })
                .await
                .unwrap()
                .expect("get_document answered with a task_id");
            let task_id = std::str::from_utf8(&id[..task_id]).unwrap();
            conn.download(task_id, store, block).await
        }

        #[test]
        fn chunks_are_opened_in_the_store_byte_for_byte_without_heap() {
            let (runtime, handle) = file_server();
            let url = handle.url();
            let url = Url::parse(&url).unwrap();
            // Empty, one byte, four whole chunks, a one-byte fifth, and 19
            // chunks with a short last one.
            let sizes = [0, 1, 65536, 65537, LARGEST];
            let files: Vec<(String, Vec<u8>)> = sizes
                .into_iter()
                .map(|len| (handle.put_document(None, "f", content(len)), content(len)))
                .collect();
            // Every file through every block size.
            let runs: Vec<(&(String, Vec<u8>), usize)> = BLOCKS
                .iter()
                .flat_map(|&b| files.iter().map(move |f| (f, b)))
                .collect();
            let mut stores: Vec<MemStore> = runs.iter().map(|_| MemStore::new(LARGEST)).collect();
            let mut outcomes: Vec<Option<Outcome>> = runs.iter().map(|_| None).collect();
            client(async {
                let (mut rx, mut seals) = ([0u8; 4096], [[0u8; 32]; SLOTS]);
                let mut session: Session<'_, 4> = Session::new(
                    admin13(),
                    session::Buffers {
                        rx: &mut rx,
                        chunk_hashes: &mut seals,
                    },
                );
                let mut rng = rng().into_inner();
                let mut buffers = FileBuffers::new();
                let mut block = vec![0u8; BLOCKS[1]];
                let io = connect(&handle.addr().to_string()).await;
                let before = allocations();
                counting(true, async {
                    let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                        .await
                        .unwrap();
                    logged_in(&mut conn).await;
                    for (((file, b), store), outcome) in
                        runs.iter().zip(&mut stores).zip(&mut outcomes)
                    {
                        let block = &mut block[..*b];
                        *outcome = Some(fetch_with(&mut conn, &file.0, store, block).await);
                    }
                    conn.close().await;
                })
                .await;
                assert_eq!(allocations() - before, 0, "heap allocations in the driver");
            });
            for ((((id, data), b), store), outcome) in runs.iter().zip(&stores).zip(outcomes) {
                let done = outcome.unwrap().unwrap();
                assert_eq!(done.size, data.len() as u64);
                assert_eq!(
                    &store.bytes[..data.len()],
                    &data[..],
                    "{} bytes through a {b}-byte block",
                    data.len()
                );
                assert_eq!(
                    &store.bytes[..data.len()],
                    handle.document_content(id).unwrap()
                );
                assert_eq!(done.sha256, naslink_core::cfms::sha256_of(data));
            }
            std::mem::forget(handle);
            drop(runtime);
        }

        /// Entropy that differs on every call: the emulator remembers the
        /// nonces of signed requests across connections (§3), so each
        /// connection's must be new.
        fn fresh_rng() -> impl naslink_core::random::Entropy {
            static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            let n = CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ n.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            random::from_fn(move |buf: &mut [u8]| {
                for b in buf {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    *b = state as u8;
                }
            })
        }

        /// Log in on a fresh connection and download `id` through `block`
        /// into `stores.0`; unless that ended the connection, clear the
        /// emulator's fault and download it again on the same connection
        /// into `stores.1`.
        fn download_once(
            handle: &sim::Handle,
            id: &str,
            stores: (&mut MemStore, &mut MemStore),
            block: &mut [u8],
        ) -> (Outcome, Option<Outcome>) {
            let url = handle.url();
            let url = Url::parse(&url).unwrap();
            client(async {
                let (mut rx, mut seals) = ([0u8; 4096], [[0u8; 32]; SLOTS]);
                let mut session: Session<'_, 4> = Session::new(
                    admin13(),
                    session::Buffers {
                        rx: &mut rx,
                        chunk_hashes: &mut seals,
                    },
                );
                let mut rng = fresh_rng();
                let mut buffers = FileBuffers::new();
                let io = connect(&handle.addr().to_string()).await;
                let mut conn = Connection::open(io, &url, &mut session, &mut rng, &mut buffers)
                    .await
                    .unwrap();
                logged_in(&mut conn).await;
                let first = fetch_with(&mut conn, id, stores.0, block).await;
                handle.set_download_fault(None);
                let again = match &first {
                    Err(f) if f.ends_connection() => None,
                    _ => Some(fetch_with(&mut conn, id, stores.1, block).await),
                };
                (first, again)
            })
        }

        #[test]
        fn a_forged_tag_fails_by_its_index_before_its_chunk_is_written() {
            let (runtime, handle) = file_server();
            let data = content(3 * CHUNK + 1007);
            let id = handle.put_document(None, "f", data.clone());
            for fault in [
                sim::DownloadFault::FlipHash { index: 2 },
                sim::DownloadFault::FlipCiphertext { index: 2 },
            ] {
                handle.set_download_fault(Some(fault));
                let (mut store, mut next) = (MemStore::new(LARGEST), MemStore::new(LARGEST));
                let stores = (&mut store, &mut next);
                let (first, again) = download_once(&handle, &id, stores, &mut [0u8; BLOCKS[0]]);
                let failure = first.unwrap_err();
                assert_eq!(
                    failure,
                    DownloadFailure::Open(TransferError::ForgedTag { index: 2 }),
                    "{fault:?}"
                );
                assert!(!failure.ends_connection());
                // The chunks before it were opened; no piece of it (nor of
                // the chunk after it) was written back as plaintext: its
                // tag is checked over the whole chunk before pass 2.
                let opened = 2 * CHUNK;
                assert_eq!(&store.bytes[..opened], &data[..opened]);
                let rest = opened..data.len();
                for (stored, plain) in store.bytes[rest.clone()]
                    .chunks(16)
                    .zip(data[rest].chunks(16))
                {
                    assert_ne!(stored, plain, "{fault:?}: plaintext written");
                }
                // The connection goes on, and the next task downloads.
                let done = again.unwrap().unwrap();
                assert_eq!(done.size, data.len() as u64);
                assert_eq!(&next.bytes[..data.len()], &data[..]);
            }
            std::mem::forget(handle);
            drop(runtime);
        }

        #[test]
        fn a_block_far_shorter_than_a_chunk_opens_it() {
            let (runtime, handle) = file_server();
            // Chunks of the full chunk size, and a single chunk shorter
            // than that, through the smallest block, a block that is no
            // multiple of GCM's 16-byte blocks, and one that divides the
            // chunk size.
            for len in [3 * CHUNK, 5000] {
                let id = handle.put_document(None, "f", content(len));
                for block in [MIN_BLOCK, 1000, BLOCKS[0]] {
                    let (mut store, mut again) = (MemStore::new(LARGEST), MemStore::new(LARGEST));
                    let stores = (&mut store, &mut again);
                    let (first, second) =
                        download_once(&handle, &id, stores, &mut vec![0u8; block]);
                    for (outcome, store) in [(first, &store), (second.unwrap(), &again)] {
                        let done = outcome.unwrap();
                        assert_eq!(done.size, len as u64, "{len} bytes, {block}-byte block");
                        assert_eq!(&store.bytes[..len], &content(len)[..]);
                        assert_eq!(done.sha256, naslink_core::cfms::sha256_of(&content(len)));
                    }
                }
            }
            std::mem::forget(handle);
            drop(runtime);
        }
    }
}
