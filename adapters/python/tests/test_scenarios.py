"""The shared fnOS scenario list (tests/scenarios/fnos.json), run through the
sans-I/O `naslink.Connection` over a blocking socket. The Rust core and the
C ABI run the same file, so a behaviour difference is a failing test."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import naslink
from conftest import ROOT
from test_sansio import Blocking

SCENARIOS = json.loads((ROOT / "tests" / "scenarios" / "fnos.json").read_text())["scenarios"]


def at_path(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def run_step(b: Blocking, step: Dict[str, Any], ids: Dict[str, str]) -> None:
    assert len(step) == 1, f"a step has one key: {step}"
    ((kind, arg),) = step.items()
    if kind == "login_ok":
        e = b.run_until(lambda e: isinstance(e, (naslink.LoggedIn, naslink.LoginFailed)))
        assert isinstance(e, naslink.LoggedIn), e
    elif kind == "login_failed":
        e = b.run_until(lambda e: isinstance(e, (naslink.LoggedIn, naslink.LoginFailed)))
        assert isinstance(e, naslink.LoginFailed), e
        assert e.errno == arg["errno"], e
    elif kind == "request":
        params = arg.get("params")
        ids[arg["as"]] = b.conn.request(arg["name"], params) if params else b.conn.request(arg["name"])
    elif kind == "reply":
        reqid = ids[arg["of"]]
        final = b.run_until(lambda e: isinstance(e, naslink.Reply) and e.reqid == reqid and e.final)
        assert final.ok == arg["ok"], final
        if "errno" in arg:
            assert final.errno == arg["errno"], final
        for path, want in arg.get("paths", {}).items():
            assert at_path(json.loads(final.raw), path) == want, (path, final.raw)
        frames = [e for e in b.events if isinstance(e, naslink.Reply) and e.reqid == reqid]
        assert len(frames) >= arg.get("min_frames", 1), frames
    elif kind == "push":
        e = b.run_until(lambda e: isinstance(e, naslink.Push))
        assert e.kind == arg["kind"], e
    elif kind == "aborted":
        reqid = ids[arg["of"]]
        e = b.run_until(
            lambda e: isinstance(e, (naslink.RequestAborted, naslink.Reply))
            and e.reqid == reqid
            and (isinstance(e, naslink.RequestAborted) or e.final)
        )
        assert isinstance(e, naslink.RequestAborted), e
    else:
        pytest.fail(f"unknown step {kind!r}")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(emulator, scenario: Dict[str, Any]) -> None:
    known = {"name", "sim", "user", "password", "steps"}
    assert set(scenario) <= known, f"unknown scenario keys {set(scenario) - known}"
    sim: List[str] = scenario["sim"]
    nas = emulator("fnos", *sim)
    b = Blocking(nas.url, scenario["user"], scenario["password"])
    ids: Dict[str, str] = {}
    try:
        for step in scenario["steps"]:
            run_step(b, step, ids)
    finally:
        b.close()
