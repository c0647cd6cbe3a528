"""Play a recorded log onto a bus with its original timing (scaled by ``speed``) or as fast as possible.

Timing: frame *i* is due at ``start + (t_i - t_0) / speed`` on the monotonic clock; we sleep until then
(no busy-wait: a spinning thread would hold the GIL and delay the receivers in the same process, and
burn a core on a Pi). Each frame's error (sent - due) is summarised as p50/p99/mean/max in constant
memory, so a ``--loop`` replay can run for days; frames that share a time stamp go out back to back, so
their error includes the time to send the ones before. A loop restarts the log with the clock
continuing, so the period between the last and first frame is one mean gap.

Bad lines in the log are skipped by the reader (warned with file:line); a frame the bus refuses is
counted and logged, and replay goes on. A frame with a non-finite time stamp is skipped and counted; a
jump in log time longer than ``max_gap_s`` (a corrupt time stamp, a logger restarted) is counted as a
discontinuity and played without a wait, so one bad time stamp cannot stall the replay.
"""

from __future__ import annotations

import errno
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TIMING_SAMPLE_SIZE = 1024  #: timing errors kept (a uniform reservoir sample) for the percentiles
MAX_GAP_S = 5.0  #: default longest log-time gap waited out; longer jumps are discontinuities


@dataclass
class ReplayStats:
    """What a replay did, in constant memory however long it runs.

    ``timed_frames``, ``timing_error_sum_s`` and ``timing_error_max_s`` cover every frame sent with
    timing; p50/p99 come from a seeded reservoir sample of ``TIMING_SAMPLE_SIZE`` errors.
    ``discontinuities``: log-time jumps longer than ``max_gap_s``; ``bad_timestamps``: frames skipped
    for a non-finite time stamp.
    """

    frames_sent: int = 0
    send_errors: int = 0
    loops: int = 0
    duration_s: float = 0.0
    discontinuities: int = 0
    bad_timestamps: int = 0
    timed_frames: int = 0
    timing_error_sum_s: float = 0.0
    timing_error_max_s: float = 0.0
    _sample: list[float] = field(default_factory=list, repr=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    def add_timing_error(self, error_s: float) -> None:
        """Record one frame's |sent - due| (reservoir sampling, Vitter's algorithm R)."""
        e = abs(error_s)
        self.timed_frames += 1
        self.timing_error_sum_s += e
        if e > self.timing_error_max_s:
            self.timing_error_max_s = e
        if len(self._sample) < TIMING_SAMPLE_SIZE:
            self._sample.append(e)
        else:
            j = self._rng.randrange(self.timed_frames)
            if j < TIMING_SAMPLE_SIZE:
                self._sample[j] = e

    def timing_error_ms(self) -> dict[str, float]:
        """p50/p99/mean/max of |actual - due| in milliseconds (nothing timed, e.g. max speed: zeros)."""
        if not self.timed_frames:
            return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
        errs = sorted(self._sample)

        def pct(p: float) -> float:
            return errs[min(len(errs) - 1, int(round(p / 100.0 * (len(errs) - 1))))] * 1000.0

        return {"p50": round(pct(50), 4), "p99": round(pct(99), 4),
                "mean": round(self.timing_error_sum_s / self.timed_frames * 1000.0, 4),
                "max": round(self.timing_error_max_s * 1000.0, 4)}

    def as_dict(self) -> dict:
        return {"frames_sent": self.frames_sent, "send_errors": self.send_errors, "loops": self.loops,
                "duration_s": round(self.duration_s, 3), "discontinuities": self.discontinuities,
                "bad_timestamps": self.bad_timestamps, "timing_error_ms": self.timing_error_ms()}


def replay(frames: Callable[[], Iterable] | Iterable, bus, speed: float | None = 1.0, loop: bool = False,
           stop: threading.Event | None = None, on_frame: Callable | None = None,
           max_frames: int | None = None, max_gap_s: float = MAX_GAP_S,
           clock: Callable[[], float] = time.perf_counter,
           wait: Callable[[float], bool] | None = None) -> ReplayStats:
    """Send ``frames`` on ``bus``.

    ``frames`` is an iterable of ``can.Message`` or, for ``loop``, a callable returning a fresh one.
    ``speed`` 1.0 = real time, 2.0 = twice as fast, ``None`` = as fast as possible. ``stop`` ends the
    replay early; ``on_frame(msg)`` is called after each send. The messages' timestamps are not changed.
    ``max_gap_s``: a log-time jump longer than this (either way) is a discontinuity, played without a
    wait. ``clock`` and ``wait(seconds) -> stop?`` (default ``stop.wait``) run the schedule; tests and
    simulations pass a simulated pair.
    """
    import can

    if speed is not None and speed <= 0:
        raise ValueError("speed must be > 0 (or None for as fast as possible)")
    if not max_gap_s > 0:
        raise ValueError("max_gap_s must be > 0")
    if loop and not callable(frames):
        raise ValueError("loop needs a callable returning a fresh iterable of frames")
    stats = ReplayStats()
    stop = stop or threading.Event()
    wait = wait or stop.wait
    start = clock()
    offset_s = 0.0  # log time already played in earlier loops
    mean_gap = 0.0
    while True:
        source = frames() if callable(frames) else frames
        t0 = None
        last_rel = 0.0
        n_this = 0
        for msg in source:
            if stop.is_set() or (max_frames is not None and stats.frames_sent >= max_frames):
                break
            if not math.isfinite(msg.timestamp):
                stats.bad_timestamps += 1
                if stats.bad_timestamps <= 10:
                    log.warning("replay: frame 0x%X has time stamp %r; skipped", msg.arbitration_id,
                                msg.timestamp)
                continue
            if t0 is None:
                t0 = msg.timestamp
            rel = msg.timestamp - t0
            if abs(rel - last_rel) > max_gap_s:  # corrupt time stamp or logger restart: no stall, no burst
                stats.discontinuities += 1
                if stats.discontinuities <= 10:
                    log.warning("replay: log time jumps %.3f s at frame 0x%X (more than %.1f s); "
                                "played on without a wait", rel - last_rel, msg.arbitration_id, max_gap_s)
                t0 += rel - last_rel
                rel = last_rel
            elif rel < last_rel:  # non-monotonic log: keep order, do not go back in time
                rel = last_rel
            last_rel = rel
            if speed is not None:
                due = start + (offset_s + rel) / speed
                delay = due - clock()
                if delay > 0 and wait(delay):
                    break
            try:
                _send(bus, msg)
            except (can.CanError, OSError, ValueError) as exc:
                stats.send_errors += 1
                if stats.send_errors <= 10:
                    log.warning("replay: frame 0x%X at log time %.6f not sent: %s", msg.arbitration_id,
                                msg.timestamp, exc)
                continue
            if speed is not None:
                stats.add_timing_error(clock() - due)  # when the frame left, vs when it was due
            stats.frames_sent += 1
            n_this += 1
            if on_frame is not None:
                on_frame(msg)
        stats.loops += 1
        if n_this > 1:
            mean_gap = last_rel / (n_this - 1)
        offset_s += last_rel + mean_gap
        if not loop or stop.is_set() or n_this == 0 or (max_frames is not None and stats.frames_sent >= max_frames):
            break
    stats.duration_s = clock() - start
    return stats


ENOBUFS_RETRIES = 50  # x 1 ms: a full SocketCAN transmit queue drains at bus speed


def _send(bus, msg) -> None:
    """Send, waiting out ENOBUFS (the kernel's transmit queue is full during a burst) for up to 50 ms."""
    for attempt in range(ENOBUFS_RETRIES + 1):
        try:
            bus.send(msg)
            return
        except Exception as exc:
            code = getattr(exc, "error_code", None) or getattr(exc, "errno", None)
            if attempt == ENOBUFS_RETRIES or not (code == errno.ENOBUFS or "No buffer space" in str(exc)):
                raise
            time.sleep(0.001)


def replay_file(path: str | Path, bus, speed: float | None = 1.0, loop: bool = False,
                stop: threading.Event | None = None, on_frame: Callable | None = None,
                max_gap_s: float = MAX_GAP_S) -> ReplayStats:
    """Replay a log file (any format :func:`~edge_assistant.vehicle.logs.read_log` reads)."""
    from edge_assistant.vehicle.logs import read_log

    read_log(path)  # fail early with a clear error when the file is missing or unreadable
    return replay(lambda: read_log(path), bus, speed=speed, loop=loop, stop=stop, on_frame=on_frame,
                  max_gap_s=max_gap_s)
