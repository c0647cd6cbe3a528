"""MicrophoneCapture through the real ALSA library, without sound hardware.

Each test writes an ALSA configuration (``ALSA_CONFIG_PATH``) with one PCM of ``type file`` on a
``null`` slave whose ``infile`` is the "microphone": a real recording converted to raw frames. The null
slave delivers frames as fast as they are read, so the infile is a FIFO that holds exactly the frames
of the test (whole periods): capture gets the recording, then blocks in ALSA until the test closes
the FIFO. A regular infile gives an endless, unpaced stream (the recording, then silence).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci, wait_for

from edge_assistant.audio.capture import (
    RECONNECTING,
    RUNNING,
    STARTING,
    STOPPED,
    CaptureStats,
    MicrophoneCapture,
    convert_stream,
)
from edge_assistant.audio.frontend import resample
from edge_assistant.audio.io import read_audio
from edge_assistant.core.config import AudioSettings
from edge_assistant.core.errors import AudioFileError

PCM = "ea_test_mic"
WAIT_S = 20.0  # upper bound for anything to happen; tests wait on counts/events, never sleep fixed times


def _require_alsa() -> None:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (apt-get install libasound2-dev; pip install pyalsaaudio)")


class Mic:
    """An ALSA PCM backed by a raw infile; owns the FIFO writers and the captures it made."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.infile = root / "mic.raw"
        self.conf = root / "asound.conf"
        self.conf.write_text(
            f'pcm.{PCM} {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
            f'  infile "{self.infile}"\n  format "raw"\n}}\n'
        )
        self._writers: list[int] = []
        self._captures: list[MicrophoneCapture] = []

    def feed(self, frames: np.ndarray) -> None:
        """Make the infile appear as a FIFO holding ``frames`` (a writer keeps it open: no EOF)."""
        tmp = self.root / f"fifo{len(self._writers)}"
        os.mkfifo(tmp)
        fd = os.open(tmp, os.O_RDWR)  # never blocks, and ALSA's open of the infile will not block either
        self._writers.append(fd)
        data = frames.tobytes()
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        assert len(data) <= fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ), "test audio must fit the FIFO"
        os.write(fd, data)
        os.replace(tmp, self.infile)

    def file(self, frames: np.ndarray) -> None:
        """Make the infile a regular file: the recording, then endless silence, unpaced."""
        tmp = self.root / "mic.tmp"
        tmp.write_bytes(frames.tobytes())
        os.replace(tmp, self.infile)

    def capture(self, settings: AudioSettings, **kw: object) -> MicrophoneCapture:
        cap = MicrophoneCapture(settings, **kw)  # type: ignore[arg-type]
        self._captures.append(cap)
        return cap

    def close(self) -> None:
        for fd in self._writers:  # EOF unblocks a capture thread waiting in the FIFO
            os.close(fd)
        self._writers.clear()
        for cap in self._captures:
            assert cap.stop(), "capture thread did not end"


@pytest.fixture
def mic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mic]:
    _require_alsa()
    rig = Mic(tmp_path)
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(rig.conf))
    try:
        yield rig
    finally:
        rig.close()


@pytest.fixture(scope="module")
def recording(wakeword_data: Path) -> np.ndarray:
    """2 s of a real alexa recording, float32 16 kHz (the first readable clip that long)."""
    for path in sorted((wakeword_data / "alexa").glob("*.flac")):
        try:
            x = read_audio(path)
        except AudioFileError:
            continue
        if x.size >= 32000:
            return x[:32000]
    raise AssertionError("no readable alexa clip of 2 s")


def settings(rate: int = 48000, channels: int = 1, fmt: str = "S16_LE", **kw: object) -> AudioSettings:
    return AudioSettings(device=PCM, sample_rate_hz=rate, channels=channels, sample_format=fmt, **kw)  # type: ignore[arg-type]


