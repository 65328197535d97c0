"""Fixtures: the repository's emulators (`naslink-sim`), started per test on
ephemeral loopback ports, and a TLS terminator for pinned-TLS tests."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

ROOT = Path(__file__).resolve().parents[3]
SIM = Path(os.environ.get("NASLINK_SIM", ROOT / "target" / "debug" / "naslink-sim"))


class Emulator:
    """One `naslink-sim` process; `url` once it listens."""

    def __init__(self, kind: str, args: List[str]) -> None:
        self.kind = kind
        self.args = args
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""
        self.lines: List[str] = []
        self.fingerprint = ""

    def start(self, listen: str = "127.0.0.1:0") -> "Emulator":
        if not SIM.exists():
            pytest.fail(f"{SIM} is missing: cargo build -p naslink-sim")
        self.proc = subprocess.Popen(
            [str(SIM), self.kind, "--listen", listen, *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"emulator exited: {''.join(self.lines)}")
            self.lines.append(line)
            m = re.match(r"certificate SHA-256: ([0-9a-f]{64})", line)
            if m:
                self.fingerprint = m.group(1)
            m = re.match(r"listening (\S+)", line) or re.search(r" at (wss?://[^,\s]+),", line)
            if m:
                self.url = m.group(1)
                # Keep draining its output so it never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return self
        raise RuntimeError("emulator did not report its address in 30 s")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def address(self) -> str:
        m = re.match(r"wss?://([^/]+)", self.url)
        assert m
        return m.group(1)

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def emulator() -> Iterator:
    """`emulator("fnos", *flags)` starts one; all are stopped after the test."""
    started: List[Emulator] = []

    def start(kind: str, *args: str) -> Emulator:
        extra = {"fnos": ["--fixed-key"], "cfms": ["--bad-password-delay-ms", "50"]}[kind]
        e = Emulator(kind, [*extra, *args]).start()
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


@pytest.fixture
def fnos(emulator) -> Emulator:
    """An fnOS emulator (admin/admin) pushing `storageChanged` every 0.2 s."""
    return emulator("fnos", "--push-every", "0.2", "--entries-per-frame", "1")


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple:
    """A self-signed certificate for 127.0.0.1 (cert, key, sha256 hex)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True
    ).stdout
    import hashlib

    return str(cert), str(key), hashlib.sha256(der).hexdigest()


async def tls_terminator(cert: str, key: str, target_port: int):
    """A TLS server on 127.0.0.1 forwarding to the plain emulator; returns (server, port)."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            w.close()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    return server, server.sockets[0].getsockname()[1]
