"""Car Genius: answers questions about the car from the live vehicle state and its trouble codes.

An :class:`~edge_assistant.intents.Intent` in, :class:`~edge_assistant.agents.base.AgentAnswer` out. Topics: battery and range, tyre pressures
(which wheel is low and how fast it is dropping, from a short history of readings), warning lamps and
trouble codes (explained, with urgency and what to do), charging, service-relevant values. Every answer
names the values it used and how old they are; a value that is missing or older than its freshness
limit is said to be so and never used as if current.

The intent's name picks the topic (:data:`TOPICS`) and its typed slots refine it (``wheel``: the tyre asked
about); the question's text is never re-read. Climate and charging commands are understood but cannot
be carried out yet, and the answer says so (:mod:`edge_assistant.agents.commands`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from edge_assistant.agents.base import Agent, AgentAnswer, SnapshotReader, ValueUsed, age_words
from edge_assistant.agents.commands import command_answer
from edge_assistant.agents.vss import (
    CABIN_TEMP,
    CABLE,
    CELL_V_MAX,
    CELL_V_MIN,
    ENERGY,
    IS_CHARGING,
    LV_VOLTAGE,
    MIL,
    ODOMETER,
    OUTSIDE_TEMP,
    PACK_TEMP,
    PACK_VOLTAGE,
    RANGE,
    SOC,
    SOC_DISPLAYED,
    SPEED,
    TIME_TO_COMPLETE,
    TPMS_LAMP,
)
from edge_assistant.core.state import SignalReading, VehicleSnapshot, VehicleState
from edge_assistant.diagnostics.dtc import SEVERITIES, explain
from edge_assistant.intents import Intent

log = logging.getLogger(__name__)

WHEELS = {
    "front left": "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire",
    "front right": "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire",
    "rear left": "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire",
    "rear right": "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire",
}
TELLTALE_PREFIX = "Vehicle.Private.TellTale."
_WHEEL_OF_PRESSURE = {f"{base}.Pressure": wheel for wheel, base in WHEELS.items()}

LABELS = {
    SOC: "state of charge", SOC_DISPLAYED: "displayed state of charge", RANGE: "estimated range",
    ENERGY: "energy left in the battery", IS_CHARGING: "charging", CABLE: "charging cable connected",
    TIME_TO_COMPLETE: "time to full", PACK_VOLTAGE: "battery pack voltage", PACK_TEMP: "battery temperature",
    CELL_V_MIN: "lowest cell voltage", CELL_V_MAX: "highest cell voltage", LV_VOLTAGE: "12 V battery voltage",
    ODOMETER: "odometer", SPEED: "speed", MIL: "malfunction (check-engine) lamp", TPMS_LAMP: "tyre pressure lamp",
    OUTSIDE_TEMP: "outside temperature", CABIN_TEMP: "cabin temperature",
}


#: physically possible ranges (VSS units); a reading outside is reported, never used as a fact
PLAUSIBLE = {
    SOC: (0.0, 100.0), SOC_DISPLAYED: (0.0, 100.0), RANGE: (0.0, 2_000_000.0), LV_VOLTAGE: (6.0, 18.0),
    PACK_VOLTAGE: (50.0, 1000.0), PACK_TEMP: (-50.0, 100.0), OUTSIDE_TEMP: (-60.0, 70.0),
    CELL_V_MIN: (1.5, 5.0), CELL_V_MAX: (1.5, 5.0), SPEED: (0.0, 400.0), ODOMETER: (0.0, 5_000_000.0),
    **{f"{base}.Pressure": (0.0, 600.0) for base in WHEELS.values()},
}


@dataclass(frozen=True)
class GeniusConfig:
    """Freshness limits and thresholds. Seconds unless the name says otherwise."""

    live_max_age_s: float = 10.0        #: speed, SoC, pressures, lamps: older than this is stale
    slow_max_age_s: float = 120.0       #: odometer, temperatures, 12 V
    dtc_max_age_s: float = 600.0        #: a DTC read-out older than this is stale
    tyre_history_s: float = 900.0       #: window of pressure history for the leak rate
    tyre_min_span_s: float = 60.0       #: need at least this much history to quote a rate
    tyre_low_fraction: float = 0.9      #: below this fraction of the highest tyre = noticeably low
    tyre_leak_kpa_per_min: float = 0.5  #: a drop faster than this is called a leak


@dataclass(frozen=True)
class DtcEntry:
    """One trouble code as read from an ECU."""

    code: str                 # "P0AA6" or "C1614-87"
    status: int | None        # UDS status byte when known
    module: str | None = None
    ecu_id: int | None = None


@dataclass(frozen=True)
class DtcReadout:
    """The result of one DTC read: codes, the time it was read (snapshot clock) and how."""

    entries: tuple[DtcEntry, ...]
    timestamp_s: float
    source: str               # e.g. "UDS 19 02 via udsoncan, ECU 0x7EC"


# ------------------------------------------------------------------------------------ routing
#: edge_assistant.intents names -> Car Genius topics
TOPICS = {
    "vehicle.tyres": "tyres", "vehicle.warnings": "warnings", "vehicle.battery": "battery",
    "vehicle.range": "battery", "vehicle.charging": "charging", "vehicle.service": "service",
    "vehicle.status": "status", "vehicle.speed": "speed", "vehicle.temperature": "temperature",
}
_WHEEL_SLOTS = {"Row1.Left": "front left", "Row1.Right": "front right", "Row2.Left": "rear left",
                "Row2.Right": "rear right"}


def topic(intent: Intent) -> str:
    """The Car Genius topic of ``intent`` (``unknown`` for intents it does not answer)."""
    return TOPICS.get(intent.name, "unknown")


# ------------------------------------------------------------------------------------ helpers
def _fmt(value: object, unit: str | None) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    else:
        text = str(value)
    unit = {"percent": "%", "celsius": "°C", "km/h": "km/h"}.get(unit or "", unit or "")
    return f"{text}{'' if unit in ('', '%', '°C') else ' '}{unit}"


@dataclass
class _Collector(SnapshotReader):
    asked_wheel: str | None = None  # "front left" when the question named a wheel
    asked_code: str | None = None   # "P0AA6" when the question named a trouble code

    labels: ClassVar[Mapping[str, str]] = LABELS
    plausible: ClassVar[Mapping[str, tuple[float, float]]] = PLAUSIBLE

    @staticmethod
    def usable(v: ValueUsed) -> bool:
        """Seen, fresh and physically possible."""
        return v.age_s is not None and not v.stale and v.plausible

    def say(self, v: ValueUsed, value_text: str | None = None) -> str:
        """``62.4 % (read just now)``, or why it cannot be said."""
        if v.age_s is None:
            return f"unknown (no {v.label} reading)"
        text = value_text or _fmt(v.value, v.unit)
        if not v.plausible:
            return (f"{_fmt(v.value, v.unit)}, which is not plausible for the {v.label}, so I am "
                    "not using it (a sensor or mapping problem)")
        if v.stale:
            return f"{text} but that reading is stale ({age_words(v.age_s)})"
        return f"{text} (read {age_words(v.age_s)})"


# ------------------------------------------------------------------------------------ the agent
class CarGenius(Agent):
    """The car expert. ``state`` is a VehicleState (live) or a callable returning a snapshot.

    On a VehicleState the tyre-pressure history is fed by the state itself: a listener records every
    new pressure reading as its frame is decoded (on the producer's thread). With a snapshot callable,
    call :meth:`observe` periodically instead. ``dtcs`` returns the latest :class:`DtcReadout` (or None
    when no read has been done); ``vehicle`` names the per-vehicle DTC table (``demo_ev``, ``kona_ev``
    or a JSON path).
    """

    name = "car_genius"

    def __init__(self, state: VehicleState | Callable[[], VehicleSnapshot],
                 dtcs: Callable[[], DtcReadout | None] | DtcReadout | None = None, vehicle: str | None = None,
                 config: GeniusConfig | None = None) -> None:
        self._state = state
        self._dtcs = dtcs
        self.vehicle = vehicle
        self.config = config or GeniusConfig()
        self._history_lock = threading.Lock()  # the producer's listener appends while answers read
        self._tyre_history: dict[str, deque[tuple[float, float]]] = {w: deque(maxlen=2048) for w in WHEELS}
        if isinstance(state, VehicleState):
            state.add_listener(_WHEEL_OF_PRESSURE, self._on_pressures)

    # ---------------------------------------------------------------- inputs
    @property
    def state(self) -> VehicleState | None:
        """The VehicleState read, or None when reading a snapshot callable."""
        return self._state if isinstance(self._state, VehicleState) else None

    def snapshot(self) -> VehicleSnapshot:
        return self._state.snapshot() if isinstance(self._state, VehicleState) else self._state()

    def set_dtcs(self, dtcs: Callable[[], DtcReadout | None] | DtcReadout | None) -> None:
        """Replace the trouble-code source (a read-out, or a callable returning the latest one)."""
        self._dtcs = dtcs

    def readout(self) -> DtcReadout | None:
        return self._dtcs() if callable(self._dtcs) else self._dtcs

    def observe(self, snap: VehicleSnapshot | None = None) -> None:
        """Record the tyre pressures of ``snap`` (default: a new snapshot). Only needed with a snapshot
        callable: on a VehicleState the listener records each pressure as it arrives."""
        snap = snap or self.snapshot()
        for wheel, base in WHEELS.items():
            r = snap.get(f"{base}.Pressure")
            if r is not None:
                self._record_pressure(wheel, r)

    def _on_pressures(self, readings: Sequence[SignalReading]) -> None:
        """State listener: new tyre-pressure readings."""
        for r in readings:
            self._record_pressure(_WHEEL_OF_PRESSURE[r.path], r)

    def _record_pressure(self, wheel: str, r: SignalReading) -> None:
        if not isinstance(r.value, (int, float)):
            return
        with self._history_lock:
            hist = self._tyre_history[wheel]
            if hist and r.timestamp_s <= hist[-1][0]:
                return
            hist.append((r.timestamp_s, float(r.value)))
            while hist and hist[-1][0] - hist[0][0] > self.config.tyre_history_s:
                hist.popleft()

    def leak_rate_kpa_per_min(self, wheel: str) -> tuple[float, float] | None:
        """(drop rate in kPa/min, seconds of history) by least squares; None without enough history."""
        with self._history_lock:
            hist = list(self._tyre_history[wheel])
        if len(hist) < 3 or hist[-1][0] - hist[0][0] < self.config.tyre_min_span_s:
            return None
        n = len(hist)
        mt = sum(t for t, _ in hist) / n
        mp = sum(p for _, p in hist) / n
        den = sum((t - mt) ** 2 for t, _ in hist)
        if den == 0:
            return None
        slope = sum((t - mt) * (p - mp) for t, p in hist) / den  # kPa per second
        return -slope * 60.0, hist[-1][0] - hist[0][0]

    # ---------------------------------------------------------------- answering
    def answer(self, intent: Intent) -> AgentAnswer:
        if (command := command_answer(intent, self.name)) is not None:
            return command
        name = topic(intent)
        snap = self.snapshot()
        self.observe(snap)
        code = intent.slots.get("code")
        col = _Collector(snap, asked_wheel=_WHEEL_SLOTS.get(str(intent.slots.get("wheel"))),
                         asked_code="".join(str(code).split()).upper() if code else None)
        handler = {
            "tyres": self._tyres, "battery": self._battery, "charging": self._charging,
            "warnings": self._warnings, "service": self._service, "status": self._status,
            "speed": self._speed, "temperature": self._temperature,
        }.get(name)
        if handler is None:
            text = ("I can answer about the battery and range, tyre pressures, warning lamps and trouble codes, "
                    "charging, and service values such as the odometer and the 12 V battery.")
        else:
            text = handler(col)
        return AgentAnswer(text=text, intent=name, agent=self.name, values=tuple(col.used),
                           missing=tuple(dict.fromkeys(col.missing)), stale=tuple(dict.fromkeys(col.stale)),
                           implausible=tuple(dict.fromkeys(col.implausible)))

    # tyres ------------------------------------------------------------
    def _tyres(self, col: _Collector) -> str:
        c = self.config
        pressures: dict[str, ValueUsed] = {}
        flags: dict[str, ValueUsed] = {}
        for wheel, base in WHEELS.items():
            pressures[wheel] = col.get(f"{base}.Pressure", c.live_max_age_s, f"{wheel} tyre pressure")
            flags[wheel] = col.get(f"{base}.IsPressureLow", c.live_max_age_s, f"{wheel} low-pressure flag",
                                   optional=True)
        lamp = col.get(TPMS_LAMP, c.live_max_age_s, optional=True)
        known = {w: v for w, v in pressures.items() if v.age_s is not None}
        if not known:
            return "I have no tyre pressure readings from this car, so I cannot tell which tyre is low."
        fresh = {w: v for w, v in known.items() if col.usable(v)}
        listing = "Tyre pressures: " + ", ".join(f"{w} {col.say(v)}" for w, v in known.items()) + "."
        low = [w for w, f in flags.items() if f.age_s is not None and not f.stale and f.value is True]
        if fresh:
            top = max(float(v.value) for v in fresh.values())
            for w, v in fresh.items():
                if float(v.value) < c.tyre_low_fraction * top and w not in low:
                    low.append(w)
        parts = []
        if lamp.age_s is not None:
            lamp_text = "on" if lamp.value is True else "off"
            lamp_age = f"stale: {age_words(lamp.age_s)}" if lamp.stale else f"read {age_words(lamp.age_s)}"
            parts.append(f"The tyre pressure lamp is {lamp_text} ({lamp_age}).")
        if not fresh:
            parts.append(listing)
            parts.append("All tyre readings are stale, so I cannot say which tyre is low right now."
                         if all(v.stale for v in known.values()) else
                         "No tyre reading is both current and plausible, so I cannot say which tyre is low.")
            return " ".join(parts)
        for w in low:
            v = fresh.get(w) or known[w]
            msg = f"The {w} tyre is low at {_fmt(v.value, v.unit)}"
            others = [float(o.value) for ow, o in fresh.items() if ow != w]
            if others:
                msg += f", {sum(others) / len(others) - float(v.value):.0f} kPa below the average of the others"
            rate = self.leak_rate_kpa_per_min(w)
            if rate is None:
                msg += "; I do not have enough pressure history yet to say how fast it is dropping."
            elif rate[0] >= c.tyre_leak_kpa_per_min:
                msg += (f", and it is dropping about {rate[0]:.1f} kPa per minute (over the last "
                        f"{rate[1] / 60:.0f} min): a leak. Stop at the next safe place, inspect the tyre and "
                        "inflate or change it; do not drive far on it.")
            else:
                msg += (f"; it has been steady over the last {rate[1] / 60:.0f} min (change "
                        f"{-rate[0]:+.1f} kPa/min). Inflate it to the placard pressure soon and watch it.")
            parts.append(msg if msg.endswith(".") else msg + ".")
        asked = col.asked_wheel
        if asked and asked not in low and asked in fresh:
            parts.append(f"The {asked} tyre is fine at {col.say(fresh[asked])}.")
        elif asked and asked not in known:
            parts.append(f"I have no {asked} tyre reading.")
        if not low:
            parts.append("None of the tyres looks low.")
        elif lamp.value is True and not lamp.stale and parts and parts[0].startswith("The tyre pressure lamp is on"):
            # "The lamp is on (read ...): the rear left tyre is low ..."
            parts[0:2] = [parts[0][:-1] + ": t" + parts[1][1:]]
        parts.append(listing)
        return " ".join(parts)

    # battery ----------------------------------------------------------
    def _battery(self, col: _Collector) -> str:
        c = self.config
        soc = col.first_seen((SOC, SOC_DISPLAYED), c.live_max_age_s)
        rng = col.get(RANGE, c.live_max_age_s)
        parts = []
        parts.append(f"The battery is at {col.say(soc)}." if soc.age_s is not None
                     else "I have no state-of-charge reading from this car.")
        if rng.age_s is not None:
            km = float(rng.value) / 1000.0 if (rng.unit or "m") == "m" else float(rng.value)
            parts.append(f"Estimated range: {col.say(rng, f'{km:.0f} km')}.")
        else:
            parts.append("The car does not report a range estimate I can read.")
        energy = col.get(ENERGY, c.live_max_age_s, optional=True)
        if energy.age_s is not None:
            parts.append(f"Energy left: {col.say(energy)}.")
        charging = col.get(IS_CHARGING, c.live_max_age_s, optional=True)
        if charging.age_s is not None and not charging.stale and charging.value is True:
            parts.append("It is charging now.")
        return " ".join(parts)

    # charging ---------------------------------------------------------
    def _charging(self, col: _Collector) -> str:
        c = self.config
        charging = col.get(IS_CHARGING, c.live_max_age_s)
        cable = col.get(CABLE, c.live_max_age_s)
        soc = col.get(SOC, c.live_max_age_s)
        if charging.age_s is None and cable.age_s is None:
            return "I have no charging-state readings from this car."
        parts = []
        if charging.age_s is not None:
            state = "charging" if charging.value is True else "not charging"
            parts.append(f"The car is {col.say(charging, state)}.")
        if cable.age_s is not None:
            parts.append(f"Charging cable: {col.say(cable, 'plugged in' if cable.value is True else 'not plugged in')}.")
        if soc.age_s is not None:
            parts.append(f"Battery at {col.say(soc)}.")
        if charging.value is True and not charging.stale:
            ttc = col.get(TIME_TO_COMPLETE, c.live_max_age_s)
            if ttc.age_s is not None and isinstance(ttc.value, (int, float)):
                parts.append(f"Time to full: {col.say(ttc, f'{float(ttc.value) / 60:.0f} min')}.")
        return " ".join(parts)

    # warnings ---------------------------------------------------------
    def _lamps_on(self, col: _Collector) -> list[str]:
        c = self.config
        on = []
        for path in sorted(col.snap.readings):
            is_lamp = path == MIL or (path.startswith(TELLTALE_PREFIX) and path.endswith(".IsOn"))
            if not is_lamp:
                continue
            label = LABELS.get(path) or path[len(TELLTALE_PREFIX):-len(".IsOn")].replace("Warning", " warning").lower() + " lamp"
            v = col.get(path, c.live_max_age_s, label)
            if v.value is True:
                on.append(f"the {label} ({'stale, ' + age_words(v.age_s) if v.stale else 'seen ' + age_words(v.age_s)})")
        return on

    def _dtc_lines(self, col: _Collector) -> tuple[list[str], str | None]:
        rd = self.readout()
        if rd is None:
            col.missing.append("trouble-code read-out")
            col.used.append(ValueUsed("diag:dtcs", "trouble codes", None, None, None, False))
            return [], "No trouble codes have been read from the car, so I cannot explain any."
        age = max(0.0, col.snap.now_s - rd.timestamp_s)
        stale = age > self.config.dtc_max_age_s
        codes = [e.code + (f" (0x{e.status:02X})" if e.status is not None else "") for e in rd.entries]
        col.used.append(ValueUsed("diag:dtcs", "trouble codes", codes, None, age, stale, rd.source))
        if stale:
            col.stale.append("trouble codes")
        when = f"read {age_words(age)}: {rd.source}" + (", stale" if stale else "")
        if not rd.entries:
            return [], f"No trouble codes are stored ({when})."
        exps = [explain(e.code, e.status, self.vehicle, e.module) for e in rd.entries]
        exps.sort(key=lambda x: -SEVERITIES.index(x.severity))
        lines = [x.text for x in exps]
        head = f"{len(exps)} trouble code{'s' if len(exps) > 1 else ''} ({when}):"
        return lines, head

    def _warnings(self, col: _Collector) -> str:
        parts = []
        if col.asked_code:
            try:
                parts.append(explain(col.asked_code, None, self.vehicle).text)
            except ValueError:  # DataFormatError: not a code
                parts.append(f"I heard code {col.asked_code}, which is not a trouble code I can read (expected "
                             "a letter P, C, B or U and four hex digits, e.g. P0AA6).")
        on = self._lamps_on(col)
        parts.append(("Lamps on: " + "; ".join(on) + ".") if on else "No warning lamp signal I can read is on.")
        lines, head = self._dtc_lines(col)
        if head:
            parts.append(head)
        parts.extend(lines)
        tyre_lamp = any("tyre" in x for x in on)
        if tyre_lamp:
            parts.append("For the tyre lamp, ask me about the tyres: I can say which one is low and how fast it drops.")
        return " ".join(parts)

    # service ----------------------------------------------------------
    def _service(self, col: _Collector) -> str:
        c = self.config
        parts = []
        for path, label in ((ODOMETER, "Odometer"), (LV_VOLTAGE, "12 V battery"), (PACK_TEMP, "Battery temperature")):
            v = col.get(path, c.slow_max_age_s)
            if v.age_s is not None:
                parts.append(f"{label}: {col.say(v)}.")
            else:
                parts.append(f"{label}: no reading.")
        vmin, vmax = col.get(CELL_V_MIN, c.slow_max_age_s), col.get(CELL_V_MAX, c.slow_max_age_s)
        if col.usable(vmin) and col.usable(vmax):
            spread_mv = (float(vmax.value) - float(vmin.value)) * 1000.0
            parts.append(f"Cell voltage spread {spread_mv:.0f} mV ({float(vmin.value):.3f} V to {float(vmax.value):.3f} V)"
                         + (", which is wide: have the battery balanced or checked." if spread_mv > 100
                            else ", which is normal."))
        lv = next((v for v in col.used if v.path == LV_VOLTAGE), None)
        if lv is not None and col.usable(lv) and float(lv.value) < 11.8:
            parts.append("The 12 V battery is low: have it tested or charged.")
        lines, head = self._dtc_lines(col)
        if head:
            parts.append(head)
        parts.extend(lines)
        return " ".join(parts)

    def _speed(self, col: _Collector) -> str:
        v = col.get(SPEED, self.config.live_max_age_s)
        return f"Speed: {col.say(v)}." if v.age_s is not None else "I have no speed reading from this car."

    def _temperature(self, col: _Collector) -> str:
        c = self.config
        parts = []
        out = col.get(OUTSIDE_TEMP, c.slow_max_age_s)
        parts.append(f"Outside: {col.say(out)}." if out.age_s is not None else "I have no outside temperature reading.")
        cabin = col.get(CABIN_TEMP, c.slow_max_age_s, optional=True)
        if cabin.age_s is not None:
            parts.append(f"Cabin: {col.say(cabin)}.")
        pack = col.get(PACK_TEMP, c.slow_max_age_s, optional=True)
        if pack.age_s is not None:
            parts.append(f"Battery: {col.say(pack)}.")
        return " ".join(parts)

    def _status(self, col: _Collector) -> str:
        return " ".join([self._battery(col), self._tyres(col), self._warnings(col)])


# ------------------------------------------------------------------------------------ replay glue
def genius_from_log(log_path: str | Path, dbc_paths: Iterable[str | Path] | str | Path,
                    mapping_path: str | Path | None = None, at_s: float | None = None,
                    dtcs: DtcReadout | Callable[[], DtcReadout | None] | None = None, vehicle: str | None = None,
                    observe_every_s: float = 5.0, config: GeniusConfig | None = None) -> CarGenius:
    """Replay a log into a new VehicleState read by Car Genius, publishing every ``observe_every_s`` of
    log time (so the tyre history gets a point per wheel that often).

    ``at_s`` (seconds from the first frame) stops the replay there and sets "now" to that time, so values
    whose frames stopped earlier (a log cut short) read as stale.
    """
    from edge_assistant.agents.replay import replay_drive

    state = VehicleState()
    genius = CarGenius(state, dtcs=dtcs, vehicle=vehicle, config=config)
    replay_drive(state, log_path, dbc_paths, mapping_path, at_s=at_s, step_s=observe_every_s)
    return genius
