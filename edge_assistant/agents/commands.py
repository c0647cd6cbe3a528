"""Commands in words, and the honest answer to those nothing carries out: what was understood, with its
slots, and that it cannot be done. Where the vehicle side can act (climate, fan, seat heating, charge limit),
:class:`~edge_assistant.agents.comfort.ComfortAgent` answers instead, with what the car confirmed; without
it (a replayed log, no actuator) no command is pretended to be done."""

from __future__ import annotations

from edge_assistant.agents.base import AgentAnswer
from edge_assistant.intents import Intent

_SEATS = {"driver": "driver's seat", "passenger": "passenger seat", "rear_left": "rear left seat",
          "rear_right": "rear right seat"}


def _num(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def understood(intent: Intent) -> str | None:
    """The command in words ("set the cabin to 21 degrees"), or None when ``intent`` is no command."""
    s = intent.slots
    kind = intent.name
    if kind == "climate.set_temperature":
        if "temperature" in s:
            unit = "degrees Fahrenheit" if s.get("unit") == "fahrenheit" else "degrees"
            return f"set the cabin to {_num(s['temperature'])} {unit}"
        return "make the cabin " + ("warmer" if s.get("direction") == "up" else "cooler")
    if kind == "climate.seat_heating":
        seat = _SEATS.get(str(s.get("seat")), "seat")
        if "level" in s:
            return f"set the {seat} heating to level {s['level']}"
        return f"turn the {seat} heating {'off' if s.get('state') is False else 'on'}"
    if kind == "climate.fan":
        if "level" in s:
            return f"set the fan to level {s['level']}"
        if "direction" in s:
            return f"turn the fan {s['direction']}"
        return f"turn the fan {'off' if s.get('state') is False else 'on'}"
    if kind == "climate.ac":
        return f"turn the air conditioning {'off' if s.get('state') is False else 'on'}"
    if kind == "climate.defrost":
        return f"defrost the {'rear window' if s.get('window') == 'rear' else 'windscreen'}"
    if kind == "charging.start_stop":
        return "stop charging" if s.get("state") is False else "start charging"
    if kind == "charging.set_limit":
        return f"set the charge limit to {_num(s.get('target_pct'))} %"
    if kind == "navigation.navigate":
        return f"navigate to {s.get('place', 'a place')}"
    if kind == "navigation.charger":
        power = f"{_num(s['power_kw'])} kW " if "power_kw" in s else ""
        return f"find the nearest {power}charger"
    return None


_CANNOT = {"climate": "I cannot control the climate yet", "charging": "I cannot change the charging settings yet",
           "navigation": "I have no navigation or charger map yet"}


def command_answer(intent: Intent, agent: str) -> AgentAnswer | None:
    """The honest answer to a command intent, or None when ``intent`` is not a command."""
    what = understood(intent)
    if what is None:
        return None
    cannot = _CANNOT.get(intent.name.split(".", 1)[0], "I cannot do that yet")
    return AgentAnswer(text=f"I understood: {what}, but {cannot}.", intent=intent.name, agent=agent)
