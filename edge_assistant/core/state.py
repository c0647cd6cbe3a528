"""The vehicle-state snapshot: written by producers (CAN decoding, diagnostics, GNSS), read by agents.

Values are keyed by a COVESA VSS path (``Vehicle.Speed``) or, without a mapping, by the DBC's own
signal name. Each reading keeps the time it was last seen so an answer can say a value is stale.

Time. Live (a bus, a GNSS receiver), the state is given a ``clock``: the clock the producers stamp
readings with (``time.time``: python-can's frame times and the GNSS source's arrival times). "Now" is
then the clock, so when the bus goes silent every value ages. In replay (a log), there is no clock:
"now" is log time, the newest reading's time or what :meth:`VehicleState.set_time` says.

Listeners. :meth:`VehicleState.add_listener` lets a consumer that keeps history (the tyre-pressure
history, the trip computer) be fed on the producer's thread as readings arrive, instead of polling.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)

Value = float | int | str | bool


@dataclass(frozen=True)
class SignalReading:
    """One value as last seen. ``timestamp_s`` is on the producer's clock (bus or log time)."""

    path: str
    value: Value
    unit: str | None
    timestamp_s: float
    source: str  # where it came from, e.g. "can:0x3D5 BMS_SOC" or "obd:01 0D"


#: ``listener(readings)``: the new readings of the paths it listens to, from one update
Listener = Callable[[Sequence[SignalReading]], None]


@dataclass(frozen=True)
class VehicleSnapshot:
    """An immutable view of the state at ``now_s`` (same clock as the readings)."""

    now_s: float
    readings: Mapping[str, SignalReading] = field(default_factory=dict)

    def get(self, path: str) -> SignalReading | None:
        return self.readings.get(path)

    def value(self, path: str, default: Value | None = None) -> Value | None:
        r = self.readings.get(path)
        return default if r is None else r.value

    def age_s(self, path: str) -> float | None:
        """Seconds since ``path`` was last seen, or None if it never was."""
        r = self.readings.get(path)
        return None if r is None else max(0.0, self.now_s - r.timestamp_s)

    def is_stale(self, path: str, max_age_s: float) -> bool:
        age = self.age_s(path)
        return age is None or age > max_age_s

    def __iter__(self) -> Iterator[SignalReading]:
        return iter(self.readings.values())

    def __len__(self) -> int:
        return len(self.readings)


@dataclass
class StateStats:
    """Readings the state refused (a refused reading is never stored) and listener failures."""

    rejected_non_finite: int = 0  #: timestamp NaN or infinite
    rejected_future: int = 0  #: timestamp more than ``future_tolerance_s`` ahead of the clock
    listener_errors: int = 0  #: exceptions raised by listeners (logged, not passed to the producer)

    @property
    def rejected(self) -> int:
        return self.rejected_non_finite + self.rejected_future

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


_LOGGED_LISTENER_ERRORS = 10  # then every 1000th: a listener bug at bus rate must not flood the journal


