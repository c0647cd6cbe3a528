"""Noise-adapted heads: the numpy MLP against onnxruntime, the gradient against finite differences,
the plan's determinism, bad teachers, and a small end-to-end build that the engine then loads by name."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import skip_unless_ci

from edge_assistant.core.errors import ConfigError, ModelFileError
from edge_assistant.modelbuild.wakeword import adapt as adapt_mod
from edge_assistant.modelbuild.wakeword.adapt import (
    AdaptConfig,
    MlpHead,
    _gradients,
    adapt_head,
    bce,
    mean_logit_head,
    plan_utterances,
    read_mlp_head,
    write_mlp_head,
)
from edge_assistant.wakeword.backbone import embedding_model_path, open_session
from edge_assistant.wakeword.manifest import load_manifest


@pytest.fixture(scope="module")
def teacher_path() -> Path:
    return load_manifest("alexa").path


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    # embedding-like values: the real embeddings are mostly within [-30, 30]
    return np.random.default_rng(7).normal(0.0, 8.0, size=(40, 16, 96)).astype(np.float32)


def _ort_scores(path: Path, x: np.ndarray) -> np.ndarray:
    sess = open_session(path, path)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0][:, 0] for i in range(len(x))])


def test_numpy_head_matches_onnxruntime(teacher_path: Path, windows: np.ndarray) -> None:
    head = read_mlp_head(teacher_path)
    assert [w.shape for w in head.weights] == [(1536, 128), (128, 128), (128, 1)]
    np.testing.assert_allclose(head.scores(windows), _ort_scores(teacher_path, windows), atol=2e-5)


def test_written_head_is_the_teachers_graph_with_new_weights(teacher_path: Path, windows: np.ndarray,
                                                             tmp_path: Path) -> None:
    head = read_mlp_head(teacher_path)
    changed = head.copy()
    changed.biases[-1] = changed.biases[-1] + 1.5
    changed.weights[0] = changed.weights[0] * 0.9
    out = tmp_path / "h.onnx"
    write_mlp_head(changed, teacher_path, out)
    assert [n.op_type for n in onnx.load(str(out)).graph.node] == [n.op_type for n in onnx.load(str(teacher_path)).graph.node]
    back = read_mlp_head(out)
    for a, b in zip(back.weights + back.biases, changed.weights + changed.biases, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_ort_scores(out, windows), changed.scores(windows), atol=2e-5)
    assert not np.allclose(changed.scores(windows), head.scores(windows))


def test_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(3)
    head = MlpHead([rng.normal(0, 0.3, (12, 8)), rng.normal(0, 0.3, (8, 6)), rng.normal(0, 0.3, (6, 1))],
                   [rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 6), rng.normal(0, 0.1, 1)])
    x = rng.normal(0, 1, (30, 12))
    t = rng.random(30)
    w = rng.uniform(0.5, 3.0, 30)
    gw, gb = _gradients(head, x, t, w)
    for layer in range(3):
        for grads, params in ((gw, head.weights), (gb, head.biases)):
            flat = params[layer].reshape(-1)
            for idx in rng.choice(flat.size, size=min(4, flat.size), replace=False):
                old = flat[idx]
                flat[idx] = old + 1e-6
                up = bce(head, x, t, w)
                flat[idx] = old - 1e-6
                down = bce(head, x, t, w)
                flat[idx] = old
                assert grads[layer].reshape(-1)[idx] == pytest.approx((up - down) / 2e-6, rel=1e-4, abs=1e-8)


def test_mean_logit_head_is_one_mlp_of_the_same_graph(teacher_path: Path, windows: np.ndarray,
                                                     tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = read_mlp_head(teacher_path)
    heads = []
    for _ in range(3):
        h = base.copy()
        h.weights = [w + rng.normal(0, 0.01, w.shape) for w in h.weights]
        h.biases = [b + rng.normal(0, 0.1, b.shape) for b in h.biases]
        heads.append(h)
    merged = mean_logit_head(heads)
    assert [w.shape for w in merged.weights] == [(1536, 384), (384, 384), (384, 1)]
    np.testing.assert_allclose(merged.logits(windows), np.mean([h.logits(windows) for h in heads], axis=0),
                               rtol=1e-9, atol=1e-9)
    out = tmp_path / "merged.onnx"
    write_mlp_head(merged, teacher_path, out)
    np.testing.assert_allclose(_ort_scores(out, windows), merged.scores(windows), atol=2e-5)


def test_plan_is_seeded_and_mixed() -> None:
    cfg = AdaptConfig(utterances=400)
    a, b = plan_utterances(cfg), plan_utterances(cfg)
    assert a == b
    assert plan_utterances(AdaptConfig(utterances=400, seed=1)) != a
    wake = [u for u in a if u.has_wake]
    assert 0.35 < len(wake) / len(a) < 0.55
    assert all("Alexa" in re.findall(r"[A-Za-z]+", u.text) for u in wake)
    assert not any("Alexa" in re.findall(r"[A-Za-z]+", u.text) for u in a if not u.has_wake)  # Alexis is no Alexa
    assert len({u.voice for u in a}) > 50
    assert all(110 <= u.words_per_minute <= 200 and 20 <= u.pitch <= 80 for u in a)


def test_plan_negatives_come_from_the_phrase_and_generic_lists_only() -> None:
    """Nothing of an evaluation set: every word of a non-wake utterance is a derived sound-alike, a common
    word, or from the recipe's own sentences; the held-out plan shares no utterance with training."""
    from edge_assistant.modelbuild.wakeword.adapt import COMMANDS, SENTENCES
    from edge_assistant.modelbuild.wakeword.confusables import derive

    cfg = AdaptConfig(utterances=400, validation_utterances=100)
    conf = derive(cfg.spoken_phrase)
    allowed = {w for text in (*conf.near, *conf.common_words, *SENTENCES, *COMMANDS)
               for w in re.findall(r"[a-z]+", text.lower())}
    train, held = plan_utterances(cfg), plan_utterances(cfg, validation=True)
    for u in train + held:
        if not u.has_wake:
            assert set(re.findall(r"[a-z]+", u.text.lower())) <= allowed, u.text
    assert sum(u.text in conf.near for u in train if not u.has_wake) > 60
    assert [u.index for u in held] == list(range(400, 500))
    assert len(held) == 100 and any(u.has_wake for u in held) and any(not u.has_wake for u in held)


