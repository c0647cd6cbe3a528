"""The one place that wires audio → wake → endpoint → ASR → intent → agent → reply."""

from edge_assistant.pipeline.assistant import (
    Assistant,
    AssistantConfig,
    ListenTimedOut,
    PipelineEvent,
    Replied,
    WakeHeard,
)

__all__ = ["Assistant", "AssistantConfig", "ListenTimedOut", "PipelineEvent", "Replied", "WakeHeard"]
