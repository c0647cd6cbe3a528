"""Comfort commands that act on the car: climate set-point, fan, seat heating, A/C, defrost and charge limit
become VSS actuator requests, and the answer says what the car confirmed, that it did not confirm in time, or
why the request was refused. The actuator (bus, DBC, policy) is passed in; this agent never touches the bus.

Levels the grammar speaks in become the percent VSS 4.0 uses: fan level ``n`` of :data:`FAN_LEVELS` is
``n / FAN_LEVELS * 100`` % of ``...Station.Row1.Driver.FanSpeed``, seat-heating level ``n`` of
:data:`SEAT_LEVELS` is ``n / SEAT_LEVELS * 100`` % of ``...Seat.Row1.DriverSide.Heating``. "Warmer"/"cooler"
and "fan up"/"down" move one step from the value the car reports.
"""

from __future__ import annotations

from typing import Protocol

from edge_assistant.agents.base import Agent, AgentAnswer, ValueUsed
from edge_assistant.agents.commands import understood
from edge_assistant.core.state import VehicleState
from edge_assistant.intents import Intent
from edge_assistant.vehicle.actuation import (
    CONFIRMED,
    NOT_CONFIRMED,
    OUT_OF_RANGE,
    RATE_LIMITED,
    REFUSED,
    UNSUPPORTED,
    ActuationResult,
)

TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
FAN = "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed"
AC = "Vehicle.Cabin.HVAC.IsAirConditioningActive"
DEFROST = {"front": "Vehicle.Cabin.HVAC.IsFrontDefrosterActive", "rear": "Vehicle.Cabin.HVAC.IsRearDefrosterActive"}
CHARGE_LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
#: grammar seat -> VSS 4.0 seat (a left-hand-drive car: the driver sits on the left)
SEATS = {"driver": "Row1.DriverSide", "passenger": "Row1.PassengerSide", "rear_left": "Row2.DriverSide",
         "rear_right": "Row2.PassengerSide"}
SEAT_WORDS = {"driver": "driver's seat", "passenger": "passenger seat", "rear_left": "rear left seat",
              "rear_right": "rear right seat"}
FAN_LEVELS = 7
SEAT_LEVELS = 3
SEAT_ON_LEVEL = 2  #: "seat heating on" without a level
FAN_ON_LEVEL = 3  #: "fan on" without a level
TEMP_STEP_C = 1.0  #: "warmer"/"cooler"


class Actuation(Protocol):
    """What this agent needs of the vehicle side: set one VSS actuator and say what the car confirmed."""

    def request(self, path: str, value: float | bool) -> ActuationResult: ...


def _num(v: float) -> str:
    return f"{v:g}"


def _pct(level: int, levels: int) -> int:
    return round(level * 100 / levels)


def _level(pct: float, levels: int) -> int:
    return round(pct * levels / 100)


