"""Type stubs of `naslink._naslink`, the compiled sans-I/O layer."""

from typing import Any, Dict, List, Optional, Union

__all__ = [
    "BusyError",
    "CfmsConnection",
    "CfmsEvent",
    "Closed",
    "Connected",
    "Connection",
    "ConnectionDead",
    "Error",
    "Event",
    "LoggedIn",
    "LoginFailed",
    "Malformed",
    "NotConnectedError",
    "Push",
    "Rejected",
    "Reply",
    "RequestAborted",
    "RequestTimedOut",
    "TwoFactorRejected",
    "TwoFactorRequired",
    "Unsolicited",
    "UnsupportedProtocolError",
]

class Error(Exception):
    """Base class of naslink's errors."""

class NotConnectedError(Error):
    """The connection is not open (or not yet): no request can be sent."""

class BusyError(Error):
    """The table of requests in flight is full, or a message is half sent."""

class UnsupportedProtocolError(Error):
    """A CFMS protocol version this client does not speak (it speaks 3 to 5 and 13)."""

class Connected:
    """The WebSocket upgrade succeeded; the login runs by itself."""

class Rejected:
    """The server answered the upgrade with another HTTP status; `Closed` follows."""

    status: int
    location: Optional[str]

class LoggedIn:
    """The login succeeded; requests are signed from now on."""

    method: str
    """``"auth_token"``, ``"token_login"``, ``"password"`` or ``"two_factor"``."""
    uid: Optional[int]
    admin: Optional[bool]

class TwoFactorRequired:
    """Call :meth:`Connection.submit_two_factor_code`."""

class TwoFactorRejected:
    """The two-factor code was refused; submit another."""

    errno: Optional[int]
    message: str

class LoginFailed:
    """The login gave up on this connection."""

    message: str
    errno: Optional[int]

class Reply:
    """One frame of an answer."""

    reqid: str
    final: bool
    """The last frame of the answer."""
    ok: bool
    """The final frame reports success."""
    errno: Optional[int]
    error_message: Optional[str]
    matched: bool
    """``False``: a late or unknown answer (its request timed out or was cancelled)."""
    raw: bytes
    """The message as received (JSON text)."""
    @property
    def body(self) -> Any:
        """The whole reply object, parsed on first access."""
    @property
    def data(self) -> Any:
        """``data`` (or ``rsp``), else the object without ``reqid``/``result``/``errno``."""

class Push:
    """A server push (``sysNotify``)."""

    kind: str
    raw: bytes
    @property
    def body(self) -> Dict[str, Any]: ...

class Unsolicited:
    """A JSON object that is neither reply, push nor pong."""

    raw: bytes
    @property
    def body(self) -> Any: ...

class RequestTimedOut:
    """A request got no final frame before its deadline."""

    reqid: str

class RequestAborted:
    """The connection dropped before the request was answered."""

    reqid: str

class Malformed:
    """A received message could not be read; the connection stays usable."""

    message: str

class ConnectionDead:
    """Too many pongs missed: close the transport and reconnect."""

    missed_pongs: int

class Closed:
    """The connection is over: close the transport (``reconnect()`` starts a new one)."""

    reason: str
    code: Optional[int]
    clean: bool

Event = Union[
    Connected,
    Rejected,
    LoggedIn,
    TwoFactorRequired,
    TwoFactorRejected,
    LoginFailed,
    Reply,
    Push,
    Unsolicited,
    RequestTimedOut,
    RequestAborted,
    Malformed,
    ConnectionDead,
    Closed,
]

