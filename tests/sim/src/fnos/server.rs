//! Starting a server in-process and controlling it through a [`Handle`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use super::connection::{self, Control};
use super::crypto::ServerKey;
use super::files::{FileError, owner};
use super::http_gate;
use super::state::{Registry, Shared, unix_now};
use super::{Config, Health, Push};

/// Pushes queued per connection before a slow one starts missing them.
const CONTROL_QUEUE: usize = 64;

/// The fnOS emulator. See the [module documentation](super) for what it does.
#[derive(Debug)]
pub struct Server;

/// A running server. Dropping it leaves the server running until the
/// tokio runtime ends; call [`Handle::shutdown`] to stop it.
#[derive(Debug)]
pub struct Handle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    control: broadcast::Sender<Control>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Load or generate the RSA key, bind `config.listen` and start serving
    /// on the current tokio runtime.
    pub async fn start(config: Config) -> anyhow::Result<Handle> {
        let key_source = config.key.clone();
        let key = tokio::task::spawn_blocking(move || ServerKey::load(&key_source)).await??;
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let health = Mutex::new(config.health);
        let shared = Arc::new(Shared {
            health,
            config,
            key,
            started: Instant::now(),
            registry: Mutex::new(Registry::default()),
        });
        let (control, _) = broadcast::channel(CONTROL_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            control.clone(),
            stop_rx,
        ));
        Ok(Handle {
            addr,
            shared,
            control,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    control: broadcast::Sender<Control>,
    mut stop: oneshot::Receiver<()>,
) {
    // Dropping the set at the end aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                let control = control.subscribe();
                connections.spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let Some(stream) = http_gate::admit(stream, &shared).await else { return };
                    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
                    connection::serve(ws, shared, control).await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = &mut stop => return,
        }
    }
}

impl Handle {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://ADDR/websocket?type=main`.
    pub fn url(&self) -> String {
        format!("ws://{}/websocket?type=main", self.addr)
    }

    /// Send `push` to every signed-in connection (and apply its effect on
    /// logins: [`Push::Kicked`] ends them, [`Push::TokenExpired`] revokes
    /// short tokens).
    pub fn push(&self, push: Push) {
        let sign_out = matches!(push, Push::Kicked | Push::TokenExpired);
        {
            let mut reg = self.shared.registry();
            match push {
                Push::Kicked => reg.logins.clear(),
                Push::TokenExpired => reg.logins.values_mut().for_each(|l| l.token = None),
                _ => {}
            }
        }
        // No receivers just means no connections.
        let _ = self.control.send(Control::Push {
            frame: push.frame(),
            sign_out,
        });
    }

    /// The bytes of the regular file at `path` (`vol1/1000/Documents/x.bin`),
    /// or `None` when there is none. A sample file comes back as its
    /// synthetic content ([`synthetic_byte`](super::synthetic_byte)), all
    /// of it: mind the 17 GiB `vol2/{uid}/Backup/laptop-2025-11.tar.zst`.
    pub fn file_content(&self, path: &str) -> Option<Vec<u8>> {
        let uid = self.home_owner(path).ok()?;
        let content = self.shared.registry().tree(uid).content(path).ok()?;
        Some(content.to_vec())
    }

    /// Create or replace the file `path` with `bytes` (modification time:
    /// now), e.g. to seed a download. The parent folder must exist; a
    /// folder is not replaced ([`FileError::IsFolder`]).
    pub fn put_file(&self, path: &str, bytes: Vec<u8>) -> Result<(), FileError> {
        let uid = self.home_owner(path)?;
        let now = unix_now();
        self.shared
            .registry()
            .tree(uid)
            .write(path, bytes, now, now, true)
    }

    /// The uid whose home `path` is in, if an account has that uid.
    fn home_owner(&self, path: &str) -> Result<u32, FileError> {
        let uid = owner(path).ok_or_else(|| FileError::BadPath(path.to_owned()))?;
        if self.shared.config.accounts.iter().any(|a| a.uid == uid) {
            Ok(uid)
        } else {
            Err(FileError::NotFound(path.to_owned()))
        }
    }

    /// The health knobs now.
    pub fn health(&self) -> Health {
        self.shared.health()
    }

    /// Change the health knobs; a change to the pool, a disk or a volume
    /// pushes `storageChanged` to every signed-in connection.
    pub fn set_health(&self, health: Health) {
        let before = {
            let mut now = self.shared.health.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *now, health)
        };
        if before.storage_differs(&health) {
            self.push(Push::StorageChanged);
        }
    }

    /// Change some knobs: `handle.update_health(|h| h.failing_disk = true)`.
    pub fn update_health(&self, change: impl FnOnce(&mut Health)) {
        let mut next = self.health();
        change(&mut next);
        self.set_health(next);
    }

    /// Revoke the tokens of every login that has a long token (a `stay`
    /// login: what a device token carries), as changing the password or
    /// signing the device out is expected to on a NAS: `user.tokenLogin`
    /// and `user.authToken` with them answer errno 135168 from now on.
    /// Connections signed in with them stay open until they reconnect.
    /// Returns how many logins lost their tokens.
    pub fn revoke_long_tokens(&self) -> usize {
        let mut reg = self.shared.registry();
        let mut revoked = 0;
        for login in reg.logins.values_mut() {
            if login.long_token.take().is_some() {
                login.token = None;
                revoked += 1;
            }
        }
        revoked
    }

    /// Drop every open connection at the TCP level, without a close frame.
    pub fn drop_connections(&self) {
        let _ = self.control.send(Control::Drop);
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
