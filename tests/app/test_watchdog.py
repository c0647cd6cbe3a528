"""READY and the systemd watchdog follow the audio: READY once audio flows, WATCHDOG=1 only while it flows.

A hung pipeline or a dead microphone must stop the watchdog pings, so that systemd restarts the service;
the datagrams go to a real AF_UNIX socket as systemd's NOTIFY_SOCKET would receive them.
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


def test_ready_after_audio_flows_and_watchdog_only_while_it_flows(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    fifo = tmp_path / "mic.raw"
    (tmp_path / "asound.conf").write_text(f'pcm.{PCM} {{\n  type file\n  slave.pcm {{ type null }}\n'
                                          f'  file "/dev/null"\n  infile "{fifo}"\n  format "raw"\n}}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "asound.conf"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings due every 0.1 s while audio flows
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # the microphone is there but silent: ALSA blocks in the read
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 1 << 20)
    sock = Datagrams(tmp_path / "notify")
    sock.start()
    base = default_config()
    config = replace(base, audio=replace(base.audio, device=PCM, sample_rate_hz=16000, ring_buffer_s=10.0),
                     speech=replace(base.speech, enabled=False),
                     paths=default_paths({}, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                                         model_cache_dir=model_cache_dir()))
    app = App(config, emit=lambda e: None, environ={"RUNTIME_DIRECTORY": str(tmp_path / "run")})
    runner = threading.Thread(target=lambda: app.run(notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})))
    try:
        app.load()
        runner.start()
        time.sleep(1.0)  # models loaded, pipeline running, but no audio yet
        assert sock.count("READY=1") == 0 and sock.count("WATCHDOG=1") == 0
        block = np.zeros(1600, np.int16)  # 0.1 s, written every 0.1 s for 2 s: audio flows like a microphone's
        for _ in range(20):
            os.write(writer, block.tobytes())
            time.sleep(0.1)
        wait_for("the pipeline to take the 2 s", lambda: app.stats.samples >= 20 * block.size, 30.0)
        assert sock.count("READY=1") == 1 and sock.count("WATCHDOG=1") >= 3  # due every 0.1 s while it flowed
        pings = sock.count("WATCHDOG=1")
        time.sleep(1.0)  # ten ping periods with no audio
        assert sock.count("WATCHDOG=1") == pings, "the watchdog was kicked while no audio flowed"
    finally:
        app.stop()
        os.unlink(fifo)
        os.close(writer)  # the capture's blocked read returns
        runner.join(30.0)
        app.close()
        sock.stop.set()
    assert not runner.is_alive()
