"""``models train-wakeword``: a head for a new phrase from synthetic speech only.

The quick recipe trains a tiny head; what is asserted holds for any seed (the head hears its phrase more
than the phrase's sound-alikes), not one build's figures. Bad phrases and folders fail before any work with
a ConfigError naming what was wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import skip_unless_ci

from edge_assistant.cli import main
from edge_assistant.core.errors import ConfigError
from edge_assistant.modelbuild.wakeword.mlp import init_mlp_head, write_new_mlp_head
from edge_assistant.modelbuild.wakeword.train import (
    TrainConfig,
    heard_until,
    step_labels,
    train_wakeword,
    wake_segments,
)

PHRASE = "hey car"


def _need_espeak() -> None:
    from edge_assistant.audio import speech_synth

    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make setup installs it)")


@pytest.fixture(scope="module")
def quick_head(tmp_path_factory: pytest.TempPathFactory):
    _need_espeak()
    out = tmp_path_factory.mktemp("head")
    return train_wakeword(TrainConfig.quick(PHRASE, seed=1, workers=2), out)


def _max_scores(head: Path, texts: list[tuple[str, str]]) -> np.ndarray:
    """Per text (spoken in the given voice, 1 s of silence around), the head's highest score held for its
    manifest's patience."""
    from edge_assistant.audio.io import to_int16
    from edge_assistant.audio.speech_synth import synthesize
    from edge_assistant.bench.wake import sustained_max
    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine

    engine = WakeWordEngine(EngineConfig(models=(WakeWordConfig(str(head)),)))
    patience = engine.detection_settings[0]["patience_frames"]
    out = []
    for text, voice in texts:
        x = synthesize(text, voice=voice, words_per_minute=150, pitch=50)
        x = 0.3 * x / np.max(np.abs(x))
        pcm = to_int16(np.concatenate((np.zeros(16000), x, np.zeros(16000))))
        engine.reset()
        out.append(float(sustained_max(engine.feed(pcm).scores, patience)[0]))
    return np.array(out)


@pytest.mark.slow
def test_quick_head_is_loaded_by_the_engine_and_hears_its_phrase(quick_head) -> None:
    from edge_assistant.modelbuild.wakeword.confusables import derive
    from edge_assistant.wakeword.manifest import load_manifest

    m = load_manifest(quick_head.path)
    assert m.source == "json" and m.labels == {0: "hey_car"} and m.phrase == PHRASE and m.window_embeddings == 16
    assert 0.0 < m.threshold <= 1.0 and m.patience_frames >= 1 and m.noise_suppression
    # The verified point (the head proposes, a verifier confirms) has the larger budget: it proposes at least
    # as many held-out phrases as the head alone finds.
    assert m.verified_threshold is not None and m.verified_patience_frames is not None
    held = json.loads(quick_head.manifest_path.read_text())["training"]["held_out"]
    assert sum(held["verified"][c]["wake_proposed"] for c in ("quiet", "noisy")) >= sum(
        held[c]["wake_found"] for c in ("quiet", "noisy"))
    assert held["verified"]["allowed_proposals"] >= held["allowed_false_accepts"]
    assert [n.op_type for n in onnx.load(str(quick_head.path)).graph.node] == ["Flatten", "Gemm", "Relu", "Gemm",
                                                                              "Sigmoid"]
    card = quick_head.card_path.read_text()
    assert PHRASE in card and "Seed 1" in card and "Held-out synthetic speech" in card and "verified point" in card
    manifest = json.loads(quick_head.manifest_path.read_text())
    assert manifest["files"]["hey_car.onnx"]["sha256"] == manifest["sha256"]
    assert manifest["inputs"]["config"]["phrase"] == PHRASE and manifest["training"]["positive_windows"] > 0
    assert manifest["inputs"]["config"]["flite_share"] == 0.0 and "flite" not in manifest["inputs"]["speech"]
    # Voices the plan can draw, speaking as the plan never does (fixed rate and pitch): fresh speech.
    voices = ("en-us", "en-gb+f3", "en-029+m2", "en-gb-scotland+klatt", "en-us-nyc+f1", "en-gb-x-rp+m5")
    conf = derive(PHRASE)
    positives = _max_scores(quick_head.path, [(PHRASE, v) for v in voices])
    near = _max_scores(quick_head.path, [(w, v) for w, v in zip(conf.neighbours[:6] + conf.splits[:6],
                                                                  voices * 2, strict=True)])
    assert positives.mean() > near.mean()
    assert (positives >= m.threshold).sum() > (near >= m.threshold).sum()