class Connection:
    """One fnOS session over successive WebSocket connections, sans I/O.

    Times are ``time.monotonic()`` seconds; ``now=None`` reads that clock.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        device_name: str = "naslink",
        request_timeout: float = 30.0,
        login_timeout: float = 30.0,
        heartbeat_interval: float = 30.0,
        max_message_size: int = 1048576,
        now: Optional[float] = None,
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def secure(self) -> bool: ...
    @property
    def state(self) -> str:
        """``"handshaking"``, ``"open"``, ``"closing"`` or ``"closed"``."""
    @property
    def logged_in(self) -> bool: ...
    @property
    def has_token(self) -> bool: ...
    def receive_data(self, data: bytes, now: Optional[float] = None) -> None:
        """Bytes read from the transport; ``b""`` means end of stream."""
    def next_event(self, now: Optional[float] = None) -> Optional[Event]:
        """The next event, or ``None`` when more input (or time) is needed."""
    def events(self, now: Optional[float] = None) -> List[Event]:
        """Every event available now."""
    def data_to_send(self, now: Optional[float] = None) -> bytes:
        """Bytes to write to the transport (may be empty)."""
    def next_timeout(self) -> Optional[float]:
        """When :meth:`handle_timeout` is due, or ``None``."""
    def handle_timeout(self, now: Optional[float] = None) -> None: ...
    def request(
        self,
        req: str,
        params: Optional[Dict[str, Any]] = None,
        /,
        *,
        timeout: Optional[float] = None,
        now: Optional[float] = None,
        **kwargs: Any,
    ) -> str:
        """Queue a command; returns its reqid."""
    def cancel(self, reqid: str) -> bool: ...
    def submit_two_factor_code(self, code: str, trusted_device: bool = False) -> None: ...
    def can_send(self) -> bool: ...
    def close(self, code: int = 1000, reason: str = "", now: Optional[float] = None) -> None: ...
    def reconnect(self, now: Optional[float] = None) -> None:
        """A new WebSocket connection with the same session (tokens kept)."""

class CfmsEvent:
    """Something a CFMS connection reports; ``kind`` says what."""

    kind: str
    """``server_info``, ``protocol_unsupported``, ``protocol_text`` (a 3–5
    server closed the protocol-13 probe: reconnect), ``logged_in``,
    ``two_factor_required``, ``login_failed``, ``token_refreshed``,
    ``token_rejected``, ``listener_registered``, ``lockdown``, ``reply``,
    ``request_failed``, ``desynchronized``, ``bad_message``, ``upload_ready``,
    ``upload_finished``, ``upload_failed``, ``download_started``,
    ``download_data``, ``download_chunk``, ``download_finished``,
    ``download_failed``."""
    seq: Optional[int]
    code: Optional[int]
    raw: Optional[bytes]
    data: Optional[bytes]
    message: Optional[str]
    size: Optional[int]
    chunks: Optional[int]
    flag: Optional[bool]
    expires_in: Optional[float]
    protocol_version: Optional[int]
    @property
    def body(self) -> Any:
        """The answer, parsed (``None`` without one)."""
    def decrypt_file(self, source: str, target: str) -> int:
        """``download_finished``: decrypt and verify ``source`` into ``target``; returns the size."""

class CfmsConnection:
    """One CFMS session over successive WebSocket connections, sans I/O."""

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        request_timeout: float = 30.0,
        transfer_timeout: float = 60.0,
        max_message_size: int = 4194304,
        protocol_version: Optional[int] = None,
        negotiate: bool = True,
        now: Optional[float] = None,
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def secure(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def session_state(self) -> str: ...
    @property
    def protocol_version(self) -> Optional[int]: ...
    @property
    def negotiated(self) -> Optional[str]:
        """``"framed"``, ``"text"`` or ``None``: what the protocol-13 probe found."""
    @property
    def wire(self) -> str:
        """``"text"`` (3–5) or ``"framed"`` (13)."""
    def receive_data(self, data: bytes, now: Optional[float] = None) -> None: ...
    def next_event(
        self, now: Optional[float] = None
    ) -> Optional[Union[CfmsEvent, Connected, Rejected, Closed]]: ...
    def events(
        self, now: Optional[float] = None
    ) -> List[Union[CfmsEvent, Connected, Rejected, Closed]]: ...
    def data_to_send(self, now: Optional[float] = None) -> bytes: ...
    def next_timeout(self) -> Optional[float]: ...
    def handle_timeout(self, now: Optional[float] = None) -> None: ...
    def request(
        self,
        action: str,
        data: Optional[Dict[str, Any]] = None,
        /,
        *,
        now: Optional[float] = None,
        **kwargs: Any,
    ) -> int: ...
    def upload_file(
        self, task_id: str, size: int, sha256: bytes, now: Optional[float] = None
    ) -> int: ...
    def upload_write(self, data: bytes, now: Optional[float] = None) -> int: ...
    def download_file(self, task_id: str, now: Optional[float] = None) -> int: ...
    def submit_two_factor(self, code: str, now: Optional[float] = None) -> int: ...
    def can_send(self) -> bool: ...
    def close(self, code: int = 1000, reason: str = "", now: Optional[float] = None) -> None: ...
    def reconnect(self, now: Optional[float] = None) -> None: ...