def test_bad_configs_and_teachers_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="adapt.utterances"):
        AdaptConfig(utterances=3)
    with pytest.raises(ConfigError, match="adapt.phrase"):
        _ = AdaptConfig(head="timer").spoken_phrase
    assert AdaptConfig(head="timer", phrase="set a timer").spoken_phrase == "set a timer"
    with pytest.raises(ModelFileError, match="embedding_model.onnx.*adaptation needs"):
        read_mlp_head(embedding_model_path())
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(ModelFileError, match="junk.onnx"):
        read_mlp_head(junk)


@pytest.mark.slow
def test_small_build_loads_by_name_and_is_reused(tmp_path: Path, monkeypatch) -> None:
    """40 utterances, 2 students of 2 epochs: the head fits its windows better than the teacher did, the cache
    holds a manifest the engine resolves as ``alexa_car``, and a second call reuses the build."""
    from edge_assistant.audio import speech_synth

    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make setup installs it)")
    monkeypatch.setenv("EDGE_ASSISTANT_MODELS", str(tmp_path))
    cfg = AdaptConfig(utterances=40, epochs=2, students=2, workers=1, validation_utterances=30)
    stages: list[str] = []
    res = adapt_head(cfg, progress=lambda stage, done, total: stages.append(stage))
    assert res.built and res.path.is_file() and {"synthesis", "training", "validation"} <= set(stages)
    assert res.stats["student_loss"] < res.stats["teacher_loss"]
    assert res.stats["positive_windows"] > 0 and len(res.stats["student_losses"]) == 2
    manifest = json.loads(res.manifest_path.read_text())
    assert manifest["licence"] == load_manifest("alexa").licence  # the teacher's licence travels
    assert manifest["labels"] == {"0": "alexa"}
    point = manifest["training"]["operating_point"]  # chosen on the held-out synthetic plan
    assert (manifest["threshold"], manifest["patience_frames"]) == (point["threshold"], point["patience_frames"])
    assert manifest["files"]["alexa_car.onnx"]["sha256"] == manifest["sha256"]
    assert manifest["inputs"]["word_lists"]["cmudict"] and manifest["environment"]["reproducibility"]

    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine

    m = load_manifest("alexa_car")
    assert m.path == res.path and m.window_embeddings == 16
    engine = WakeWordEngine(EngineConfig(models=(WakeWordConfig("alexa_car"),), noise_suppression=True))
    assert engine.labels == ["alexa"]
    again = adapt_head(cfg)
    assert not again.built and again.path == res.path
    # The same inputs with another number of worker processes: the same file, byte for byte.
    other = adapt_head(dataclasses.replace(cfg, workers=2), cache_dir=tmp_path / "other")
    assert other.built and other.path.read_bytes() == res.path.read_bytes()
    assert adapt_head(dataclasses.replace(cfg, epochs=1, students=1)).built  # another recipe


