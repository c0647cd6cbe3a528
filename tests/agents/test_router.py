"""The router hands the matched intent (name and typed slots) to one agent; commands that cannot be
carried out yet, and requests of no agent, are answered honestly."""

from __future__ import annotations

import pytest

from edge_assistant.agents.car_genius import CarGenius
from edge_assistant.agents.router import AgentRouter
from edge_assistant.agents.travel_companion import TravelCompanion
from edge_assistant.core.state import VehicleState
from edge_assistant.intents import Intent, parse

RL = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"


@pytest.fixture()
def router() -> AgentRouter:
    state = VehicleState()
    for w, p in {"Row1.Wheel.Left": 250.0, "Row1.Wheel.Right": 251.0, "Row2.Wheel.Left": 200.0,
                 "Row2.Wheel.Right": 249.0}.items():
        state.update(f"Vehicle.Chassis.Axle.{w}.Tire.Pressure", p, "kPa", state.now_s(), "test")
    return AgentRouter(CarGenius(state), TravelCompanion(state))


@pytest.mark.parametrize(("text", "agent", "said"), [
    ("set the temperature to twenty one degrees", "car_genius",
     "I understood: set the cabin to 21 degrees, but I cannot control the climate yet."),
    ("set the temperature to 70 degrees fahrenheit", "car_genius",
     "I understood: set the cabin to 70 degrees Fahrenheit, but I cannot control the climate yet."),
    ("turn on the passenger seat heating", "car_genius",
     "I understood: turn the passenger seat heating on, but I cannot control the climate yet."),
    ("set the fan to 3", "car_genius", "I understood: set the fan to level 3, but I cannot control the climate yet."),
    ("only charge to 80%", "car_genius",
     "I understood: set the charge limit to 80 %, but I cannot change the charging settings yet."),
    ("navigate to Marienplatz", "travel_companion",
     "I understood: navigate to Marienplatz, but I have no navigation or charger map yet."),
    ("find a 150 kW charger", "travel_companion",
     "I understood: find the nearest 150 kW charger, but I have no navigation or charger map yet."),
])
def test_commands_are_understood_and_not_pretended(router: AgentRouter, text: str, agent: str, said: str) -> None:
    ans = router.answer(parse(text))
    assert (ans.agent, ans.text) == (agent, said)
    assert ans.intent == parse(text).name and not ans.values


def test_agents_read_slots_not_text(router: AgentRouter) -> None:
    """The answer follows the intent's slots: the text is never parsed again."""
    asked = Intent("vehicle.tyres", "something the agent must not read", 1.0, {"wheel": "Row2.Left"})
    ans = router.answer(asked)
    assert ans.agent == "car_genius" and "rear left tyre is low" in ans.text
    fine = router.answer(Intent("vehicle.tyres", "", 1.0, {"wheel": "Row1.Right"}))
    assert "The front right tyre is fine" in fine.text
    trip = router.answer(Intent("vehicle.range", "", 1.0, {"place": "Munich"}))
    assert trip.agent == "travel_companion" and trip.intent == "travel.make_it"
    assert trip.text.startswith("I have no map, so I do not know how far Munich is.")


def test_a_named_trouble_code_is_explained(router: AgentRouter) -> None:
    ans = router.answer(parse("what does code P0AA6 mean"))
    assert ans.agent == "car_genius" and ans.text.startswith("P0AA6: ")
    spoken = router.answer(parse("what does the code P zero four two zero mean"))  # digits said one by one
    assert spoken.text.startswith("P0420: ")
    bad = router.answer(Intent("vehicle.warnings", "", 1.0, {"code": "banana"}))
    assert "BANANA, which is not a trouble code I can read" in bad.text


@pytest.mark.parametrize("text", ["play some jazz", "make me a coffee", ""])
def test_requests_no_agent_takes_get_an_honest_answer(router: AgentRouter, text: str) -> None:
    ans = router.answer(parse(text))
    assert ans.agent == "router" and ans.intent == "unknown"
    assert ("can't do that yet" in ans.text) if text else ans.text.startswith("I did not catch that.")


def test_without_travel_companion_travel_intents_are_not_guessed() -> None:
    r = AgentRouter(CarGenius(VehicleState()))
    assert r.answer(parse("where am I")).agent == "router"
    assert r.answer(parse("how much range do I have left")).agent == "car_genius"  # the car's own range


def test_every_car_intent_has_an_agent(router: AgentRouter) -> None:
    from edge_assistant.agents.car_genius import TOPICS
    from edge_assistant.agents.commands import understood
    from edge_assistant.intents import INTENTS

    for name in INTENTS[:-1]:
        intent = Intent(name, "", 1.0)
        assert router.agent_for(intent) is not None, name
        assert name in TOPICS or name.startswith("travel.") or understood(intent) is not None, name
