"""The streaming stages audio → wake → endpoint → ASR → intent → agent → reply (wired by ``edge_assistant.app``)."""

from edge_assistant.pipeline.assistant import (
    Assistant,
    AssistantConfig,
    CommandHeard,
    FollowUpOpened,
    Heard,
    ListenTimedOut,
    PipelineEvent,
    Replied,
    Responder,
    WakeHeard,
)

__all__ = ["Assistant", "AssistantConfig", "CommandHeard", "FollowUpOpened", "Heard", "ListenTimedOut", "PipelineEvent",
           "Replied", "Responder", "WakeHeard"]
