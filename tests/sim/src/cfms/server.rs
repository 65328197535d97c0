//! Starting a server in-process and controlling it through a [`Handle`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rand::RngCore;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::config::{Config, DownloadFault};
use super::connection::{self, Io};
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

/// State shared by the accept loop, the connections and the [`Handle`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub jwt_key: Vec<u8>,
    store: Mutex<Store>,
    fault: Mutex<Option<DownloadFault>>,
    control: broadcast::Sender<Control>,
    /// Signalled by the `shutdown` action: stop accepting and drop everyone.
    pub halt: tokio::sync::Notify,
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

    /// Switch lockdown and tell the listeners. Turning it on cancels tasks.
    pub fn set_lockdown(&self, on: bool) {
        {
            let mut store = self.store();
            store.lockdown = on;
            if on {
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
            control,
            halt: tokio::sync::Notify::new(),
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
                    let Ok(ws) = tokio_tungstenite::accept_async_with_config(io, Some(ws_config)).await
                    else {
                        return;
                    };
                    connection::serve(ws, shared).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => return,
            _ = shared.halt.notified() => return,
        }
    }
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
