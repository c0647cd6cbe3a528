"""Live microphone capture through ALSA: a capture thread, a ring buffer, 16 kHz int16 mono out.

:class:`MicrophoneCapture` opens an ALSA PCM by name (``ea_mic48``/``ea_mic`` from
``firmware/audio/asound.conf``, ``plughw:CARD=...``, any plugin chain), reads it in a thread of its
own, mixes the channels to mono, resamples to 16 kHz with the C front end's
:class:`~edge_assistant.audio.frontend.Resampler` and writes int16 into a bounded
:class:`~edge_assistant.audio.ring.RingBuffer` that the pipeline drains with :meth:`MicrophoneCapture.read`.

* The capture thread never waits for the consumer: when the ring is full the oldest audio is dropped
  and counted as an overrun (events and samples); the reader always gets the newest audio.
* ALSA overruns (``EPIPE``: the thread itself fell behind the device) are counted as xruns; the stream
  is prepared again and capture goes on.
* A PCM that cannot be opened, a device that errors (unplugged USB microphone) or one that stops
  delivering audio for ``stall_timeout_s`` puts the capture into ``reconnecting``: it retries with
  exponential back-off (``backoff_initial_s`` doubling to ``backoff_max_s``), logs once per state
  change and reports everything in :meth:`MicrophoneCapture.stats`. Nothing raises into the app.
* The PCM is opened non-blocking and waited on with ``poll`` and a short timeout, so :meth:`stop`
  returns within about ``poll_timeout_s`` in every state (back-off waits are interruptible too).
* :meth:`MicrophoneCapture.is_live` tells a supervisor (the systemd watchdog) whether the thread is doing
  its job: audio arriving, or an absent device being retried. Only a thread stuck inside a driver (a read
  or open that never returns) or a dead one is not live: that a restart may fix, an unplugged microphone
  it cannot.

Why pyalsaaudio (``alsaaudio``) and not sounddevice: both install and run here (pyalsaaudio 0.11 builds
against Debian's libasound2-dev; sounddevice 0.5 loads Debian's PortAudio 19.6). pyalsaaudio is a thin
binding over libasound itself: it opens any PCM name as ALSA resolves it at that moment (so a microphone
plugged in later is just the next ``snd_pcm_open``), reports the format ALSA actually negotiated, and
returns ``EPIPE`` to us so xruns are counted where they happen. PortAudio enumerates devices once at
initialisation (a device that appears later needs the whole library re-initialised for the process),
runs its own callback thread and buffering on top of ALSA, and folds xruns into a status flag: a second
real-time layer that this thread, the ring and the back-off would have to work around.

Threading: one capture thread per object; :meth:`read` is for one consumer thread; :meth:`stats`,
:meth:`start` and :meth:`stop` may be called from any thread. The state-change callback runs on the
capture thread: keep it short (log, publish a health flag).
"""

from __future__ import annotations

import errno
import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_assistant.audio.frontend import SAMPLE_RATE_HZ, Resampler
from edge_assistant.audio.ring import RingBuffer
from edge_assistant.core.config import AudioSettings

log = logging.getLogger(__name__)

STARTING = "starting"
RUNNING = "running"
RECONNECTING = "reconnecting"
STOPPED = "stopped"
#: Every value of :attr:`CaptureStats.state`.
STATES = (STARTING, RUNNING, RECONNECTING, STOPPED)

#: ALSA sample formats the capture decodes: numpy dtype and full-scale value.
_FORMATS = {"S16_LE": ("<i2", 32768.0), "S32_LE": ("<i4", 2147483648.0)}
#: ALSA periods in the device buffer: 4 x chunk_ms (320 ms at 80 ms) that the capture thread may lag
#: behind the device before an xrun.
_PERIODS = 4


