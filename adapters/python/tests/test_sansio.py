"""The sans-I/O layer driven by a plain blocking socket, no asyncio."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
import time
from typing import Callable, List

import pytest

import naslink


class Blocking:
    """The loop of the core's crate doc, in Python."""

    def __init__(self, url: str, user: str = "admin", password: str = "admin", **kw) -> None:
        self.conn = naslink.Connection(url, user, password, **kw)
        self.sock = socket.create_connection((self.conn.host, self.conn.port), timeout=10)
        self.events: List[object] = []

    def run_until(self, done: Callable[[object], bool], limit: float = 10.0) -> object:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            while (event := self.conn.next_event()) is not None:
                self.events.append(event)
                if done(event):
                    self.sock.sendall(self.conn.data_to_send())
                    return event
            self.sock.sendall(self.conn.data_to_send())
            at = self.conn.next_timeout()
            wait = min(end, at if at is not None else end) - time.monotonic()
            self.sock.settimeout(max(0.001, wait))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                self.conn.handle_timeout()
                continue
            self.conn.receive_data(data)
        raise AssertionError(f"no matching event in {limit} s; got {self.events}")

    def close(self) -> None:
        self.sock.close()


def test_logs_in_and_answers_a_request(fnos):
    b = Blocking(fnos.url)
    assert b.conn.state == "handshaking"
    logged = b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    assert logged.method == "password" and logged.uid == 1000 and logged.admin is True
    assert b.conn.logged_in and b.conn.has_token
    reqid = b.conn.request("appcgi.sysinfo.getHostName")
    reply = b.run_until(lambda e: isinstance(e, naslink.Reply))
    assert reply.reqid == reqid and reply.final and reply.ok and reply.matched
    assert reply.data["hostName"] == "fnos-sim"
    assert b"fnos-sim" in reply.raw
    b.close()


