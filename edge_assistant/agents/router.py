"""Picks the agent for an intent: Travel Companion for trips, range and navigation, Car Genius for the car,
its climate and charging; comfort commands go to the comfort agent (which acts on the car) when one is
given. Any other intent (another product's, or ``unknown``) gets an honest "I can't do
that yet"; with a language model (``llm``, off by default) an ``unknown`` request is put to it first, and its
answer, marked as the model's, is used when it gives one in time. The model's answer is only text: it never
reaches the comfort agent or any other agent, so nothing it says acts on the car."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edge_assistant.agents.base import Agent, AgentAnswer
from edge_assistant.intents import Intent
from edge_assistant.intents.matcher import UNKNOWN

if TYPE_CHECKING:
    from edge_assistant.agents.comfort import ComfortAgent
    from edge_assistant.agents.llm import LlmAgent

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

    def __init__(self, car_genius: Agent, travel: Agent | None = None, commands: ComfortAgent | None = None,
                 llm: LlmAgent | None = None) -> None:
        self.car_genius = car_genius
        self.travel = travel
        self.commands = commands  # acts on the car; without it commands get Car Genius' honest "not yet"
        self.llm = llm  # asked about ``unknown`` requests only; None (the default): never

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
            if self.llm is not None and intent.name == UNKNOWN:
                answered = self.llm.maybe_answer(intent)  # None: no answer in time, the honest one below stands
                if answered is not None:
                    return answered
            heard = intent.text.strip()
            said = f'I heard "{heard}", but I can\'t do that yet. ' if heard else "I did not catch that. "
            return AgentAnswer(text=said + HELP_TEXT, intent=intent.name, agent="router")
        log.debug("intent %s %s -> %s", intent.name, intent.slots, agent.name)
        return agent.answer(intent)
