"""Play a recorded log onto a bus with its original timing (scaled by ``speed``) or as fast as possible.

Timing: frame *i* is due at ``start + (t_i - t_0) / speed`` on the monotonic clock; we sleep until then
(no busy-wait: a spinning thread would hold the GIL and delay the receivers in the same process, and
burn a core on a Pi). Each frame's error (sent - due) is recorded and summarised as p50/p99; frames
that share a time stamp go out back to back, so their error includes the time to send the ones before. A loop restarts
the log with the clock continuing, so the period between the last and first frame is one mean gap.

Bad lines in the log are skipped by the reader (warned with file:line); a frame the bus refuses is
counted and logged, and replay goes on.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    """What a replay did. ``timing_errors_s`` holds one entry per frame sent with timing."""

    frames_sent: int = 0
    send_errors: int = 0
    loops: int = 0
    duration_s: float = 0.0
    timing_errors_s: list[float] = field(default_factory=list)

    def timing_error_ms(self) -> dict[str, float]:
        """p50/p99/max of |actual - due| in milliseconds (empty log or max speed: zeros)."""
        errs = sorted(abs(e) for e in self.timing_errors_s)
        if not errs:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}

        def pct(p: float) -> float:
            return errs[min(len(errs) - 1, int(round(p / 100.0 * (len(errs) - 1))))] * 1000.0

        return {"p50": round(pct(50), 4), "p99": round(pct(99), 4), "max": round(errs[-1] * 1000.0, 4)}

    def as_dict(self) -> dict:
        return {"frames_sent": self.frames_sent, "send_errors": self.send_errors, "loops": self.loops,
                "duration_s": round(self.duration_s, 3), "timing_error_ms": self.timing_error_ms()}


def replay(frames: Callable[[], Iterable] | Iterable, bus, speed: float | None = 1.0, loop: bool = False,
           stop: threading.Event | None = None, on_frame: Callable | None = None,
           max_frames: int | None = None) -> ReplayStats:
    """Send ``frames`` on ``bus``.

    ``frames`` is an iterable of ``can.Message`` or, for ``loop``, a callable returning a fresh one.
    ``speed`` 1.0 = real time, 2.0 = twice as fast, ``None`` = as fast as possible. ``stop`` ends the
    replay early; ``on_frame(msg)`` is called after each send. The messages' timestamps are not changed.
    """
    import can

    if speed is not None and speed <= 0:
        raise ValueError("speed must be > 0 (or None for as fast as possible)")
    if loop and not callable(frames):
        raise ValueError("loop needs a callable returning a fresh iterable of frames")
    stats = ReplayStats()
    stop = stop or threading.Event()
    clock = time.perf_counter
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
            if t0 is None:
                t0 = msg.timestamp
            rel = msg.timestamp - t0
            if rel < last_rel:  # non-monotonic log: keep order, do not go back in time
                rel = last_rel
            last_rel = rel
            if speed is not None:
                due = start + (offset_s + rel) / speed
                delay = due - clock()
                if delay > 0 and stop.wait(delay):
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
                stats.timing_errors_s.append(clock() - due)  # when the frame left, vs when it was due
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
                stop: threading.Event | None = None, on_frame: Callable | None = None) -> ReplayStats:
    """Replay a log file (any format :func:`~edge_assistant.vehicle.logs.read_log` reads)."""
    from edge_assistant.vehicle.logs import read_log

    read_log(path)  # fail early with a clear error when the file is missing or unreadable
    return replay(lambda: read_log(path), bus, speed=speed, loop=loop, stop=stop, on_frame=on_frame)