def test_multi_frame_answer_comes_as_several_replies(fnos):
    b = Blocking(fnos.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    reqid = b.conn.request("file.ls")
    b.run_until(lambda e: isinstance(e, naslink.Reply) and e.final)
    frames = [e for e in b.events if isinstance(e, naslink.Reply) and e.reqid == reqid]
    assert len(frames) >= 3
    assert all(not f.final for f in frames[:-1]) and frames[-1].ok
    names = [x["name"] for f in frames[:-1] for x in f.body["files"]]
    assert "Documents" in names
    b.close()


def test_parameters_from_keywords_and_dict(fnos):
    b = Blocking(fnos.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    b.conn.request("appcgi.resmon.gen", {"item": ["cpuBusy"]})
    r = b.run_until(lambda e: isinstance(e, naslink.Reply) and e.final)
    assert "cpuBusy" in r.data["item"]
    b.conn.request("file.ls", path="vol1")
    r = b.run_until(lambda e: isinstance(e, naslink.Reply) and e.final)
    assert not r.ok and r.errno == 8192 and "vol1" in r.error_message
    b.close()


def test_pushes_arrive_as_push_events(fnos):
    b = Blocking(fnos.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    push = b.run_until(lambda e: isinstance(e, naslink.Push))
    assert push.kind == "storageChanged" and push.body["sysNotify"] == "storageChanged"
    b.close()


def test_wrong_password_is_a_login_failed_event(fnos):
    b = Blocking(fnos.url, password="wrong")
    failed = b.run_until(lambda e: isinstance(e, (naslink.LoginFailed, naslink.LoggedIn)))
    assert isinstance(failed, naslink.LoginFailed)
    assert failed.errno == 131072 and "refused" in failed.message
    assert not b.conn.logged_in
    b.close()


def test_request_deadline_passes_through_handle_timeout(emulator):
    sim = emulator("fnos", "--answer-delay-ms", "400")
    b = Blocking(sim.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    reqid = b.conn.request("appcgi.sysinfo.getHostName", timeout=0.1)
    assert b.conn.next_timeout() is not None
    timed_out = b.run_until(lambda e: isinstance(e, naslink.RequestTimedOut))
    assert timed_out.reqid == reqid
    late = b.run_until(lambda e: isinstance(e, naslink.Reply))
    assert late.reqid == reqid and not late.matched
    b.close()


def test_request_before_the_upgrade_is_refused(fnos):
    conn = naslink.Connection(fnos.url, "admin", "admin")
    with pytest.raises(naslink.NotConnectedError):
        conn.request("appcgi.sysinfo.getHostName")


def test_close_handshake_ends_with_closed(fnos):
    b = Blocking(fnos.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    b.conn.close()
    closed = b.run_until(lambda e: isinstance(e, naslink.Closed))
    # The emulator drops the TCP connection on our Close instead of
    # answering it, which the core reports as 1006.
    assert closed.clean or closed.code == 1006
    assert b.conn.state == "closed"
    with pytest.raises(naslink.NotConnectedError):
        b.conn.request("appcgi.sysinfo.getHostName")
    b.close()


def test_reconnect_keeps_the_session_and_logs_in_with_the_token(fnos):
    b = Blocking(fnos.url)
    b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    pending = b.conn.request("appcgi.sysinfo.getHostName")
    b.sock.close()
    b.conn.receive_data(b"")
    events = b.conn.events()
    assert any(isinstance(e, naslink.RequestAborted) and e.reqid == pending for e in events)
    assert isinstance(events[-1], naslink.Closed) and events[-1].code == 1006
    b.conn.reconnect()
    assert b.conn.state == "handshaking"
    b.sock = socket.create_connection((b.conn.host, b.conn.port), timeout=10)
    again = b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    assert again.method == "auth_token"
    b.close()


def test_two_factor_code_completes_the_login(emulator):
    sim = emulator("fnos", "--two-factor-code", "246810")
    b = Blocking(sim.url)
    b.run_until(lambda e: isinstance(e, naslink.TwoFactorRequired))
    b.conn.submit_two_factor_code("000000")
    b.run_until(lambda e: isinstance(e, naslink.TwoFactorRejected))
    b.conn.submit_two_factor_code("246810")
    logged = b.run_until(lambda e: isinstance(e, naslink.LoggedIn))
    assert logged.method == "two_factor"
    b.close()


def test_invalid_url_raises_value_error():
    with pytest.raises(ValueError):
        naslink.Connection("http://nas/", "admin", "admin")


def test_random_bytes_in_random_pieces_never_raise_and_end_the_connection():
    import random

    rng = random.Random(11)
    opened = 0
    for round in range(200):
        conn = naslink.Connection(
            "ws://127.0.0.1:9/websocket?type=main", "admin", "admin", now=0.0
        )
        upgrade = conn.data_to_send(now=0.0)
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000)))
        if round % 2:
            # A valid upgrade answer first, so the frame parser and the
            # session see the random bytes.
            key = re.search(rb"Sec-WebSocket-Key: (\S+)", upgrade).group(1)
            accept = base64.b64encode(
                hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()
            )
            blob = (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n" + blob
            )
        events = []
        while blob:
            cut = rng.randrange(1, len(blob) + 1)
            conn.receive_data(blob[:cut], now=1.0)
            blob = blob[cut:]
            events += conn.events(now=1.0)
            conn.data_to_send(now=1.0)
        conn.receive_data(b"", now=2.0)
        events += conn.events(now=2.0)
        assert isinstance(events[-1], naslink.Closed), events
        assert conn.state == "closed"
        opened += any(isinstance(e, naslink.Connected) for e in events)
    assert opened == 100


def test_feeding_without_taking_events_is_refused_not_buffered_forever():
    conn = naslink.Connection("ws://127.0.0.1:9/websocket?type=main", "a", "b")
    with pytest.raises(naslink.BusyError):
        for _ in range(1000):
            conn.receive_data(b"x" * 65536)
