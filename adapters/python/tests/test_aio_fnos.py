"""naslink.aio against the fnOS emulator."""

from __future__ import annotations

import asyncio

import pytest

import naslink
from naslink import aio
from conftest import Emulator, tls_terminator


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_login_and_requests(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            assert nas.logged_in and nas.logins == ["password"]
            answer = await nas.request("appcgi.sysinfo.getHostName")
            assert answer.data["hostName"] == "fnos-sim"
            assert answer.get("hostName") == "fnos-sim"
            assert await nas.host_name() == "fnos-sim"
            gen = await nas.request("appcgi.resmon.gen", item=["cpuBusy", "memPercent"])
            assert set(gen.data["item"]) == {"cpuBusy", "memPercent"}

    run(main())


def test_panel_helpers_return_dataclasses(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            cpu = await nas.cpu()
            assert isinstance(cpu, aio.Cpu) and cpu.cores > 0 and 0 <= cpu.busy <= 100
            mem = await nas.memory()
            assert mem.total > 0 and 0 < mem.percent < 100
            assert [i.name for i in await nas.network()]
            disks = await nas.disks()
            assert disks and all(d.name and d.temperature and d.temperature > 0 for d in disks)
            space = await nas.space()
            assert space.total == space.used + space.free
            assert await nas.uptime() > 0

    run(main())


def test_multi_frame_answer_is_one_answer(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            answer = await nas.request("file.ls")
            assert len(answer.frames) >= 3 and answer.last.final
            names = {f["name"] for f in answer.merged("files")}
            assert {"Documents", "Music"} <= names
            assert len(await nas.list_dir()) == len(names)

    run(main())


def test_failure_answer_raises_request_error(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            with pytest.raises(aio.RequestError) as e:
                await nas.request("file.ls", path="vol1")
            assert e.value.errno == 8192
            # The connection is still fine.
            assert await nas.host_name() == "fnos-sim"

    run(main())


def test_many_requests_in_flight(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            answers = await asyncio.gather(
                *(nas.request("appcgi.sysinfo.getHostName") for _ in range(300))
            )
            assert {a.data["hostName"] for a in answers} == {"fnos-sim"}

    run(main())


def test_pushes_come_through_events(fnos):
    async def main():
        async with aio.connect_fnos(fnos.url, "admin", "admin") as nas:
            async for event in nas.events():
                if isinstance(event, naslink.Push):
                    assert event.kind == "storageChanged"
                    break

    run(main())


def test_wrong_password_raises_login_error(fnos):
    async def main():
        with pytest.raises(aio.LoginError) as e:
            async with aio.connect_fnos(fnos.url, "admin", "nope"):
                pass
        assert e.value.errno == 131072

    run(main())


def test_refused_connection_raises_connect_error():
    async def main():
        with pytest.raises(aio.ConnectError):
            async with aio.connect_fnos("ws://127.0.0.1:1/websocket?type=main", "a", "b"):
                pass

    run(main())


def test_per_request_timeout_leaves_the_connection_usable(emulator):
    sim = emulator("fnos", "--answer-delay-ms", "300")

    async def main():
        async with aio.connect_fnos(sim.url, "admin", "admin") as nas:
            with pytest.raises(aio.RequestTimeoutError):
                await nas.request("appcgi.sysinfo.getHostName", timeout=0.05)
            assert await nas.host_name() == "fnos-sim"

    run(main())


def test_cancelled_request_does_not_break_the_connection(emulator):
    sim = emulator("fnos", "--answer-delay-ms", "200")

    async def main():
        async with aio.connect_fnos(sim.url, "admin", "admin") as nas:
            task = asyncio.ensure_future(nas.request("appcgi.sysinfo.getHostName"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not nas._pending
            # The late answer of the cancelled request is ignored; the next
            # request gets its own.
            answers = await asyncio.gather(*(nas.host_name() for _ in range(3)))
            assert answers == ["fnos-sim"] * 3
            # asyncio.wait_for cancels too.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(nas.host_name(), 0.05)
            assert await nas.host_name() == "fnos-sim"

    run(main())


def test_reconnects_after_drops_and_logs_in_with_the_token(emulator):
    # Every connection is dropped after 12 frames sent by the emulator.
    sim = emulator("fnos", "--drop-after-frames", "12")

    async def main():
        async with aio.connect_fnos(sim.url, "admin", "admin", backoff=0.05) as nas:
            events = []

            async def watch():
                async for e in nas.events():
                    events.append(e)

            watcher = asyncio.ensure_future(watch())
            done = 0
            while done < 40:
                try:
                    await nas.host_name()
                    done += 1
                except aio.ConnectionLostError:
                    pass
            assert nas.logins[0] == "password"
            assert len(nas.logins) >= 3 and set(nas.logins[1:]) == {"auth_token"}
            await asyncio.sleep(0)
            assert any(isinstance(e, aio.Reconnecting) for e in events)
            watcher.cancel()

    run(main())


def test_reconnects_after_an_emulator_restart(emulator):
    first = emulator("fnos")

    async def main():
        async with aio.connect_fnos(first.url, "admin", "admin", backoff=0.05) as nas:
            assert await nas.host_name() == "fnos-sim"
            first.stop()
            await asyncio.sleep(0.2)
            # Same port, a new emulator that knows no token: the stored
            # token is refused and the session falls back to the password.
            second = Emulator("fnos", ["--fixed-key", "--host-name", "second"])
            second.start(listen=f"127.0.0.1:{first.port}")
            try:
                assert await nas.host_name() == "second"
                assert nas.logins[0] == "password" and nas.logins[-1] == "password"
            finally:
                second.stop()

    run(main())


def test_two_factor_callback(emulator):
    sim = emulator("fnos", "--two-factor-code", "246810")

    async def main():
        asked = []

        async def code():
            asked.append(1)
            return "246810"

        async with aio.connect_fnos(sim.url, "admin", "admin", two_factor=code) as nas:
            assert nas.logins == ["two_factor"] and asked == [1]
            assert await nas.host_name() == "fnos-sim"
        with pytest.raises(aio.LoginError):
            async with aio.connect_fnos(sim.url, "admin", "admin"):
                pass
        with pytest.raises(aio.LoginError):
            async with aio.connect_fnos(sim.url, "admin", "admin", two_factor=lambda: "1"):
                pass

    run(main())


def test_pinned_tls(fnos, certificate):
    cert, key, pin = certificate

    async def main():
        server, port = await tls_terminator(cert, key, fnos.port)
        url = f"wss://127.0.0.1:{port}/websocket?type=main"
        async with server:
            async with aio.connect_fnos(url, "admin", "admin", sha256=pin) as nas:
                assert await nas.host_name() == "fnos-sim"
            wrong = "00" * 32
            with pytest.raises(aio.ConnectError):
                async with aio.connect_fnos(url, "admin", "admin", sha256=wrong):
                    pass
            # The certificate as its own CA file works; system trust does not.
            async with aio.connect_fnos(url, "admin", "admin", cafile=cert) as nas:
                assert await nas.host_name() == "fnos-sim"
            with pytest.raises(aio.ConnectError):
                async with aio.connect_fnos(url, "admin", "admin"):
                    pass
            async with aio.connect_fnos(url, "admin", "admin", insecure=True) as nas:
                assert await nas.host_name() == "fnos-sim"

    run(main())


def test_missed_pongs_close_the_connection_and_it_reconnects(emulator):
    sim = emulator("fnos", "--no-pong")

    async def main():
        async with aio.connect_fnos(
            sim.url, "admin", "admin", heartbeat_interval=0.1, backoff=0.05
        ) as nas:
            seen = []
            async for event in nas.events():
                seen.append(type(event))
                if isinstance(event, naslink.LoggedIn):
                    break
            assert naslink.ConnectionDead in seen and aio.Reconnecting in seen
            assert nas.logins[-1] == "auth_token"
            assert await nas.host_name() == "fnos-sim"

    run(main())


def test_refused_upgrade_raises_connect_error(emulator):
    sim = emulator("fnos", "--https-redirect", "5667")

    async def main():
        with pytest.raises(aio.ConnectError) as e:
            async with aio.connect_fnos(sim.url, "admin", "admin"):
                pass
        assert "301" in str(e.value)

    run(main())
