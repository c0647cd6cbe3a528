"""Travel Companion: range, "can I make it?", charging stops and charge times, trip statistics, location.

Text in, :class:`~edge_assistant.agents.base.AgentAnswer` out, from the vehicle state (CAN, GNSS) plus a
short history kept by :class:`TripComputer`, which integrates distance (vehicle speed; odometer and GNSS
as fall-backs) and battery energy (pack power, or voltage x current) over time.

Range comes from the car's own estimate when it is present and fresh; otherwise it is estimated as
``SoC x usable capacity / consumption``, where consumption is the trip's recent figure (last
``consumption_window_km``) or, before there is enough trip, the configured rated figure, and the answer
says which. The reserve (``reserve_pct`` of usable capacity) is kept out of every "can I make it" and
every stop plan. Charging time follows a documented model (:func:`charge_time_min`): constant power up to
``taper_start_pct``, then a linear taper of the battery's acceptance to ``taper_end_fraction`` of peak
at 100 %. Every answer names the values it used and their age; stale or missing data is said, never
replaced by a guess.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from edge_assistant.agents.base import Agent, AgentAnswer, SnapshotReader, ValueUsed, age_words
from edge_assistant.agents.commands import command_answer
from edge_assistant.agents.vss import (
    ALT,
    CURRENT,
    FIX_TYPE,
    H_ACC,
    HEADING,
    IS_CHARGING,
    LAT,
    LON,
    NET_CAPACITY,
    ODOMETER,
    PACK_VOLTAGE,
    POWER,
    RANGE,
    SOC,
    SOC_DISPLAYED,
    SPEED,
)
from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import SignalReading, VehicleSnapshot, VehicleState
from edge_assistant.gnss.nmea import haversine_m
from edge_assistant.intents import Intent

log = logging.getLogger(__name__)


LABELS = {
    SOC: "state of charge", SOC_DISPLAYED: "displayed state of charge", RANGE: "car's range estimate",
    SPEED: "speed", POWER: "battery power", PACK_VOLTAGE: "pack voltage", CURRENT: "pack current",
    NET_CAPACITY: "usable battery capacity", ODOMETER: "odometer", IS_CHARGING: "charging", LAT: "latitude",
    LON: "longitude", ALT: "altitude", HEADING: "heading", H_ACC: "position accuracy", FIX_TYPE: "GNSS fix",
}


@dataclass(frozen=True)
class TravelConfig:
    """Vehicle and policy parameters. Defaults describe the demo EV (64 kWh, 7.2 kW on-board charger)."""

    usable_capacity_kwh: float = 64.0  #: energy between 0 % and 100 % SoC (VSS NetCapacity wins if the car sends it)
    reserve_pct: float = 10.0  #: SoC kept in hand at arrival; never planned into
    rated_consumption_kwh_per_100km: float = 17.0  #: used only before the trip gives a figure; said so
    consumption_window_km: float = 20.0  #: recent consumption = energy over the last this many km
    min_trip_km_for_consumption: float = 2.0  #: below this the trip's own figure is too noisy to use
    live_max_age_s: float = 10.0  #: SoC, range, speed, power older than this are stale
    gnss_max_age_s: float = 5.0  #: a position older than this is stale
    max_gap_s: float = 5.0  #: trip integration skips gaps longer than this (counted and reported)
    peak_dc_charge_kw: float = 75.0  #: the battery's acceptance below the taper
    onboard_charger_kw: float = 7.2  #: AC limit of the car's on-board charger
    ac_max_charger_kw: float = 22.0  #: a charger at or below this power is AC (on-board charger limits it)
    taper_start_pct: float = 80.0  #: DC acceptance starts falling here ...
    taper_end_fraction: float = 0.15  #: ... linearly to this fraction of peak at 100 %
    ac_efficiency: float = 0.90  #: plug -> battery
    dc_efficiency: float = 0.95
    charge_stop_target_max_pct: float = 80.0  #: plans charge to at most this at a stop (the taper makes more slow)
    default_charger_kw: float = 50.0  #: charger power assumed when the question names none (said so)
    sample_every_s: float = 1.0  #: the trip computer samples the state at most this often (state's "now")

    def __post_init__(self) -> None:
        for name in ("usable_capacity_kwh", "rated_consumption_kwh_per_100km", "peak_dc_charge_kw",
                     "onboard_charger_kw", "default_charger_kw", "consumption_window_km", "sample_every_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"travel.{name}: {getattr(self, name)}; expected a positive number")
        if not 0 <= self.reserve_pct < self.charge_stop_target_max_pct <= 100:
            raise ConfigError("travel.reserve_pct / charge_stop_target_max_pct: expected 0 <= reserve < target <= 100")
        if not 0 < self.taper_end_fraction <= 1 or not 0 < self.taper_start_pct <= 100:
            raise ConfigError("travel.taper_*: expected 0 < taper_end_fraction <= 1 and 0 < taper_start_pct <= 100")


# ---------------------------------------------------------------------------------------- charging model
def acceptance_kw(soc_pct: float, cfg: TravelConfig) -> float:
    """The battery's DC acceptance at ``soc_pct``: flat, then linear taper from ``taper_start_pct``."""
    if soc_pct <= cfg.taper_start_pct:
        return cfg.peak_dc_charge_kw
    span = max(1e-9, 100.0 - cfg.taper_start_pct)
    frac = 1.0 - (1.0 - cfg.taper_end_fraction) * (soc_pct - cfg.taper_start_pct) / span
    return cfg.peak_dc_charge_kw * max(cfg.taper_end_fraction, frac)


