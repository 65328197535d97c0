//! Answers to requests: server_info, login and two-factor, token refresh,
//! and the application's replies.
#![deny(clippy::indexing_slicing)]

use super::*;

impl<'a, const Q: usize> Session<'a, Q> {
    pub(super) fn on_response(&mut self, now: Instant, purpose: Purpose, r: Response<'_>) {
        match purpose {
            Purpose::ServerInfo(seq) => self.on_server_info(seq, r),
            Purpose::Login(_) => self.on_login(now, r),
            Purpose::Refresh(_) => self.on_refresh(now, r),
            Purpose::Listener(seq) => {
                if self.listener_seq == Some(seq) && self.state == State::Registering {
                    self.step(State::Ready);
                }
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                })
            }
            Purpose::App(seq) => {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
                self.check_token_rejected(&r);
            }
            Purpose::Transfer => {}
        }
    }

    pub(super) fn on_server_info(&mut self, seq: Option<Seq>, r: Response<'_>) {
        let info = super::super::ops::ServerInfo::new(&r);
        let version = info.protocol_version();
        if !r.status().is_ok() {
            // The opening sequence cannot go on without the version.
            if self.state == State::ServerInfo {
                self.step(State::Refused);
            }
            if let Some(seq) = seq {
                self.emit(Event::Reply {
                    seq,
                    status: r.status(),
                });
            }
            return;
        }
        match version {
            Some(v) if self.speaks(v) => {
                self.protocol = Protocol::Spoken(v);
                self.on_spoken();
                let lockdown = info.lockdown();
                self.framed_answered(v, lockdown);
                let changed = self.lockdown.is_some_and(|old| old != lockdown);
                self.lockdown = Some(lockdown);
                if seq.is_some() {
                    self.emit(Event::ServerInfo {
                        seq,
                        protocol_version: v,
                        lockdown,
                    });
                } else if changed {
                    self.emit(Event::Lockdown { on: lockdown });
                }
            }
            other => {
                self.protocol = Protocol::Refused(other);
                self.emit(Event::ProtocolUnsupported { version: other });
            }
        }
    }

    pub(super) fn on_login(&mut self, now: Instant, r: Response<'_>) {
        let data = r.data();
        let status = r.status();
        if status == Status::TwoFactorRequired {
            self.auth.awaiting_two_factor = true;
            let totp = data
                .get("method")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.eq_str("totp"));
            let method = if totp {
                TwoFactorMethod::Totp
            } else {
                TwoFactorMethod::Other
            };
            self.on_login_refused(true);
            self.emit(Event::TwoFactorRequired { method });
            return;
        }
        let error = match status {
            Status::Ok => match self.store_token(now, &r) {
                Some(expires_in) => {
                    self.auth.awaiting_two_factor = false;
                    if !self.config.relogin {
                        self.auth.password.clear();
                    }
                    self.after_login();
                    self.emit(Event::LoggedIn { expires_in });
                    return;
                }
                None => LoginError::BadToken,
            },
            Status::Unauthorized if r.message_is("Invalid credentials") => {
                LoginError::InvalidCredentials
            }
            Status::Unauthorized
                if r.message()
                    .is_some_and(|m| m.starts_with("Invalid two-factor")) =>
            {
                LoginError::InvalidTwoFactorCode
            }
            Status::Forbidden
                if r.message()
                    .is_some_and(|m| m.starts_with("Password should be changed")) =>
            {
                LoginError::PasswordExpired
            }
            // Protocol 13 gives the expired password its own code.
            Status::PasswordExpired => LoginError::PasswordExpired,
            Status::Lockdown => LoginError::Lockdown,
            other => LoginError::Rejected(other),
        };
        // A wrong code may be retried with another one: the password stays
        // until the login ends one way or the other.
        self.auth.awaiting_two_factor = error == LoginError::InvalidTwoFactorCode;
        if !self.auth.awaiting_two_factor {
            self.auth.password.clear();
        }
        self.auth.logged_in = false;
        self.on_login_refused(self.auth.awaiting_two_factor);
        self.emit(Event::LoginFailed(error));
    }

    /// Keep the token and schedule its refresh; `None` if unusable.
    pub(super) fn store_token(&mut self, now: Instant, r: &Response<'_>) -> Option<Duration> {
        let data = r.data();
        let token = data.get("token")?.as_str()?;
        let decoded = token.decode_into(self.auth.token.spare()).ok()?.len();
        if decoded == 0 {
            return None;
        }
        self.auth.token.commit(decoded);
        let exp = data.get("exp").and_then(|e| e.as_f64_compact());
        let lifetime = auth::token_lifetime(
            now,
            exp,
            r.timestamp(),
            self.unix_anchor,
            self.config.assumed_token_lifetime,
        );
        self.auth.refresh_at = Some(auth::refresh_instant(
            now,
            lifetime,
            self.config.refresh_at_percent,
        ));
        self.auth.logged_in = true;
        Some(lifetime)
    }

    pub(super) fn on_refresh(&mut self, now: Instant, r: Response<'_>) {
        if r.status().is_ok()
            && let Some(expires_in) = self.store_token(now, &r)
        {
            self.emit(Event::TokenRefreshed { expires_in });
            return;
        }
        // A refresh sent before a request's answer rejected the token is
        // answered after that rejection: the re-login is under way.
        if self.relogging() {
            return;
        }
        // 400 `Invalid or expired token` (or anything else): log in again.
        self.token_rejected();
    }

    /// Whether a re-login after a rejected token is due or awaits its answer.
    pub(super) fn relogging(&self) -> bool {
        self.due.relogin || self.pending.any(|p| matches!(p, Purpose::Login(None)))
    }

    pub(super) fn check_token_rejected(&mut self, r: &Response<'_>) {
        let rejected = matches!(r.status(), Status::Unauthorized | Status::Forbidden)
            && (r.message_is("Invalid user or token") || r.message_is("Authentication required"));
        if rejected && self.auth.logged_in {
            self.token_rejected();
        }
    }

    pub(super) fn token_rejected(&mut self) {
        self.auth.logged_in = false;
        self.auth.refresh_at = None;
        self.auth.token.clear();
        // A refresh that came due would carry the rejected (now empty) token.
        self.due.refresh = false;
        let relogin = self.config.relogin && !self.auth.password.is_empty();
        self.due.relogin = relogin;
        self.emit(Event::TokenRejected { relogin });
    }
}
