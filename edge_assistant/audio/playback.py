"""Audio out through ALSA: a playback thread that plays one clip at a time and can be cut off at once.

:class:`Speaker` opens an ALSA playback PCM by name (``default``, ``plughw:CARD=...``, any plugin chain) for
each clip, writes it as S16_LE in short periods from a thread of its own and reports ``started``, then one of
``finished``, ``interrupted`` or ``failed`` through a callback. :meth:`Speaker.play` only queues, so the
pipeline and the responder never wait for the loudspeaker.

* Any rate: the PCM is asked for ``rate_hz``; the clip (16 kHz by default) is resampled with the C front end's
  :class:`~edge_assistant.audio.frontend.Resampler` (delay-compensated :func:`resample`) to the rate ALSA
  grants, and copied to every channel it grants.
* Interruptible: the PCM is non-blocking and waited on with ``poll`` for at most ``poll_ms``; :meth:`stop`
  drops what is queued in ALSA (``snd_pcm_drop``), so the sound ends within a poll interval plus the
  device's own latency, not after the ``periods x period_ms`` buffer has drained.
* The end is known, not guessed: after the clip a buffer of silence keeps the device running while the
  thread waits until the device has consumed every frame of the clip (``avail``), then the silence is dropped.
* A PCM that cannot be opened, or fails while writing, ends the clip as ``failed`` with the error; the next
  clip tries again. Nothing raises into the caller.

Threading: :meth:`play`, :meth:`stop`, :meth:`wait_idle` and :meth:`close` may be called from any thread; the
callback runs on the playback thread: keep it short (queue the event).
"""

from __future__ import annotations

import logging
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_assistant.audio.frontend import SAMPLE_RATE_HZ, resample

log = logging.getLogger(__name__)

STARTED, FINISHED, INTERRUPTED, FAILED = "started", "finished", "interrupted", "failed"
_PCM_STATE_RUNNING = 3  # SND_PCM_STATE_RUNNING (pyalsaaudio returns the plain enum value)


@dataclass(frozen=True)
class PlaybackEvent:
    """One change of a clip's playback: ``state`` is started, finished, interrupted or failed."""

    state: str
    tag: Any
    """What the caller passed to :meth:`Speaker.play` (the reply, for the app)."""
    duration_s: float
    """Length of the clip."""
    played_s: float
    """How much of it the device consumed (0 at ``started``)."""
    error: str | None = None
    device_rate_hz: int | None = None


@dataclass
class PlaybackStats:
    """Counters since the :class:`Speaker` was made."""

    clips: int = 0
    finished: int = 0
    interrupted: int = 0
    failed: int = 0
    underruns: int = 0
    last_error: str | None = None


class _Stop(Exception):
    """Raised inside the playback loop when :meth:`Speaker.stop` or :meth:`Speaker.close` was called."""


