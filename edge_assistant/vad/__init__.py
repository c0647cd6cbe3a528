"""Voice-activity detection and endpointing: Silero VAD (ONNX), an energy gate, the endpointer."""

from edge_assistant.vad.endpoint import (
    EndpointConfig,
    Endpointer,
    ListenTimeout,
    SpeechDiscarded,
    SpeechPause,
    SpeechStart,
    Utterance,
    find_utterances,
)
from edge_assistant.vad.energy import EnergyGate, EnergyGateConfig
from edge_assistant.vad.silero import SileroVad

__all__ = [
    "EndpointConfig",
    "Endpointer",
    "EnergyGate",
    "EnergyGateConfig",
    "ListenTimeout",
    "SileroVad",
    "SpeechDiscarded",
    "SpeechPause",
    "SpeechStart",
    "Utterance",
    "find_utterances",
]