def charge_time_min(from_pct: float, to_pct: float, charger_kw: float, cfg: TravelConfig,
                    capacity_kwh: float | None = None) -> float:
    """Minutes to charge from ``from_pct`` to ``to_pct`` on a ``charger_kw`` charger.

    AC (``charger_kw <= ac_max_charger_kw``): limited by the on-board charger, ``ac_efficiency`` to the
    battery. DC: the charger's power x ``dc_efficiency``, capped by :func:`acceptance_kw` (the taper).
    Integrated in 0.1 % SoC steps.
    """
    if charger_kw <= 0:
        raise ConfigError(f"charger power {charger_kw} kW: expected a positive number")
    cap = capacity_kwh or cfg.usable_capacity_kwh
    lo, hi = max(0.0, from_pct), min(100.0, to_pct)
    if hi <= lo:
        return 0.0
    ac = charger_kw <= cfg.ac_max_charger_kw
    supply = (min(charger_kw, cfg.onboard_charger_kw) * cfg.ac_efficiency) if ac else charger_kw * cfg.dc_efficiency
    step = 0.1
    hours, soc = 0.0, lo
    while soc < hi - 1e-9:
        d = min(step, hi - soc)
        p = min(supply, acceptance_kw(soc + d / 2, cfg))
        hours += cap * d / 100.0 / p
        soc += d
    return hours * 60.0


# ---------------------------------------------------------------------------------------- trip computer
@dataclass(frozen=True)
class TripStats:
    """The trip so far. Distances in km, energy in kWh (net out of the battery, regeneration subtracted)."""

    distance_km: float
    distance_source: str  # "speed", "odometer", "gnss" or "none"
    duration_s: float
    moving_s: float
    energy_kwh: float | None
    energy_source: str  # "power", "voltage x current", "state of charge" or "none"
    soc_used_pct: float | None
    charged_kwh: float
    gaps: int
    gap_s: float
    gnss_distance_km: float
    odometer_km: float | None

    @property
    def avg_speed_moving_kmh(self) -> float | None:
        return self.distance_km / (self.moving_s / 3600.0) if self.moving_s > 0 else None

    @property
    def avg_speed_kmh(self) -> float | None:
        return self.distance_km / (self.duration_s / 3600.0) if self.duration_s > 0 else None

    @property
    def consumption_kwh_per_100km(self) -> float | None:
        return None if self.energy_kwh is None or self.distance_km <= 0 else self.energy_kwh / self.distance_km * 100


#: the readings the trip computer integrates: a change of any of them may take a sample
TRIP_INPUTS = (SPEED, POWER, PACK_VOLTAGE, CURRENT, SOC, ODOMETER, IS_CHARGING, LAT, LON)


