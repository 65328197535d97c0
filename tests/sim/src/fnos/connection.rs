//! One WebSocket connection: classify each text frame (unsigned, signed,
//! `encrypted` login), check the signature against the right S, and send
//! the answers, pushes and deliberate faults.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::crypto::{EnvelopeKey, signature_matches, split_signed};
use super::handlers::{self, Request, fail, fail_msg, succ};
use super::state::{LoginId, PendingTwoFactor, Shared};
use super::*;

/// What the server tells every connection.
#[derive(Debug, Clone)]
pub enum Control {
    /// Send this push to signed-in connections; sign them out afterwards if `sign_out`.
    Push {
        /// The push frame.
        frame: Value,
        /// Whether the connection forgets its login after the push.
        sign_out: bool,
    },
    /// Drop the TCP connection without a close frame.
    Drop,
}

/// Per-connection protocol state: the session id and the login, if any.
pub struct Session {
    si: String,
    login: Option<LoginId>,
}

fn parse_stay(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().is_some_and(|n| n != 0),
        _ => false,
    }
}

impl Session {
    /// A fresh anonymous session with a new `si` (an 17–18 digit number).
    pub fn new() -> Self {
        let si: u64 = (1u64 << 56) + rand::thread_rng().gen_range(0..1u64 << 40);
        Self {
            si: si.to_string(),
            login: None,
        }
    }

    /// Whether a login is attached (pushes go only to such connections).
    pub fn signed_in(&self) -> bool {
        self.login.is_some()
    }

    /// Forget the login (after `tokenExpired`).
    pub fn sign_out(&mut self) {
        self.login = None;
    }

