"""systemd service notification (``sd_notify``) without libsystemd.

The protocol is one ``AF_UNIX`` datagram of newline-separated ``KEY=VALUE`` lines sent to the socket
named by ``$NOTIFY_SOCKET`` (a filesystem path, or ``@name`` for the Linux abstract namespace).
``READY=1`` ends start-up of a ``Type=notify`` unit; ``WATCHDOG=1`` must then arrive at least every
``WatchdogSec=`` (systemd passes it as ``$WATCHDOG_USEC`` and the intended process as ``$WATCHDOG_PID``).

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a cheap no-op, so the assistant runs the same
from a shell. Kick the watchdog from the loop whose progress it vouches for (the audio loop), never
from a timer thread of its own: a thread that only pings would keep a hung pipeline alive.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from edge_assistant.core.errors import ConfigError

log = logging.getLogger(__name__)

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"
WATCHDOG_USEC_ENV = "WATCHDOG_USEC"
WATCHDOG_PID_ENV = "WATCHDOG_PID"


def _address(raw: str) -> str | bytes:
    """The ``sendto`` address for a ``$NOTIFY_SOCKET`` value (``@`` means abstract namespace)."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if not raw.startswith("/"):
        raise ConfigError(f"{NOTIFY_SOCKET_ENV}={raw!r}: expected an absolute path or an @abstract name")
    return raw


class SdNotifier:
    """Sends state to the service manager. Safe to use when not under systemd (does nothing)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get(NOTIFY_SOCKET_ENV, "")
        self._address = _address(raw) if raw else None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when a notification socket was given (running under a ``Type=notify`` unit)."""
        return self._address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines (``notify(READY=1, STATUS="listening")``); False when not enabled."""
        if self._address is None:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value)
            if "\n" in text:
                raise ConfigError(f"sd_notify field {key}: value must be one line, got {text!r}")
            lines.append(f"{key}={text}")
        payload = ("\n".join(lines) + "\n").encode()
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            # A notification that cannot be delivered must not take the assistant down; systemd will
            # notice the missing READY/WATCHDOG itself.
            log.warning("sd_notify to %s failed: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify(READY=1, **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SdNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def watchdog_interval_s(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """``WatchdogSec=`` in seconds when the watchdog is armed for this process, else None."""
    env = os.environ if environ is None else environ
    raw = env.get(WATCHDOG_USEC_ENV)
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{WATCHDOG_USEC_ENV}={raw!r}: expected an integer number of microseconds") from exc
    if usec <= 0:
        raise ConfigError(f"{WATCHDOG_USEC_ENV}={raw!r}: expected a positive number of microseconds")
    target = env.get(WATCHDOG_PID_ENV)
    if target and int(target) != (os.getpid() if pid is None else pid):
        return None  # armed for another process (e.g. our parent)
    return usec / 1e6


class WatchdogKicker:
    """Rate-limited ``WATCHDOG=1``: call :meth:`kick` from the main loop as often as you like.

    A ping goes out at most every ``interval / 2`` (systemd's advice), so a loop running at 100 Hz
    costs one datagram per few seconds.
    """

    def __init__(self, notifier: SdNotifier, interval_s: float | None, clock=time.monotonic) -> None:
        self._notifier = notifier
        self._period_s = None if interval_s is None else interval_s / 2.0
        self._clock = clock
        self._last_s: float | None = None

    @classmethod
    def from_env(cls, notifier: SdNotifier | None = None) -> WatchdogKicker:
        return cls(notifier or SdNotifier(), watchdog_interval_s())

    @property
    def armed(self) -> bool:
        return self._period_s is not None and self._notifier.enabled

    def kick(self) -> bool:
        """Ping when due; True when a datagram was sent."""
        if not self.armed:
            return False
        now = self._clock()
        if self._last_s is not None and now - self._last_s < self._period_s:  # type: ignore[operator]
            return False
        self._last_s = now
        return self._notifier.watchdog()