class TripComputer:
    """Integrates distance and energy from periodic snapshots (call :meth:`update` about once a second).

    Only fresh readings are integrated; an interval longer than ``max_gap_s`` (lost data, a log cut) is
    skipped and counted. Samples while the car is charging count as energy charged, not consumed.
    """

    def __init__(self, config: TravelConfig | None = None) -> None:
        self.config = config or TravelConfig()
        self._last_t: float | None = None
        self._last_speed: float | None = None
        self._last_power_kw: float | None = None
        self._last_pos: tuple[float, float, float] | None = None  # lat, lon, timestamp of the reading
        self._start_t: float | None = None
        self._start_soc: float | None = None
        self._last_soc: float | None = None
        self._odo_start: float | None = None
        self._odo_last: float | None = None
        self.dist_speed_km = 0.0
        self.dist_gnss_km = 0.0
        self.energy_kwh = 0.0
        self.energy_samples = 0
        self.energy_source = "none"
        self.charged_kwh = 0.0
        self.moving_s = 0.0
        self.active_s = 0.0  # trip time covered by fresh speed readings
        self.last_fresh_t: float | None = None
        self.gaps = 0
        self.gap_s = 0.0
        self._speed_seen = False
        self._trail: deque[tuple[float, float]] = deque(maxlen=100_000)  # (cumulative km, cumulative kWh)

    def _fresh(self, snap: VehicleSnapshot, path: str, max_age_s: float) -> float | None:
        r = snap.get(path)
        if r is None or isinstance(r.value, (str, bool)) or snap.age_s(path) > max_age_s:
            return None
        return float(r.value)

    def _power_kw(self, snap: VehicleSnapshot) -> float | None:
        """Power out of the battery (discharge positive); VSS signs are positive into the battery."""
        age = self.config.live_max_age_s
        p = self._fresh(snap, POWER, age)
        if p is not None:
            self.energy_source = "power"
            return -p / 1000.0
        v, i = self._fresh(snap, PACK_VOLTAGE, age), self._fresh(snap, CURRENT, age)
        if v is not None and i is not None:
            self.energy_source = "voltage x current"
            return -v * i / 1000.0
        return None

    @property
    def last_sample_s(self) -> float | None:
        """The time of the last sample taken, or None before the first."""
        return self._last_t

    def update(self, snap: VehicleSnapshot) -> None:
        """Add one sample at ``snap.now_s``."""
        c = self.config
        t = snap.now_s
        if self._last_t is not None and t <= self._last_t:
            return
        speed = self._fresh(snap, SPEED, c.live_max_age_s)
        power = self._power_kw(snap)
        soc = self._fresh(snap, SOC, c.live_max_age_s)
        odo = self._fresh(snap, ODOMETER, 120.0)
        charging = snap.value(IS_CHARGING) is True and not snap.is_stale(IS_CHARGING, c.live_max_age_s)
        if speed is not None and speed > 0.5 and self._start_t is None:
            self._start_t = self._last_t if self._last_t is not None else t
            self._start_soc = self._last_soc if self._last_soc is not None else soc
            self._odo_start = self._odo_last if self._odo_last is not None else odo
        if self._last_t is not None:
            dt = t - self._last_t
            if dt > c.max_gap_s:
                self.gaps += 1
                self.gap_s += dt
            elif self._start_t is not None or charging:
                if speed is not None and self._last_speed is not None:
                    self.dist_speed_km += (speed + self._last_speed) / 2.0 * dt / 3600.0
                    self._speed_seen = True
                    self.active_s += dt if self._start_t is not None else 0.0
                    if (speed + self._last_speed) / 2.0 > 1.0:
                        self.moving_s += dt
                if power is not None and self._last_power_kw is not None:
                    e = (power + self._last_power_kw) / 2.0 * dt / 3600.0
                    if charging:
                        self.charged_kwh += -e
                    else:
                        self.energy_kwh += e
                        self.energy_samples += 1
        self._gnss(snap)
        self._last_t, self._last_speed, self._last_power_kw = t, speed, power
        if speed is not None or power is not None:
            self.last_fresh_t = t
        if soc is not None:
            self._last_soc = soc
        if odo is not None:
            self._odo_last = odo
        if self._start_t is not None:
            self._trail.append((self.distance_km, self._energy_so_far() or 0.0))

    def _gnss(self, snap: VehicleSnapshot) -> None:
        """Haversine distance between successive fresh fixes, ignoring sub-noise jitter while parked."""
        lat, lon = snap.get(LAT), snap.get(LON)
        if lat is None or lon is None or snap.age_s(LAT) > self.config.gnss_max_age_s:
            return
        pos = (float(lat.value), float(lon.value), lat.timestamp_s)
        if self._last_pos is not None and pos[2] > self._last_pos[2]:
            d_m = haversine_m(self._last_pos[0], self._last_pos[1], pos[0], pos[1])
            dt = pos[2] - self._last_pos[2]
            acc = snap.value(H_ACC)
            jitter = 3.0 * float(acc) if isinstance(acc, (int, float)) else 5.0
            if dt > self.config.max_gap_s and d_m / dt > 70.0:
                return  # a jump across an outage faster than any car: do not count it
            if d_m < jitter and (self._last_speed or 0.0) < 2.0:
                return  # parked: keep the old point so slow drift is not counted as travel
            if self._start_t is not None:
                self.dist_gnss_km += d_m / 1000.0
        self._last_pos = pos

    def _energy_so_far(self) -> float | None:
        if self.energy_samples:
            return self.energy_kwh
        if self._start_soc is not None and self._last_soc is not None:
            return (self._start_soc - self._last_soc) / 100.0 * self.config.usable_capacity_kwh
        return None

    @property
    def distance_km(self) -> float:
        if self._speed_seen:
            return self.dist_speed_km
        if self._odo_start is not None and self._odo_last is not None:
            return max(0.0, self._odo_last - self._odo_start)
        return self.dist_gnss_km

    @property
    def span_s(self) -> tuple[float, float] | None:
        """(first, last) state time the trip computer sampled (POSIX seconds live); None before any sample."""
        return None if self._start_t is None or self._last_t is None else (self._start_t, self._last_t)

    @property
    def soc_span_pct(self) -> tuple[float, float] | None:
        """(first, last) state of charge seen, in %; None when the car never reported one."""
        return None if self._start_soc is None or self._last_soc is None else (self._start_soc, self._last_soc)

    def stats(self) -> TripStats:
        if self._speed_seen:
            dsrc = "speed"
        elif self._odo_start is not None and self._odo_last is not None:
            dsrc = "odometer"
        else:
            dsrc = "gnss" if self.dist_gnss_km > 0 else "none"
        energy = self._energy_so_far()
        esrc = self.energy_source if self.energy_samples else ("state of charge" if energy is not None else "none")
        soc_used = (self._start_soc - self._last_soc) if self._start_soc is not None and self._last_soc is not None else None
        odo = (self._odo_last - self._odo_start) if self._odo_start is not None and self._odo_last is not None else None
        if self._speed_seen:
            duration = self.active_s
        else:
            duration = (self._last_t - self._start_t - self.gap_s) if self._start_t is not None and self._last_t else 0.0
        return TripStats(self.distance_km, dsrc, duration, self.moving_s, energy, esrc, soc_used, self.charged_kwh,
                         self.gaps, self.gap_s, self.dist_gnss_km, odo)

    def recent_consumption_kwh_per_100km(self) -> tuple[float, float] | None:
        """(kWh/100 km, km it covers) over the last ``consumption_window_km``; None on too short a trip."""
        if not self._trail:
            return None
        d_end, e_end = self._trail[-1]
        d0, e0 = self._trail[0]
        for d, e in reversed(self._trail):
            d0, e0 = d, e
            if d_end - d >= self.config.consumption_window_km:
                break
        span = d_end - d0
        if span < self.config.min_trip_km_for_consumption:
            return None
        return (e_end - e0) / span * 100.0, span


