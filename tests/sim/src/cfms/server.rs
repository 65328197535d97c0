//! Starting a server in-process and controlling it through a [`Handle`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::config::{Config, DownloadFault};
use super::connection::{self, Io};
use super::mux;
use super::store::{Document, Revision, Store, new_id, sha256_hex};
use super::tls::Identity;

/// Control messages queued per connection before a slow one misses some.
const CONTROL_QUEUE: usize = 64;
/// The largest message the real server accepts from a client.
const MAX_INCOMING: usize = 1 << 20;

/// What every connection is told by the server side.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    /// Lockdown changed: listeners get the binary push.
    Lockdown(bool),
    /// Drop the TCP connection without a close frame.
    Drop,
}

/// Deliberate protocol-13 faults, for clients' deadline tests.
#[derive(Debug, Default, Clone)]
pub(crate) struct Faults13 {
    /// Requests with these actions are read and never answered.
    pub unanswered: BTreeSet<String>,
    /// Requests with these actions are answered only after the delay.
    pub delays: BTreeMap<String, Duration>,
    /// Downloads send this many chunks, then nothing more (stream frozen).
    pub freeze_after: Option<usize>,
    /// The next empty upload answers 500 after `stop` and leaves the
    /// document inactive (the real server's first upload of a month).
    pub empty_upload_bug: bool,
    /// The next authenticated request's nonce is taken as already seen
    /// (1001 `Duplicate nonce detected`), as if someone had sent it first.
    pub nonce_seen_next: bool,
}

/// State shared by the accept loop, the connections and the [`Handle`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub jwt_key: Vec<u8>,
    store: Mutex<Store>,
    fault: Mutex<Option<DownloadFault>>,
    /// Protocol 13 fault knobs.
    pub faults13: Mutex<Faults13>,
    control: broadcast::Sender<Control>,
    /// Signalled by the `shutdown` action: stop accepting and drop everyone.
    pub halt: tokio::sync::Notify,
    /// TCP connections accepted so far.
    accepted: AtomicU64,
    /// Requests refused by the replay protection (1001) so far.
    pub replay_refusals: AtomicU64,
    /// Every client IP is blocked (`cfms-13.md` §1, §3 step 1).
    pub ip_blocked: AtomicBool,
}

impl Shared {
    /// The store, even if a connection task panicked while holding it.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The wall clock in epoch seconds.
    pub fn now(&self) -> f64 {
        self.config.clock.now()
    }