class Speaker:
    """Plays int16/float clips on an ALSA PCM from a thread; ``on_event(PlaybackEvent)`` reports each change.

    ``period_ms`` x ``periods`` is the device buffer (the latency of a new clip and of nothing else: stop drops
    it); ``poll_ms`` bounds how long the thread waits for the device between checks for :meth:`stop`.
    """

    def __init__(self, device: str = "default", rate_hz: int = 48000, *,
                 on_event: Callable[[PlaybackEvent], None] | None = None,
                 period_ms: float = 20.0, periods: int = 4, poll_ms: int = 10) -> None:
        if not (period_ms > 0 and periods >= 2 and poll_ms >= 1):
            raise ValueError(f"Speaker: need period_ms > 0, periods >= 2, poll_ms >= 1; got {period_ms}, "
                             f"{periods}, {poll_ms}")
        self.device = device
        self.rate_hz = int(rate_hz)
        self.period_ms = float(period_ms)
        self.periods = int(periods)
        self.poll_ms = int(poll_ms)
        self.stats = PlaybackStats()
        self._on_event = on_event
        self._queue: queue.Queue = queue.Queue()
        self._interrupt = threading.Event()  # ends the clip playing now
        self._closed = threading.Event()
        self._busy = threading.Event()  # a clip is queued or playing
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"speaker[{device}]", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API
    def play(self, samples: np.ndarray, rate_hz: int = SAMPLE_RATE_HZ, tag: Any = None) -> None:
        """Queue a mono clip (int16, or float in [-1, 1]) at ``rate_hz``; returns at once."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"Speaker.play: expected a mono clip (1-D), got shape {x.shape}")
        if self._closed.is_set():
            raise RuntimeError(f"Speaker({self.device!r}) is closed")
        clip = (x.astype(np.float32) / 32768.0) if x.dtype == np.int16 else x.astype(np.float32)
        with self._lock:
            self._pending += 1
            self._busy.set()
        self._queue.put((clip, int(rate_hz), tag))

    def stop(self) -> bool:
        """Cut off the clip playing now and drop the queued ones; True when something was playing or queued."""
        dropped = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            dropped += 1
        with self._lock:
            self._pending -= dropped
            playing = self._pending > 0
            if self._pending == 0:
                self._busy.clear()
            if playing:
                self._interrupt.set()
        return playing or dropped > 0

    @property
    def busy(self) -> bool:
        """A clip is queued or playing; cleared only after the last clip's end (finished, interrupted, failed)
        has been reported, so that :meth:`wait_idle` returning means every event is in."""
        return self._busy.is_set()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued clip has ended; True unless the time ran out."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self._busy.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            time.sleep(0.005 if left is None else min(0.005, left))
        return True

    def close(self, timeout_s: float = 2.0) -> bool:
        """Stop playing and end the thread (idempotent); False if the thread is stuck in ALSA."""
        self._closed.set()
        self.stop()
        self._interrupt.set()
        self._queue.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def __enter__(self) -> Speaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the thread
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            clip, rate_hz, tag = item
            self._interrupt.clear()
            try:
                if not self._closed.is_set():
                    self._play_one(clip, rate_hz, tag)
            except Exception:  # never let the thread die: the next reply should still be spoken
                log.exception("speaker %s: playback failed", self.device)
            finally:
                with self._lock:
                    self._pending = max(0, self._pending - 1)
                    if self._pending == 0:
                        self._busy.clear()

    def _report(self, event: PlaybackEvent) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:  # a broken callback must not stop playback
            log.exception("speaker %s: event callback failed", self.device)

    def _play_one(self, clip: np.ndarray, rate_hz: int, tag: Any) -> None:
        self.stats.clips += 1
        duration_s = clip.size / rate_hz
        try:
            pcm, rate, channels, period = self._open()
        except Exception as exc:  # noqa: BLE001 - a missing device must not end the thread
            self._fail(tag, duration_s, 0.0, f"cannot open ALSA PCM {self.device!r}: {exc}")
            return
        played = 0
        frames = 0
        try:
            data = _to_device(clip, rate_hz, rate, channels)
            frames = data.size // channels
            self._report(PlaybackEvent(STARTED, tag, duration_s, 0.0, device_rate_hz=rate))
            played = self._write_all(pcm, data, channels, period)
        except _Stop:
            played = self._consumed_frames(pcm, frames)
            _drop_quietly(pcm)
            self.stats.interrupted += 1
            log.info("speaker %s: interrupted after %.2f of %.2f s", self.device, played / rate, duration_s)
            self._report(PlaybackEvent(INTERRUPTED, tag, duration_s, played / rate, device_rate_hz=rate))
            return
        except Exception as exc:  # noqa: BLE001 - ALSA errors of a lost device
            self._fail(tag, duration_s, played / rate if rate else 0.0, f"ALSA PCM {self.device!r} failed: {exc}")
            return
        finally:
            _drop_quietly(pcm)
            _close_quietly(pcm)
        self.stats.finished += 1
        self._report(PlaybackEvent(FINISHED, tag, duration_s, frames / rate, device_rate_hz=rate))

    def _fail(self, tag: Any, duration_s: float, played_s: float, error: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = error
        log.warning("speaker %s: %s", self.device, error)
        self._report(PlaybackEvent(FAILED, tag, duration_s, played_s, error=error))

    def _open(self) -> tuple[Any, int, int, int]:
        import alsaaudio

        period = max(1, round(self.period_ms * self.rate_hz / 1000.0))
        pcm = alsaaudio.PCM(type=alsaaudio.PCM_PLAYBACK, mode=alsaaudio.PCM_NONBLOCK, device=self.device,
                            rate=self.rate_hz, channels=1, format=alsaaudio.PCM_FORMAT_S16_LE,
                            periodsize=period, periods=self.periods)
        try:
            info = pcm.info()
            if info["format_name"] != "S16_LE":
                raise RuntimeError(f"ALSA gives {info['format_name']} samples; expected S16_LE (use a plug PCM)")
            rate, channels = int(info["rate"]), int(info["channels"])
            self._buffer_frames = int(info["buffer_size"])
            return pcm, rate, channels, int(info["period_size"])
        except BaseException:
            _close_quietly(pcm)
            raise

    _buffer_frames = 0
    _written = 0

    def _wait(self, poller: select.poll) -> None:
        if self._interrupt.is_set():
            raise _Stop
        poller.poll(self.poll_ms)
        if self._interrupt.is_set():
            raise _Stop

    def _write_all(self, pcm: Any, data: np.ndarray, channels: int, period: int) -> int:
        """Write the clip, then silence until the device has consumed the whole clip; returns frames played."""
        poller = select.poll()
        for fd, mask in pcm.polldescriptors():
            poller.register(fd, mask)
        frames = data.size // channels
        silence = np.zeros(self._buffer_frames * channels, np.int16)
        self._written = 0
        pos = 0
        spins = 0
        while True:
            if self._interrupt.is_set():
                raise _Stop
            if pos < frames:
                chunk = data[pos * channels:(pos + period) * channels]
            elif self._consumed_frames(pcm, frames) >= frames or (
                    self._written > frames and pcm.state() != _PCM_STATE_RUNNING):
                return frames
            else:
                chunk = silence[: period * channels]
            n = pcm.write(chunk.tobytes())
            if n < 0:  # -EPIPE: the device ran dry (underrun); pyalsaaudio prepared it again
                self.stats.underruns += 1
                continue
            if n == 0:  # the buffer is full: wait for room, never longer than poll_ms
                spins += 1
                if spins > 2:  # a plugin whose descriptor stays ready without room: do not spin
                    self._interrupt.wait(self.poll_ms / 1000.0)
                    if self._interrupt.is_set():
                        raise _Stop
                else:
                    self._wait(poller)
                continue
            spins = 0
            self._written += n
            if pos < frames:
                pos += n

    def _consumed_frames(self, pcm: Any, frames: int) -> int:
        """Frames of the clip the device has taken: written minus what still waits in its buffer."""
        try:
            queued = max(0, self._buffer_frames - int(pcm.avail()))
        except Exception:  # noqa: BLE001 - a closed or failed PCM
            queued = 0
        return min(frames, max(0, self._written - queued))


def _to_device(clip: np.ndarray, rate_hz: int, device_rate_hz: int, channels: int) -> np.ndarray:
    """float32 mono at ``rate_hz`` -> interleaved int16 at the device's rate and channel count."""
    x = np.ascontiguousarray(clip, dtype=np.float32)
    if device_rate_hz != rate_hz and x.size:
        x = resample(x, rate_hz, device_rate_hz)  # the C Resampler, its filter delay compensated
    y = np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2")
    return np.repeat(y, channels) if channels > 1 else y


def _drop_quietly(pcm: Any) -> None:
    try:
        pcm.drop()
    except Exception as exc:  # noqa: BLE001 - a lost device
        log.debug("dropping PCM failed: %s", exc)


def _close_quietly(pcm: Any) -> None:
    try:
        pcm.close()
    except Exception as exc:  # noqa: BLE001
        log.debug("closing PCM failed: %s", exc)


__all__ = ["Speaker", "PlaybackEvent", "PlaybackStats", "STARTED", "FINISHED", "INTERRUPTED", "FAILED"]
