"""The oracle: openwakeword 0.4.0's own ``Model`` scoring clips (runs in worker processes)."""

from __future__ import annotations

from collections import deque

import numpy as np

from edge_assistant.audio.io import read_audio

_REF: dict = {}


def _reference_model():
    """A fresh-state openwakeword Model for alexa, built once per worker process."""
    if "model" not in _REF:
        from openwakeword.model import Model

        from edge_assistant.wakeword.manifest import load_manifest

        m = Model(wakeword_model_paths=[str(load_manifest("alexa").path)])
        _REF["model"] = m
        _REF["features0"] = m.preprocessor.feature_buffer.copy()
    return _REF["model"]


def reference_scores(paths: list[str]) -> list[np.ndarray]:
    """Per-step alexa scores of openwakeword's Model.predict_clip, fresh state per clip."""
    model = _reference_model()
    name = next(iter(model.models))
    out = []
    for p in paths:
        pre = model.preprocessor
        model.reset()
        pre.raw_data_buffer = deque(maxlen=pre.raw_data_buffer.maxlen)
        pre.melspectrogram_buffer = np.ones((76, 32))
        pre.accumulated_samples = 0
        pre.feature_buffer = _REF["features0"].copy()
        preds = model.predict_clip(read_audio(p, "int16"), padding=1)
        out.append(np.array([float(d[name]) for d in preds], dtype=np.float32))
    return out
