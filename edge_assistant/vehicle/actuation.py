"""Comfort actuation: a VSS actuator request (path, value) becomes a command frame on the vehicle bus, and the
car's own status frames confirm it (closed loop).

Policy, in this order, for every request (each one is logged, whatever its outcome):

1. **Nothing that moves the car**, by design: gear, drive motor, accelerator, brakes, steering, driver
   assistance (:data:`DENIED`) are refused with the reason, and a mapping file listing such a path as an
   actuator is refused when it is loaded. Doors, trunk and bonnet (:data:`GUARDED_WHILE_MOVING`) are refused
   while the car moves or its speed is unknown.
2. Only the actuators the vehicle's mapping file lists (its ``"actuators"`` section) can be set; anything else
   is ``unsupported``.
3. The value must have the actuator's type (on/off or a number) and lie in the DBC range of its command signal;
   numbers are rounded to the signal's resolution.
4. At most ``max_per_window`` requests per path in ``window_s`` seconds (a voice loop or a stuck button must
   not flood the bus).

The request is then encoded through the DBC (cantools) into the command frame, sent with ``send`` and the
:class:`~edge_assistant.core.state.VehicleState` is watched for a fresh reading of the same VSS path (decoded
from the ECU's status frame) that equals the request, for up to ``confirm_timeout_s``.

Mapping file section (next to ``"signals"``)::

    "actuators": [
      {"vss": "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", "message": "HU_ComfortCmd",
       "signal": "DriverTempRequest"}
    ]

A command signal inside a multiplexed message is sent with the multiplexer value the DBC gives it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_assistant.core.errors import ConfigError
from edge_assistant.core.state import SignalReading, VehicleState
from edge_assistant.vehicle.dbc import LoadedDbc

log = logging.getLogger(__name__)

#: VSS branches that move the car: never actuated, whatever a mapping file says (prefix -> reason).
DENIED: tuple[tuple[str, str], ...] = (
    ("Vehicle.Powertrain.Transmission.", "selecting a gear would move the car"),
    ("Vehicle.Powertrain.ElectricMotor.", "the drive motor moves the car"),
    ("Vehicle.Powertrain.CombustionEngine.", "the engine moves the car"),
    ("Vehicle.Chassis.Accelerator.", "the accelerator moves the car"),
    ("Vehicle.Chassis.Brake.", "braking is left to the driver"),
    ("Vehicle.Chassis.ParkingBrake.", "the parking brake holds the car"),
    ("Vehicle.Chassis.SteeringWheel.", "steering is left to the driver"),
    ("Vehicle.ADAS.", "driver assistance is not switched by voice"),
    ("Vehicle.Speed", "the car's speed is the driver's"),
)
#: VSS branches that are refused while the car moves (or its speed is unknown).
GUARDED_WHILE_MOVING: tuple[str, ...] = ("Vehicle.Cabin.Door.", "Vehicle.Body.Trunk.", "Vehicle.Body.Hood.")
#: Above this speed (km/h) the car counts as moving.
MOVING_KMH = 0.5
#: Oldest speed reading that still says the car stands still.
SPEED_MAX_AGE_S = 2.0

_UNIT_WORDS = {"degC": "degrees", "percent": "%", "km/h": "km/h"}

CONFIRMED = "confirmed"
NOT_CONFIRMED = "not_confirmed"
REFUSED = "refused"
UNSUPPORTED = "unsupported"
OUT_OF_RANGE = "out_of_range"
RATE_LIMITED = "rate_limited"
FAILED = "failed"


def denied_reason(path: str) -> str | None:
    """Why ``path`` is never actuated, or None when it is not a move-the-car function."""
    for prefix, reason in DENIED:
        if path == prefix.rstrip(".") or path.startswith(prefix):
            return reason
    return None


@dataclass(frozen=True)
class ActuatorSpec:
    """One settable VSS actuator: its command signal and what the DBC allows for it."""

    path: str
    message: str  # DBC command message name
    signal: str  # DBC command signal name
    minimum: float
    maximum: float
    resolution: float  # the signal's scale: requests are rounded to it
    offset: float
    is_bool: bool  # a one-bit [0|1] signal: the value is on/off
    mux: tuple[str, int] | None = None  # (multiplexer signal, value) when the message is multiplexed
    unit: str | None = None

    def quantize(self, value: float) -> float:
        """``value`` rounded to the signal's resolution."""
        steps = round((value - self.offset) / self.resolution)
        return round(steps * self.resolution + self.offset, 9)


