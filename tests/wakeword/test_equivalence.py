"""Our engine vs openwakeword's own Model on every real recording (float models, threshold 0.5).

One pass per clip and engine: the reference runs in worker processes (see conftest), our engine here.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.wakeword.engine import build_engine

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

THRESHOLD = 0.5


@pytest.fixture(scope="module")
def ours(alexa_clips, negative_clips, reference_run):
    """Per-step alexa scores of our engine with C features and with ONNX features, for every clip."""
    del reference_run  # started first so both run at once
    c_engine = build_engine("alexa", threshold=THRESHOLD, features="c")
    onnx_engine = build_engine("alexa", threshold=THRESHOLD, features="onnx")
    scores_c, scores_onnx, events = {}, {}, {}
    for clips in (alexa_clips, negative_clips):
        for path, pcm in zip(clips.paths, clips.pcm, strict=True):
            c_engine.reset()
            pad = np.zeros(16000, np.int16)
            res = c_engine.feed(np.concatenate((pad, pcm, pad)))
            scores_c[path] = res.scores[:, 0]
            events[path] = res.events
            if clips is alexa_clips:
                scores_onnx[path] = onnx_engine.score_clip(pcm)[:, 0]
    return scores_c, scores_onnx, events


@pytest.fixture(scope="module")
def reference(reference_run):
    return reference_run()


def test_alexa_folder_has_14_damaged_files(alexa_clips):
    assert len(alexa_clips.paths) == 315
    assert len(alexa_clips.unreadable) == 14
    assert all("damaged" in reason for _, reason in alexa_clips.unreadable)


def test_same_alexa_clips_detected_as_reference(alexa_clips, ours, reference):
    scores_c, _, events = ours
    ref = {p for p in alexa_clips.paths if reference[p].max() >= THRESHOLD}
    mine = {p for p in alexa_clips.paths if events[p]}
    assert mine == ref
    # the engine's events and its own step scores agree (patience 1)
    assert mine == {p for p in alexa_clips.paths if scores_c[p].max() >= THRESHOLD}
    assert len(ref) >= 313  # README: 313 of 315 for the reference


def test_same_negative_clips_detected_as_reference(negative_clips, ours, reference):
    _, _, events = ours
    ref = {p for p in negative_clips.paths if reference[p].max() >= THRESHOLD}
    mine = {p for p in negative_clips.paths if events[p]}
    assert len(negative_clips.paths) == 1553 and not negative_clips.unreadable
    assert mine == ref


def test_scores_within_001_of_onnx_features_on_every_alexa_clip(alexa_clips, ours, reference):
    """C features vs ONNX melspectrogram features: step scores within 0.01 on every real alexa clip."""
    scores_c, scores_onnx, _ = ours
    worst_ref = worst_onnx = 0.0
    for p in alexa_clips.paths:
        ref = reference[p]
        n = min(len(ref), len(scores_c[p]))
        assert n >= len(ref) - 1
        worst_ref = max(worst_ref, float(np.abs(scores_c[p][:n] - ref[:n]).max()))
        worst_onnx = max(worst_onnx, float(np.abs(scores_c[p] - scores_onnx[p]).max()))
    assert worst_ref <= 0.01, worst_ref
    assert worst_onnx <= 0.01, worst_onnx


def test_onnx_feature_path_reproduces_reference_scores(alexa_clips, ours, reference):
    """With the ONNX mel model our pipeline is openwakeword's computation (float rounding only)."""
    _, scores_onnx, _ = ours
    for p in alexa_clips.paths:
        ref = reference[p]
        n = min(len(ref), len(scores_onnx[p]))
        assert np.abs(scores_onnx[p][:n] - ref[:n]).max() < 1e-4, p
