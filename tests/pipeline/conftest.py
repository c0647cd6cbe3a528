"""Shared by the pipeline tests: the demo EV's agents and one Whisper recogniser (loaded once for the folder)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package")
def router(tmp_path_factory: pytest.TempPathFactory):
    """Car Genius and the Travel Companion answering from the demo EV's simulated 720 s drive (seed 1)."""
    from edge_assistant.agents.car_genius import genius_from_log
    from edge_assistant.agents.router import AgentRouter
    from edge_assistant.agents.travel_companion import travel_from_log
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, write_demo_log

    log_path = tmp_path_factory.mktemp("drive") / "demo.log"
    write_demo_log(log_path, duration_s=720.0, seed=1)
    return AgentRouter(genius_from_log(log_path, DEMO_DBC, DEMO_MAPPING, vehicle="demo_ev"),
                       travel_from_log(log_path, DEMO_DBC, DEMO_MAPPING))


@pytest.fixture(scope="package")
def recognizer():
    from edge_assistant.asr.recognizer import WhisperRecognizer

    return WhisperRecognizer()


def plain_assistant(router, recognizer, **config):
    """Wake word → endpoint (fixed trailing silence) → ASR → intent → agent, answering inline."""
    from edge_assistant.pipeline import Assistant, AssistantConfig, Responder
    from edge_assistant.vad.endpoint import Endpointer
    from edge_assistant.wakeword.engine import build_engine

    return Assistant(build_engine("alexa"), Endpointer(listening=False), Responder(recognizer, router),
                     AssistantConfig(**config))