@dataclass(frozen=True)
class ActuationResult:
    """What became of one request. ``value`` is the value requested after rounding (None when refused before
    sending); ``confirmed_value`` what the car confirmed; ``reason`` says why it was refused, failed or not
    confirmed."""

    status: str
    path: str
    requested: object
    value: float | bool | None = None
    confirmed_value: object | None = None
    reason: str = ""
    elapsed_s: float = 0.0
    unit: str | None = None
    reported: object | None = None  # not confirmed: what the car still reports (None: nothing)

    @property
    def confirmed(self) -> bool:
        return self.status == CONFIRMED

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def load_actuators(mapping_path: str | Path, dbcs: Iterable[LoadedDbc]) -> dict[str, ActuatorSpec]:
    """The ``"actuators"`` section of a VSS mapping file, checked against the DBC(s): path -> spec.

    Raises :class:`ConfigError` naming the file, the entry and the key: a move-the-car path, a message or
    signal the DBCs do not define, a path listed twice. A file without the section gives ``{}``.
    """
    p = Path(mapping_path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot read the VSS mapping's actuators: {exc}") from exc
    entries = data.get("actuators", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{p}: key 'actuators' must be a list of {{vss, message, signal}} objects")
    messages = {}
    for d in dbcs:
        for m in d.database.messages:
            messages.setdefault(m.name, m)
    out: dict[str, ActuatorSpec] = {}
    for i, e in enumerate(entries):
        where = f"{p}: actuators[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected an object with 'vss', 'message', 'signal'")
        vals = {}
        for key in ("vss", "message", "signal"):
            v = e.get(key)
            if not isinstance(v, str) or not v:
                raise ConfigError(f"{where}: key '{key}' must be a non-empty string, got {v!r}")
            vals[key] = v
        path = vals["vss"]
        if (why := denied_reason(path)) is not None:
            raise ConfigError(f"{where}: key 'vss' is {path}, which is never actuated by design ({why})")
        if path in out:
            raise ConfigError(f"{where}: key 'vss': {path} is listed twice")
        msg = messages.get(vals["message"])
        if msg is None:
            raise ConfigError(f"{where}: key 'message': {vals['message']!r} is in no loaded DBC")
        sig = next((s for s in msg.signals if s.name == vals["signal"]), None)
        if sig is None:
            raise ConfigError(f"{where}: key 'signal': {vals['signal']!r} is not in message {msg.name}")
        lo = sig.minimum if sig.minimum is not None else sig.offset
        hi = sig.maximum if sig.maximum is not None else sig.offset + sig.scale * ((1 << sig.length) - 1)
        mux = None
        if sig.multiplexer_ids:
            mux_sig = next(s for s in msg.signals if s.is_multiplexer)
            mux = (mux_sig.name, int(sig.multiplexer_ids[0]))
        out[path] = ActuatorSpec(path, msg.name, sig.name, float(lo), float(hi), float(sig.scale), float(sig.offset),
                                 sig.length == 1 and lo == 0 and hi == 1, mux, sig.unit or None)
    return out


def encode_command(database, spec: ActuatorSpec, value: float | bool) -> tuple[int, bool, bytes]:
    """(frame id, extended, data) of the command frame setting ``spec`` to ``value`` (pure; cantools encodes)."""
    msg = database.get_message_by_name(spec.message)
    values: dict[str, float | int] = {s.name: 0 for s in msg.signals if not s.multiplexer_ids}
    if spec.mux is not None:
        values[spec.mux[0]] = spec.mux[1]
    values[spec.signal] = int(value) if spec.is_bool else value
    data = msg.encode(values, scaling=True, padding=False, strict=True)
    return msg.frame_id, msg.is_extended_frame, bytes(data)


class Actuator:
    """Sets comfort actuators through the bus and waits for the car to confirm (see the module doc).

    ``send(can.Message)`` puts a frame on the vehicle bus (it may raise); ``state`` is the live state the
    car's status frames are decoded into. ``clock`` (monotonic seconds) drives the rate limit.
    """

    def __init__(self, specs: dict[str, ActuatorSpec], dbcs: Iterable[LoadedDbc], send: Callable[[object], None],
                 state: VehicleState, *, confirm_timeout_s: float = 2.0, max_per_window: int = 5,
                 window_s: float = 60.0, clock: Callable[[], float] = time.monotonic, history: int = 100) -> None:
        self.specs = dict(specs)
        self._dbcs = list(dbcs)
        self._send = send
        self.state = state
        self.confirm_timeout_s = confirm_timeout_s
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # one request on the bus at a time
        #: the latest results, oldest first (also logged)
        self.history: deque[ActuationResult] = deque(maxlen=history)

    def spec(self, path: str) -> ActuatorSpec | None:
        return self.specs.get(path)

    def request(self, path: str, value: float | bool) -> ActuationResult:
        """Set ``path`` to ``value``; returns at the confirmation or after ``confirm_timeout_s``."""
        with self._lock:
            result = self._request(path, value)
        self.history.append(result)
        level = logging.INFO if result.status in (CONFIRMED, REFUSED, UNSUPPORTED) else logging.WARNING
        log.log(level, "actuation %s = %r: %s%s (%.3f s)", path, value, result.status,
                f" ({result.reason})" if result.reason else "", result.elapsed_s)
        return result

    def _refuse(self, status: str, path: str, value: object, reason: str) -> ActuationResult:
        return ActuationResult(status, path, value, reason=reason)

    def _moving(self) -> str | None:
        snap = self.state.snapshot()
        speed = snap.value("Vehicle.Speed")
        if not isinstance(speed, (int, float)) or snap.is_stale("Vehicle.Speed", SPEED_MAX_AGE_S):
            return "the car's speed is unknown, so it may be moving"
        if speed > MOVING_KMH:
            return f"the car is moving ({speed:g} km/h)"
        return None

    def _request(self, path: str, value: float | bool) -> ActuationResult:
        if (why := denied_reason(path)) is not None:
            return self._refuse(REFUSED, path, value, f"{why}; functions that move the car are never actuated")
        if path.startswith(GUARDED_WHILE_MOVING) and (why := self._moving()) is not None:
            return self._refuse(REFUSED, path, value, f"doors, trunk and bonnet stay as they are while {why}"
                                if "unknown" in why else f"doors, trunk and bonnet stay shut: {why}")
        spec = self.specs.get(path)
        if spec is None:
            return self._refuse(UNSUPPORTED, path, value, f"this car offers no actuator for {path}")
        if spec.is_bool:
            if not isinstance(value, bool):
                return self._refuse(OUT_OF_RANGE, path, value, f"{path} is on/off, got {value!r}")
            target: float | bool = value
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                return self._refuse(OUT_OF_RANGE, path, value, f"{path} takes a number, got {value!r}")
            target = spec.quantize(float(value))
            if not spec.minimum <= target <= spec.maximum:
                return self._refuse(OUT_OF_RANGE, path, value,
                                    f"{value:g} is outside {spec.minimum:g} to {spec.maximum:g}"
                                    + (f" {_UNIT_WORDS.get(spec.unit, spec.unit)}" if spec.unit else ""))
        now = self._clock()
        sent = self._sent.setdefault(path, deque())
        while sent and now - sent[0] >= self.window_s:
            sent.popleft()
        if len(sent) >= self.max_per_window:
            return self._refuse(RATE_LIMITED, path, value, f"at most {self.max_per_window} requests for it in "
                                f"{self.window_s:g} s; try again in {self.window_s - (now - sent[0]):.0f} s")
        sent.append(now)
        return self._send_and_confirm(spec, value, target)

    def _send_and_confirm(self, spec: ActuatorSpec, requested: object, target: float | bool) -> ActuationResult:
        import can

        db = next(d.database for d in self._dbcs if any(m.name == spec.message for m in d.database.messages))
        frame_id, ext, data = encode_command(db, spec, target)
        seen = threading.Event()
        got: list[object] = []
        tol = spec.resolution / 2 + 1e-9

        def matches(v: object) -> bool:
            if spec.is_bool:
                return isinstance(v, (bool, int)) and bool(v) == target
            return isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v - target) <= tol

        def listener(readings: Iterable[SignalReading]) -> None:
            for r in readings:
                if r.path == spec.path and matches(r.value):
                    got.append(r.value)
                    seen.set()

        remove = self.state.add_listener([spec.path], listener)
        t0 = time.monotonic()
        try:
            try:
                self._send(can.Message(arbitration_id=frame_id, data=data, is_extended_id=ext))
            except Exception as exc:  # noqa: BLE001 - any bus failure is reported, never raised to the agent
                return ActuationResult(FAILED, spec.path, requested, target, reason=f"the bus did not take the "
                                       f"command: {exc}", elapsed_s=time.monotonic() - t0, unit=spec.unit)
            ok = seen.wait(self.confirm_timeout_s)
        finally:
            remove()
        elapsed = time.monotonic() - t0
        if ok:
            return ActuationResult(CONFIRMED, spec.path, requested, target, got[0], elapsed_s=elapsed, unit=spec.unit)
        return ActuationResult(NOT_CONFIRMED, spec.path, requested, target,
                               reason=f"the car did not confirm within {self.confirm_timeout_s:g} s",
                               elapsed_s=elapsed, unit=spec.unit, reported=self.state.snapshot().value(spec.path))
