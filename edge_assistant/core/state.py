"""The vehicle-state snapshot: written by producers (CAN decoding, diagnostics, GNSS), read by agents.

Values are keyed by a COVESA VSS path (``Vehicle.Speed``) or, without a mapping, by the DBC's own
signal name. Each reading keeps the time it was last seen so an answer can say a value is stale.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

Value = float | int | str | bool


@dataclass(frozen=True)
class SignalReading:
    """One value as last seen. ``timestamp_s`` is on the producer's clock (bus or log time)."""

    path: str
    value: Value
    unit: str | None
    timestamp_s: float
    source: str  # where it came from, e.g. "can:0x3D5 BMS_SOC" or "obd:01 0D"


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


class VehicleState:
    """Thread-safe store that producers update and agents snapshot.

    ``clock`` supplies "now" for snapshots; during log replay set it to follow log time with
    :meth:`set_time` (the latest update's timestamp is used when no clock is given).
    """

    def __init__(self, clock: callable | None = None) -> None:  # type: ignore[valid-type]
        self._lock = threading.Lock()
        self._readings: dict[str, SignalReading] = {}
        self._raw: dict[str, tuple] = {}  # rows from update_many not yet turned into SignalReading
        self._clock = clock
        self._latest_s = 0.0

    def update(self, path: str, value: Value, unit: str | None, timestamp_s: float, source: str) -> None:
        reading = SignalReading(path, value, unit, float(timestamp_s), source)
        with self._lock:
            self._readings[path] = reading
            self._raw.pop(path, None)
            if timestamp_s > self._latest_s:
                self._latest_s = float(timestamp_s)

    def update_many(self, rows: Iterable[tuple[str, Value, str | None, float, str]]) -> None:
        """Apply a batch of ``(path, value, unit, timestamp_s, source)`` under one lock (decoders batch).

        Rows are kept as tuples and become :class:`SignalReading` objects at the next snapshot, so a
        bus decoder running at bus rate does not allocate one object per signal per frame.
        """
        latest = 0.0
        with self._lock:
            raw = self._raw
            for r in rows:
                raw[r[0]] = r
                if r[3] > latest:
                    latest = r[3]
            if latest > self._latest_s:
                self._latest_s = float(latest)

    def set_time(self, now_s: float) -> None:
        """Advance the notion of "now" (for replay without a live clock)."""
        with self._lock:
            self._latest_s = max(self._latest_s, float(now_s))

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
        return time.time()
