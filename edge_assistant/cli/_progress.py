"""Progress of long steps: a tqdm bar on a terminal, plain lines otherwise (logs, CI, pipes).

Each step ends with one line saying what it did and how long it took, on a terminal or not.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """One long step. ``update(done, total)`` as work completes; ``finish(what)`` when it is over.

    Without a terminal a line is printed when the step starts, then at most every ``every_s`` seconds
    (and at the end), e.g. ``alexa_car synthesis: 1800/3600 utt (50 %), 61 s``.
    """

    def __init__(self, desc: str, total: int | None = None, unit: str = "it", stream: TextIO | None = None,
                 every_s: float = 15.0, tty: bool | None = None) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.t0 = time.monotonic()
        self.done = 0
        self._last_line = self.t0
        is_tty = self.stream.isatty() if tty is None else tty
        self._bar: Any = None
        if is_tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, leave=False)
        else:
            self._line(f"{desc}: started")

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.t0

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def update(self, done: int, total: int | None = None) -> None:
        """``done`` units of ``total`` are complete (absolute counts, not increments)."""
        self.done = done
        if total is not None:
            self.total = total
        if self._bar is not None:
            if total is not None:
                self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
            return
        now = time.monotonic()
        finished = self.total is not None and done >= self.total
        if finished or now - self._last_line >= self.every_s:
            self._last_line = now
            share = f" ({100 * done / self.total:.0f} %)" if self.total else ""
            of = f"/{self.total}" if self.total else ""
            self._line(f"{self.desc}: {done}{of} {self.unit}{share}, {self.elapsed_s:.0f} s")

    def finish(self, what: str) -> None:
        """Close the bar and say what the step did (``what``) and how long it took."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._line(f"{self.desc}: {what} in {self.elapsed_s:.1f} s")

    def close(self) -> None:
        """Close the bar without a summary (the step failed; its error says why)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # after finish() a no-op; on an error the bar goes and the error speaks
