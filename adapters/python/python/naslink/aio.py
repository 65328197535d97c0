"""asyncio clients over the sans-I/O :class:`naslink.Connection`.

Everything protocol-shaped (login, signing, heartbeat, deadlines, frame
matching) happens in the Rust core; this module only moves bytes between an
asyncio stream and the connection, arms one timer for ``next_timeout()``,
and turns events into awaited results::

    async with naslink.aio.connect_fnos("ws://nas:5666/websocket?type=main",
                                        "admin", "secret") as nas:
        cpu = await nas.cpu()
        answer = await nas.request("appcgi.sysinfo.getHostName")
        async for event in nas.events():
            ...

TLS (``wss://``) checks the server against the system trust store unless
``cafile`` names another CA bundle, ``sha256`` pins the certificate (hex
SHA-256 of its DER form), or ``insecure=True`` turns checking off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import ssl as _ssl
import tempfile
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from naslink._naslink import (
    BusyError,
    CfmsConnection,
    Closed,
    Connection,
    ConnectionDead,
    Error,
    LoggedIn,
    LoginFailed,
    Push,
    Rejected,
    Reply,
    RequestAborted,
    RequestTimedOut,
    TwoFactorRejected,
    TwoFactorRequired,
    UnsupportedProtocolError,
)

__all__ = [
    "Answer",
    "CfmsClient",
    "ConnectError",
    "ConnectionLostError",
    "Cpu",
    "Disk",
    "FnosClient",
    "LoginError",
    "Memory",
    "NetInterface",
    "Reconnecting",
    "RequestError",
    "RequestTimeoutError",
    "UnsupportedProtocolError",
    "connect_cfms",
    "connect_fnos",
    "ssl_context",
]

TwoFactorCallback = Callable[[], Union[str, Awaitable[str]]]


class ConnectError(Error):
    """The connection could not be opened (refused, TLS, pin mismatch, HTTP refusal)."""


class LoginError(Error):
    """The server refused the login; ``errno`` is its code, if any."""

    def __init__(self, message: str, errno: Optional[int] = None) -> None:
        super().__init__(message)
        self.errno = errno


class RequestError(Error):
    """The server answered a request with a failure: ``errno`` is the fnOS
    errno or the CFMS code, ``answer`` the fnOS :class:`Answer` or the CFMS
    answer (a dict)."""

    def __init__(self, message: str, errno: Optional[int], answer: Any) -> None:
        super().__init__(message)
        self.errno = errno
        self.answer = answer


class RequestTimeoutError(Error, asyncio.TimeoutError):
    """A request got no final answer before its deadline."""


class ConnectionLostError(Error):
    """The connection dropped before the request was answered (or the client closed)."""


@dataclass(frozen=True)
class Reconnecting:
    """An event: the connection broke; attempt ``attempt`` starts after ``delay`` seconds."""

    attempt: int
    delay: float
    reason: str


@dataclass
class Answer:
    """A request's answer: every frame in arrival order, the last one final."""

    frames: List[Reply] = field(default_factory=list)
    size: int = 0
    """Bytes received for it, all frames together."""

    @property
    def last(self) -> Reply:
        """The final frame."""
        return self.frames[-1]

    @property
    def data(self) -> Any:
        """The final frame's payload (``data``/``rsp``, or its top level)."""
        return self.last.data

    def get(self, key: str, default: Any = None) -> Any:
        """``key`` from the final frame, or from its ``data`` object."""
        body = self.last.body
        if key in body:
            return body[key]
        data = body.get("data")
        if isinstance(data, dict) and key in data:
            return data[key]
        return default

    def merged(self, key: str) -> List[Any]:
        """The elements of array ``key`` across all frames (multi-frame listings)."""
        out: List[Any] = []
        for frame in self.frames:
            value = frame.body.get(key)
            if isinstance(value, list):
                out.extend(value)
        return out


@dataclass(frozen=True)
class Cpu:
    """``appcgi.resmon.cpu``: the processor and how busy it is (percent)."""

    name: str
    cores: int
    threads: int
    busy: int
    user: int
    system: int
    iowait: int
    temperatures: List[int]


@dataclass(frozen=True)
class Memory:
    """``appcgi.resmon.mem``: memory and swap in bytes."""

    total: int
    used: int
    free: int
    available: int
    cached: int
    buffers: int
    swap_total: int
    swap_used: int

    @property
    def percent(self) -> float:
        """Used memory as a percentage of the total."""
        return 100.0 * self.used / self.total if self.total else 0.0


@dataclass(frozen=True)
class NetInterface:
    """One entry of ``appcgi.resmon.net``: bytes per second each way."""

    name: str
    receive: int
    transmit: int


@dataclass(frozen=True)
class Disk:
    """One entry of ``appcgi.resmon.disk``."""

    name: str
    temperature: Optional[int]
    standby: bool
    busy: int
    read: int
    write: int


