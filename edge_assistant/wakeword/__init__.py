"""Streaming wake-word detection: C mel features -> shared speech embedding -> one or more heads.

* :class:`WakeWordEngine` / :func:`build_engine` - the streaming detector (see :mod:`.engine`).
* :mod:`.manifest` - model manifests; shipped heads and user ``.onnx`` heads.
* :mod:`.model_cache` - built files in the model cache (int8 embedding, adapted heads) and their checks;
  the builds themselves are in :mod:`edge_assistant.modelbuild.wakeword`.

The pre-trained heads shipped by openwakeword 0.4.0 carry a non-commercial licence (CC BY-NC-SA 4.0);
the backbone (mel + embedding models) is Apache-2.0. Any head of the same ONNX form works.
"""

from edge_assistant.wakeword.engine import (
    DetectionEvent,
    EngineConfig,
    StepScores,
    WakeWordConfig,
    WakeWordEngine,
    build_engine,
)
from edge_assistant.wakeword.manifest import SHIPPED_HEADS, ModelManifest, load_manifest

__all__ = [
    "DetectionEvent",
    "EngineConfig",
    "ModelManifest",
    "SHIPPED_HEADS",
    "StepScores",
    "WakeWordConfig",
    "WakeWordEngine",
    "build_engine",
    "load_manifest",
]