@pytest.mark.slow
def test_same_seed_gives_the_same_file(quick_head, tmp_path: Path) -> None:
    """Another run with the same seed, with one worker process instead of two: the same ONNX, byte for byte."""
    again = train_wakeword(TrainConfig.quick(PHRASE, seed=1, workers=1), tmp_path)
    assert again.path.read_bytes() == quick_head.path.read_bytes()


@pytest.mark.parametrize(("phrase", "what"), [
    ("", "no letters"),
    ("   ", "no letters"),
    ("hey 🚗", "'🚗'"),
    ("hey car 2", "'2'"),
    ("hey qxzvbn", "not in the CMU Pronouncing Dictionary"),
])
def test_bad_phrases_are_named(phrase: str, what: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.phrase") as err:
        train_wakeword(TrainConfig.quick(phrase), tmp_path / "out")
    assert what in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing done before the phrase is known to be speakable


def test_unwritable_out_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"--out .*a-file/heads: cannot write there"):
        train_wakeword(TrainConfig.quick(PHRASE), blocker / "heads")
    assert main(["models", "train-wakeword", PHRASE, "--quick", "--out", str(blocker / "heads")]) == 1
    assert "a-file/heads" in capsys.readouterr().err


def test_bad_settings_are_named() -> None:
    with pytest.raises(ConfigError, match="train.hidden_units"):
        TrainConfig(PHRASE, hidden_units=0)
    with pytest.raises(ConfigError, match="train.flite_share"):
        TrainConfig(PHRASE, flite_share=1.5)
    with pytest.raises(ConfigError, match="train.positive_span_s"):
        TrainConfig(PHRASE, positive_span_s=0.0)


def test_labels_follow_the_end_of_the_phrase() -> None:
    cfg = TrainConfig(PHRASE, positive_span_s=0.32, ignore_before_s=0.16, ignore_after_s=0.24)
    heard = np.arange(0, 64000, 1280)
    end = 32000
    target, counts = step_labels(heard, end, cfg)
    rel = (heard - end) / 16000
    assert np.array_equal(target > 0, (rel >= 0) & (rel <= 0.32))
    assert not counts[(rel < 0) & (rel >= -0.16)].any() and not counts[(rel > 0.32) & (rel <= 0.56)].any()
    assert counts[rel < -0.16].all() and counts[rel > 0.56].all() and counts[target > 0].all()
    target, counts = step_labels(heard, -1, cfg)  # no phrase: every step a counted negative
    assert not target.any() and counts.all()
    # Step n has heard up to sample 1280 n - 128; the suppressor delays the stream by 512 samples.
    assert heard_until(3, False).tolist() == [1152, 2432, 3712]
    assert heard_until(3, True).tolist() == [640, 1920, 3200]


def test_wake_utterances_split_around_the_phrase() -> None:
    assert wake_segments("hey car, what is my range", PHRASE) == ("", "hey car,", "what is my range")
    assert wake_segments("Turn left after the bridge. hey car?", PHRASE) == ("Turn left after the bridge.",
                                                                              "hey car?", "")
    assert wake_segments("hey car", PHRASE) == ("", "hey car", "")


def test_new_head_graph_matches_numpy(tmp_path: Path) -> None:
    from edge_assistant.wakeword.backbone import open_session

    head = init_mlp_head(16 * 96, (8, 8), seed=3)
    path = tmp_path / "h.onnx"
    write_new_mlp_head(head, 16, path, "test")
    sess = open_session(path, path)
    x = np.random.default_rng(0).normal(0, 8, (5, 16, 96)).astype(np.float32)
    got = np.concatenate([sess.run(None, {sess.get_inputs()[0].name: x[i : i + 1]})[0][:, 0] for i in range(5)])
    np.testing.assert_allclose(got, head.scores(x), atol=2e-5)
    with pytest.raises(ValueError, match="window of 8"):
        write_new_mlp_head(head, 8, path, "test")


