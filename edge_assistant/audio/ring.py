"""A bounded, thread-safe int16 ring buffer that never blocks its writer.

One writer (the capture thread) and one reader (the pipeline). When a write does not fit, the oldest
samples are dropped to make room (the reader always gets the newest audio) and the loss is counted as
an overrun: one event per write that dropped, plus the number of samples dropped.
"""

from __future__ import annotations

import threading
import time

import numpy as np


class RingBuffer:
    """Fixed-capacity FIFO of int16 samples; ``write`` never waits, ``read`` waits up to a timeout."""

    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples < 1:
            raise ValueError(f"RingBuffer: capacity_samples must be >= 1, got {capacity_samples}")
        self._buf = np.zeros(int(capacity_samples), dtype=np.int16)
        self._start = 0  # index of the oldest sample
        self._size = 0  # samples held
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self.overruns = 0
        """Writes that had to drop old samples."""
        self.overrun_samples = 0
        """Samples dropped, oldest first."""

    @property
    def capacity(self) -> int:
        return self._buf.size

    def __len__(self) -> int:
        with self._cond:
            return self._size

    def write(self, x: np.ndarray) -> int:
        """Append int16 samples; returns how many old samples were dropped to make room (0: none)."""
        n = int(x.size)
        if n == 0:
            return 0
        cap = self._buf.size
        with self._cond:
            dropped = 0
            if n >= cap:  # only the newest `cap` samples can be kept
                dropped = self._size + n - cap
                self._buf[:] = x[n - cap :]
                self._start, self._size = 0, cap
            else:
                free = cap - self._size
                if n > free:
                    dropped = n - free
                    self._start = (self._start + dropped) % cap
                    self._size -= dropped
                end = (self._start + self._size) % cap
                first = min(n, cap - end)
                self._buf[end : end + first] = x[:first]
                if first < n:
                    self._buf[: n - first] = x[first:]
                self._size += n
            if dropped:
                self.overruns += 1
                self.overrun_samples += dropped
            self._cond.notify_all()
            return dropped

    def read(self, want: int, timeout_s: float | None, max_samples: int | None = None) -> np.ndarray | None:
        """Wait until ``want`` samples are held (or ``timeout_s`` passes, or the buffer is closed).

        Returns up to ``max_samples`` (default ``want``) of the oldest samples, fewer if that is all there
        is when the wait ends, or None if there is nothing. ``timeout_s=None`` waits without limit (until
        enough samples or :meth:`close`); ``0`` does not wait.
        """
        if want < 1:
            raise ValueError(f"RingBuffer.read: want must be >= 1, got {want}")
        limit = want if max_samples is None else max(int(max_samples), 1)
        deadline = None if timeout_s is None else time.monotonic() + max(float(timeout_s), 0.0)
        with self._cond:
            while self._size < want and not self._closed:
                if deadline is None:
                    self._cond.wait()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._size == 0:
                return None
            n = min(self._size, limit)
            cap = self._buf.size
            first = min(n, cap - self._start)
            out = np.empty(n, dtype=np.int16)
            out[:first] = self._buf[self._start : self._start + first]
            if first < n:
                out[first:] = self._buf[: n - first]
            self._start = (self._start + n) % cap
            self._size -= n
            return out

    def close(self) -> None:
        """Wake every waiting reader; later reads return what is left, then None, without waiting."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Let reads wait again (after :meth:`close`); the held samples stay."""
        with self._cond:
            self._closed = False

    def clear(self) -> None:
        """Drop everything held (not counted as an overrun)."""
        with self._cond:
            self._start = self._size = 0
