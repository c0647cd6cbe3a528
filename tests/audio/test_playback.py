"""Speaker through the real ALSA library, without sound hardware.

Each test writes an ALSA configuration (``ALSA_CONFIG_PATH``) with playback PCMs of ``type file`` on a
``null`` slave: ALSA writes every frame the speaker plays into ``file``. A regular file collects the audio
at once (the null slave takes frames as fast as they come); a FIFO that the test drains at the device's
rate stands in for a real DAC, so a clip takes its real time and can be cut off in the middle.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci, wait_for

from edge_assistant.audio import speech_synth
from edge_assistant.audio.frontend import resample
from edge_assistant.audio.playback import FAILED, FINISHED, INTERRUPTED, STARTED, PlaybackEvent, Speaker

WAIT_S = 20.0  # upper bound for anything to happen; tests wait on events, never sleep fixed times


class Rig:
    """PCM ``ea_test_out`` writes to ``out.raw``; PCM ``ea_test_dac`` writes to the FIFO ``dac.raw``."""

    def __init__(self, root: Path) -> None:
        self.out = root / "out.raw"
        self.dac = root / "dac.raw"
        self.conf = root / "asound.conf"
        self.conf.write_text(
            "".join(f'pcm.{name} {{\n  type file\n  slave.pcm {{ type null }}\n  file "{path}"\n  format "raw"\n}}\n'
                    for name, path in (("ea_test_out", self.out), ("ea_test_dac", self.dac))))
        self.events: list[PlaybackEvent] = []
        self.speakers: list[Speaker] = []

    def speaker(self, device: str, rate_hz: int, **kw: object) -> Speaker:
        sp = Speaker(device, rate_hz, on_event=self.events.append, **kw)  # type: ignore[arg-type]
        self.speakers.append(sp)
        return sp

    def states(self) -> list[str]:
        return [e.state for e in self.events]

    def close(self) -> None:
        for sp in self.speakers:
            assert sp.close(), "playback thread did not end"


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (apt-get install libasound2-dev; pip install pyalsaaudio)")
    r = Rig(tmp_path)
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(r.conf))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def reply() -> np.ndarray:
    """A spoken reply, float32 16 kHz, as the assistant synthesises it."""
    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make setup installs the Debian package)")
    return speech_synth.synthesize("The rear left tyre is at one point eight bar.", words_per_minute=160)


def _expected(clip: np.ndarray, rate_hz: int) -> np.ndarray:
    y = resample(clip, 16000, rate_hz) if rate_hz != 16000 else clip
    return np.clip(np.rint(y * 32767.0), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("rate_hz", [16000, 22050, 48000])
def test_the_device_gets_the_synthesised_reply_at_its_rate(rig: Rig, reply: np.ndarray, rate_hz: int) -> None:
    sp = rig.speaker("ea_test_out", rate_hz)
    sp.play(reply, tag="r1")
    assert sp.wait_idle(WAIT_S)
    assert rig.states() == [STARTED, FINISHED]
    started, finished = rig.events
    assert started.tag == finished.tag == "r1" and finished.device_rate_hz == rate_hz
    assert finished.played_s == pytest.approx(reply.size / 16000, abs=1.0 / 16000 + 1.0 / rate_hz)
    sp.close()
    written = np.fromfile(rig.out, dtype="<i2")
    want = _expected(reply, rate_hz)
    # everything the clip holds, in order; after it at most the silence that kept the device running
    assert written.size >= want.size
    np.testing.assert_array_equal(written[: want.size], want)
    assert not written[want.size:].any()


def test_int16_clips_and_clips_in_a_row(rig: Rig, reply: np.ndarray) -> None:
    sp = rig.speaker("ea_test_out", 16000)
    pcm = np.clip(np.rint(reply * 32767.0), -32768, 32767).astype(np.int16)
    sp.play(pcm, tag=1)
    sp.play(reply[:8000], tag=2)
    assert sp.wait_idle(WAIT_S)
    assert [(e.state, e.tag) for e in rig.events] == [(STARTED, 1), (FINISHED, 1), (STARTED, 2), (FINISHED, 2)]
    assert sp.stats.finished == 2 and sp.stats.failed == 0


#: The "sound card": drains the FIFO at a given rate (16-bit mono) into a file. A process of its own, as
#: pyalsaaudio keeps the GIL while ALSA's file plugin writes into the FIFO: a reader thread here could not run.
DAC_SCRIPT = """
import fcntl, os, sys, time
fifo, rate, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader exists: ALSA's open of the FIFO will not block
fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 4096)  # a small hardware buffer
print("ready", flush=True)
step_s, t = 0.01, time.monotonic()
with open(out, "ab", buffering=0) as f:
    while True:
        try:
            f.write(os.read(fd, 2 * round(rate * step_s)))
        except BlockingIOError:
            pass
        t += step_s
        time.sleep(max(0.0, t - time.monotonic()))