@dataclass(frozen=True)
class CaptureStats:
    """A snapshot of the capture's health (:meth:`MicrophoneCapture.stats`)."""

    state: str
    """One of ``starting``, ``running``, ``reconnecting``, ``stopped``."""
    device: str
    """The ALSA PCM name."""
    samples_captured: int
    """16 kHz samples written into the ring since :meth:`MicrophoneCapture.start` (dropped ones included)."""
    samples_delivered: int
    """16 kHz samples returned by :meth:`MicrophoneCapture.read`."""
    buffered_samples: int
    """16 kHz samples waiting in the ring now."""
    overruns: int
    """Writes into the full ring that dropped the oldest audio (the consumer fell behind)."""
    overrun_samples: int
    """16 kHz samples dropped by those overruns."""
    xruns: int
    """ALSA overruns (EPIPE): the capture thread fell behind the device; recovered by re-preparing."""
    reconnects: int
    """Times the PCM was opened again after a failed open or a lost device."""
    failed_opens: int
    """Failed attempts to open the PCM since :meth:`MicrophoneCapture.start`."""
    retry_delay_s: float
    """While reconnecting: the back-off before the next attempt; 0 otherwise."""
    last_error: str | None
    """The last error text (open failure, device error, stall); kept after recovery."""
    last_chunk_monotonic_s: float | None
    """``time.monotonic()`` when the last audio arrived from ALSA; None before the first."""
    device_rate_hz: int | None
    """The rate ALSA negotiated (None until opened)."""
    device_channels: int | None
    device_format: str | None
    thread_cpu_s: float
    """CPU seconds the capture thread has used."""
    snapshot_monotonic_s: float
    """``time.monotonic()`` when this snapshot was taken."""

    @property
    def last_chunk_age_s(self) -> float | None:
        """Seconds from the last audio chunk to this snapshot; None before the first chunk."""
        if self.last_chunk_monotonic_s is None:
            return None
        return self.snapshot_monotonic_s - self.last_chunk_monotonic_s


class _DeviceLost(Exception):
    """The PCM cannot be opened, failed or stopped delivering audio; the message says how."""

    def __init__(self, message: str, got_audio: bool = False) -> None:
        super().__init__(message)
        self.got_audio = got_audio


def _import_alsaaudio() -> Any:
    try:
        import alsaaudio
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise _DeviceLost(
            f"the ALSA binding is not installed ({exc}): apt-get install libasound2-dev, then "
            "pip install pyalsaaudio (it is a dependency of edge-assistant on Linux)"
        ) from exc
    return alsaaudio


class _Converter:
    """Interleaved S16_LE/S32_LE frames at the device rate -> int16 mono at 16 kHz."""

    def __init__(self, rate_hz: int, channels: int, sample_format: str) -> None:
        self.rate_hz, self.channels, self.sample_format = rate_hz, channels, sample_format
        dtype, full_scale = _FORMATS[sample_format]
        self._dtype = np.dtype(dtype)
        self._scale = np.float32(1.0 / (full_scale * channels))
        self._resampler = Resampler(rate_hz, SAMPLE_RATE_HZ) if rate_hz != SAMPLE_RATE_HZ else None

    def __call__(self, data: bytes) -> np.ndarray:
        x = np.frombuffer(data, dtype=self._dtype)
        if self.channels > 1:
            x = x[: x.size - x.size % self.channels].reshape(-1, self.channels)
            mono = x.sum(axis=1, dtype=np.float32)  # mean: scaled by 1/channels below
        else:
            mono = x.astype(np.float32)
        mono *= self._scale
        y = self._resampler.process(mono) if self._resampler is not None else mono
        y *= np.float32(32768.0)
        np.rint(y, out=y)
        np.clip(y, -32768.0, 32767.0, out=y)
        return y.astype(np.int16)

    def close(self) -> None:
        if self._resampler is not None:
            self._resampler.close()


def convert_stream(data: bytes, rate_hz: int, channels: int = 1, sample_format: str = "S16_LE") -> np.ndarray:
    """What the capture makes of one stream of interleaved frames: int16 mono at 16 kHz, sample for sample (the
    conversion does not depend on how the frames are cut, so a recording may come in one piece)."""
    if sample_format not in _FORMATS:
        raise ValueError(f"sample format {sample_format!r}: expected one of {', '.join(_FORMATS)}")
    convert = _Converter(rate_hz, channels, sample_format)
    try:
        return convert(data)
    finally:
        convert.close()


