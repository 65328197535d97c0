"""The shared CFMS scenario list (tests/scenarios/cfms.json), run through the
sans-I/O `naslink.CfmsConnection` over a blocking socket against
`naslink-sim cfms --plain`."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Callable, Dict, List

import pytest

import naslink
from conftest import ROOT

SCENARIOS = json.loads((ROOT / "tests" / "scenarios" / "cfms.json").read_text())["scenarios"]


def at_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


class Blocking:
    """A CfmsConnection driven over a blocking socket."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.conn = naslink.CfmsConnection(url, user, password)
        self.open()
        self.queue: List[Any] = []
        self.speak_text = False

    def open(self) -> None:
        self.sock = socket.create_connection((self.conn.host, self.conn.port), timeout=10)
        self.sock.settimeout(0.05)

    def run_until(self, wanted: Callable[[Any], bool]) -> Any:
        give_up = time.monotonic() + 20
        while True:
            while self.queue:
                e = self.queue.pop(0)
                if kind(e) == "protocol_text":
                    # A 3-5 server closed the protocol-13 probe.
                    self.speak_text = True
                elif isinstance(e, naslink.Closed) and self.speak_text:
                    self.speak_text = False
                    self.sock.close()
                    self.conn.reconnect()
                    self.open()
                elif wanted(e):
                    return e
            assert time.monotonic() < give_up, "no matching event"
            self.sock.sendall(self.conn.data_to_send())
            self.queue.extend(self.conn.events())
            if self.queue:
                continue
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            assert data, "the connection ended"
            self.conn.receive_data(data)

    def close(self) -> None:
        self.sock.close()


def kind(e: Any) -> str:
    return getattr(e, "kind", type(e).__name__)


def run_step(b: Blocking, step: Dict[str, Any], ids: Dict[str, int]) -> None:
    assert len(step) == 1, f"a step has one key: {step}"
    ((name, arg),) = step.items()
    ends = ("listener_registered", "login_failed")
    if name == "login_ok":
        assert set(arg) == set(), arg
        e = b.run_until(lambda e: kind(e) in ends)
        assert kind(e) == "listener_registered", e
    elif name == "login_failed":
        assert set(arg) == set(), arg
        e = b.run_until(lambda e: kind(e) in ends)
        assert kind(e) == "login_failed", e
    elif name == "request":
        assert set(arg) <= {"action", "data", "as"}, arg
        ids[arg["as"]] = b.conn.request(arg["action"], **arg.get("data", {}))
    elif name == "reply":
        assert set(arg) <= {"of", "code", "paths"}, arg
        seq = ids[arg["of"]]
        e = b.run_until(lambda e: kind(e) in ("reply", "request_failed") and e.seq == seq)
        assert kind(e) == "reply" and e.code == arg["code"], e
        for path, want in arg.get("paths", {}).items():
            assert at_path(e.body, path) == want, (path, e.body)
    else:
        pytest.fail(f"unknown step {name!r}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(emulator, scenario: Dict[str, Any]) -> None:
    known = {"name", "sim", "user", "password", "steps"}
    assert set(scenario) <= known, f"unknown scenario keys {set(scenario) - known}"
    nas = emulator("cfms", "--plain", *scenario["sim"])
    b = Blocking(nas.url, scenario["user"], scenario["password"])
    ids: Dict[str, int] = {}
    try:
        for step in scenario["steps"]:
            run_step(b, step, ids)
    finally:
        b.close()
