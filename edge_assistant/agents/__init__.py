"""Agents: a matched intent (typed slots) in, an answer that names the values it used and their age, out."""

from edge_assistant.agents.base import Agent, AgentAnswer, ValueUsed

__all__ = ["Agent", "AgentAnswer", "ValueUsed"]