class VehicleState:
    """Thread-safe store that producers update and agents snapshot.

    ``clock`` (live) supplies "now" for snapshots, and a reading stamped more than
    ``future_tolerance_s`` after it is refused; without a clock (replay) "now" follows the readings and
    :meth:`set_time`. A reading whose timestamp is not finite is always refused. Refusals are counted in
    :attr:`stats` and logged (the first of each kind as a warning).
    """

    def __init__(self, clock: Callable[[], float] | None = None, future_tolerance_s: float = 1.0) -> None:
        if not future_tolerance_s >= 0.0:
            raise ValueError(f"future_tolerance_s {future_tolerance_s}: expected a number >= 0")
        self._lock = threading.Lock()
        self._readings: dict[str, SignalReading] = {}
        self._raw: dict[str, tuple] = {}  # rows from update_many not yet turned into SignalReading
        self._clock = clock
        self.future_tolerance_s = future_tolerance_s
        self._latest_s = 0.0
        self._stats = StateStats()
        self._listeners: tuple[tuple[frozenset[str], Listener], ...] = ()
        self._watched: frozenset[str] = frozenset()

    @property
    def stats(self) -> StateStats:
        """A copy of the counters (refused readings, listener errors)."""
        with self._lock:
            return StateStats(**asdict(self._stats))

    @property
    def clock(self) -> Callable[[], float] | None:
        """The live clock, or None when "now" follows log time."""
        return self._clock

    # ---- producers ---------------------------------------------------------------------------------
    def update(self, path: str, value: Value, unit: str | None, timestamp_s: float, source: str) -> None:
        """Store one reading (refused if its timestamp is not finite or lies in the clock's future)."""
        self.update_many(((path, value, unit, timestamp_s, source),))

    def update_many(self, rows: Iterable[tuple[str, Value, str | None, float, str]]) -> None:
        """Apply a batch of ``(path, value, unit, timestamp_s, source)`` under one lock (decoders batch).

        Rows are kept as tuples and become :class:`SignalReading` objects at the next snapshot, so a
        bus decoder running at bus rate does not allocate one object per signal per frame. Listeners
        of the paths written run afterwards, on this thread, outside the lock.
        """
        latest = -math.inf
        hits: list[tuple] = []
        warnings: list[str] = []
        with self._lock:
            limit = self._clock() + self.future_tolerance_s if self._clock is not None else math.inf
            raw = self._raw
            watched = self._watched
            lowest = -math.inf
            for r in rows:
                ts = r[3]
                if not lowest < ts < limit:  # NaN fails both comparisons
                    self._refuse(r, limit, warnings)
                    continue
                raw[r[0]] = r
                if ts > latest:
                    latest = ts
                if watched and r[0] in watched:
                    hits.append(r)
            if latest > self._latest_s:
                self._latest_s = float(latest)
            listeners = self._listeners
        for text in warnings:
            log.warning("%s", text)
        if hits:
            self._notify(listeners, hits)

    def _refuse(self, row: tuple, limit: float, warnings: list[str]) -> None:
        """Count a refused row (under the lock); the first of each kind is warned about."""
        s = self._stats
        if math.isfinite(row[3]):
            s.rejected_future += 1
            first = s.rejected_future == 1
            why = f"{row[3] - (limit - self.future_tolerance_s):.3f} s ahead of the clock"
        else:
            s.rejected_non_finite += 1
            first = s.rejected_non_finite == 1
            why = "not a finite time"
        if first:
            warnings.append(f"{row[0]} from {row[4]}: timestamp {row[3]} is {why}; reading refused "
                            "(counted in the state's stats, further ones not logged)")

    def set_time(self, now_s: float) -> None:
        """Advance the notion of "now" (for replay without a live clock)."""
        with self._lock:
            self._latest_s = max(self._latest_s, float(now_s))

    # ---- listeners ---------------------------------------------------------------------------------
    def add_listener(self, paths: Iterable[str], listener: Listener) -> Callable[[], None]:
        """Call ``listener(readings)`` after each update that stores any of ``paths``, with the new
        readings of those paths in update order. Returns a function that removes the listener.

        It runs on the producer's thread (bus reader, GNSS reader, replay), after the state's lock is
        released, so it may take a snapshot; keep it quick, and lock what it shares with other threads.
        An exception in it is counted (``stats.listener_errors``) and logged, never passed to the
        producer. Refused readings do not reach it.
        """
        entry = (frozenset(paths), listener)
        with self._lock:
            self._listeners = (*self._listeners, entry)
            self._watched = self._watched | entry[0]

        def remove() -> None:
            with self._lock:
                self._listeners = tuple(e for e in self._listeners if e is not entry)
                self._watched = frozenset().union(*(e[0] for e in self._listeners))

        return remove

    def _notify(self, listeners: tuple[tuple[frozenset[str], Listener], ...], rows: list[tuple]) -> None:
        readings = [SignalReading(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]
        for paths, listener in listeners:
            mine = [r for r in readings if r.path in paths]
            if not mine:
                continue
            try:
                listener(mine)
            except Exception:  # a consumer bug must not break the producer (and the bus thread)
                with self._lock:
                    self._stats.listener_errors += 1
                    n = self._stats.listener_errors
                if n <= _LOGGED_LISTENER_ERRORS or n % 1000 == 0:
                    log.exception("vehicle-state listener %r failed (#%d)", listener, n)

    # ---- readers -----------------------------------------------------------------------------------
    def now_s(self) -> float:
        """"Now": the clock's time, or (replay) the newest reading's time or :meth:`set_time`'s."""
        if self._clock is not None:
            return self._clock()
        with self._lock:
            return self._latest_s

    def snapshot(self, now_s: float | None = None) -> VehicleSnapshot:
        with self._lock:
            if now_s is None:
                now_s = self._clock() if self._clock is not None else self._latest_s
            if self._raw:
                for path, row in self._raw.items():
                    self._readings[path] = SignalReading(row[0], row[1], row[2], float(row[3]), row[4])
                self._raw.clear()
            return VehicleSnapshot(now_s=now_s, readings=dict(self._readings))

    @staticmethod
    def wall_clock() -> float:
        """The live clock: POSIX time, as python-can stamps frames and the GNSS source stamps fixes."""
        return time.time()