class MicrophoneCapture:
    """Capture from an ALSA PCM in a thread; :meth:`read` returns 16 kHz int16 mono.

    ``settings`` gives the PCM, rate, channels, format, chunk and ring size; ``device`` overrides
    ``settings.device``. ``on_state_change(stats)`` is called on the capture thread at every state
    change with the snapshot taken at that moment. Back-off, poll and stall times are in seconds.
    """

    def __init__(
        self,
        settings: AudioSettings,
        device: str | None = None,
        *,
        on_state_change: Callable[[CaptureStats], None] | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        poll_timeout_s: float = 0.1,
        stall_timeout_s: float = 5.0,
    ) -> None:
        if not 0.0 < backoff_initial_s <= backoff_max_s:
            raise ValueError(f"MicrophoneCapture: need 0 < backoff_initial_s <= backoff_max_s, got "
                             f"{backoff_initial_s} and {backoff_max_s}")
        if poll_timeout_s <= 0 or stall_timeout_s <= poll_timeout_s:
            raise ValueError(f"MicrophoneCapture: need 0 < poll_timeout_s < stall_timeout_s, got "
                             f"{poll_timeout_s} and {stall_timeout_s}")
        self.settings = settings
        self.device = device or settings.device
        self.chunk_samples = round(settings.chunk_ms * SAMPLE_RATE_HZ / 1000.0)
        """16 kHz samples per :meth:`read` (80 ms -> 1280)."""
        self._on_state_change = on_state_change
        self._backoff_initial_s = float(backoff_initial_s)
        self._backoff_max_s = float(backoff_max_s)
        self._poll_timeout_s = float(poll_timeout_s)
        self._stall_timeout_s = float(stall_timeout_s)
        self._ring = RingBuffer(max(round(settings.ring_buffer_s * SAMPLE_RATE_HZ), self.chunk_samples))
        self._ring.close()  # read() before start() returns at once
        self._lock = threading.Lock()  # guards the counters below and the state
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = STOPPED
        self._reset_counters()

    # ------------------------------------------------------------------ public API
    def start(self) -> None:
        """Start the capture thread (returns at once; opening happens on the thread). No-op if running.

        Raises RuntimeError if an earlier :meth:`stop` timed out and that thread has not ended yet.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                if self._stop_event.is_set():
                    raise RuntimeError(f"MicrophoneCapture({self.device!r}): the previous capture thread "
                                       "has not ended yet (stuck in ALSA); cannot start again")
                return
            self._stop_event.clear()
            self._reset_counters()
            self._ring.clear()
            self._ring.reopen()
            self._thread = threading.Thread(target=self._run, name=f"mic-capture[{self.device}]", daemon=True)
        self._set_state(STARTING)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop capturing and join the thread (idempotent; waits at most ``timeout_s``).

        Returns True when the thread has ended. False only if it is stuck inside the ALSA library (a
        driver that does not return); it is a daemon thread and is left behind. Audio still in the ring
        can be read afterwards; reads no longer wait.
        """
        self._stop_event.set()
        self._ring.close()
        thread = self._thread
        ended = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)
            ended = not thread.is_alive()
            if not ended:
                log.error("capture thread for %s did not end within %.1f s (stuck in ALSA); left behind",
                          self.device, timeout_s)
        if ended:
            self._set_state(STOPPED)
        return ended

    def read(self, timeout_s: float | None = None, max_samples: int | None = None) -> np.ndarray | None:
        """The oldest captured audio, int16 16 kHz mono.

        Waits up to ``timeout_s`` (None: until audio or :meth:`stop`) for a whole chunk
        (:attr:`chunk_samples`); returns up to ``max_samples`` (default one chunk), fewer if the wait
        ended first, or None if nothing was captured meanwhile.
        """
        out = self._ring.read(self.chunk_samples, timeout_s, max_samples)
        if out is not None:
            with self._lock:
                self._delivered += out.size
        return out

    def stats(self) -> CaptureStats:
        """A consistent snapshot of the counters and the state."""
        with self._lock:
            return self._snapshot()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def __enter__(self) -> MicrophoneCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def live_window_s(self) -> float:
        """Longest the capture thread goes without progress while it works: a back-off wait at most, or the
        stall timeout (after which a silent device is dropped and retried), plus a stall timeout of margin."""
        return max(self._backoff_max_s, self._stall_timeout_s) + self._stall_timeout_s

    def is_live(self, now_s: float | None = None) -> bool:
        """True while the capture thread makes progress: audio arrived, a state changed or an open was
        attempted within :attr:`live_window_s`. An absent microphone being retried is live; a thread stuck in
        ALSA (a read or open that never returns), an ended thread or a stopped capture is not."""
        thread = self._thread
        if thread is None or not thread.is_alive() or self._stop_event.is_set():
            return False
        now = time.monotonic() if now_s is None else now_s
        with self._lock:
            return now - self._progress_s <= self.live_window_s

    # ------------------------------------------------------------------ internals
    def _reset_counters(self) -> None:
        self._captured = self._delivered = 0
        self._xruns = self._reconnects = self._failed_opens = 0
        self._retry_delay_s = 0.0
        self._last_error: str | None = None
        self._last_chunk: float | None = None
        self._device_params: tuple[int, int, str] | None = None
        self._cpu_s = 0.0
        self._progress_s = time.monotonic()  # last audio, state change or open attempt (is_live)
        self._ring_base = (self._ring.overruns, self._ring.overrun_samples)

    def _snapshot(self) -> CaptureStats:
        params = self._device_params
        return CaptureStats(
            state=self._state,
            device=self.device,
            samples_captured=self._captured,
            samples_delivered=self._delivered,
            buffered_samples=len(self._ring),
            overruns=self._ring.overruns - self._ring_base[0],
            overrun_samples=self._ring.overrun_samples - self._ring_base[1],
            xruns=self._xruns,
            reconnects=self._reconnects,
            failed_opens=self._failed_opens,
            retry_delay_s=self._retry_delay_s if self._state == RECONNECTING else 0.0,
            last_error=self._last_error,
            last_chunk_monotonic_s=self._last_chunk,
            device_rate_hz=params[0] if params else None,
            device_channels=params[1] if params else None,
            device_format=params[2] if params else None,
            thread_cpu_s=self._cpu_s,
            snapshot_monotonic_s=time.monotonic(),
        )

    def _set_state(self, state: str, error: str | None = None, retry_delay_s: float = 0.0,
                   failed_open: bool = False) -> None:
        with self._lock:  # one lock: a snapshot never sees a count without its matching delay
            old = self._state
            self._progress_s = time.monotonic()
            if error is not None:
                self._last_error = error
            self._retry_delay_s = retry_delay_s
            self._failed_opens += failed_open
            if state == old:
                if state == RECONNECTING:
                    log.debug("microphone %s: %s; next attempt in %.2f s", self.device, error, retry_delay_s)
                return
            if old == RECONNECTING and state == RUNNING:
                self._reconnects += 1
            self._state = state
            snap = self._snapshot()
        if state == RECONNECTING:
            log.warning("microphone %s: %s; retrying (back-off %.1f s doubling to %.1f s)",
                        self.device, snap.last_error, retry_delay_s, self._backoff_max_s)
        elif state == RUNNING:
            p = self._device_params
            how = f" after {snap.failed_opens} failed attempt(s)" if old == RECONNECTING else ""
            log.info("microphone %s: capturing %s, %d Hz, %d channel(s)%s", self.device,
                     p[2] if p else "?", p[0] if p else 0, p[1] if p else 0, how)
        else:
            log.info("microphone %s: %s", self.device, state)
        if self._on_state_change is not None:
            try:
                self._on_state_change(snap)
            except Exception:  # a broken callback must not kill capture
                log.exception("microphone %s: state-change callback failed", self.device)

    def _run(self) -> None:
        attempts = 0  # failed opens / losses in the current outage: drives the back-off
        try:
            while not self._stop_event.is_set():
                with self._lock:
                    self._progress_s = time.monotonic()
                try:
                    pcm, conv = self._open()
                except Exception as exc:  # _DeviceLost, or anything unexpected from the binding
                    if not isinstance(exc, _DeviceLost):
                        log.exception("microphone %s: opening failed", self.device)
                    attempts += 1
                    delay = min(self._backoff_initial_s * 2.0 ** (attempts - 1), self._backoff_max_s)
                    self._set_state(RECONNECTING, str(exc), delay, failed_open=True)
                    self._stop_event.wait(delay)
                    continue
                try:
                    self._set_state(RUNNING)
                    got_audio = self._pump(pcm, conv)
                    error = None
                except _DeviceLost as exc:
                    got_audio, error = exc.got_audio, str(exc)
                except Exception as exc:  # a bug rather than the device: keep its traceback, keep capturing
                    log.exception("microphone %s: capture failed", self.device)
                    got_audio, error = False, f"capture failed: {exc!r}"
                finally:
                    _close_quietly(pcm)
                    conv.close()
                if error is None:  # stopped
                    break
                attempts = 1 if got_audio else attempts + 1
                delay = min(self._backoff_initial_s * 2.0 ** (attempts - 1), self._backoff_max_s)
                self._set_state(RECONNECTING, error, delay)
                self._stop_event.wait(delay)
        except Exception as exc:  # never let the thread die silently
            log.exception("microphone %s: capture thread failed", self.device)
            with self._lock:
                self._last_error = f"capture thread failed: {exc!r}"
        finally:
            self._ring.close()
            self._set_state(STOPPED)

    def _open(self) -> tuple[Any, _Converter]:
        alsaaudio = _import_alsaaudio()
        s = self.settings
        fmt = getattr(alsaaudio, f"PCM_FORMAT_{s.sample_format}")
        try:
            pcm = alsaaudio.PCM(type=alsaaudio.PCM_CAPTURE, mode=alsaaudio.PCM_NONBLOCK, device=self.device,
                                rate=s.sample_rate_hz, channels=s.channels, format=fmt,
                                periodsize=s.chunk_frames, periods=_PERIODS)
        except alsaaudio.ALSAAudioError as exc:
            raise _DeviceLost(f"cannot open ALSA PCM {self.device!r}: {exc}") from exc
        try:
            info = pcm.info()
            rate, channels, fmt_name = int(info["rate"]), int(info["channels"]), str(info["format_name"])
            if fmt_name not in _FORMATS:
                raise _DeviceLost(f"ALSA PCM {self.device!r} gives {fmt_name} samples; expected "
                                  f"{' or '.join(_FORMATS)} (audio.sample_format is {s.sample_format})")
            try:
                conv = _Converter(rate, channels, fmt_name)
            except ValueError as exc:
                raise _DeviceLost(f"ALSA PCM {self.device!r} runs at {rate} Hz: {exc}") from exc
        except BaseException:
            _close_quietly(pcm)
            raise
        if (rate, channels, fmt_name) != (s.sample_rate_hz, s.channels, s.sample_format):
            log.warning("microphone %s: asked for %s %d Hz %d ch, ALSA gives %s %d Hz %d ch; converting",
                        self.device, s.sample_format, s.sample_rate_hz, s.channels, fmt_name, rate, channels)
        with self._lock:
            self._device_params = (rate, channels, fmt_name)
        return pcm, conv

    def _pump(self, pcm: Any, conv: _Converter) -> bool:
        """Read until stopped (returns whether audio arrived) or the device fails (raises _DeviceLost)."""
        alsaaudio = _import_alsaaudio()
        poller = select.poll()
        for fd, mask in pcm.polldescriptors():
            poller.register(fd, mask)
        poll_ms = max(1, round(self._poll_timeout_s * 1000))
        got_audio = False
        spurious = 0  # polls that woke without data following
        last_data = time.monotonic()
        ring = self._ring
        while not self._stop_event.is_set():
            try:
                n, data = pcm.read()
            except alsaaudio.ALSAAudioError as exc:
                raise _DeviceLost(f"ALSA PCM {self.device!r} failed: {exc}", got_audio) from exc
            if n < 0:  # -EPIPE: overrun inside ALSA; pyalsaaudio has prepared the stream again
                with self._lock:
                    self._xruns += 1
                    xruns = self._xruns
                if xruns == 1 or xruns % 100 == 0:  # the count is in stats(); the log only samples it
                    log.warning("microphone %s: ALSA overrun (%s), %d so far; audio was lost and capture goes on",
                                self.device, "EPIPE" if n == -errno.EPIPE else n, xruns)
                continue
            if n == 0:  # nothing yet (EAGAIN): wait for the device, but never longer than poll_ms
                if time.monotonic() - last_data > self._stall_timeout_s:
                    raise _DeviceLost(f"no audio from ALSA PCM {self.device!r} for "
                                      f"{self._stall_timeout_s:.1f} s", got_audio)
                if spurious >= 2:  # a plugin whose descriptor stays ready without data: do not spin
                    self._stop_event.wait(0.005)
                elif poller.poll(poll_ms):
                    spurious += 1
                continue
            spurious = 0
            y = conv(data)
            ring.write(y)
            now = time.monotonic()
            last_data = now
            got_audio = True
            cpu = time.thread_time()
            with self._lock:
                self._captured += y.size
                self._last_chunk = self._progress_s = now
                self._cpu_s = cpu
        return got_audio


def _close_quietly(pcm: Any) -> None:
    try:
        pcm.close()
    except Exception as exc:  # closing a lost device may fail; nothing else to do
        log.debug("closing PCM failed: %s", exc)


__all__ = ["MicrophoneCapture", "CaptureStats", "convert_stream", "STATES", "STARTING", "RUNNING", "RECONNECTING",
           "STOPPED"]