def test_variety_keeps_the_end_of_the_phrase_on_the_audio() -> None:
    """Tempo changes move the phrase's end with the audio; band limits and rooms keep it (a room only adds a tail)."""
    from edge_assistant.modelbuild.wakeword.train import vary

    x = np.zeros(16000, np.float32)
    x[:12000] = np.sin(np.arange(12000) / 7.0)  # "speech" ends at sample 12000
    for seed in range(12):
        y, end = vary(x, 12000, np.random.default_rng(seed))
        assert np.isfinite(y).all() and np.max(np.abs(y)) == pytest.approx(1.0, abs=1e-6)
        assert 0.85 * 12000 - 1 <= end <= 1.15 * 12000 + 1 and end < len(y)
        assert len(y) >= 16000 * end / 12000 - 2  # the end moved by the audio's own tempo factor (a room adds on)
        _, none = vary(x, -1, np.random.default_rng(seed))
        assert none == -1


def test_plan_speaks_a_share_of_wake_and_other_utterances_in_flite_voices() -> None:
    """With ``flite_share`` 0 the plan is what it was before Flite (no voice of it, the same draws); with 0.5
    about half of the utterances, with the phrase and without it alike, go to Flite's five voices."""
    from edge_assistant.audio.speech_synth import FLITE_VOICES
    from edge_assistant.modelbuild.wakeword.confusables import derive
    from edge_assistant.modelbuild.wakeword.synthetic import plan

    conf = derive(PHRASE)
    espeak_only = plan(PHRASE, 3, 400, 0, 0x7EA1, conf)
    assert espeak_only == plan(PHRASE, 3, 400, 0, 0x7EA1, conf, flite_share=0.0)
    assert not any(u.voice.startswith("flite:") for u in espeak_only)
    mixed = plan(PHRASE, 3, 4000, 0, 0x7EA1, conf, flite_share=0.5)
    assert mixed == plan(PHRASE, 3, 4000, 0, 0x7EA1, conf, flite_share=0.5)
    for group in ([u for u in mixed if u.has_wake], [u for u in mixed if not u.has_wake]):
        share = sum(u.voice.startswith("flite:") for u in group) / len(group)
        assert 0.44 < share < 0.56, share  # 1,800+ utterances per group: about 5 standard deviations either way
    assert {u.voice for u in mixed if u.voice.startswith("flite:")} == {f"flite:{v}" for v in FLITE_VOICES}


def test_flite_share_on_the_command_line() -> None:
    import argparse

    from edge_assistant.cli.models_train_wakeword import config_from_args, register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert config_from_args(parser.parse_args(["train-wakeword", PHRASE, "--out", "x"])).flite_share == 0.5
    args = parser.parse_args(["train-wakeword", PHRASE, "--out", "x", "--quick", "--flite-share", "0"])
    assert config_from_args(args).flite_share == 0.0


def test_the_build_record_names_flite_when_it_speaks() -> None:
    from edge_assistant.audio import speech_synth
    from edge_assistant.modelbuild.wakeword.confusables import derive
    from edge_assistant.modelbuild.wakeword.train import build_inputs

    conf = derive(PHRASE)
    assert "flite" not in build_inputs(TrainConfig(PHRASE, flite_share=0.0), conf)["speech"]
    if not speech_synth.available("flite"):
        skip_unless_ci("flite is not installed (make setup installs it)")
    with_flite = build_inputs(TrainConfig(PHRASE), conf)
    assert with_flite["recipe_version"] == 4 and with_flite["config"]["flite_share"] == 0.5
    assert with_flite["speech"]["flite"].startswith("flite-2")


def test_training_on_rows_of_the_windows_is_training_on_their_copy() -> None:
    """``fit_adam(..., rows=r)`` (no copy of the windows) gives the very weights of ``fit_adam`` on ``x[r]``."""
    from edge_assistant.modelbuild.wakeword.mlp import fit_adam

    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (300, 24)).astype(np.float32)
    t = (rng.random(300) < 0.3).astype(np.float64)
    w = rng.uniform(0.5, 2.0, 300)
    rows = np.flatnonzero(rng.random(300) < 0.8)
    kw = {"epochs": 3, "learning_rate": 1e-2, "batch_size": 32, "l2": 1e-4}
    a = fit_adam(init_mlp_head(24, (8,), seed=1), x[rows], t[rows], w[rows], rng=np.random.default_rng(9), **kw)
    b = fit_adam(init_mlp_head(24, (8,), seed=1), x, t, w, rng=np.random.default_rng(9), rows=rows, **kw)
    for p, q in zip(a.weights + a.biases, b.weights + b.biases, strict=True):
        np.testing.assert_array_equal(p, q)
