"""CFMS protocol 13 next to 3-5: the same client scenarios against
`naslink-sim cfms --protocol 3`, `5` and `13`, the protocol-13 probe and its
outcomes (cfms-13.md §11), pins, refused versions, the lockdown event and
transfers byte for byte."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any, Callable, List, Optional

import pytest

import naslink
from naslink import aio

PROTOCOLS = [3, 5, 13]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


def kind(e: Any) -> str:
    return getattr(e, "kind", type(e).__name__)


def sim(emulator, protocol: int, *args: str):
    return emulator("cfms", "--plain", "--protocol", str(protocol), *args)


class Blocking:
    """A CfmsConnection over a blocking socket; `reconnect()` opens a new one."""

    def __init__(self, url: str, **options: Any) -> None:
        self.conn = naslink.CfmsConnection(url, "admin", "admin", **options)
        self.sock: Optional[socket.socket] = None
        self.open()

    def open(self) -> None:
        self.sock = socket.create_connection((self.conn.host, self.conn.port), timeout=10)
        self.sock.settimeout(0.05)

    def reconnect(self) -> None:
        assert self.sock is not None
        self.sock.close()
        self.conn.reconnect()
        self.open()

    def events_until(self, wanted: Callable[[Any], bool]) -> List[Any]:
        """Every event up to and including the first `wanted` one."""
        assert self.sock is not None
        seen: List[Any] = []
        give_up = time.monotonic() + 20
        while True:
            self.sock.sendall(self.conn.data_to_send())
            for e in self.conn.events():
                seen.append(e)
                if wanted(e):
                    return seen
            assert time.monotonic() < give_up, f"no matching event in {seen}"
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.conn.receive_data(data)
            if not data:
                seen += self.conn.events()
                return seen

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


# ----- detection, sans I/O ---------------------------------------------------


@pytest.mark.parametrize("protocol", [3, 5])
def test_a_3_to_5_server_closes_the_probe_and_the_next_connection_speaks_text(
    emulator, protocol
):
    nas = sim(emulator, protocol)
    b = Blocking(nas.url)
    try:
        assert b.conn.wire == "framed" and b.conn.negotiated is None
        first = b.events_until(lambda e: isinstance(e, naslink.Closed))
        kinds = [kind(e) for e in first]
        # The probe (the opening server_info) fails with the connection.
        assert kinds[:2] == ["Connected", "protocol_text"] and kinds[-1] == "Closed", kinds
        assert set(kinds[2:-1]) <= {"request_failed"}, kinds
        assert b.conn.negotiated == "text"
        b.reconnect()
        # Learnt: no probe on the new connection.
        assert b.conn.wire == "text" and b.conn.negotiated == "text"
        second = b.events_until(lambda e: kind(e) == "listener_registered")
        kinds = [kind(e) for e in second]
        assert kinds == ["Connected", "server_info", "logged_in", "listener_registered"]
        assert second[1].protocol_version == protocol == b.conn.protocol_version
        assert b.conn.session_state == "ready"
        # And on every later connection too.
        b.reconnect()
        assert b.conn.wire == "text"
        third = b.events_until(lambda e: kind(e) == "listener_registered")
        assert [kind(e) for e in third][:2] == ["Connected", "server_info"]
    finally:
        b.close()


def test_a_13_server_answers_the_probe_on_the_same_connection(emulator):
    nas = sim(emulator, 13)
    b = Blocking(nas.url)
    try:
        seen = b.events_until(lambda e: kind(e) == "logged_in")
        assert [kind(e) for e in seen] == ["Connected", "server_info", "logged_in"]
        assert seen[1].protocol_version == 13 == b.conn.protocol_version
        assert b.conn.negotiated == "framed" and b.conn.wire == "framed"
        # No listener registration at 13: ready after the login.
        assert b.conn.session_state == "ready"
        seq = b.conn.request("list_directory", folder_id=None)
        [reply] = b.events_until(lambda e: kind(e) == "reply")[-1:]
        assert reply.seq == seq and reply.code == 200
        assert len(reply.body["data"]["documents"]) == 1  # the sample document
        # A reconnect keeps speaking 13, without probing again.
        b.reconnect()
        assert b.conn.wire == "framed" and b.conn.negotiated == "framed"
        again = b.events_until(lambda e: kind(e) == "logged_in")
        assert [kind(e) for e in again] == ["Connected", "server_info", "logged_in"]
    finally:
        b.close()


def test_negotiate_false_speaks_text_without_a_probe(emulator):
    nas = sim(emulator, 3)
    b = Blocking(nas.url, negotiate=False)
    try:
        assert b.conn.wire == "text"
        seen = b.events_until(lambda e: kind(e) == "listener_registered")
        assert [kind(e) for e in seen][:2] == ["Connected", "server_info"]
        assert b.conn.negotiated is None
    finally:
        b.close()


@pytest.mark.parametrize("protocol", [3, 5, 13])
def test_a_pinned_version_skips_the_probe(emulator, protocol):
    nas = sim(emulator, protocol)
    b = Blocking(nas.url, protocol_version=protocol)
    try:
        assert b.conn.wire == ("framed" if protocol == 13 else "text")
        seen = b.events_until(lambda e: kind(e) == "logged_in")
        assert [kind(e) for e in seen] == ["Connected", "server_info", "logged_in"]
        assert b.conn.protocol_version == protocol and b.conn.negotiated is None
    finally:
        b.close()


@pytest.mark.parametrize("version", [0, 2, 6, 9, 10, 12, 14, 100])
def test_pinning_a_version_not_spoken_is_refused_by_name(version):
    with pytest.raises(naslink.UnsupportedProtocolError, match=f"protocol {version}\\b"):
        naslink.CfmsConnection("ws://127.0.0.1:9/", "admin", "admin", protocol_version=version)
    with pytest.raises(aio.UnsupportedProtocolError):
        aio.CfmsClient("ws://127.0.0.1:9/", "admin", "admin", protocol_version=version)


# ----- the asyncio client ----------------------------------------------------


@pytest.mark.parametrize("announced", [6, 12, 14])
def test_a_server_announcing_another_version_is_refused_by_name(emulator, announced):
    # The emulator frames its messages from 13 up; 6 and 12 speak text.
    nas = sim(emulator, announced)

    async def main():
        with pytest.raises(aio.UnsupportedProtocolError, match=f"protocol {announced}\\b"):
            async with aio.connect_cfms(nas.url, "admin", "admin", connect_timeout=10):
                pass

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_login_listing_and_typed_statuses(emulator, protocol):
    nas = sim(emulator, protocol)

    async def main():
        async with aio.connect_cfms(nas.url, "admin", "admin") as client:
            assert client.protocol_version == protocol
            assert client.negotiated == ("framed" if protocol == 13 else "text")
            assert client.server_info["protocol_version"] == protocol
            before = await client.list_directory()
            assert before["folders"] == []
            await client.create_directory("photos")
            listing = await client.list_directory()
            assert [f["name"] for f in listing["folders"]] == ["photos"]
            with pytest.raises(aio.RequestError) as e:
                await client.request("get_document", document_id="nope")
            assert e.value.errno == 404
            with pytest.raises(aio.RequestError) as e:
                await client.create_directory("photos")
            # A name clash: 400 up to 5, 409 at 13.
            assert e.value.errno == (409 if protocol == 13 else 400)
            # Still in step after the failures.
            assert (await client.list_directory())["folders"]
            # Many requests at once are all answered, each to its caller.
            names = [f"d{i}" for i in range(8)]
            await asyncio.gather(*(client.create_directory(n) for n in names))
            listing = await client.list_directory()
            assert sorted(f["name"] for f in listing["folders"]) == sorted(names + ["photos"])

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_wrong_password_raises_login_error(emulator, protocol):
    nas = sim(emulator, protocol)

    async def main():
        with pytest.raises(aio.LoginError):
            async with aio.connect_cfms(nas.url, "admin", "wrong"):
                pass

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lockdown_event(emulator, protocol):
    nas = sim(emulator, protocol)

    async def main():
        async with aio.connect_cfms(nas.url, "admin", "admin") as client:
            events = client.events()
            waiter = asyncio.ensure_future(events.__anext__())
            await asyncio.sleep(0)
            await client.request("lockdown", status=True)
            event = await asyncio.wait_for(waiter, 10)
            assert event.kind == "lockdown" and event.flag is True
            await events.aclose()

    run(main())


@pytest.mark.parametrize("protocol", [3, 13])
def test_the_learnt_protocol_survives_a_server_restart(emulator, protocol):
    first = sim(emulator, protocol)

    async def main():
        async with aio.connect_cfms(first.url, "admin", "admin", backoff=0.05) as client:
            await client.create_directory("before")
            first.stop()
            await asyncio.sleep(0.2)
            from conftest import Emulator

            second = Emulator(
                "cfms",
                ["--plain", "--protocol", str(protocol), "--bad-password-delay-ms", "50"],
            )
            second.start(listen=f"127.0.0.1:{first.port}")
            try:
                assert (await client.list_directory())["folders"] == []
                assert client.protocol_version == protocol
                assert client.negotiated == ("framed" if protocol == 13 else "text")
                # The one reconnect after the probe happened on the first
                # connect only.
                assert client._text_reconnects == (0 if protocol == 13 else 1)
            finally:
                second.stop()

    run(main())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("size", [0, 1, 65537])
def test_upload_and_download_byte_for_byte(emulator, tmp_path, protocol, size):
    # Small chunks: a 65537-byte file crosses several download chunks.
    nas = sim(emulator, protocol, "--chunk-size", "16384")
    content = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    target = tmp_path / "copy.bin"

    async def main():
        async with aio.connect_cfms(nas.url, "admin", "admin") as client:
            doc = await client.upload(source, "source.bin")
            info = await client.request("get_document_info", document_id=doc)
            assert info["size"] == size
            assert await client.download(doc, target) == size
            # Requests work after the transfers.
            await client.list_directory()

    run(main())
    assert target.read_bytes() == content
    # No temporary file is left beside the target.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.bin", "source.bin"]


def test_a_failed_download_at_13_leaves_no_file(emulator, tmp_path):
    nas = sim(emulator, 13)
    target = tmp_path / "x.bin"

    async def main():
        async with aio.connect_cfms(nas.url, "admin", "admin") as client:
            with pytest.raises(aio.RequestError) as e:
                await client.download("missing", target)
            assert e.value.errno == 404

    run(main())
    assert list(tmp_path.iterdir()) == []


def test_a_corrupted_chunk_at_13_fails_by_index_and_leaves_no_file(emulator, tmp_path, monkeypatch):
    nas = sim(emulator, 13, "--chunk-size", "16384")
    content = os.urandom(40000)
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    target = tmp_path / "copy.bin"
    original = aio._Transfer.handle

    def flip_a_bit_in_the_second_chunk(self, event):
        if event.kind == "download_data" and self.received >= 16384 and not hasattr(self, "hit"):
            self.hit = True
            data = bytearray(event.data)
            data[0] ^= 1
            self.sink.write(bytes(data))
            self.received += len(data)
            return
        original(self, event)

    async def main():
        async with aio.connect_cfms(nas.url, "admin", "admin") as client:
            doc = await client.upload(source, "source.bin")
            monkeypatch.setattr(aio._Transfer, "handle", flip_a_bit_in_the_second_chunk)
            with pytest.raises(naslink.Error, match="chunk 1"):
                await client.download(doc, target)

    run(main())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.bin"]
