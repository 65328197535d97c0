"""naslink.CfmsConnection and naslink.aio's CFMS client against the CFMS emulator."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import pytest

import naslink
from naslink import aio


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


@pytest.fixture
def cfms(emulator):
    """A plain ws:// CFMS emulator (admin/admin)."""
    return emulator("cfms", "--plain")


def test_sans_io_logs_in_and_lists_over_a_blocking_socket(cfms):
    conn = naslink.CfmsConnection(cfms.url, "admin", "admin")
    sock = socket.create_connection((conn.host, conn.port), timeout=10)
    kinds = []
    seq = None
    try:
        while True:
            sock.sendall(conn.data_to_send())
            for e in conn.events():
                if isinstance(e, naslink.Closed) and "protocol_text" in kinds:
                    # The protocol-3 server closed the protocol-13 probe:
                    # the next connection speaks text.
                    assert conn.negotiated == "text"
                    sock.close()
                    conn.reconnect()
                    sock = socket.create_connection((conn.host, conn.port), timeout=10)
                    kinds = []
                    break
                kinds.append(getattr(e, "kind", type(e).__name__))
                if getattr(e, "kind", "") == "listener_registered":
                    assert conn.session_state == "ready" and conn.protocol_version == 3
                    seq = conn.request("list_directory", folder_id=None)
                if getattr(e, "kind", "") == "reply":
                    assert e.seq == seq and e.code == 200
                    assert e.body["data"]["documents"] == []
                    assert kinds[:4] == ["Connected", "server_info", "logged_in", "listener_registered"]
                    return
            sock.sendall(conn.data_to_send())
            conn.receive_data(sock.recv(65536))
    finally:
        sock.close()


def test_login_listing_and_request_errors(cfms):
    async def main():
        async with aio.connect_cfms(cfms.url, "admin", "admin") as nas:
            assert nas.protocol_version == 3
            assert nas.server_info["server_name"]
            listing = await nas.list_directory()
            assert listing["documents"] == [] and listing["folders"] == []
            await nas.create_directory("photos")
            listing = await nas.list_directory()
            assert [f["name"] for f in listing["folders"]] == ["photos"]
            with pytest.raises(aio.RequestError) as e:
                await nas.request("get_document", document_id="nope")
            assert e.value.errno == 404
            # Still in step after the failure.
            assert (await nas.list_directory())["folders"]

    run(main())


def test_wrong_password_raises_login_error(cfms):
    async def main():
        with pytest.raises(aio.LoginError):
            async with aio.connect_cfms(cfms.url, "admin", "wrong"):
                pass

    run(main())


def test_cancelled_request_keeps_the_connection_in_step(cfms):
    async def main():
        async with aio.connect_cfms(cfms.url, "admin", "admin") as nas:
            task = asyncio.ensure_future(nas.list_directory())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await nas.create_directory("a")
            listing = await nas.list_directory()
            assert [f["name"] for f in listing["folders"]] == ["a"]

    run(main())


def test_upload_download_round_trip_of_a_few_mib(cfms, tmp_path):
    source = tmp_path / "source.bin"
    content = os.urandom(5 * 1024 * 1024 + 123)
    source.write_bytes(content)
    target = tmp_path / "copy.bin"

    async def main():
        async with aio.connect_cfms(cfms.url, "admin", "admin") as nas:
            seen = []
            doc = await nas.upload(source, "source.bin", progress=lambda a, b: seen.append(a))
            assert seen[-1] == len(content)
            listing = await nas.list_directory()
            [entry] = listing["documents"]
            assert entry["id"] == doc and entry["size"] == len(content)
            assert entry["sha256"] == hashlib.sha256(content).hexdigest()
            size = await nas.download(doc, target)
            assert size == len(content)
            # Requests work after the transfers.
            assert len((await nas.list_directory())["documents"]) == 1

    run(main())
    assert target.read_bytes() == content
    # No temporary file is left beside the target.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.bin", "source.bin"]