    /// `si` must be this connection's, as a string.
    fn check_si(&self, request: &Request) -> Result<(), &'static str> {
        match request.get("si") {
            Some(Value::String(si)) if *si == self.si => Ok(()),
            Some(Value::String(_)) => Err("`si` is not this connection's session id"),
            Some(Value::Number(_)) => Err("`si` must be a string, not a number"),
            _ => Err("`si` missing"),
        }
    }

    /// Answer one text frame. Returns the frames to send (possibly none).
    pub fn handle(&mut self, shared: &Shared, text: &str) -> Vec<Value> {
        let (signature, json) = match split_signed(text) {
            Some((sig, json)) => (Some(sig), json),
            None => (None, text),
        };
        let request: Request = match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            _ => {
                return vec![fail_msg(
                    None,
                    ERRNO_BAD_PARAMETER,
                    "frame is not a JSON object",
                )];
            }
        };
        let reqid = request.get("reqid");
        let Some(req) = request.get("req").and_then(Value::as_str) else {
            return vec![fail_msg(reqid, ERRNO_BAD_PARAMETER, "`req` missing")];
        };
        match req {
            "ping" => {
                return if shared.config.pong {
                    vec![json!({"res": "pong"})]
                } else {
                    vec![]
                };
            }
            "util.crypto.getRSAPub" => {
                return vec![succ(
                    reqid,
                    json!({"pub": shared.key.public_pem(), "si": self.si}),
                )];
            }
            "util.getSI" => return vec![succ(reqid, json!({"si": self.si}))],
            "encrypted" => return vec![self.encrypted(shared, &request)],
            "user.authToken" | "user.tokenLogin" => {
                return vec![self.token_login(shared, req, signature, json, &request)];
            }
            _ => {}
        }
        let login = self
            .login
            .and_then(|id| shared.registry().logins.get(&id).cloned());
        let Some(login) = login else {
            self.login = None;
            if req == "appcgi.sysinfo.getHostName" {
                return vec![handlers::host_name(shared, reqid)];
            }
            return vec![fail_msg(reqid, ERRNO_INVALID_CREDENTIAL, "not logged in")];
        };
        let signed = signature.is_some_and(|sig| signature_matches(&login.secret, sig, json));
        if !signed {
            return vec![fail(reqid, ERRNO_BAD_SIGNATURE)];
        }
        if req == "user.logout" {
            if let Some(id) = self.login.take() {
                shared.registry().logins.remove(&id);
            }
            return vec![succ(reqid, json!({}))];
        }
        handlers::dispatch(shared, &login, req, &request)
    }

    /// `user.authToken` (short token) or `user.tokenLogin` (long token),
    /// signed with the S of the login that issued the token.
    fn token_login(
        &mut self,
        shared: &Shared,
        req: &str,
        signature: Option<&str>,
        json: &str,
        request: &Request,
    ) -> Value {
        let reqid = request.get("reqid");
        let Some(token) = request.get("token").and_then(Value::as_str) else {
            return fail_msg(reqid, ERRNO_BAD_PARAMETER, "`token` missing");
        };
        let mut reg = shared.registry();
        let found = if req == "user.authToken" {
            reg.by_token(token)
        } else {
            reg.by_long_token(token)
        };
        let Some(id) = found else {
            return fail(reqid, ERRNO_INVALID_CREDENTIAL);
        };
        let Some(login) = reg.logins.get_mut(&id) else {
            return fail(reqid, ERRNO_INVALID_CREDENTIAL);
        };
        let expired = shared
            .config
            .long_token_lifetime
            .is_some_and(|lifetime| login.issued.elapsed() >= lifetime);
        if req == "user.tokenLogin" && expired {
            login.long_token = None;
            return fail(reqid, ERRNO_INVALID_CREDENTIAL);
        }
        if !signature.is_some_and(|sig| signature_matches(&login.secret, sig, json)) {
            return fail(reqid, ERRNO_BAD_SIGNATURE);
        }
        if let Err(why) = self.check_si(request) {
            return fail_msg(reqid, ERRNO_BAD_PARAMETER, why);
        }
        self.login = Some(id);
        let mut answer = json!({"uid": login.uid, "admin": login.admin, "backId": login.back_id});
        if req == "user.tokenLogin" {
            // A fresh short token; S stays that of the original login.
            let token = super::crypto::random_token(32);
            login.token = Some(token.clone());
            answer["token"] = json!(token);
        }
        succ(reqid, answer)
    }

    /// `{"req":"encrypted",...}`: `user.login` or `user.2fa.loginVerify` inside.
    fn encrypted(&mut self, shared: &Shared, envelope: &Request) -> Value {
        let opened = match shared.key.open(envelope) {
            Ok(opened) => opened,
            Err(e) => return fail_msg(None, ERRNO_BAD_PARAMETER, &e.to_string()),
        };
        let inner = &opened.request;
        let reqid = inner.get("reqid");
        if let Err(why) = self.check_si(inner) {
            return fail_msg(reqid, ERRNO_BAD_PARAMETER, why);
        }
        let text = |name: &str| inner.get(name).and_then(Value::as_str).unwrap_or_default();
        match inner.get("req").and_then(Value::as_str) {
            Some("user.login") => {
                let user = text("user");
                let Some(account) = shared
                    .config
                    .accounts
                    .iter()
                    .find(|a| a.user == user && a.password == text("password"))
                else {
                    return fail(reqid, ERRNO_WRONG_PASSWORD);
                };
                let stay = parse_stay(inner.get("stay"));
                if shared.config.two_factor_code.is_some() {
                    let access_token = super::crypto::random_token(24);
                    let pending = PendingTwoFactor {
                        user: account.user.clone(),
                        stay,
                    };
                    shared
                        .registry()
                        .pending_two_factor
                        .insert(access_token.clone(), pending);
                    return succ(
                        reqid,
                        json!({"accessToken": access_token, "isBindTwofaSecret": true,
                               "isTrustedDevice": false, "isTwofaEnforced": false}),
                    );
                }
                self.complete_login(shared, account, stay, &opened.key, reqid)
            }
            Some("user.2fa.loginVerify") => {
                let pending = shared
                    .registry()
                    .pending_two_factor
                    .get(text("accessToken"))
                    .cloned();
                let Some(pending) = pending else {
                    return fail(reqid, ERRNO_TWO_FACTOR_EXPIRED);
                };
                if shared.config.two_factor_code.as_deref() != Some(text("code")) {
                    return fail(reqid, ERRNO_WRONG_TWO_FACTOR_CODE);
                }
                shared
                    .registry()
                    .pending_two_factor
                    .remove(text("accessToken"));
                let Some(account) = shared
                    .config
                    .accounts
                    .iter()
                    .find(|a| a.user == pending.user)
                else {
                    return fail(reqid, ERRNO_WRONG_PASSWORD);
                };
                let stay = pending.stay || parse_stay(inner.get("stay"));
                self.complete_login(shared, account, stay, &opened.key, reqid)
            }
            _ => fail(reqid, ERRNO_UNKNOWN_METHOD),
        }
    }

    fn complete_login(
        &mut self,
        shared: &Shared,
        account: &Account,
        stay: bool,
        key: &EnvelopeKey,
        reqid: Option<&Value>,
    ) -> Value {
        let mut reg = shared.registry();
        let id = reg.add_login(&account.user, account.uid, account.admin, stay);
        let Some(login) = reg.logins.get(&id) else {
            return fail(reqid, ERRNO_INVALID_CREDENTIAL);
        };
        self.login = Some(id);
        let mut answer = json!({
            "uid": login.uid, "admin": login.admin, "token": login.token,
            "secret": key.seal(&login.secret), "backId": login.back_id,
            "machineId": shared.config.machine_id,
        });
        if let Some(long) = &login.long_token {
            answer["longToken"] = json!(long);
        }
        succ(reqid, answer)
    }
}