    /// The download fault currently armed.
    pub fn fault(&self) -> Option<DownloadFault> {
        *self.fault.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switch lockdown and tell the listeners. Turning it on cancels tasks
    /// (protocol 13: ends every task that has not ended yet).
    pub fn set_lockdown(&self, on: bool) {
        {
            let now = self.now();
            let mut store = self.store();
            store.lockdown = on;
            if on && self.config.protocol_version >= 13 {
                store
                    .tasks
                    .values_mut()
                    .filter(|t| t.end_time > now)
                    .for_each(|t| t.end_time = now);
            } else if on {
                store.cancel_tasks();
            }
        }
        // No receivers just means no connections.
        let _ = self.control.send(Control::Lockdown(on));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Control> {
        self.control.subscribe()
    }
}

/// The CFMS emulator. See the [module documentation](super).
#[derive(Debug)]
pub struct Server;

/// A running server. Dropping it leaves the server running until the tokio
/// runtime ends; call [`Handle::shutdown`] to stop it.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    identity: Option<Identity>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Bind `config.listen` (making a certificate first when `config.tls`)
    /// and start serving on the current tokio runtime.
    pub async fn start(config: Config) -> anyhow::Result<Handle> {
        let identity = if config.tls {
            let host = config.host.clone();
            Some(tokio::task::spawn_blocking(move || Identity::generate(&host)).await??)
        } else {
            None
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let jwt_key = config.jwt_secret.clone().unwrap_or_else(|| {
            let mut key = vec![0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            key
        });
        let store = Store::new(&config, config.clock.now());
        let (control, _) = broadcast::channel(CONTROL_QUEUE);
        let shared = Arc::new(Shared {
            config,
            jwt_key,
            store: Mutex::new(store),
            fault: Mutex::new(None),
            faults13: Mutex::new(Faults13::default()),
            control,
            halt: tokio::sync::Notify::new(),
            accepted: AtomicU64::new(0),
            replay_refusals: AtomicU64::new(0),
            ip_blocked: AtomicBool::new(false),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let acceptor = identity.as_ref().map(|i| i.acceptor.clone());
        let task = tokio::spawn(accept_loop(listener, shared.clone(), acceptor, stop_rx));
        Ok(Handle {
            addr,
            shared,
            identity,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    // Dropping the set at the end aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.accepted.fetch_add(1, Ordering::Relaxed);
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let io: Io = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => Box::new(tls),
                            Err(_) => return,
                        },
                        None => Box::new(stream),
                    };
                    let ws_config = WebSocketConfig::default()
                        .max_message_size(Some(MAX_INCOMING))
                        .max_frame_size(Some(MAX_INCOMING));
                    // A blocked IP gets HTTP 403 instead of the upgrade.
                    let blocked = shared.ip_blocked.load(Ordering::Relaxed);
                    // The callback's type is tungstenite's.
                    #[allow(clippy::result_large_err)]
                    let check = move |_: &Request, response: Response| {
                        if blocked { Err(ip_blocked_response()) } else { Ok(response) }
                    };
                    let Ok(ws) = tokio_tungstenite::accept_hdr_async_with_config(
                        io,
                        check,
                        Some(ws_config),
                    )
                    .await
                    else {
                        return;
                    };
                    if shared.config.protocol_version >= 13 {
                        mux::serve(ws, shared).await;
                    } else {
                        connection::serve(ws, shared).await;
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => return,
            _ = shared.halt.notified() => return,
        }
    }
}

/// The real server's answer to a blocked IP's upgrade
/// (`util/entrance.py: global_process_request`).
fn ip_blocked_response() -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(
        "IP temporarily blocked. Too many failed attempts.".into(),
    ));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response
}

impl Handle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/`, or `wss://HOST:PORT/` with TLS (the certificate names
    /// the configured host).
    pub fn url(&self) -> String {
        match self.identity {
            Some(_) => format!("wss://{}:{}/", self.shared.config.host, self.addr.port()),
            None => format!("ws://{}/", self.addr),
        }
    }

    /// TCP connections accepted so far (a client that probes for the
    /// protocol opens one more than a client that knows it).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The certificate (DER), when serving TLS.
    pub fn cert_der(&self) -> Option<&[u8]> {
        self.identity.as_ref().map(|i| i.cert_der.as_slice())
    }

    /// The certificate (PEM), when serving TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.identity.as_ref().map(|i| i.cert_pem.as_str())
    }

    /// SHA-256 of the certificate's DER (the pin a client may be given).
    pub fn cert_sha256(&self) -> Option<[u8; 32]> {
        self.identity.as_ref().map(|i| i.cert_sha256)
    }

    /// Is lockdown on?
    pub fn lockdown(&self) -> bool {
        self.shared.store().lockdown
    }

    /// Switch lockdown as the `lockdown` action would (listeners get the push).
    pub fn set_lockdown(&self, on: bool) {
        self.shared.set_lockdown(on);
    }

    /// Arm (or with `None` disarm) a fault in every following download.
    pub fn set_download_fault(&self, fault: Option<DownloadFault>) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// Store a document with content `data` in folder `folder` (`None`: the
    /// root) and answer its id.
    pub fn put_document(&self, folder: Option<&str>, title: &str, data: Vec<u8>) -> String {
        let now = self.shared.now();
        let id = new_id();
        let sha256 = Some(sha256_hex(&data));
        self.shared.store().documents.insert(
            id.clone(),
            Document {
                title: title.to_owned(),
                folder: folder.map(str::to_owned),
                created_time: now,
                last_modified: now,
                revision: Some(Revision {
                    data: Arc::new(data),
                    sha256,
                }),
            },
        );
        id
    }

    /// The current content of document `id`, if it has one.
    pub fn document_content(&self, id: &str) -> Option<Vec<u8>> {
        let store = self.shared.store();
        let revision = store.documents.get(id)?.revision.as_ref()?;
        Some(revision.data.as_ref().clone())
    }

    /// Ids of the documents titled `title` (any folder).
    pub fn find_documents(&self, title: &str) -> Vec<String> {
        let store = self.shared.store();
        store
            .documents
            .iter()
            .filter(|(_, d)| d.title == title)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Protocol 13: read requests with `action` but never answer them
    /// (`on = false` answers them again).
    pub fn set_unanswered(&self, action: &str, on: bool) {
        let mut faults = self.faults13();
        if on {
            faults.unanswered.insert(action.to_owned());
        } else {
            faults.unanswered.remove(action);
        }
    }

    /// Protocol 13: answer requests with `action` only after `delay` (`None`
    /// removes it), so answers come back out of order.
    pub fn set_action_delay(&self, action: &str, delay: Option<Duration>) {
        let mut faults = self.faults13();
        match delay {
            Some(d) => faults.delays.insert(action.to_owned(), d),
            None => faults.delays.remove(action),
        };
    }

    /// Protocol 13: downloads send `after_chunks` chunks and then freeze (no
    /// more frames on the stream, the connection stays open); `None` disarms.
    pub fn set_download_freeze(&self, after_chunks: Option<usize>) {
        self.faults13().freeze_after = after_chunks;
    }

    /// Protocol 13: the next empty upload gets `stop` and then a 500, and
    /// its document stays inactive, as the real server's first upload into
    /// a storage month that does not exist yet (`cfms-13.md` §9).
    pub fn arm_empty_upload_bug(&self) {
        self.faults13().empty_upload_bug = true;
    }

    /// Protocol 13: the next authenticated request's nonce is taken as
    /// already seen, so it is refused with 1001 `Duplicate nonce detected:
    /// possible replay attack` (as if an attacker had sent it first).
    pub fn reject_next_nonce(&self) {
        self.faults13().nonce_seen_next = true;
    }

    /// Block every client IP (`on = false` lifts it), as the real server
    /// does for 15 min after 20 failures from one IP: new upgrades get
    /// HTTP 403 `IP temporarily blocked. Too many failed attempts.`; at
    /// protocol 13 a request on an open connection gets 403 without
    /// `data`, then the connection is closed with 1008.
    pub fn set_ip_blocked(&self, on: bool) {
        self.shared.ip_blocked.store(on, Ordering::Relaxed);
    }

    /// Protocol 13: requests refused by the replay protection (1001) so
    /// far, for a stale timestamp or a duplicate nonce.
    pub fn replay_refusals(&self) -> u64 {
        self.shared.replay_refusals.load(Ordering::Relaxed)
    }

    /// Protocol 13: make `username` inactive (login 4003, its tokens 401) or
    /// active again.
    pub fn set_user_active(&self, username: &str, active: bool) {
        let mut store = self.shared.store();
        if active {
            store.disabled.remove(username);
        } else {
            store.disabled.insert(username.to_owned());
        }
    }

    /// Protocol 13: `username`'s password breaks the policy (login 4001
    /// until `set_passwd`).
    pub fn set_password_weak(&self, username: &str, weak: bool) {
        let mut store = self.shared.store();
        if weak {
            store.weak_passwords.insert(username.to_owned());
        } else {
            store.weak_passwords.remove(username);
        }
    }

    /// `username`'s password is expired (protocol 13: login 4002; 3 to 5:
    /// 403) until `set_passwd`.
    pub fn set_password_expired(&self, username: &str, expired: bool) {
        if let Some(user) = self.shared.store().users.get_mut(username) {
            user.password_expired = expired;
        }
    }

    fn faults13(&self) -> MutexGuard<'_, Faults13> {
        self.shared
            .faults13
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Drop every open connection at the TCP level, without a close frame.
    pub fn drop_connections(&self) {
        let _ = self.shared.control.send(Control::Drop);
    }

    /// Stop accepting, drop all connections and wait for the server task.
    pub async fn shutdown(&self) {
        let stop = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
