"""READY and the systemd watchdog follow the capture: READY once audio flows or the microphone is known to be
absent; WATCHDOG=1 while audio flows or an absent microphone is retried.

A capture stuck inside the driver (a read that never returns) must stop the watchdog pings, so that systemd
restarts the service; an unplugged microphone must not (a restart cannot plug it in, and a unit restarted
more than StartLimitBurst times would stay down after the microphone came back). The datagrams go to a real
AF_UNIX socket as systemd's NOTIFY_SOCKET would receive them; the PCM is an ALSA ``file`` plugin on a FIFO.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci, wait_for

from edge_assistant.app.runtime import App
from edge_assistant.audio.capture import RUNNING, MicrophoneCapture
from edge_assistant.core.config import default_config, default_paths
from edge_assistant.core.paths import model_cache_dir
from edge_assistant.core.sdnotify import SdNotifier

PCM = "ea_watchdog_mic"


class Datagrams(threading.Thread):
    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.got: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.got.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def count(self, text: str) -> int:
        return sum(text in g for g in list(self.got))


def _device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, MicrophoneCapture, Datagrams, App]:
    """An ALSA file PCM reading ``mic.raw`` (a FIFO the test creates), a capture with short stall and back-off
    times (live window 1 s), a notify socket and the App, loaded. The watchdog is due every 0.1 s."""
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    fifo = tmp_path / "mic.raw"
    (tmp_path / "asound.conf").write_text(f'pcm.{PCM} {{\n  type file\n  slave.pcm {{ type null }}\n'
                                          f'  file "/dev/null"\n  infile "{fifo}"\n  format "raw"\n}}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "asound.conf"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings due every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    sock = Datagrams(tmp_path / "notify")
    sock.start()
    base = default_config()
    config = replace(base, audio=replace(base.audio, device=PCM, sample_rate_hz=16000, ring_buffer_s=10.0),
                     speech=replace(base.speech, enabled=False),
                     paths=default_paths({}, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                                         model_cache_dir=model_cache_dir()))
    capture = MicrophoneCapture(config.audio, backoff_initial_s=0.1, backoff_max_s=0.5, poll_timeout_s=0.05,
                                stall_timeout_s=0.5)
    assert capture.live_window_s == 1.0
    app = App(config, emit=lambda e: None, capture=capture, environ={"RUNTIME_DIRECTORY": str(tmp_path / "run")})
    return fifo, capture, sock, app


def _open_writer(fifo: Path) -> int:
    """The microphone appears: a FIFO with a writer (so ALSA's open of the infile does not block)."""
    tmp = fifo.with_name(fifo.name + ".new")
    os.mkfifo(tmp)
    writer = os.open(tmp, os.O_RDWR)
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 1 << 20)
    os.replace(tmp, fifo)
    return writer


def _speak(writer: int, seconds: float) -> int:
    """Write ``seconds`` of silence in 0.1 s blocks at the pace of a microphone; returns the samples."""
    block = np.zeros(1600, np.int16)
    n = round(seconds * 10)
    for _ in range(n):
        os.write(writer, block.tobytes())
        time.sleep(0.1)
    return n * block.size


def test_ready_after_audio_flows_and_no_watchdog_once_the_capture_is_stuck(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fifo, capture, sock, app = _device(tmp_path, monkeypatch)
    writer = _open_writer(fifo)  # the microphone is there but silent: ALSA blocks in the read (a stuck driver)
    runner = threading.Thread(target=lambda: app.run(notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})))
    try:
        app.load()
        runner.start()
        wait_for("the capture to open the PCM", lambda: capture.state == RUNNING, 30.0)
        time.sleep(1.0)  # models loaded, pipeline running, PCM open, but no audio yet
        assert sock.count("READY=1") == 0 and sock.count("WATCHDOG=1") == 0
        samples = _speak(writer, 2.0)
        wait_for("the pipeline to take the 2 s", lambda: app.stats.samples >= samples, 30.0)
        assert sock.count("READY=1") == 1 and sock.count("WATCHDOG=1") >= 3  # due every 0.1 s while it flowed
        wait_for("the stuck capture to stop counting as live", lambda: not capture.is_live(), 30.0)
        time.sleep(0.3)  # a kick decided just before may still be on its way
        pings = sock.count("WATCHDOG=1")
        time.sleep(1.0)  # ten ping periods with the capture stuck inside ALSA
        assert sock.count("WATCHDOG=1") == pings, "the watchdog was kicked while the capture was stuck"
        assert capture.state == RUNNING  # the thread itself cannot tell: it is blocked in the read
    finally:
        app.stop()
        os.unlink(fifo)
        os.close(writer)  # the capture's blocked read returns
        runner.join(30.0)
        app.close()
        sock.stop.set()
    assert not runner.is_alive()


def test_absent_microphone_is_ready_and_fed_while_retried_then_captured(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unplugged at start: READY (with the reason) and the watchdog fed for many live windows while the open is
    retried; once it appears, audio flows on the same process and the watchdog goes on."""
    fifo, capture, sock, app = _device(tmp_path, monkeypatch)  # no FIFO yet: opening the infile fails
    events: list[dict] = []
    app.emit = events.append
    runner = threading.Thread(target=lambda: app.run(notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})))
    writer = None
    try:
        app.load()
        runner.start()
        wait_for("READY with the microphone absent", lambda: sock.count("READY=1") == 1, 30.0)
        assert "microphone absent" in next(g for g in sock.got if "READY=1" in g)
        ready = next(e for e in events if e["event"] == "ready")
        assert ready["microphone"] == "absent, retrying"
        t0 = time.monotonic()
        wait_for("three live windows of retries", lambda: time.monotonic() - t0 >= 3 * capture.live_window_s
                 and capture.stats().failed_opens >= 3, 60.0)
        pings = sock.count("WATCHDOG=1")
        assert pings >= 10, f"{pings} watchdog pings in {time.monotonic() - t0:.1f} s while the microphone was absent"
        writer = _open_writer(fifo)
        wait_for("the capture to reconnect", lambda: capture.state == RUNNING, 30.0)
        samples = _speak(writer, 1.5)
        wait_for("the audio to reach the pipeline", lambda: app.stats.samples >= samples, 30.0)
        assert capture.stats().reconnects == 1 and sock.count("READY=1") == 1
        assert sock.count("WATCHDOG=1") > pings
        assert {e.get("state") for e in events if e["event"] == "audio"} >= {"reconnecting", "running"}
    finally:
        app.stop()
        fifo.unlink(missing_ok=True)
        if writer is not None:
            os.close(writer)
        runner.join(30.0)
        app.close()
        sock.stop.set()
    assert not runner.is_alive()