@pytest.mark.slow
def test_verify_names_corrupt_and_stale_heads(tmp_path: Path) -> None:
    from edge_assistant.audio import speech_synth
    from edge_assistant.modelbuild.wakeword.adapt import current_inputs
    from edge_assistant.wakeword.model_cache import check_adapted

    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make setup installs it)")
    res = adapt_head(AdaptConfig(utterances=24, epochs=1, students=1, workers=1, validation_utterances=20),
                     cache_dir=tmp_path)
    [ok] = check_adapted(tmp_path, current_inputs)
    assert ok["ok"] and ok["files"] == 1 and not ok["corrupt"] and not ok["stale"] and not ok["unchecked"]
    # Without the build tools (the device): the files are still checked, the inputs reported unchecked.
    [device] = check_adapted(tmp_path)
    assert device["ok"] and device["files"] == 1 and "build tools" in device["unchecked"][0]
    manifest = json.loads(res.manifest_path.read_text())
    manifest["inputs"]["speech"]["espeak_ng"] = "eSpeak NG 0.0"
    res.manifest_path.write_text(json.dumps(manifest))
    [stale] = check_adapted(tmp_path, current_inputs)
    assert not stale["ok"] and stale["stale"] == [
        f"speech.espeak_ng: built from 'eSpeak NG 0.0', now {adapt_mod.espeak_version()!r}"]
    res.path.write_bytes(res.path.read_bytes()[:-1] + b"\0")
    [bad] = check_adapted(tmp_path, current_inputs)
    assert not bad["ok"] and "alexa_car.onnx: SHA-256" in bad["corrupt"][0]
    [bad_device] = check_adapted(tmp_path)
    assert not bad_device["ok"] and "alexa_car.onnx: SHA-256" in bad_device["corrupt"][0]
    assert adapt_head(AdaptConfig(utterances=24, epochs=1, students=1, workers=1, validation_utterances=20),
                      cache_dir=tmp_path).built  # a stale or corrupt head is rebuilt, not reused


def test_manifest_operating_point_is_the_default(teacher_path: Path, tmp_path: Path) -> None:
    """A head's manifest may set threshold, patience and noise suppression; engine and bench follow it
    unless told otherwise."""
    import shutil

    from edge_assistant.bench.wake import sustained_max
    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine

    shutil.copy(teacher_path, tmp_path / "h.onnx")
    (tmp_path / "h.json").write_text(json.dumps({
        "name": "h", "type": "oww-head", "file": "h.onnx", "window_embeddings": 16, "labels": {"0": "alexa"},
        "threshold": 0.45, "patience_frames": 2, "noise_suppression": True}))
    m = load_manifest(tmp_path / "h.json")
    assert (m.threshold, m.patience_frames, m.noise_suppression) == (0.45, 2, True)
    engine = WakeWordEngine(EngineConfig(models=(WakeWordConfig(str(tmp_path / "h.json")),), noise_suppression=True))
    state = engine.detection_settings[0]
    assert (state["threshold"], state["patience_frames"]) == (0.45, 2)
    engine = WakeWordEngine(EngineConfig(models=(WakeWordConfig(str(tmp_path / "h.json"), 0.6, 1),)))
    state = engine.detection_settings[0]
    assert (state["threshold"], state["patience_frames"]) == (0.6, 1)
    scores = np.array([[0.1], [0.9], [0.2], [0.6], [0.7], [0.1]], np.float32)
    assert sustained_max(scores, 1)[0] == pytest.approx(0.9)
    assert sustained_max(scores, 2)[0] == pytest.approx(0.6)
    assert sustained_max(scores, 3)[0] == pytest.approx(0.2)
    assert sustained_max(scores[:1], 2)[0] == 0.0