class ComfortAgent(Agent):
    """Answers comfort commands by acting through ``actuator`` and reading the current set-points from ``state``."""

    name = "comfort"
    INTENTS = frozenset({"climate.set_temperature", "climate.seat_heating", "climate.fan", "climate.ac",
                         "climate.defrost", "charging.set_limit"})

    def __init__(self, state: VehicleState, actuator: Actuation) -> None:
        self.state = state
        self.actuator = actuator

    def handles(self, intent: Intent) -> bool:
        return intent.name in self.INTENTS

    def _current(self, path: str) -> float | None:
        v = self.state.snapshot().value(path)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def _say(self, intent: Intent, text: str, result: ActuationResult | None = None, label: str = "") -> AgentAnswer:
        values: tuple[ValueUsed, ...] = ()
        if result is not None and result.confirmed:
            values = (ValueUsed(result.path, label, result.confirmed_value, result.unit, 0.0, False,
                                source="actuation"),)
        missing = (label,) if result is None and label else ()
        return AgentAnswer(text=text, intent=intent.name, agent=self.name, values=values, missing=missing)

    def answer(self, intent: Intent) -> AgentAnswer:
        s = intent.slots
        what = understood(intent) or intent.name
        kind = intent.name
        if kind == "climate.set_temperature":
            if "temperature" in s:
                t = float(s["temperature"])
                if s.get("unit") == "fahrenheit":
                    t = round((t - 32.0) * 5.0 / 9.0 * 2.0) / 2.0  # the car's 0.5 degree steps
            else:
                cur = self._current(TEMP)
                if cur is None:
                    return self._say(intent, "I cannot tell the current temperature setting, so please say the "
                                             "temperature you want.", label="temperature setting")
                t = cur + (TEMP_STEP_C if s.get("direction") == "up" else -TEMP_STEP_C)
            r = self.actuator.request(TEMP, t)
            done = f"The driver's side is now set to {_num(float(r.confirmed_value))} degrees." if r.confirmed else ""
            return self._result(intent, r, what, done, "temperature setting")
        if kind == "climate.fan":
            if "level" in s:
                level = int(s["level"])
            elif "direction" in s:
                cur = self._current(FAN)
                if cur is None:
                    return self._say(intent, "I cannot tell the fan's current level, so please say a level from 0 "
                                             f"to {FAN_LEVELS}.", label="fan level")
                level = max(0, min(FAN_LEVELS, _level(cur, FAN_LEVELS) + (1 if s["direction"] == "up" else -1)))
            else:
                level = FAN_ON_LEVEL if s.get("state") is not False else 0
            r = self.actuator.request(FAN, _pct(level, FAN_LEVELS))
            done = ""
            if r.confirmed:
                got = _level(float(r.confirmed_value), FAN_LEVELS)
                done = "The fan is now off." if got == 0 else f"The fan is now at level {got} of {FAN_LEVELS}."
            return self._result(intent, r, what, done, "fan level")
        if kind == "climate.seat_heating":
            seat = str(s.get("seat", "driver"))
            level = int(s["level"]) if "level" in s else SEAT_ON_LEVEL if s.get("state") is not False else 0
            r = self.actuator.request(f"Vehicle.Cabin.Seat.{SEATS.get(seat, SEATS['driver'])}.Heating",
                                      _pct(level, SEAT_LEVELS))
            words = SEAT_WORDS.get(seat, "driver's seat")
            done = ""
            if r.confirmed:
                got = _level(float(r.confirmed_value), SEAT_LEVELS)
                done = (f"The {words} heating is now off." if got == 0
                        else f"The {words} heating is now at level {got} of {SEAT_LEVELS}.")
            return self._result(intent, r, what, done, f"{words} heating")
        if kind == "climate.ac":
            on = s.get("state") is not False
            r = self.actuator.request(AC, on)
            done = f"The air conditioning is now {'on' if r.confirmed_value else 'off'}." if r.confirmed else ""
            return self._result(intent, r, what, done, "air conditioning")
        if kind == "climate.defrost":
            window = "rear" if s.get("window") == "rear" else "front"
            r = self.actuator.request(DEFROST[window], True)
            name = "rear window" if window == "rear" else "windscreen"
            return self._result(intent, r, what, f"The {name} defroster is now on." if r.confirmed else "",
                                f"{name} defroster")
        if kind == "charging.set_limit":
            r = self.actuator.request(CHARGE_LIMIT, float(s.get("target_pct", -1)))
            done = f"The charge limit is now {_num(float(r.confirmed_value))} %." if r.confirmed else ""
            return self._result(intent, r, what, done, "charge limit")
        return self._say(intent, f"I understood: {what}, but I cannot do that yet.")

    def _result(self, intent: Intent, r: ActuationResult, what: str, done: str, label: str) -> AgentAnswer:
        if r.status == CONFIRMED:
            text = done
        elif r.status == NOT_CONFIRMED:
            text = f"I asked the car to {what}, but {r.reason}."
        elif r.status == REFUSED:
            text = f"I won't do that: {r.reason}."
        elif r.status == UNSUPPORTED:
            text = f"I understood: {what}, but this car offers me no control for it."
        elif r.status == OUT_OF_RANGE:
            text = f"I can't {what}: {r.reason}."
        elif r.status == RATE_LIMITED:
            text = f"Not now: I sent that too often ({r.reason})."
        else:
            text = f"I could not {what}: {r.reason}."
        return self._say(intent, text, r, label)