def device_frames(x16k: np.ndarray, s: AudioSettings, right_gain: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The recording as the device delivers it (rate, format, channels; whole periods).

    Channel 0 carries the recording, the others ``right_gain`` times it. Returns the interleaved
    frames and the mono float signal the capture should hear (the channel mean) at the device rate.
    """
    x = resample(x16k, 16000, s.sample_rate_hz) if s.sample_rate_hz != 16000 else x16k.copy()
    x = np.clip(x, -0.99, 0.99)
    per = s.chunk_frames
    x = np.concatenate([x, np.zeros((-x.size) % per, dtype=np.float32)])
    full = 32768.0 if s.sample_format == "S16_LE" else 2147483648.0
    dtype = "<i2" if s.sample_format == "S16_LE" else "<i4"
    chans = [np.rint(x * full * (1.0 if c == 0 else right_gain)).astype(dtype) for c in range(s.channels)]
    frames = np.stack(chans, axis=1).reshape(-1)
    heard = np.mean([c.astype(np.float64) / full for c in chans], axis=0).astype(np.float32)
    return frames, heard


def expected_16k(s: AudioSettings, n_frames: int) -> int:
    """16 kHz samples the capture produces for ``n_frames`` whole periods of device frames."""
    return n_frames * 16000 // s.sample_rate_hz


def match(captured: np.ndarray, ref: np.ndarray, max_lag: int = 256) -> tuple[int, float, float]:
    """Best lag (captured behind ref), correlation and SNR in dB of captured[lag:] against ref."""
    y = captured.astype(np.float64) / 32768.0
    r = np.asarray(ref, dtype=np.float64)
    n = min(y.size - max_lag, r.size)
    assert n > 4000, f"too little audio to compare: {y.size} captured, {r.size} reference"
    lag = max(range(max_lag + 1), key=lambda k: float(np.dot(y[k : k + n], r[:n])))
    a, b = y[lag : lag + n], r[:n]
    corr = float(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)))
    snr = 10.0 * np.log10(np.dot(b, b) / max(float(np.dot(a - b, a - b)), 1e-30))
    return lag, corr, snr


def drain(cap: MicrophoneCapture) -> np.ndarray:
    parts = []
    while (x := cap.read(timeout_s=0, max_samples=1 << 20)) is not None:
        parts.append(x)
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


class States:
    """Collects state-change snapshots from the capture thread; wait on a state by name."""

    def __init__(self) -> None:
        self.seen: list[CaptureStats] = []
        self._cond = threading.Condition()

    def __call__(self, stats: CaptureStats) -> None:
        with self._cond:
            self.seen.append(stats)
            self._cond.notify_all()

    def names(self) -> list[str]:
        with self._cond:
            return [s.state for s in self.seen]

    def wait(self, state: str, count: int = 1) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.names_locked().count(state) >= count, WAIT_S)
        assert ok, f"state {state!r} not reached {count}x; seen {self.names()}"

    def names_locked(self) -> list[str]:
        return [s.state for s in self.seen]


# ------------------------------------------------------------------------------------------- tests
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("rate", "channels", "fmt"),
    [(48000, 1, "S16_LE"), (48000, 1, "S32_LE"), (48000, 2, "S16_LE"), (48000, 2, "S32_LE"),
     (44100, 1, "S16_LE"), (16000, 1, "S16_LE")],
)
def test_captured_audio_is_the_recording_at_16k(mic: Mic, recording: np.ndarray, rate: int, channels: int,
                                                fmt: str) -> None:
    s = settings(rate, channels, fmt, ring_buffer_s=10.0)
    frames, heard = device_frames(recording, s, right_gain=0.0)  # 2 channels: mic on the left, right silent
    mic.feed(frames)
    cap = mic.capture(s)
    cap.start()
    want = expected_16k(s, frames.size // channels)
    wait_for(f"{want} samples", lambda: cap.stats().samples_captured >= want)
    got = drain(cap)
    st = cap.stats()
    assert st.state == RUNNING and got.size == want == st.samples_delivered
    assert (st.device_rate_hz, st.device_channels, st.device_format) == (rate, channels, fmt)
    assert st.overruns == st.overrun_samples == st.xruns == 0
    # sample for sample what the capture's conversion makes of the whole stream at once
    np.testing.assert_array_equal(got, convert_stream(frames.tobytes(), rate, channels, fmt)[: got.size])
    ref = resample(heard, rate, 16000) if rate != 16000 else heard
    lag, corr, snr = match(got, ref)
    assert corr > 0.999 and snr > 40.0, (lag, corr, snr)
    if channels == 2:  # mixed to mono as the mean: the silent right channel halves the level
        level = np.sqrt(np.mean((got.astype(np.float64) / 32768.0) ** 2) / np.mean(np.asarray(recording, np.float64) ** 2))
        assert 0.45 < level < 0.55, level


@pytest.mark.shared_data
def test_read_returns_whole_chunks_then_the_rest(mic: Mic, recording: np.ndarray) -> None:
    s = settings(ring_buffer_s=10.0)
    frames, _ = device_frames(recording, s)
    mic.feed(frames)
    cap = mic.capture(s)
    cap.start()
    want = expected_16k(s, frames.size)
    wait_for(f"{want} samples", lambda: cap.stats().samples_captured >= want)
    assert cap.chunk_samples == 1280
    sizes = []
    while (x := cap.read(timeout_s=0)) is not None:
        sizes.append(x.size)
    assert sum(sizes) == want and all(n == 1280 for n in sizes[:-1])
    assert cap.read(timeout_s=0.05) is None  # nothing more arrives: the FIFO is empty and open


@pytest.mark.shared_data
def test_output_does_not_depend_on_the_alsa_period(mic: Mic, recording: np.ndarray, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = []
    for chunk_ms in (10.0, 80.0, 30.0):
        sub = tmp_path / f"chunk{chunk_ms:g}"  # a config file of its own: ALSA reloads by path and mtime
        sub.mkdir()
        rig = Mic(sub)
        monkeypatch.setenv("ALSA_CONFIG_PATH", str(rig.conf))
        s = AudioSettings(device=PCM, chunk_ms=chunk_ms, ring_buffer_s=10.0)
        frames, _ = device_frames(recording, s)
        rig.feed(frames)
        cap = rig.capture(s)
        cap.start()
        want = expected_16k(s, frames.size)
        try:
            wait_for(f"{want} samples", lambda cap=cap, want=want: cap.stats().samples_captured >= want)
            outputs.append(drain(cap))
        finally:
            rig.close()
    n = min(o.size for o in outputs)
    assert n >= 31000
    assert all(np.array_equal(o[:n], outputs[0][:n]) for o in outputs[1:])


@pytest.mark.shared_data
def test_stalled_consumer_counts_overruns_and_gets_the_newest_audio(mic: Mic, wakeword_data: Path) -> None:
    x = read_audio(wakeword_data / "multiple_keywords.wav")[: 16000 * 4]  # 4 s of real speech
    s = settings(ring_buffer_s=0.5)
    frames, heard = device_frames(x, s)
    mic.feed(frames)
    cap = mic.capture(s)
    cap.start()  # nobody reads while 4 s arrive into a 0.5 s ring
    total = expected_16k(s, frames.size)
    wait_for(f"{total} samples", lambda: cap.stats().samples_captured >= total)
    st = cap.stats()
    cap_samples = 8000
    assert st.samples_captured == total
    assert st.overrun_samples == total - cap_samples and st.overruns >= 1 and st.xruns == 0
    got = drain(cap)
    assert got.size == cap_samples
    ref = resample(heard, 48000, 16000)
    # got[i] is stream sample total - 8000 + i, which lags the delay-compensated reference by the
    # resampler's delay: it must be the newest 0.5 s of the recording, not the oldest.
    lag, corr, snr = match(got, ref[total - cap_samples :])
    assert corr > 0.999 and snr > 40.0, (lag, corr, snr)
    assert match(got, ref[: cap_samples])[1] < 0.5
    assert cap.stats().samples_delivered == cap_samples


@pytest.mark.shared_data
def test_unopenable_pcm_backs_off_then_recovers(mic: Mic, recording: np.ndarray,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge_assistant.audio.capture")
    s = settings(ring_buffer_s=10.0)
    states = States()
    cap = mic.capture(s, on_state_change=states, backoff_initial_s=0.02, backoff_max_s=0.08)
    cap.start()  # the infile does not exist: snd_pcm_open fails
    wait_for("5 failed opens", lambda: cap.stats().failed_opens >= 5)
    st = cap.stats()
    assert st.state == RECONNECTING and st.samples_captured == 0 and st.last_chunk_age_s is None
    assert st.retry_delay_s == pytest.approx(min(0.02 * 2 ** (st.failed_opens - 1), 0.08))
    assert PCM in st.last_error and "No such file" in st.last_error
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once per state change, not per retry

    frames, heard = device_frames(recording, s)
    mic.feed(frames)  # the microphone appears
    states.wait(RUNNING)
    want = expected_16k(s, frames.size)
    wait_for(f"{want} samples", lambda: cap.stats().samples_captured >= want)
    st = cap.stats()
    assert st.state == RUNNING and st.reconnects == 1 and st.retry_delay_s == 0.0
    assert st.last_chunk_age_s is not None and st.last_chunk_age_s >= 0.0
    assert states.names()[:3] == [STARTING, RECONNECTING, RUNNING]
    lag, corr, snr = match(drain(cap), resample(heard, 48000, 16000))
    assert corr > 0.999 and snr > 40.0


def test_stop_is_prompt_while_reconnecting(mic: Mic) -> None:
    states = States()
    cap = mic.capture(settings(), on_state_change=states, backoff_initial_s=30.0, backoff_max_s=30.0)
    cap.start()
    states.wait(RECONNECTING)
    t0 = time.monotonic()
    assert cap.stop()
    assert time.monotonic() - t0 < 5.0  # not the 30 s back-off
    assert cap.state == STOPPED and states.names()[-1] == STOPPED
    assert cap.stop()  # idempotent


def test_stop_is_prompt_while_running_and_before_start(mic: Mic) -> None:
    s = settings()
    mic.file(np.zeros(s.chunk_frames, dtype="<i2"))  # unpaced: silence as fast as it is read
    cap = mic.capture(s)
    assert cap.read(timeout_s=None) is None  # never started: nothing to wait for
    assert cap.stop() and cap.state == STOPPED
    cap.start()
    wait_for("audio", lambda: cap.stats().samples_captured > 0)
    t0 = time.monotonic()
    assert cap.stop() and cap.stop()
    assert time.monotonic() - t0 < 5.0
    st = cap.stats()
    assert st.state == STOPPED and st.samples_delivered == 0
    # After stop, reads return what is left without waiting, then None.
    left = st.buffered_samples
    got = drain(cap)
    assert got.size == left and cap.read(timeout_s=None) is None

    cap.start()  # a stopped capture starts again with fresh counters
    assert cap.stop()
    assert cap.state == STOPPED


def test_broken_callback_does_not_stop_capture(mic: Mic) -> None:
    s = settings()
    mic.file(np.zeros(s.chunk_frames, dtype="<i2"))

    def broken(stats: CaptureStats) -> None:
        raise RuntimeError("callback bug")

    cap = mic.capture(s, on_state_change=broken)
    cap.start()
    wait_for("audio", lambda: cap.stats().samples_captured > 0)
    assert cap.stats().state == RUNNING


def test_bad_timing_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="backoff_initial_s"):
        MicrophoneCapture(settings(), backoff_initial_s=2.0, backoff_max_s=1.0)
    with pytest.raises(ValueError, match="poll_timeout_s"):
        MicrophoneCapture(settings(), poll_timeout_s=1.0, stall_timeout_s=0.5)


def test_stream_conversion_names_an_unknown_sample_format() -> None:
    with pytest.raises(ValueError, match="'S24_LE'.*S16_LE, S32_LE"):
        convert_stream(b"\0" * 12, 48000, 1, "S24_LE")
