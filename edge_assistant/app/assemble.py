"""Builds the stages and agents from a :class:`DeviceConfig`: the one place where they are wired.

``run`` (the device), ``listen`` (a file or stdin) and ``demo`` (the synthesised cabin scene) all build their
assistant here, so the three cannot drift apart in constants or wiring.
"""

from __future__ import annotations

from typing import Any

from edge_assistant.core.config import DeviceConfig


def build_stages(config: DeviceConfig) -> tuple[Any, Any, Any]:
    """(wake-word engine, endpointer, recogniser), every model loaded: a missing or corrupt file fails here.

    The model cache is process-wide (``$EDGE_ASSISTANT_MODELS``, read where each model is resolved); the
    composition root points it at ``paths.model_cache_dir`` so that the configured folder is the one used.
    """
    import os

    from edge_assistant.app.stage_configs import endpoint_config, recognizer_config, wake_engine_config
    from edge_assistant.asr.recognizer import WhisperRecognizer
    from edge_assistant.core.paths import MODELS_ENV
    from edge_assistant.intents import car_matcher
    from edge_assistant.vad.endpoint import Endpointer
    from edge_assistant.wakeword.engine import WakeWordEngine

    os.environ[MODELS_ENV] = str(config.paths.model_cache_dir)
    car_matcher()  # load and warm the grammar now (~0.4 s), not on the first command
    wake = WakeWordEngine(wake_engine_config(config))
    endpointer = Endpointer(endpoint_config(config), listening=False)
    recognizer = WhisperRecognizer(recognizer_config(config))
    return wake, endpointer, recognizer


def build_agents(config: DeviceConfig, vehicle: Any) -> Any:
    """The router over Car Genius and the Travel Companion, both reading ``vehicle.state``; Car Genius takes
    its trouble codes from ``vehicle.poller``; comfort commands act through ``vehicle.actuator`` when it has one;
    with ``[llm]`` enabled, requests the grammar does not cover are put to the language model first."""
    from edge_assistant.agents.car_genius import CarGenius
    from edge_assistant.agents.router import AgentRouter
    from edge_assistant.agents.travel_companion import TravelCompanion
    from edge_assistant.app.stage_configs import llm_config, travel_config

    genius = CarGenius(vehicle.state, dtcs=vehicle.poller.readout, vehicle=config.vehicle.dtc_table)
    travel = TravelCompanion(vehicle.state, travel_config(config))
    actuator = getattr(vehicle, "actuator", None)
    commands = None
    if actuator is not None:
        from edge_assistant.agents.comfort import ComfortAgent

        commands = ComfortAgent(vehicle.state, actuator)
    llm = None
    if (llm_cfg := llm_config(config)) is not None:
        from edge_assistant.agents.llm import LlmAgent

        llm = LlmAgent(vehicle.state, llm_cfg)
    return AgentRouter(genius, travel, commands, llm)


def build_assistant(config: DeviceConfig, stages: tuple[Any, Any, Any], router: Any, *,
                    assistant_config: Any = None, defer_answers: bool = False,
                    judge_in_background: bool = False) -> Any:
    """The :class:`~edge_assistant.pipeline.Assistant` over ``stages`` (from :func:`build_stages`): the
    responder recognises with the car grammar's help (``asr.grammar``) and, with ``endpoint.pause_ms``, the
    end-of-turn judge answers a complete command at its first pause (on a thread of its own with
    ``judge_in_background``, as the device does)."""
    from edge_assistant.app.stage_configs import grammar_bias_config, known_places
    from edge_assistant.intents import car_matcher
    from edge_assistant.pipeline import Assistant, Responder
    from edge_assistant.pipeline.end_of_turn import EndOfTurn
    from edge_assistant.pipeline.grammar_link import GrammarShape, recognition_grammar

    wake, endpointer, recognizer = stages
    matcher = car_matcher()
    bias_config = grammar_bias_config(config)
    bias = (recognition_grammar(matcher, recognizer.tokenizer, bias_config, known=known_places(config))
            if bias_config is not None else None)
    responder = Responder(recognizer, router, matcher.match, grammar=bias)
    judge = None
    if config.endpoint.pause_ms:
        shape = GrammarShape(bias if bias is not None else recognition_grammar(matcher, recognizer.tokenizer))
        judge = EndOfTurn(responder.hear, matcher.match, shape)
    return Assistant(wake, endpointer, responder, assistant_config, defer_answers=defer_answers, end_of_turn=judge,
                     judge_in_background=judge_in_background)


def demo_router(config: DeviceConfig, at_s: float | None = None) -> tuple[Any, Any]:
    """(router, demo car) for answering from the demo car's drive replayed up to ``at_s`` (files and the scene)."""
    from edge_assistant.agents.demo import demo_car
    from edge_assistant.agents.router import AgentRouter

    car = demo_car(at_s=at_s)
    return AgentRouter(car.genius, car.travel), car
