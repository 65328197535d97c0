"""naslink: fnOS and CFMS NAS clients over naslink's sans-I/O Rust core (type stubs)."""

from naslink import aio as aio
from naslink._naslink import (
    BusyError as BusyError,
    CfmsConnection as CfmsConnection,
    CfmsEvent as CfmsEvent,
    Closed as Closed,
    Connected as Connected,
    Connection as Connection,
    ConnectionDead as ConnectionDead,
    Error as Error,
    Event as Event,
    LoggedIn as LoggedIn,
    LoginFailed as LoginFailed,
    Malformed as Malformed,
    NotConnectedError as NotConnectedError,
    Push as Push,
    Rejected as Rejected,
    Reply as Reply,
    RequestAborted as RequestAborted,
    RequestTimedOut as RequestTimedOut,
    TwoFactorRejected as TwoFactorRejected,
    TwoFactorRequired as TwoFactorRequired,
    Unsolicited as Unsolicited,
    UnsupportedProtocolError as UnsupportedProtocolError,
)
