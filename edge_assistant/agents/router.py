"""Picks the agent for an intent: Travel Companion for trips, range and navigation, Car Genius for the car,
its climate and charging; comfort commands go to the comfort agent (which acts on the car) when one is
given. Any other intent (another product's, or ``unknown``) gets an honest "I can't do
that yet"."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_assistant.agents.base import Agent, AgentAnswer
from edge_assistant.intents import Intent

if TYPE_CHECKING:
    from edge_assistant.agents.comfort import ComfortAgent

log = logging.getLogger(__name__)

#: Intents the Travel Companion answers besides ``travel.*`` (``vehicle.range``: "how far", "can I make it").
TRAVEL_INTENTS = frozenset({"vehicle.range"})
#: Intent name prefixes per agent.
TRAVEL_PREFIXES = ("travel.", "navigation.")
CAR_PREFIXES = ("vehicle.", "climate.", "charging.")

HELP_TEXT = ("I can tell you about the car: battery and range, tyre pressures, warning lights and trouble "
             "codes, charging, service values, and whether you can make a trip.")


class AgentRouter:
    """``answer(intent)`` routes to one agent; an intent no agent takes gets an honest "I can't do that yet"."""

    def __init__(self, car_genius: Agent, travel: Agent | None = None, commands: ComfortAgent | None = None) -> None:
        self.car_genius = car_genius
        self.travel = travel
        self.commands = commands  # acts on the car; without it commands get Car Genius' honest "not yet"

    def agent_for(self, intent: Intent) -> Agent | None:
        if self.commands is not None and self.commands.handles(intent):
            return self.commands
        if self.travel is not None and (intent.name in TRAVEL_INTENTS or intent.name.startswith(TRAVEL_PREFIXES)):
            return self.travel
        if intent.name.startswith(CAR_PREFIXES):
            return self.car_genius
        return None

    def answer(self, intent: Intent) -> AgentAnswer:
        agent = self.agent_for(intent)
        if agent is None:
            heard = intent.text.strip()
            said = f'I heard "{heard}", but I can\'t do that yet. ' if heard else "I did not catch that. "
            return AgentAnswer(text=said + HELP_TEXT, intent=intent.name, agent="router")
        log.debug("intent %s %s -> %s", intent.name, intent.slots, agent.name)
        return agent.answer(intent)