@dataclass(frozen=True)
class Space:
    """``stor.calcSpace``: storage space in bytes."""

    total: int
    used: int
    free: int


def ssl_context(
    *,
    cafile: Optional[str] = None,
    sha256: Optional[str] = None,
    insecure: bool = False,
) -> _ssl.SSLContext:
    """The TLS context the clients use.

    System trust by default; ``cafile`` replaces it with a CA bundle;
    ``sha256`` pins the server certificate (checked after the handshake, so
    chain and name are not); ``insecure=True`` checks nothing.
    """
    if sha256 is not None or insecure:
        ctx = _ssl.SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = _ssl.CERT_NONE
        return ctx
    return _ssl.create_default_context(cafile=cafile)


def _normalise_pin(pin: str) -> bytes:
    text = pin.replace(":", "").strip().lower()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError("sha256 pin must be 64 hex digits") from None
    if len(raw) != 32:
        raise ValueError("sha256 pin must be 64 hex digits")
    return raw


class _Client:
    """The loop both clients share: one transport at a time, reconnects,
    the timer, the event fan-out. Subclasses own the protocol's requests."""

    _conn: Any

    def __init__(
        self,
        conn: Any,
        *,
        cafile: Optional[str],
        sha256: Optional[str],
        insecure: bool,
        timeout: float,
        connect_timeout: float,
        reconnect: bool,
        backoff: float,
        max_backoff: float,
        two_factor: Optional[TwoFactorCallback],
    ) -> None:
        self._conn = conn
        self._pin = _normalise_pin(sha256) if sha256 is not None else None
        self._ssl = (
            ssl_context(cafile=cafile, sha256=sha256, insecure=insecure)
            if self._conn.secure
            else None
        )
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._reconnect = reconnect
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._two_factor = two_factor
        self._slot_waiters: List["asyncio.Future[None]"] = []
        self._subscribers: List["asyncio.Queue[Any]"] = []
        self._writer: Optional[asyncio.StreamWriter] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[float] = None
        self._flush_scheduled = False
        self._ready: asyncio.Event
        self._login: Optional["asyncio.Future[None]"] = None
        self._task: Optional["asyncio.Task[None]"] = None
        self._two_factor_task: Optional["asyncio.Task[None]"] = None
        self._two_factor_attempts = 0
        self._closing = False
        self._failure: Optional[BaseException] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _dispatch(self, event: Any) -> None:
        raise NotImplementedError

    def _submit_two_factor(self, code: str) -> None:
        raise NotImplementedError

    def _fail_pending(self, err: BaseException) -> None:
        raise NotImplementedError

    def _after_pump(self) -> None:
        """Called after each drain of events."""

    def _after_close(self) -> None:
        """Called when the WebSocket closed (the transport may still be open)."""

    def _reconnect_at_once(self) -> bool:
        """Whether the connection that just ended asks for a new one at
        once, without backoff (the CFMS protocol probe's answer)."""
        return False

    # ----- life cycle -------------------------------------------------

    async def connect(self) -> Any:
        """Open the first connection and wait for the login."""
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._login = self._loop.create_future()
        self._task = self._loop.create_task(self._run())
        try:
            await asyncio.wait_for(asyncio.shield(self._login), self.connect_timeout)
        except asyncio.TimeoutError:
            await self.close()
            raise ConnectError("no login within connect_timeout") from None
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Close the connection (politely) and stop; requests in flight fail."""
        if self._closing:
            if self._task is not None:
                await asyncio.gather(self._task, return_exceptions=True)
            return
        self._closing = True
        if self._writer is not None and self._conn.state == "open":
            try:
                self._conn.close()
                self._flush()
                await asyncio.wait_for(self._writer.drain(), 1.0)
            except (Error, OSError, asyncio.TimeoutError):
                pass
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 2.0)
            except (asyncio.TimeoutError, Exception):
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._two_factor_task is not None:
            self._two_factor_task.cancel()
        self._fail_all(ConnectionLostError("client closed"))
        for q in self._subscribers:
            q.put_nowait(None)

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def logged_in(self) -> bool:
        """Whether the session is logged in right now."""
        return self._ready.is_set()

    # ----- requests ---------------------------------------------------

    async def _wait(self, awaitable: Awaitable[Any], deadline: float) -> None:
        remaining = deadline - (self._loop or asyncio.get_running_loop()).time()
        if remaining <= 0:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise RequestTimeoutError("timed out waiting for the connection")
        try:
            await asyncio.wait_for(awaitable, remaining)
        except asyncio.TimeoutError:
            raise RequestTimeoutError("timed out waiting for the connection") from None

    def _wake_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    async def events(self) -> AsyncIterator[Any]:
        """Pushes (:class:`naslink.Push`) and life-cycle events
        (:class:`naslink.LoggedIn`, :class:`naslink.Closed`,
        :class:`Reconnecting`, :class:`naslink.ConnectionDead`) from now on,
        until the client closes. A slow reader loses the oldest events
        beyond 1024."""
        queue: "asyncio.Queue[Any]" = asyncio.Queue(maxsize=1024)
        self._subscribers.append(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.remove(queue)

    # ----- the I/O loop -------------------------------------------------

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            reason = "connection closed"
            try:
                await self._session()
            except (OSError, _ssl.SSLError, Error, asyncio.IncompleteReadError) as e:
                reason = f"{type(e).__name__}: {e}"
            finally:
                self._writer = None
                self._cancel_timer()
                if self._ready.is_set():
                    attempt = 0
                self._ready.clear()
            if not self._closing and self._failure is None and self._reconnect_at_once():
                self._conn.reconnect()
                continue
            if self._login is not None and not self._login.done():
                # The first connection: no login yet, nothing to resume.
                self._failure = ConnectError(reason)
                self._login.set_exception(self._failure)
            self._fail_all(ConnectionLostError(reason))
            if self._closing or self._failure is not None:
                break
            if not self._reconnect:
                self._failure = ConnectionLostError(reason)
                break
            attempt += 1
            delay = min(self._max_backoff, self._backoff * (2 ** (attempt - 1)))
            self._emit(Reconnecting(attempt, delay, reason))
            await asyncio.sleep(delay)
            if self._closing:
                break
            self._conn.reconnect()
        for q in self._subscribers:
            q.put_nowait(None)

    async def _session(self) -> None:
        """One transport: dial, then read until it ends."""
        conn = self._conn
        host = conn.host
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host, conn.port, ssl=self._ssl, server_hostname=host if self._ssl else None
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise ConnectError(f"no connection to {host}:{conn.port} within connect_timeout") from None
        try:
            if self._pin is not None:
                sslobj = writer.get_extra_info("ssl_object")
                der = sslobj.getpeercert(binary_form=True) if sslobj else None
                if der is None or hashlib.sha256(der).digest() != self._pin:
                    raise ConnectError("the server certificate does not match the sha256 pin")
            sock = writer.get_extra_info("socket")
            if sock is not None:
                try:
                    import socket

                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
            self._writer = writer
            self._flush()
            while not self._done:
                data = await reader.read(262144)
                conn.receive_data(data)
                self._pump()
                if not data:
                    break
            self._after_close()
        finally:
            writer.close()

    @property
    def _done(self) -> bool:
        return bool(self._conn.state == "closed")

    def _schedule_flush(self) -> None:
        """Flush once the running tasks have queued their requests: many
        requests made in one loop iteration leave in one write."""
        if not self._flush_scheduled and self._loop is not None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write what the connection has for the server, and re-arm the timer."""
        self._flush_scheduled = False
        data = self._conn.data_to_send()
        if data and self._writer is not None:
            self._writer.write(data)
        self._arm_timer()

    def _arm_timer(self) -> None:
        at = self._conn.next_timeout()
        if at == self._timer_at:
            return
        self._cancel_timer()
        if at is not None and self._loop is not None:
            self._timer_at = at
            self._timer = self._loop.call_at(at, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self._conn.handle_timeout()
            self._pump()
        except Error:
            # The connection cannot go on (the binding said why); the
            # session loop sees the transport end and reconnects.
            if self._writer is not None:
                self._writer.close()

    def _pump(self) -> None:
        """Drain events, then bytes; the drain rule of the core."""
        conn = self._conn
        while True:
            event = conn.next_event()
            if event is None:
                break
            self._dispatch(event)
        self._after_pump()
        self._flush()

    def _login_failed(self, err: Error) -> None:
        self._failure = err
        if self._login is not None and not self._login.done():
            self._login.set_exception(err)
        self._fail_all(err)
        if self._writer is not None:
            self._writer.close()

    def _ask_two_factor(self) -> None:
        if self._two_factor is None:
            self._login_failed(LoginError("the account needs a two-factor code (pass two_factor=)"))
            return
        self._two_factor_attempts += 1
        callback = self._two_factor

        async def ask() -> None:
            try:
                code = callback()
                if inspect.isawaitable(code):
                    code = await code
                self._submit_two_factor(str(code))
                self._flush()
            except Exception as e:  # the callback's failure ends the login
                self._login_failed(LoginError(f"two-factor callback failed: {e}"))

        assert self._loop is not None
        self._two_factor_task = self._loop.create_task(ask())

    def _fail_all(self, err: BaseException) -> None:
        self._fail_pending(err)
        for waiter in self._slot_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _emit(self, event: Any) -> None:
        for q in self._subscribers:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)