/// Frames sent so far and the fault knobs that count them.
struct Sender<S> {
    ws: WebSocketStream<S>,
    sent: u64,
}

/// Why a connection stops.
enum Stop {
    /// The peer closed, or a fault knob says to drop the connection.
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sender<S> {
    async fn send(&mut self, shared: &Shared, frame: &Value) -> Result<(), Stop> {
        let faults = &shared.config.faults;
        if !faults.answer_delay.is_zero() {
            tokio::time::sleep(faults.answer_delay).await;
        }
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .map_err(|_| Stop::Done)?;
        self.sent += 1;
        if faults.garbage_after_frames == Some(self.sent) {
            self.ws
                .send(Message::text("\u{1}this is not JSON}"))
                .await
                .map_err(|_| Stop::Done)?;
        }
        if faults.drop_after_frames.is_some_and(|n| self.sent >= n) {
            return Err(Stop::Done);
        }
        Ok(())
    }
}

/// Serve one upgraded connection until it closes, a fault drops it or the
/// server tells it to.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    ws: WebSocketStream<S>,
    shared: Arc<Shared>,
    mut control: broadcast::Receiver<Control>,
) {
    let mut session = Session::new();
    let mut out = Sender { ws, sent: 0 };
    let period = shared
        .config
        .push_every
        .unwrap_or(std::time::Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        let frames = tokio::select! {
            message = out.ws.next() => match message {
                Some(Ok(Message::Text(text))) => session.handle(&shared, text.as_str()),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            control = control.recv() => match control {
                Ok(Control::Push { frame, sign_out }) if session.signed_in() => {
                    if sign_out {
                        session.sign_out();
                    }
                    vec![frame]
                }
                Ok(Control::Push { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Ok(Control::Drop) | Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = ticker.tick(), if shared.config.push_every.is_some() => {
                if !session.signed_in() {
                    continue;
                }
                vec![Push::StorageChanged.frame()]
            }
        };
        for frame in &frames {
            if out.send(&shared, frame).await.is_err() {
                return;
            }
        }
    }
}