def test_failed_download_leaves_no_file(cfms, tmp_path):
    target = tmp_path / "x.bin"

    async def main():
        async with aio.connect_cfms(cfms.url, "admin", "admin") as nas:
            with pytest.raises(aio.RequestError):
                await nas.download("missing", target)

    run(main())
    assert list(tmp_path.iterdir()) == []


def test_pinned_tls(emulator, tmp_path):
    sim = emulator("cfms", "--cert-out", str(tmp_path / "cert.pem"))
    assert sim.url.startswith("wss://") and sim.fingerprint

    async def main():
        async with aio.connect_cfms(sim.url, "admin", "admin", sha256=sim.fingerprint) as nas:
            assert (await nas.list_directory())["documents"] == []
        with pytest.raises(aio.ConnectError):
            async with aio.connect_cfms(sim.url, "admin", "admin", sha256="ab" * 32):
                pass
        async with aio.connect_cfms(
            sim.url, "admin", "admin", cafile=str(tmp_path / "cert.pem")
        ) as nas:
            assert (await nas.list_directory())["folders"] == []
        with pytest.raises(aio.ConnectError):
            async with aio.connect_cfms(sim.url, "admin", "admin"):
                pass

    run(main())


def test_reconnects_after_an_emulator_restart(emulator):
    first = emulator("cfms", "--plain")

    async def main():
        async with aio.connect_cfms(first.url, "admin", "admin", backoff=0.05) as nas:
            await nas.create_directory("before")
            first.stop()
            await asyncio.sleep(0.2)
            from conftest import Emulator

            second = Emulator("cfms", ["--plain", "--bad-password-delay-ms", "50"])
            second.start(listen=f"127.0.0.1:{first.port}")
            try:
                # A fresh server: logged in again, and its (empty) tree.
                assert (await nas.list_directory())["folders"] == []
            finally:
                second.stop()

    run(main())


def test_random_bytes_in_random_pieces_never_raise_and_end_the_connection():
    import random

    rng = random.Random(12)
    for _ in range(200):
        conn = naslink.CfmsConnection("ws://127.0.0.1:9/", "admin", "admin", now=0.0)
        conn.data_to_send(now=0.0)
        blob = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000)))
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


def _totp(secret: str) -> str:
    """RFC 6238 (HMAC-SHA-1, 30 s, 6 digits) of a base32 secret, now."""
    import base64
    import hmac
    import struct
    import time

    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time() // 30)), "sha1").digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def test_two_factor_callback_and_protocol_5_round_trip(emulator, tmp_path):
    secret = "JBSWY3DPEHPK3PXP"
    sim = emulator("cfms", "--plain", "--protocol-version", "5", "--totp-secret", secret)
    source = tmp_path / "a.bin"
    content = os.urandom(2 * 1024 * 1024 + 7)
    source.write_bytes(content)

    async def main():
        asked = []

        def code():
            asked.append(1)
            return _totp(secret)

        async with aio.connect_cfms(sim.url, "admin", "admin", two_factor=code) as nas:
            assert asked == [1] and nas.protocol_version == 5
            # Protocol 5 names the new document in create_document's answer.
            doc = await nas.upload(source, "a.bin")
            assert await nas.download(doc, tmp_path / "b.bin") == len(content)
        with pytest.raises(aio.LoginError):
            async with aio.connect_cfms(sim.url, "admin", "admin"):
                pass

    run(main())
    assert (tmp_path / "b.bin").read_bytes() == content


def test_lockdown_changes_arrive_through_events(cfms):
    async def main():
        async with aio.connect_cfms(cfms.url, "admin", "admin") as nas:
            events = nas.events()
            waiter = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0)
            await nas.request("lockdown", status=True)
            event = await asyncio.wait_for(waiter, 10)
            assert event.kind == "lockdown" and event.flag is True
            await events.aclose()

    run(main())