class FnosClient(_Client):
    """An fnOS session kept alive over asyncio streams; see :func:`connect_fnos`."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        cafile: Optional[str] = None,
        sha256: Optional[str] = None,
        insecure: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 30.0,
        reconnect: bool = True,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        two_factor: Optional[TwoFactorCallback] = None,
        trusted_device: bool = False,
        heartbeat_interval: float = 30.0,
        max_message_size: int = 1 << 20,
        device_name: str = "naslink",
        max_answer_frames: int = 4096,
        max_answer_bytes: int = 16 << 20,
    ) -> None:
        conn = Connection(
            url,
            user,
            password,
            device_name=device_name,
            request_timeout=timeout,
            login_timeout=connect_timeout,
            heartbeat_interval=heartbeat_interval,
            max_message_size=max_message_size,
        )
        super().__init__(
            conn,
            cafile=cafile,
            sha256=sha256,
            insecure=insecure,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
            backoff=backoff,
            max_backoff=max_backoff,
            two_factor=two_factor,
        )
        self._trusted_device = trusted_device
        self.max_answer_frames = max_answer_frames
        """Most frames one answer may have; more fail the request."""
        self.max_answer_bytes = max_answer_bytes
        """Most bytes one answer may have, all frames together."""
        self._pending: Dict[str, Tuple["asyncio.Future[Answer]", Answer]] = {}
        self.logins: List[str] = []
        """How each login so far succeeded (``"password"``, ``"auth_token"``...)."""

    async def __aenter__(self) -> "FnosClient":
        if self._task is None:
            await self.connect()
        return self

    def _submit_two_factor(self, code: str) -> None:
        self._conn.submit_two_factor_code(code, self._trusted_device)

    def _fail_pending(self, err: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(err)

    async def request(
        self,
        req: str,
        params: Optional[Dict[str, Any]] = None,
        /,
        *,
        timeout: Optional[float] = None,
        **kwargs: Any,
    ) -> Answer:
        """Send ``req`` with parameters and return its whole answer.

        Waits for the login (or a reconnect) first, all within ``timeout``
        (the client's default when ``None``). Raises :class:`RequestError`
        when the server answers with a failure, :class:`RequestTimeoutError`
        on timeout, :class:`ConnectionLostError` when the connection drops.
        Cancelling the awaiting task abandons the request and frees its slot;
        the connection stays usable.
        """
        loop = self._loop or asyncio.get_running_loop()
        timeout = self.timeout if timeout is None else timeout
        deadline = loop.time() + timeout
        while True:
            if self._failure is not None:
                raise ConnectionLostError(str(self._failure))
            if self._closing:
                raise ConnectionLostError("client closed")
            if not self._ready.is_set():
                await self._wait(self._ready.wait(), deadline)
                continue
            try:
                reqid = self._conn.request(
                    req, params, timeout=max(0.0, deadline - loop.time()), **kwargs
                )
            except BusyError:
                waiter: "asyncio.Future[None]" = loop.create_future()
                self._slot_waiters.append(waiter)
                try:
                    await self._wait(waiter, deadline)
                finally:
                    if waiter in self._slot_waiters:
                        self._slot_waiters.remove(waiter)
                continue
            break
        future: "asyncio.Future[Answer]" = loop.create_future()
        answer = Answer()
        self._pending[reqid] = (future, answer)
        self._schedule_flush()
        try:
            return await future
        except asyncio.CancelledError:
            if self._pending.pop(reqid, None) is not None:
                self._conn.cancel(reqid)
                self._wake_slot()
            raise

    # ----- front-panel helpers -----------------------------------------

    async def host_name(self) -> str:
        """``appcgi.sysinfo.getHostName``."""
        return str((await self.request("appcgi.sysinfo.getHostName")).data["hostName"])

    async def uptime(self) -> int:
        """``appcgi.sysinfo.getUptime``: seconds since boot."""
        return int((await self.request("appcgi.sysinfo.getUptime")).data["uptime"])

    async def cpu(self) -> Cpu:
        """``appcgi.resmon.cpu`` (administrators only)."""
        cpu = (await self.request("appcgi.resmon.cpu")).data["cpu"]
        busy = cpu.get("busy", {})
        temp = cpu.get("temp") or []
        return Cpu(
            name=cpu.get("name", ""),
            cores=int(cpu.get("core", 0)),
            threads=int(cpu.get("thread", 0)),
            busy=int(busy.get("all", 0)),
            user=int(busy.get("user", 0)),
            system=int(busy.get("system", 0)),
            iowait=int(busy.get("iowait", 0)),
            temperatures=[int(t) for t in temp],
        )

    async def memory(self) -> Memory:
        """``appcgi.resmon.mem`` (administrators only)."""
        data = (await self.request("appcgi.resmon.mem")).data
        mem, swap = data.get("mem", {}), data.get("swap", {})
        return Memory(
            total=int(mem.get("total", 0)),
            used=int(mem.get("used", 0)),
            free=int(mem.get("free", 0)),
            available=int(mem.get("available", 0)),
            cached=int(mem.get("cached", 0)),
            buffers=int(mem.get("buffers", 0)),
            swap_total=int(swap.get("total", 0)),
            swap_used=int(swap.get("used", 0)),
        )

    async def network(self) -> List[NetInterface]:
        """``appcgi.resmon.net`` (administrators only)."""
        ifs = (await self.request("appcgi.resmon.net")).data.get("ifs", [])
        return [
            NetInterface(i.get("name", ""), int(i.get("receive", 0)), int(i.get("transmit", 0)))
            for i in ifs
        ]

    async def disks(self) -> List[Disk]:
        """``appcgi.resmon.disk`` (administrators only)."""
        disks = (await self.request("appcgi.resmon.disk")).data.get("disk", [])
        return [
            Disk(
                name=d.get("name", ""),
                temperature=d.get("temp"),
                standby=bool(d.get("standby", False)),
                busy=int(d.get("busy", 0)),
                read=int(d.get("read", 0)),
                write=int(d.get("write", 0)),
            )
            for d in disks
        ]

    async def space(self) -> Space:
        """``stor.calcSpace``."""
        a = await self.request("stor.calcSpace")
        return Space(int(a.get("total", 0)), int(a.get("used", 0)), int(a.get("free", 0)))

    async def list_dir(self, path: Optional[str] = None) -> List[Dict[str, Any]]:
        """``file.ls``: every entry, across all frames of the answer."""
        answer = await (self.request("file.ls", path=path) if path else self.request("file.ls"))
        return answer.merged("files")

    def _dispatch(self, event: Any) -> None:
        if type(event) is Reply:
            entry = self._pending.get(event.reqid) if event.matched else None
            if entry is None:
                return
            future, answer = entry
            answer.frames.append(event)
            answer.size += len(event.raw)
            if not event.final and (
                len(answer.frames) > self.max_answer_frames or answer.size > self.max_answer_bytes
            ):
                # Stop collecting: the request fails, its later frames are
                # dropped as unmatched.
                del self._pending[event.reqid]
                self._conn.cancel(event.reqid)
                self._wake_slot()
                if not future.done():
                    future.set_exception(
                        RequestError("the answer outgrew max_answer_frames/max_answer_bytes", None, answer)
                    )
                return
            if event.final:
                del self._pending[event.reqid]
                self._wake_slot()
                if future.done():
                    return
                if event.ok:
                    future.set_result(answer)
                else:
                    future.set_exception(
                        RequestError(event.error_message or "request failed", event.errno, answer)
                    )
        elif isinstance(event, (RequestTimedOut, RequestAborted)):
            entry = self._pending.pop(event.reqid, None)
            self._wake_slot()
            if entry is not None and not entry[0].done():
                if isinstance(event, RequestTimedOut):
                    entry[0].set_exception(RequestTimeoutError(f"request {event.reqid} timed out"))
                else:
                    entry[0].set_exception(ConnectionLostError("connection lost before the answer"))
        elif isinstance(event, Push):
            self._emit(event)
        elif isinstance(event, LoggedIn):
            self.logins.append(event.method)
            self._two_factor_attempts = 0
            self._ready.set()
            if self._login is not None and not self._login.done():
                self._login.set_result(None)
            self._emit(event)
        elif isinstance(event, TwoFactorRequired):
            self._ask_two_factor()
        elif isinstance(event, TwoFactorRejected):
            if self._two_factor_attempts >= 3:
                self._login_failed(LoginError("two-factor code refused three times", event.errno))
            else:
                self._ask_two_factor()
        elif isinstance(event, LoginFailed):
            self._login_failed(LoginError(event.message, event.errno))
        elif isinstance(event, ConnectionDead):
            self._emit(event)
            if self._writer is not None:
                self._writer.close()
        elif isinstance(event, Rejected):
            err = ConnectError(f"upgrade refused with HTTP {event.status}")
            if self._login is not None and not self._login.done():
                self._login.set_exception(err)
                self._failure = err
        elif isinstance(event, Closed):
            self._ready.clear()
            self._emit(event)
            if self._writer is not None:
                self._writer.close()


def connect_fnos(url: str, user: str, password: str, **options: Any) -> FnosClient:
    """An :class:`FnosClient` for ``async with`` (or ``await client.connect()``).

    Options: ``cafile``, ``sha256`` (certificate pin, hex), ``insecure``,
    ``timeout`` (default per-request seconds), ``connect_timeout``,
    ``reconnect`` (default ``True``), ``backoff``/``max_backoff`` (seconds),
    ``two_factor`` (a callable, sync or async, returning the code),
    ``trusted_device``, ``heartbeat_interval``, ``max_message_size``,
    ``device_name``, ``max_answer_frames`` (default 4096) and
    ``max_answer_bytes`` (default 16 MiB) for multi-frame answers.
    """
    return FnosClient(url, user, password, **options)

class CfmsClient(_Client):
    """A CFMS session kept alive over asyncio streams; see :func:`connect_cfms`.

    Protocols 3–5 and 13 are spoken. Without ``protocol_version`` the first
    connection sends the protocol-13 probe: a 13 server answers it, a 3–5
    server closes the connection and the client reconnects at once speaking
    text. What it learnt is kept for every later reconnect. A pinned
    ``protocol_version`` (3, 4, 5 or 13) skips the probe; a server (or a
    pin) with another version raises :class:`UnsupportedProtocolError`.

    A request whose caller gave up (timeout or cancellation) keeps its
    place: its late answer is dropped and the connection stays in step. One
    transfer runs at a time; requests made meanwhile wait for it.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        cafile: Optional[str] = None,
        sha256: Optional[str] = None,
        insecure: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 30.0,
        transfer_timeout: float = 60.0,
        reconnect: bool = True,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        two_factor: Optional[TwoFactorCallback] = None,
        max_message_size: int = 4 << 20,
        protocol_version: Optional[int] = None,
    ) -> None:
        conn = CfmsConnection(
            url,
            user,
            password,
            # The client enforces each caller's timeout; the core's deadline
            # (which breaks the connection) only catches a silent server.
            request_timeout=max(timeout, connect_timeout) * 2,
            transfer_timeout=transfer_timeout,
            max_message_size=max_message_size,
            protocol_version=protocol_version,
        )
        super().__init__(
            conn,
            cafile=cafile,
            sha256=sha256,
            insecure=insecure,
            timeout=timeout,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
            backoff=backoff,
            max_backoff=max_backoff,
            two_factor=two_factor,
        )
        self._pending: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._transfer: Optional[_Transfer] = None
        self._transfer_lock: Optional[asyncio.Lock] = None
        self.server_info: Dict[str, Any] = {}
        """The last ``server_info`` answer's ``data``."""
        # The probe was closed by a 3-5 server: reconnect at once, once.
        self._speak_text = False
        self._text_reconnects = 0

    async def __aenter__(self) -> "CfmsClient":
        if self._task is None:
            await self.connect()
        return self

    @property
    def protocol_version(self) -> Optional[int]:
        """The server's protocol version (3–5 or 13)."""
        version: Optional[int] = self._conn.protocol_version
        return version

    @property
    def negotiated(self) -> Optional[str]:
        """What the protocol-13 probe found: ``"framed"`` (13), ``"text"``
        (3–5), or ``None`` (not probed: a pinned version)."""
        found: Optional[str] = self._conn.negotiated
        return found

    def _after_close(self) -> None:
        # The close handshake can finish before its Closed event (and the
        # probe's protocol_text) is drained: drain them now.
        self._pump()

    def _reconnect_at_once(self) -> bool:
        if self._speak_text and self._text_reconnects < 1:
            self._speak_text = False
            self._text_reconnects += 1
            return True
        return False

    async def request(
        self,
        action: str,
        data: Optional[Dict[str, Any]] = None,
        /,
        *,
        timeout: Optional[float] = None,
        **kwargs: Any,
    ) -> Dict[str, Any]:
        """Send ``action`` with ``data`` and return the answer's ``data``.

        Raises :class:`RequestError` (``errno`` is the CFMS code) when the
        answer's code is not 200, :class:`RequestTimeoutError` after
        ``timeout`` seconds, :class:`ConnectionLostError` when the
        connection drops first.
        """
        loop = self._loop or asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        if self._transfer_lock is not None and self._transfer_lock.locked():
            await self._wait(self._transfer_lock.acquire(), deadline)
            self._transfer_lock.release()
        body = await self._request(action, data, deadline, **kwargs)
        result: Dict[str, Any] = body.get("data") or {}
        return result

    async def _request(
        self, action: str, data: Optional[Dict[str, Any]], deadline: float, **kwargs: Any
    ) -> Dict[str, Any]:
        loop = self._loop or asyncio.get_running_loop()
        while True:
            if self._failure is not None:
                raise ConnectionLostError(str(self._failure))
            if self._closing:
                raise ConnectionLostError("client closed")
            if not self._ready.is_set():
                await self._wait(self._ready.wait(), deadline)
                continue
            try:
                seq = self._conn.request(action, data, **kwargs)
            except BusyError:
                waiter: "asyncio.Future[None]" = loop.create_future()
                self._slot_waiters.append(waiter)
                try:
                    await self._wait(waiter, deadline)
                finally:
                    if waiter in self._slot_waiters:
                        self._slot_waiters.remove(waiter)
                continue
            break
        future: "asyncio.Future[Dict[str, Any]]" = loop.create_future()
        self._pending[seq] = future
        self._schedule_flush()
        # The entry stays until the answer comes (answers are matched in
        # order): a caller that gives up only stops waiting.
        remaining = deadline - loop.time()
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, remaining))
        except asyncio.TimeoutError:
            raise RequestTimeoutError(f"{action} got no answer in time") from None

    async def list_directory(self, folder_id: Optional[str] = None) -> Dict[str, Any]:
        """``list_directory``: ``{"documents": [...], "folders": [...], "parent_id": ...}``."""
        return await self.request("list_directory", folder_id=folder_id)

    async def create_directory(self, name: str, parent_id: Optional[str] = None) -> Dict[str, Any]:
        """``create_directory``."""
        return await self.request("create_directory", name=name, parent_id=parent_id)

    async def delete_document(self, document_id: str) -> Dict[str, Any]:
        """``delete_document``."""
        return await self.request("delete_document", document_id=document_id)

    async def _titled(self, title: str, folder_id: Optional[str]) -> List[str]:
        listing = await self.list_directory(folder_id)
        return [d["id"] for d in listing.get("documents", []) if d.get("title") == title]

    async def upload(
        self,
        source: Union[str, "os.PathLike[str]"],
        title: str,
        folder_id: Optional[str] = None,
        *,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> str:
        """Upload the file ``source`` as a new document ``title``; returns its id.

        Two streamed passes over the file: its SHA-256 first (in a thread),
        then the frames, with the transport's flow control between them.
        A failed upload deletes the document it created.
        """
        path = os.fspath(source)
        loop = self._loop or asyncio.get_running_loop()
        size, digest = await loop.run_in_executor(None, _hash_file, path)
        before = [] if (self.protocol_version or 3) >= 5 else await self._titled(title, folder_id)
        created = await self.request("create_document", title=title, folder_id=folder_id)
        document_id: Optional[str] = created.get("document_id")
        task_id = created["task_data"]["task_id"]
        ok = False
        try:
            async with self._transfer_guard():
                await self._send_file(path, task_id, size, digest, progress)
            if document_id is None:
                new = [i for i in await self._titled(title, folder_id) if i not in before]
                if len(new) != 1:
                    raise Error(f"cannot tell which document is the new {title!r}")
                document_id = new[0]
            ok = True
            return document_id
        finally:
            if not ok and document_id is not None:
                try:
                    await self.delete_document(document_id)
                except Error:
                    pass

    async def download(
        self,
        document_id: str,
        target: Union[str, "os.PathLike[str]"],
        *,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> int:
        """Download document ``document_id`` into the file ``target``; returns its size.

        The ciphertext streams into a temporary file beside ``target``; a
        decryption pass (every chunk's and the file's SHA-256 checked, in a
        thread) writes a second one, renamed to ``target`` only when all
        checked out. Both are removed on any failure or cancellation.
        """
        target = os.fspath(target)
        folder = os.path.dirname(os.path.abspath(target))
        answer = await self.request("get_document", document_id=document_id)
        task_id = answer["task_data"]["task_id"]
        cipher_fd, cipher = tempfile.mkstemp(dir=folder, prefix=".naslink-", suffix=".cipher")
        part_fd, part = tempfile.mkstemp(dir=folder, prefix=".naslink-", suffix=".part")
        os.close(part_fd)
        loop = self._loop or asyncio.get_running_loop()
        try:
            with os.fdopen(cipher_fd, "wb") as sink:
                async with self._transfer_guard():
                    transfer = _Transfer(loop, sink=sink, progress=progress)
                    self._start_transfer(transfer, lambda: self._conn.download_file(task_id))
                    finished = await transfer.done
            size: int = await loop.run_in_executor(None, finished.decrypt_file, cipher, part)
            os.replace(part, target)
            return size
        finally:
            for leftover in (cipher, part):
                try:
                    os.unlink(leftover)
                except FileNotFoundError:
                    pass

    # ----- transfers ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _transfer_guard(self) -> AsyncIterator[None]:
        if self._transfer_lock is None:
            self._transfer_lock = asyncio.Lock()
        async with self._transfer_lock:
            try:
                yield
            finally:
                self._transfer = None

    def _start_transfer(self, transfer: "_Transfer", start: Callable[[], int]) -> None:
        if not self._ready.is_set():
            raise ConnectionLostError("not connected")
        transfer.seq = start()
        self._transfer = transfer
        self._flush()

    async def _send_file(
        self,
        path: str,
        task_id: str,
        size: int,
        digest: bytes,
        progress: Optional[Callable[[int, int], None]],
    ) -> None:
        loop = self._loop or asyncio.get_running_loop()
        transfer = _Transfer(loop, progress=progress)
        self._start_transfer(transfer, lambda: self._conn.upload_file(task_id, size, digest))
        await transfer.ready
        sent = 0
        with open(path, "rb") as f:
            while True:
                block = f.read(256 * 1024)
                view = memoryview(block)
                while view:
                    if transfer.done.done():
                        break
                    taken = self._conn.upload_write(bytes(view))
                    view = view[taken:]
                    sent += taken
                    self._flush()
                    if self._writer is None:
                        raise ConnectionLostError("connection lost during the upload")
                    await self._writer.drain()
                if progress is not None:
                    progress(sent, size)
                if not block or transfer.done.done():
                    break
        if not transfer.done.done():
            self._conn.upload_write(b"")
            self._flush()
        await transfer.done

    def _dispatch(self, event: Any) -> None:
        kind = getattr(event, "kind", None)
        if kind == "reply":
            future = self._pending.pop(event.seq, None)
            self._wake_slot()
            if future is None or future.done():
                return
            body = event.body
            if event.code == 200:
                future.set_result(body)
            else:
                future.set_exception(
                    RequestError(event.message or f"code {event.code}", event.code, body)
                )
        elif kind == "request_failed":
            future = self._pending.pop(event.seq, None)
            self._wake_slot()
            if future is not None and not future.done():
                future.set_exception(ConnectionLostError(event.message or "request failed"))
        elif kind is not None and kind.startswith(("upload_", "download_")):
            transfer = self._transfer
            if transfer is None or transfer.seq != event.seq:
                return
            transfer.handle(event)
        elif kind == "server_info":
            body = event.body or {}
            self.server_info = body.get("data", {})
        elif kind == "logged_in":
            self._two_factor_attempts = 0
        elif kind == "two_factor_required":
            if self._two_factor_attempts >= 3:
                self._login_failed(LoginError("two-factor code refused three times"))
            else:
                self._ask_two_factor()
        elif kind == "login_failed":
            self._login_failed(LoginError(event.message or "login refused"))
        elif kind == "protocol_unsupported":
            self._login_failed(
                UnsupportedProtocolError(event.message or "unsupported protocol version")
            )
        elif kind == "protocol_text":
            self._speak_text = True
        elif kind in ("desynchronized", "bad_message"):
            self._emit(event)
            if self._writer is not None:
                self._writer.close()
        elif kind == "lockdown":
            self._emit(event)
        elif isinstance(event, Rejected):
            err = ConnectError(f"upgrade refused with HTTP {event.status}")
            if self._login is not None and not self._login.done():
                self._login.set_exception(err)
                self._failure = err
        elif isinstance(event, Closed):
            self._ready.clear()
            if not self._speak_text:
                # The probe's close is an answer, not a lost connection.
                self._emit(event)
            if self._transfer is not None:
                self._transfer.fail(ConnectionLostError("connection lost during the transfer"))
            if self._writer is not None:
                self._writer.close()

    def _after_pump(self) -> None:
        if not self._ready.is_set() and self._conn.session_state == "ready":
            self._ready.set()
            if self._login is not None and not self._login.done():
                self._login.set_result(None)

    def _submit_two_factor(self, code: str) -> None:
        self._conn.submit_two_factor(code)

    def _fail_pending(self, err: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(err)
        if self._transfer is not None:
            self._transfer.fail(err)


class _Transfer:
    """One upload or download under way: where its events go."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        sink: Optional[Any] = None,
        progress: Optional[Callable[[int, int], None]] = None,
    ) -> None:
        self.seq: Optional[int] = None
        self.sink = sink
        self.progress = progress
        self.ready: "asyncio.Future[None]" = loop.create_future()
        self.done: "asyncio.Future[Any]" = loop.create_future()
        self.received = 0
        self.size = 0

    def handle(self, event: Any) -> None:
        kind = event.kind
        if kind == "upload_ready":
            if not self.ready.done():
                self.ready.set_result(None)
        elif kind == "upload_finished":
            self._finish(event.size)
        elif kind in ("upload_failed", "download_failed"):
            self.fail(Error(f"{kind.replace('_', ' ')}: {event.message}"))
        elif kind == "download_started":
            self.size = event.size or 0
        elif kind == "download_data":
            # Writes to a local file: fast enough to do on the loop.
            assert self.sink is not None
            self.sink.write(event.data)
            self.received += len(event.data)
            if self.progress is not None:
                self.progress(self.received, self.size)
        elif kind == "download_finished":
            if self.sink is not None:
                self.sink.flush()
            self._finish(event)

    def _finish(self, value: Any) -> None:
        if not self.ready.done():
            self.ready.set_result(None)
        if not self.done.done():
            self.done.set_result(value)

    def fail(self, err: BaseException) -> None:
        for f in (self.ready, self.done):
            if not f.done():
                f.set_exception(err)
                # Retrieved or not, a failed transfer is reported by the caller.
                f.exception()


def _hash_file(path: str) -> Tuple[int, bytes]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            size += len(block)
    return size, h.digest()


def connect_cfms(url: str, user: str, password: str, **options: Any) -> CfmsClient:
    """A :class:`CfmsClient` for ``async with`` (or ``await client.connect()``).

    Options: ``cafile``, ``sha256`` (certificate pin, hex), ``insecure``,
    ``timeout``, ``connect_timeout``, ``transfer_timeout``, ``reconnect``,
    ``backoff``/``max_backoff``, ``two_factor`` (a callable returning a TOTP
    or backup code), ``max_message_size``, ``protocol_version`` (pin 3, 4, 5
    or 13: no probe).
    """
    return CfmsClient(url, user, password, **options)
