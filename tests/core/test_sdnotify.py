"""sd_notify against a real AF_UNIX datagram socket that the test binds (as systemd does)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_assistant.core.errors import ConfigError
from edge_assistant.core.sdnotify import SdNotifier, WatchdogKicker, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_status_stopping(notify_socket) -> None:
    sock, path = notify_socket
    with SdNotifier({"NOTIFY_SOCKET": path}) as n:
        assert n.enabled
        assert n.ready("listening for hey jarvis")
        assert sock.recv(4096) == b"READY=1\nSTATUS=listening for hey jarvis\n"
        assert n.stopping()
        assert sock.recv(4096) == b"STOPPING=1\n"


def test_abstract_namespace_socket() -> None:
    name = f"edge-assistant-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert SdNotifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(4096) == b"WATCHDOG=1\n"
    finally:
        sock.close()


def test_child_process_reports_ready_from_the_environment(notify_socket) -> None:
    """The way systemd does it: NOTIFY_SOCKET in the environment of a separate process."""
    sock, path = notify_socket
    code = "from edge_assistant.core.sdnotify import SdNotifier; SdNotifier().ready('up')"
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "NOTIFY_SOCKET": path}, check=True, timeout=60)
    assert sock.recv(4096) == b"READY=1\nSTATUS=up\n"


def test_without_systemd_everything_is_a_no_op() -> None:
    n = SdNotifier({})
    assert not n.enabled and n.ready() is False and n.watchdog() is False
    assert WatchdogKicker(n, watchdog_interval_s({})).kick() is False


def test_unreachable_socket_does_not_raise(tmp_path: Path) -> None:
    assert SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready() is False


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_SOCKET"):
        SdNotifier({"NOTIFY_SOCKET": "relative/path"})
    with pytest.raises(ConfigError, match="STATUS"):
        SdNotifier({"NOTIFY_SOCKET": "/run/x"}).notify(STATUS="two\nlines")
    with pytest.raises(ConfigError, match="WATCHDOG_USEC"):
        watchdog_interval_s({"WATCHDOG_USEC": "soon"})


def test_watchdog_interval_respects_watchdog_pid() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, pid=1234) is None


def test_kicker_pings_at_half_the_interval(notify_socket) -> None:
    sock, path = notify_socket
    now = [100.0]
    kicker = WatchdogKicker(SdNotifier({"NOTIFY_SOCKET": path}), interval_s=4.0, clock=lambda: now[0])
    sent = []
    for t in [100.0, 100.5, 101.9, 102.0, 103.0, 104.1]:  # a main loop calling kick() often
        now[0] = t
        sent.append(kicker.kick())
    assert sent == [True, False, False, True, False, True]
    sock.setblocking(False)
    got = []
    while True:
        try:
            got.append(sock.recv(64))
        except BlockingIOError:
            break
    assert got == [b"WATCHDOG=1\n"] * 3