# ---------------------------------------------------------------------------------------- routing
#: Intents this agent answers (``travel.*`` from the intent parser, plus range questions).
TRAVEL_INTENTS = ("travel.range", "travel.make_it", "travel.charge_stop", "travel.charge_time", "travel.trip",
                  "travel.location")


def classify(intent: Intent) -> tuple[str, dict[str, object]]:
    """``(travel intent, slots)`` from a parsed intent. ``vehicle.range`` becomes ``travel.make_it`` with a
    distance (or a place) and ``travel.range`` without. Slots: distance_km, power_kw, target_pct, from_pct
    (numbers) and place (text)."""
    slots: dict[str, object] = {k: float(v) for k, v in intent.slots.items()  # type: ignore[arg-type]
                                if k in ("distance_km", "power_kw", "target_pct", "from_pct")}
    if isinstance(intent.slots.get("place"), str):
        slots["place"] = intent.slots["place"]
    if intent.name.startswith("travel."):
        return intent.name, slots
    if intent.name == "vehicle.range":
        return ("travel.make_it" if "distance_km" in slots or "place" in slots else "travel.range"), slots
    return "unknown", slots


# ---------------------------------------------------------------------------------------- answering
def _a(number: float) -> str:
    """The article before a spoken number: "an 11 kW", "an 80 kW", "a 50 kW"."""
    digits = f"{number:.0f}"
    return "an" if digits.startswith("8") or (digits[:2] in ("11", "18") and len(digits) in (2, 5)) else "a"