"""


def _settled(dac: Dac) -> np.ndarray:
    """What the DAC has heard once nothing more arrives for 0.3 s (what was queued before the stop)."""
    last = dac.heard
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = dac.heard
        if now.size == last.size:
            return now
        last = now
    raise AssertionError("the DAC kept receiving audio after stop()")


class Dac:
    """The DAC process reading ``fifo`` at ``rate_hz``; :attr:`heard` is what it has taken so far."""

    def __init__(self, fifo: Path, rate_hz: int) -> None:
        os.mkfifo(fifo)
        self.out = fifo.with_suffix(".heard")
        self.out.write_bytes(b"")
        self.proc = subprocess.Popen([sys.executable, "-c", DAC_SCRIPT, str(fifo), str(rate_hz), str(self.out)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    @property
    def heard(self) -> np.ndarray:
        data = self.out.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(5.0)


def test_stop_cuts_the_reply_off_in_the_middle(rig: Rig, reply: np.ndarray) -> None:
    dac = Dac(rig.dac, 16000)
    try:
        sp = rig.speaker("ea_test_dac", 16000)
        sp.play(reply, tag="long")
        wait_for("a quarter of the reply to play", lambda: dac.heard.size >= reply.size // 4)
        assert sp.busy and rig.states() == [STARTED]
        assert sp.stop()
        wait_for("the interruption", lambda: INTERRUPTED in rig.states())
        assert sp.wait_idle(WAIT_S)  # busy clears once the end is reported (the thread may still be there)
        ended = rig.events[-1]
        assert ended.tag == "long" and 0.0 < ended.played_s < ended.duration_s
        heard = _settled(dac)
        want = _expected(reply, 16000)
        assert heard.size < want.size  # the rest was never played
        np.testing.assert_array_equal(heard, want[: heard.size])
        assert not sp.stop()  # nothing left to stop
        sp.play(reply[:4000], tag="next")  # the speaker goes on with the next clip
        wait_for("the next clip", lambda: rig.states()[-1] == FINISHED)
        assert rig.events[-1].tag == "next"
    finally:
        for sp in rig.speakers:
            sp.close()
        dac.close()


def test_a_missing_device_fails_the_clip_and_the_speaker_goes_on(rig: Rig, reply: np.ndarray) -> None:
    sp = rig.speaker("ea_no_such_pcm", 16000)
    sp.play(reply[:4000], tag="lost")
    assert sp.wait_idle(WAIT_S)
    assert rig.states() == [FAILED]
    assert "ea_no_such_pcm" in (rig.events[0].error or "") and sp.stats.failed == 1
    sp.device = "ea_test_out"  # the device appears (plugged in): the next clip plays
    sp.play(reply[:4000], tag="found")
    assert sp.wait_idle(WAIT_S)
    assert rig.states() == [FAILED, STARTED, FINISHED]


def test_bad_clips_and_settings_are_refused(rig: Rig) -> None:
    with pytest.raises(ValueError, match="mono"):
        rig.speaker("ea_test_out", 16000).play(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match="period_ms"):
        Speaker("ea_test_out", 16000, period_ms=0.0)
    sp = rig.speaker("ea_test_out", 16000)
    sp.close()
    with pytest.raises(RuntimeError, match="closed"):
        sp.play(np.zeros(10, np.float32))
