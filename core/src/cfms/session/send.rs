//! Requests: writing them and queueing what their answers are for.
#![deny(clippy::indexing_slicing)]

use super::*;

impl<'a, const Q: usize> Session<'a, Q> {
    pub(super) fn check_can_send(&self, action: &str) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Broken);
        }
        match self.protocol {
            Protocol::Refused(version) => return Err(Error::ProtocolUnsupported { version }),
            Protocol::Unknown if action != "server_info" => return Err(Error::ServerInfoFirst),
            _ => {}
        }
        if !matches!(self.transfer, Transfer::None) {
            return Err(Error::TransferActive);
        }
        if self.pending.is_full() {
            return Err(Error::Busy);
        }
        Ok(())
    }

    /// Write a request with the session's credentials into `buf` and queue it.
    pub(super) fn send(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        action: &str,
        anonymous: bool,
        purpose: impl FnOnce(Seq) -> Purpose,
        data: impl FnOnce(&mut JsonWriter<'_>),
    ) -> Result<Sent, Error> {
        self.check_can_send(action)?;
        let (len, stream) = self.write_request(now, buf, action, anonymous, data)?;
        let seq = self.next_seq();
        // Cannot fail: check_can_send saw room.
        self.track(purpose(seq), now, stream)?;
        Ok(Sent { seq, len })
    }

    /// `server_info {}`: must be the first request; checks `protocol_version`.
    pub fn server_info(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        self.send(
            now,
            buf,
            "server_info",
            true,
            |s| Purpose::ServerInfo(Some(s)),
            |_| {},
        )
    }

    /// `login {username, password}`. The credentials are kept (fixed
    /// buffers, wiped on drop) for a two-factor answer and, with
    /// [`Config::relogin`], for logging in again when the token is rejected.
    pub fn login(
        &mut self,
        now: Instant,
        username: &str,
        password: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.check_can_send("login")?;
        self.keep_credentials(username, password)?;
        self.auth.awaiting_two_factor = false;
        self.send_login(now, buf, None, true)
    }

    /// Store the credentials a login is sent with, refusing ones longer than
    /// their fixed buffers.
    pub(super) fn keep_credentials(&mut self, username: &str, password: &str) -> Result<(), Error> {
        let too_long = |field| move |max| Error::TooLong { field, max };
        self.auth
            .username
            .set(username)
            .map_err(too_long("username"))?;
        self.auth
            .password
            .set(password)
            .map_err(too_long("password"))
    }

    /// `login {username, password, 2fa_token}` in one step, for an account
    /// known to have two-factor login on.
    pub fn login_with_two_factor(
        &mut self,
        now: Instant,
        username: &str,
        password: &str,
        code: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.check_can_send("login")?;
        self.keep_credentials(username, password)?;
        self.send_login(now, buf, Some(code), true)
    }

    /// `refresh_token {}` now, instead of waiting for the schedule.
    pub fn refresh_token(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        if !self.auth.logged_in {
            return Err(Error::NotLoggedIn);
        }
        self.send(
            now,
            buf,
            "refresh_token",
            false,
            |s| Purpose::Refresh(Some(s)),
            |_| {},
        )
    }

    /// Repeat the login with `2fa_token` (a TOTP or a backup code) after
    /// [`Event::TwoFactorRequired`].
    pub fn submit_two_factor(
        &mut self,
        now: Instant,
        code: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        if !self.auth.awaiting_two_factor {
            return Err(Error::NoTwoFactorPending);
        }
        self.check_can_send("login")?;
        self.send_login(now, buf, Some(code), true)
    }

    pub(super) fn send_login(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        two_factor: Option<&str>,
        by_application: bool,
    ) -> Result<Sent, Error> {
        // Copies: the writer borrows the session mutably.
        let user = self.auth.username.clone();
        let pass = self.auth.password.clone();
        // Never with the envelope's token: a stale one would fail the login.
        let (len, stream) = self.write_request(now, buf, "login", true, |w| {
            w.field_str("username", user.as_str());
            w.field_str("password", pass.as_str());
            if let Some(code) = two_factor {
                w.field_str("2fa_token", code);
            }
        })?;
        let seq = self.next_seq();
        self.track(Purpose::Login(by_application.then_some(seq)), now, stream)?;
        Ok(Sent { seq, len })
    }

    /// `set_passwd {username, old_passwd, new_passwd}` with an empty
    /// envelope username and token: the way out of
    /// [`LoginError::PasswordExpired`].
    pub fn set_passwd(
        &mut self,
        now: Instant,
        username: &str,
        old: &str,
        new: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.send(now, buf, "set_passwd", true, Purpose::App, |w| {
            w.field_str("username", username);
            w.field_str("old_passwd", old);
            w.field_str("new_passwd", new);
        })
    }

    /// `register_listener {}`: lockdown changes then arrive as
    /// [`Event::Lockdown`].
    pub fn register_listener(&mut self, now: Instant, buf: &mut [u8]) -> Result<Sent, Error> {
        let anonymous = !self.auth.logged_in;
        self.send(
            now,
            buf,
            "register_listener",
            anonymous,
            Purpose::Listener,
            |_| {},
        )
    }

    /// Any action with caller-given `data`, a pre-serialised JSON object.
    pub fn request(
        &mut self,
        now: Instant,
        action: &str,
        data: &[u8],
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let v = crate::json::Value::parse(data).map_err(Error::InvalidData)?;
        if v.kind() != crate::json::Kind::Object {
            return Err(Error::InvalidData(JsonError {
                kind: crate::json::JsonErrorKind::UnexpectedByte(
                    data.first().copied().unwrap_or_default(),
                ),
                offset: 0,
            }));
        }
        // An object's raw text starts with `{` and ends with `}`.
        let raw = v.raw();
        let inner = raw.get(1..raw.len() - 1).unwrap_or_default();
        self.send(now, buf, action, false, Purpose::App, |w| {
            w.raw(inner);
        })
    }

    /// An authenticated action whose data the `ops` helpers write.
    pub(crate) fn send_op(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        action: &str,
        data: impl FnOnce(&mut JsonWriter<'_>),
    ) -> Result<Sent, Error> {
        self.check_can_send(action)?;
        if !self.auth.logged_in {
            return Err(Error::NotLoggedIn);
        }
        self.send(now, buf, action, false, Purpose::App, data)
    }

    /// `upload_file {task_id}` and the upload state machine behind it (see
    /// [`upload`]).
    pub fn upload_file(
        &mut self,
        now: Instant,
        task_id: &str,
        source: UploadSource,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let anonymous = !self.auth.logged_in;
        let sent = self.send(
            now,
            buf,
            "upload_file",
            anonymous,
            |_| Purpose::Transfer,
            |w| {
                w.field_str("task_id", task_id);
            },
        )?;
        let max_chunk = match self.protocol {
            Protocol::Spoken(v) if v >= 4 => Some(self.config.upload_frame.max(upload::MIN_FRAME)),
            _ => None,
        };
        self.transfer = Transfer::Upload(Upload::new(sent.seq, source, max_chunk));
        self.transfer_stream = self.last_stream;
        self.upload_head_sent = 0;
        Ok(sent)
    }

    /// Feed file bytes during an upload (after [`Event::UploadReady`]).
    pub fn upload_write(&mut self, now: Instant, data: &[u8]) -> Result<UploadWrite, Error> {
        let Transfer::Upload(up) = &mut self.transfer else {
            return Err(Error::Upload(UploadWriteError::NotSending));
        };
        let w = up.write(data).map_err(Error::Upload)?;
        let limit = if up.phase == Phase::AwaitVerdict {
            self.config.request_timeout
        } else {
            self.config.transfer_timeout
        };
        if let Some(head) = self.pending.front_mut() {
            head.deadline = now + limit;
        }
        self.upload_touch(now, limit);
        if w.message_end {
            self.upload_head_sent = 0;
        }
        self.last_activity = now;
        Ok(w)
    }

    /// `download_file {task_id}` and the download state machine behind it
    /// (see [`download`](crate::cfms::download)). Ciphertext goes to the sink
    /// given to `handle_message*`. On protocol 13 this is
    /// [`download_file_at`](Self::download_file_at) offset 0.
    pub fn download_file(
        &mut self,
        now: Instant,
        task_id: &str,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        self.download_file_at(now, task_id, 0, buf)
    }

    /// `download_file {task_id, offset}`: a protocol-13 download starting
    /// (or resuming, same task id, on any connection) at `offset`, a whole
    /// number of chunks (§10.10). Chunks from `offset / chunk_size` on come
    /// as `DownloadData` ciphertext and one `DownloadChunk` each; their
    /// seals fill [`chunk_hashes`](Self::chunk_hashes) at their index (the
    /// slots below keep what the caller left there: the earlier attempt's
    /// seals). `DownloadFinished` carries the key; each stored chunk is
    /// then opened with [`open_chunk`](crate::cfms::p13::transfer::open_chunk).
    /// On 3–5 only `offset` 0 exists ([`Error::NotOnFramedWire`] otherwise).
    pub fn download_file_at(
        &mut self,
        now: Instant,
        task_id: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<Sent, Error> {
        let framed = self.wire == Wire::Framed;
        if !framed && offset != 0 {
            return Err(Error::NotOnFramedWire);
        }
        let anonymous = !self.auth.logged_in;
        let sent = self.send(
            now,
            buf,
            "download_file",
            anonymous,
            |_| Purpose::Transfer,
            |w| {
                w.field_str("task_id", task_id);
                if framed {
                    w.field_u64("offset", offset);
                }
            },
        )?;
        self.transfer = Transfer::Download(Download::framed(sent.seq, framed.then_some(offset)));
        self.transfer_stream = self.last_stream;
        // The hash storage is about to be overwritten.
        self.last_download_chunks = 0;
        Ok(sent)
    }

    /// Write the next message the session owes the server into `buf`.
    pub(super) fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, Error> {
        let text = |len| {
            Ok(Some(Transmit {
                kind: MessageKind::Text,
                len,
            }))
        };
        match &mut self.transfer {
            Transfer::Upload(up) if up.phase == Phase::HeaderDue => {
                if self.wire == Wire::Framed {
                    let (head, body) =
                        buf.split_at_mut_checked(HEADER_LEN)
                            .ok_or(Error::BufferTooSmall {
                                required: HEADER_LEN,
                            })?;
                    let len = up.header(body).map_err(|e| Error::BufferTooSmall {
                        required: e.required + HEADER_LEN,
                    })?;
                    head.copy_from_slice(
                        &FrameHeader {
                            stream: super::super::p13::StreamId(self.transfer_stream),
                            kind: super::super::p13::FrameType::Process,
                        }
                        .to_bytes(),
                    );
                    up.phase = Phase::AwaitReady;
                    return text(len + HEADER_LEN);
                }
                let len = up.header(buf)?;
                up.phase = Phase::AwaitReady;
                return text(len);
            }
            Transfer::Download(d) => {
                if let Some(msg) = d.due_message() {
                    let skip = if self.wire == Wire::Framed {
                        HEADER_LEN
                    } else {
                        0
                    };
                    let len = skip + msg.len();
                    let Some(dst) = buf.get_mut(..len) else {
                        return Err(Error::BufferTooSmall { required: len });
                    };
                    let (head, body) = dst.split_at_mut(skip);
                    body.copy_from_slice(msg);
                    if skip > 0 {
                        head.copy_from_slice(
                            &FrameHeader {
                                stream: super::super::p13::StreamId(self.transfer_stream),
                                kind: super::super::p13::FrameType::Process,
                            }
                            .to_bytes(),
                        );
                    }
                    if let Some(outcome) = d.sent_due(now) {
                        self.finish_download(outcome);
                    }
                    return text(len);
                }
            }
            _ => {}
        }
        if self.broken || self.pending.is_full() {
            return Ok(None);
        }
        if self.due.fence {
            let (len, stream) = self.write_request(now, buf, "server_info", true, |_| {})?;
            self.due.fence = false;
            let _ = self.track(Purpose::ServerInfo(None), now, stream);
            return text(len);
        }
        if !matches!(self.transfer, Transfer::None) || !matches!(self.protocol, Protocol::Spoken(_))
        {
            return Ok(None);
        }
        if self.due.relogin {
            let sent = self.send_login(now, buf, None, false)?;
            self.due.relogin = false;
            return text(sent.len);
        }
        if self.due.refresh {
            let (len, stream) = self.write_request(now, buf, "refresh_token", false, |_| {})?;
            self.due.refresh = false;
            let _ = self.track(Purpose::Refresh(None), now, stream);
            return text(len);
        }
        if self.due.keep_alive {
            let (len, stream) = self.write_request(now, buf, "server_info", true, |_| {})?;
            self.due.keep_alive = false;
            let _ = self.track(Purpose::ServerInfo(None), now, stream);
            return text(len);
        }
        Ok(None)
    }
}