def _compass(deg: float) -> str:
    names = ["north", "north-east", "east", "south-east", "south", "south-west", "west", "north-west"]
    return names[int(((deg % 360) + 22.5) // 45) % 8]


@dataclass
class _Reader(SnapshotReader):
    """Reads the snapshot for one answer and records every value used, missing or stale."""

    labels: ClassVar[Mapping[str, str]] = LABELS

    def computed(self, path: str, label: str, value: object, unit: str | None, age_s: float) -> None:
        self.used.append(ValueUsed(path, label, value, unit, age_s, False, "trip computer"))

    @staticmethod
    def ok(v: ValueUsed) -> bool:
        return v.age_s is not None and not v.stale and isinstance(v.value, (int, float)) and not isinstance(v.value, bool)

    @staticmethod
    def said(v: ValueUsed, text: str) -> str:
        if v.age_s is None:
            return f"no {v.label} reading"
        return f"{v.label} {text} ({'stale, ' if v.stale else 'read '}{age_words(v.age_s)})"


@dataclass(frozen=True)
class _Estimate:
    total_km: float
    to_reserve_km: float
    method: str  # how total_km was obtained, in words
    soc_pct: float | None
    capacity_kwh: float
    kwh_per_km: float  # consumption consistent with total_km
    consumption_words: str


class TravelCompanion(Agent):
    """The trip planner. ``state`` is a VehicleState or a callable returning a snapshot.

    On a VehicleState the trip computer is fed by the state itself: a listener on :data:`TRIP_INPUTS`
    takes a sample at the state's "now" (the live clock, or log time in replay) whenever one of them
    changes and ``sample_every_s`` has passed since the last sample. With a snapshot callable, call
    :meth:`observe` about once a second instead. :meth:`answer` observes the current snapshot too.
    """

    name = "travel_companion"

    def __init__(self, state: VehicleState | Callable[[], VehicleSnapshot], config: TravelConfig | None = None,
                 trip: TripComputer | None = None) -> None:
        self._state = state
        self.config = config or TravelConfig()
        self.trip = trip or TripComputer(self.config)
        self._trip_lock = threading.Lock()  # the producer's listener samples while answers read
        if isinstance(state, VehicleState):
            state.add_listener(TRIP_INPUTS, self._on_readings)

    @property
    def state(self) -> VehicleState | None:
        """The VehicleState read, or None when reading a snapshot callable."""
        return self._state if isinstance(self._state, VehicleState) else None

    def snapshot(self) -> VehicleSnapshot:
        return self._state.snapshot() if isinstance(self._state, VehicleState) else self._state()

    def observe(self, snap: VehicleSnapshot | None = None) -> None:
        """Give the trip computer a sample at ``snap.now_s`` (default: a new snapshot)."""
        snap = snap or self.snapshot()
        with self._trip_lock:
            self.trip.update(snap)

    def _on_readings(self, readings: Sequence[SignalReading]) -> None:
        """State listener: sample the trip when ``sample_every_s`` has passed on the state's clock."""
        state = self._state
        now = state.now_s()
        last = self.trip.last_sample_s
        if last is None or now - last >= self.config.sample_every_s - 1e-3:  # 1 ms: float steps of log time
            self.observe(state.snapshot(now_s=now))

    def answer(self, intent: Intent, snapshot: VehicleSnapshot | None = None) -> AgentAnswer:
        if (command := command_answer(intent, self.name)) is not None:
            return command
        snap = snapshot or self.snapshot()
        self.observe(snap)
        name, slots = classify(intent)
        rd = _Reader(snap)
        with self._trip_lock:
            return self._answer(name, slots, rd)

    def _answer(self, intent: str, slots: dict[str, object], rd: _Reader) -> AgentAnswer:
        handler = {
            "travel.range": lambda: self._range(rd),
            "travel.make_it": lambda: self._make_it(rd, slots.get("distance_km"), slots.get("place")),
            "travel.charge_stop": lambda: self._charge_stop(rd, slots.get("distance_km"), slots.get("power_kw")),
            "travel.charge_time": lambda: self._charge_time(rd, slots),
            "travel.trip": lambda: self._trip(rd),
            "travel.location": lambda: self._location(rd),
        }.get(intent)
        text = handler() if handler else (
            "I can tell you your range, whether you can make a given distance, where to stop to charge on a "
            "trip, how long a charge takes on a given charger, your trip statistics and where you are.")
        return AgentAnswer(text=text, intent=intent, agent=self.name, values=tuple(rd.used),
                           missing=tuple(dict.fromkeys(rd.missing)), stale=tuple(dict.fromkeys(rd.stale)))

    # ------------------------------------------------------------ estimates
    def _capacity(self, rd: _Reader) -> tuple[float, str]:
        v = rd.get(NET_CAPACITY, 1e12, optional=True)
        if rd.ok(v) and float(v.value) > 0:
            return float(v.value), "the car's usable capacity"
        return self.config.usable_capacity_kwh, "the configured usable capacity"

    def _estimate(self, rd: _Reader) -> _Estimate | None:
        c = self.config
        soc = rd.first_seen((SOC, SOC_DISPLAYED), c.live_max_age_s)
        rng = rd.get(RANGE, c.live_max_age_s)
        cap, _ = self._capacity(rd)
        soc_pct = float(soc.value) if rd.ok(soc) else None
        range_km = None
        if rd.ok(rng):
            range_km = float(rng.value) / 1000.0 if (rng.unit or "m") == "m" else float(rng.value)
        recent = self.trip.recent_consumption_kwh_per_100km()
        if recent is not None and recent[0] > 0:
            cons, words = recent[0], f"{recent[0]:.1f} kWh/100 km over your last {recent[1]:.1f} km"
        elif range_km and soc_pct is not None and range_km > 0:
            cons = soc_pct / 100 * cap / range_km * 100
            words = f"{cons:.1f} kWh/100 km implied by the car's range"
        else:
            cons = c.rated_consumption_kwh_per_100km
            words = f"the rated {cons:.1f} kWh/100 km (no trip figure yet)"
        if range_km is not None:
            total = range_km
            method = f"the car's own range estimate (read {age_words(rng.age_s or 0.0)})"
            if soc_pct and range_km > 0:
                kwh_km = soc_pct / 100 * cap / range_km
                trip = f"; your trip so far: {words}" if recent is not None else ""
                words = f"{kwh_km * 100:.1f} kWh/100 km, the consumption behind the car's estimate{trip}"
            else:
                kwh_km = cons / 100
        elif soc_pct is not None:
            kwh_km = cons / 100
            total = soc_pct / 100 * cap / kwh_km
            why = "the car's range signal is stale" if rng.age_s is not None else "the car sends no range"
            method = f"my estimate, because {why}: {soc_pct:.1f} % of {cap:.0f} kWh at {words}"
        else:
            return None
        reserve_kwh = c.reserve_pct / 100 * cap
        if soc_pct is not None:
            to_reserve = total * max(0.0, soc_pct - c.reserve_pct) / soc_pct if soc_pct > 0 else 0.0
        else:
            to_reserve = max(0.0, total - reserve_kwh / kwh_km)
        return _Estimate(total, to_reserve, method, soc_pct, cap, kwh_km, words)

    def _cannot(self, rd: _Reader, what: str) -> str:
        known = [v for v in rd.used if v.path in (SOC, SOC_DISPLAYED, RANGE) and v.age_s is not None]
        if known:
            last = "; ".join(rd.said(v, self._fmt_value(v)) for v in known)
            return f"I cannot {what}: the data is too old to trust ({last})."
        return f"I cannot {what}: the car sends no state of charge or range that I can read."

    @staticmethod
    def _fmt_value(v: ValueUsed) -> str:
        if v.path == RANGE and isinstance(v.value, (int, float)):
            return f"{float(v.value) / (1000.0 if (v.unit or 'm') == 'm' else 1.0):.0f} km"
        if isinstance(v.value, float):
            return f"{v.value:.1f}" + (" %" if v.unit == "percent" else f" {v.unit or ''}".rstrip())
        return str(v.value)

    # ------------------------------------------------------------ handlers
    def _range(self, rd: _Reader) -> str:
        est = self._estimate(rd)
        if est is None:
            return self._cannot(rd, "tell your range")
        soc = next((v for v in rd.used if v.path in (SOC, SOC_DISPLAYED) and rd.ok(v)), None)
        soc_words = f" at {est.soc_pct:.1f} % state of charge (read {age_words(soc.age_s)})" if soc else ""
        text = (f"About {est.total_km:.0f} km of range{soc_words}, from {est.method}. Keeping a "
                f"{self.config.reserve_pct:.0f} % reserve, plan on {est.to_reserve_km:.0f} km.")
        if est.soc_pct is None:
            soc = next((v for v in rd.used if v.path in (SOC, SOC_DISPLAYED) and v.age_s is not None), None)
            why = f"is stale (read {age_words(soc.age_s)})" if soc else "is not available"
            text += f" The state of charge {why}, so the reserve is converted at {est.consumption_words}."
        return text

    def _make_it(self, rd: _Reader, distance_km: float | None, place: str | None = None) -> str:
        if distance_km is None:
            if place:
                return (f"I have no map, so I do not know how far {place} is. " + self._range(rd)
                        + f" Tell me the distance (e.g. 'can I make it to {place}, 120 km?') and I will check it.")
            return self._range(rd) + " Tell me the distance (e.g. 'can I make it 120 km?') and I will check it."
        est = self._estimate(rd)
        if est is None:
            return self._cannot(rd, f"tell whether you can make {distance_km:.0f} km")
        c = self.config
        basis = f"Range: {est.total_km:.0f} km from {est.method}."
        arrive = None if est.soc_pct is None else est.soc_pct - distance_km * est.kwh_per_km / est.capacity_kwh * 100
        arrive_words = f", arriving with about {arrive:.0f} %" if arrive is not None else ""
        if distance_km <= est.to_reserve_km:
            return (f"Yes. {distance_km:.0f} km is within the {est.to_reserve_km:.0f} km you can drive keeping a "
                    f"{c.reserve_pct:.0f} % reserve ({est.to_reserve_km - distance_km:.0f} km to spare{arrive_words}). "
                    + basis)
        if distance_km <= est.total_km:
            head = (f"Only by using your reserve: {distance_km:.0f} km is more than the {est.to_reserve_km:.0f} km "
                    f"you can drive keeping {c.reserve_pct:.0f} %{arrive_words}. {basis}")
        else:
            head = f"No. {distance_km:.0f} km is more than your range. {basis}"
        return head + " " + self._plan_text(est, distance_km, None)

    def _plan(self, est: _Estimate, distance_km: float, charger_kw: float) -> list[tuple[float, float, float, float]]:
        """Stops as ``(km, arrive %, charge to %, minutes)``; empty when the distance needs none."""
        c = self.config
        if est.soc_pct is None:
            return []
        pct_per_km = est.kwh_per_km / est.capacity_kwh * 100
        pos, soc = 0.0, est.soc_pct
        stops: list[tuple[float, float, float, float]] = []
        for _ in range(30):
            reach = max(0.0, soc - c.reserve_pct) / pct_per_km
            if pos + reach >= distance_km:
                break
            stop_km = pos + reach
            need = c.reserve_pct + (distance_km - stop_km) * pct_per_km
            target = min(c.charge_stop_target_max_pct, math.ceil(need + 2.0))
            stops.append((stop_km, c.reserve_pct, target, charge_time_min(c.reserve_pct, target, charger_kw, c,
                                                                          est.capacity_kwh)))
            pos, soc = stop_km, target
        return stops

    def _plan_text(self, est: _Estimate, distance_km: float, charger_kw: float | None) -> str:
        c = self.config
        if est.soc_pct is None:
            return "Without a state-of-charge reading I cannot plan the charging stops."
        assumed = charger_kw is None
        kw = charger_kw or c.default_charger_kw
        stops = self._plan(est, distance_km, kw)
        if not stops:
            return f"No charging stop is needed for {distance_km:.0f} km."
        parts = [f"For {distance_km:.0f} km you need {len(stops)} charging stop{'s' if len(stops) > 1 else ''} "
                 f"(at {est.consumption_words}):"]
        for i, (km, arrive, to, minutes) in enumerate(stops, 1):
            parts.append(f"{i}. stop by km {km:.0f} (you arrive with {arrive:.0f} %), charge to {to:.0f} %: about "
                         f"{minutes:.0f} min on {_a(kw)} {kw:.0f} kW charger.")
        last_km, _, last_to, _ = stops[-1]
        final = last_to - (distance_km - last_km) * est.kwh_per_km / est.capacity_kwh * 100
        parts.append(f"You reach the destination with about {final:.0f} %.")
        if assumed:
            parts.append(f"I assumed {_a(kw)} {kw:.0f} kW charger; name another power to recompute.")
        parts.append("I have no charger map: choose a charger before each of these kilometre marks.")
        return " ".join(parts)

    def _charge_stop(self, rd: _Reader, distance_km: float | None, charger_kw: float | None) -> str:
        est = self._estimate(rd)
        if est is None:
            return self._cannot(rd, "plan a charging stop")
        if distance_km is None:
            return (f"You should charge within about {est.to_reserve_km:.0f} km, when you reach your "
                    f"{self.config.reserve_pct:.0f} % reserve (range {est.total_km:.0f} km from {est.method}). "
                    "Tell me the trip distance and I will plan the stops.")
        return self._plan_text(est, distance_km, charger_kw)

    def _charge_time(self, rd: _Reader, slots: dict[str, float]) -> str:
        c = self.config
        kw = slots.get("power_kw")
        assumed = kw is None
        kw = kw or c.default_charger_kw
        target = slots.get("target_pct", c.charge_stop_target_max_pct)
        cap, cap_words = self._capacity(rd)
        if "from_pct" in slots:
            start, start_words = slots["from_pct"], f"from {slots['from_pct']:.0f} %"
        else:
            soc = rd.get(SOC, c.live_max_age_s)
            if not rd.ok(soc):
                why = "is stale" if soc.age_s is not None else "is not available"
                return (f"The state of charge {why}, so I cannot say how long a charge takes from now. Ask "
                        f"'how long from 20 % to 80 % on a {kw:.0f} kW charger?'.")
            start, start_words = float(soc.value), rd.said(soc, f"{float(soc.value):.1f} %").replace("state of charge", "from")
        if not 0 <= start < 100 or not 0 < target <= 100:
            return f"I need a start below 100 % and a target up to 100 %; I heard {start:.0f} % to {target:.0f} %."
        if target <= start:
            return f"The battery is already at {start:.0f} %, at or above {target:.0f} %."
        minutes = charge_time_min(start, target, kw, c, cap)
        kind = "AC" if kw <= c.ac_max_charger_kw else "DC"
        text = (f"{start_words.capitalize()} to {target:.0f} % on {_a(kw)} {kw:.0f} kW {kind} charger"
                f"{' (assumed)' if assumed else ''}: about {minutes:.0f} min "
                f"({(target - start) / 100 * cap:.1f} kWh into {cap_words} of {cap:.0f} kWh).")
        if kind == "AC" and kw > c.onboard_charger_kw:
            text += f" The car's {c.onboard_charger_kw:.1f} kW on-board charger is the limit, not the charger."
        if target > c.taper_start_pct:
            part = charge_time_min(max(start, c.taper_start_pct), target, kw, c, cap)
            text += (f" Charging slows above {c.taper_start_pct:.0f} % (the battery tapers from "
                     f"{c.peak_dc_charge_kw:.0f} kW to {c.peak_dc_charge_kw * c.taper_end_fraction:.0f} kW at 100 %): "
                     f"the part above {c.taper_start_pct:.0f} % takes {part:.0f} of those minutes.")
        return text

    def _trip(self, rd: _Reader) -> str:
        s = self.trip.stats()
        age = max(0.0, rd.snap.now_s - (self.trip.last_fresh_t or rd.snap.now_s))
        if s.distance_source == "none" or s.duration_s <= 0:
            return "No trip recorded yet: the car has not moved since I started watching."
        rd.computed("trip.distance", "trip distance", round(s.distance_km, 2), "km", age)
        rd.computed("trip.duration", "trip time", round(s.duration_s, 1), "s", age)
        parts = [f"Trip so far: {s.distance_km:.1f} km (from {s.distance_source}) in {s.duration_s / 60:.0f} min"]
        if s.avg_speed_moving_kmh is not None:
            rd.computed("trip.avg_speed_moving", "average speed while moving", round(s.avg_speed_moving_kmh, 1),
                        "km/h", age)
            parts[0] += (f", average {s.avg_speed_moving_kmh:.0f} km/h while moving "
                         f"({s.avg_speed_kmh:.0f} km/h including stops)")
        parts[0] += "."
        cons = s.consumption_kwh_per_100km
        if s.energy_kwh is not None and cons is not None:
            rd.computed("trip.energy", "trip energy", round(s.energy_kwh, 3), "kWh", age)
            rd.computed("trip.consumption", "trip consumption", round(cons, 2), "kWh/100km", age)
            parts.append(f"Energy used: {s.energy_kwh:.2f} kWh (from {s.energy_source}), "
                         f"{cons:.1f} kWh/100 km.")
        else:
            parts.append("I have no battery power or state-of-charge readings, so I cannot give the consumption.")
        if s.soc_used_pct is not None:
            parts.append(f"State of charge used: {s.soc_used_pct:.1f} %.")
        if s.gnss_distance_km > 0:
            parts.append(f"The GNSS track measures {s.gnss_distance_km:.1f} km.")
        if s.charged_kwh > 0.1:
            parts.append(f"Charged before or during it: {s.charged_kwh:.2f} kWh.")
        if s.gaps:
            parts.append(f"Not counted: {s.gaps} gap{'s' if s.gaps > 1 else ''} in the data ({s.gap_s:.0f} s).")
        if age > self.config.live_max_age_s:
            rd.stale.append("trip data")
            parts.append(f"The last fresh trip data is from {age_words(age)}: the figures stop there.")
        return " ".join(parts)

    def _location(self, rd: _Reader) -> str:
        c = self.config
        lat, lon = rd.get(LAT, c.gnss_max_age_s), rd.get(LON, c.gnss_max_age_s)
        fix = rd.get(FIX_TYPE, c.gnss_max_age_s, optional=True)
        if lat.age_s is None or lon.age_s is None:
            return "I have no GNSS position: no receiver data has arrived."
        pos = (f"{abs(float(lat.value)):.5f}° {'N' if float(lat.value) >= 0 else 'S'}, "
               f"{abs(float(lon.value)):.5f}° {'E' if float(lon.value) >= 0 else 'W'}")
        if lat.stale or lon.stale:
            lost = f" The receiver reports fix {fix.value}." if fix.age_s is not None and fix.value == "NONE" else ""
            return f"The last known position is {pos}, but it was read {age_words(lat.age_s)}, so it is stale.{lost}"
        parts = [f"You are at {pos} (read {age_words(lat.age_s)})"]
        acc = rd.get(H_ACC, c.gnss_max_age_s, optional=True)
        if rd.ok(acc):
            parts[0] += f", within about {float(acc.value):.0f} m"
        parts[0] += "."
        head = rd.get(HEADING, c.gnss_max_age_s, optional=True)
        if rd.ok(head):
            parts.append(f"Heading {float(head.value):.0f}° ({_compass(float(head.value))}).")
        elif head.age_s is not None:
            parts.append(f"No current heading (the course needs movement; the last one was read {age_words(head.age_s)}).")
        alt = rd.get(ALT, c.gnss_max_age_s, optional=True)
        if rd.ok(alt):
            parts.append(f"Altitude {float(alt.value):.0f} m (WGS 84 ellipsoid).")
        return " ".join(parts)


# ---------------------------------------------------------------------------------------- replay glue
def travel_from_log(log_path: str | Path, dbc_paths: Iterable[str | Path] | str | Path,
                    mapping_path: str | Path | None = None, nmea_path: str | Path | None = None,
                    at_s: float | None = None, sample_every_s: float = 1.0,
                    config: TravelConfig | None = None) -> TravelCompanion:
    """Replay a CAN log (and an NMEA log of the same drive) into one state read by the Travel Companion,
    in steps of ``sample_every_s`` of log time (the trip computer samples as the drive unfolds).

    CAN and NMEA share the clock (POSIX seconds: the log's timestamps, the fixes' UTC). ``at_s`` (seconds
    from the first frame) stops the replay there and sets "now" to that time, so values whose frames
    stopped earlier read as stale.
    """
    from edge_assistant.agents.replay import replay_drive

    state = VehicleState()
    agent = TravelCompanion(state, config=config)
    replay_drive(state, log_path, dbc_paths, mapping_path, nmea_path=nmea_path, at_s=at_s, step_s=sample_every_s)
    agent.observe()  # the trip as of the final "now"
    return agent
