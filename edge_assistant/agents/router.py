"""Picks the agent for an intent: Travel Companion for trips and range questions, Car Genius for the car."""

from __future__ import annotations

import logging

from edge_assistant.agents.base import Agent, AgentAnswer
from edge_assistant.intents import Intent

log = logging.getLogger(__name__)

#: Intents the Travel Companion answers besides ``travel.*`` (``vehicle.range``: "how far", "can I make it").
TRAVEL_INTENTS = frozenset({"vehicle.range"})

HELP_TEXT = ("I can tell you about the car: battery and range, tyre pressures, warning lights and trouble "
             "codes, charging, service values, and whether you can make a trip.")


class AgentRouter:
    """``answer(intent)`` routes to one agent; an unknown intent gets an honest "I can't help with that"."""

    def __init__(self, car_genius: Agent, travel: Agent | None = None) -> None:
        self.car_genius = car_genius
        self.travel = travel

    def agent_for(self, intent: Intent) -> Agent | None:
        if self.travel is not None and (intent.name in TRAVEL_INTENTS or intent.name.startswith("travel.")):
            return self.travel
        if intent.name.startswith("vehicle."):
            return self.car_genius
        return None

    def answer(self, intent: Intent) -> AgentAnswer:
        agent = self.agent_for(intent)
        if agent is None:
            heard = intent.text.strip()
            said = f'I heard "{heard}", but that is not something I can answer. ' if heard else "I did not catch that. "
            return AgentAnswer(text=said + HELP_TEXT, intent=intent.name, agent="router")
        log.debug("intent %s -> %s", intent.name, agent.name)
        return agent.answer(intent.text)
