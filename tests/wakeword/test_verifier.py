"""The second stage: Whisper verifying the head's proposals, in the engine and on its own (real models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.io import read_audio
from edge_assistant.core.errors import ConfigError, ModelFileError
from edge_assistant.wakeword.engine import (
    EngineConfig,
    WakeWordConfig,
    WakeWordEngine,
    _AudioRing,
    build_engine,
)
from edge_assistant.wakeword.manifest import load_manifest, manifest_to_dict, shipped_manifest
from edge_assistant.wakeword.verifier import VerifierConfig, WhisperVerifier, phrase_forms

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def recognizer():
    from edge_assistant.asr.recognizer import WhisperRecognizer
    from edge_assistant.modelbuild.asr.whisper import build_whisper

    build_whisper()  # no-op when `make models` built it
    return WhisperRecognizer()


@pytest.fixture(scope="module")
def stream(wakeword_data: Path) -> np.ndarray:
    """1 s silence, alexa, 3 s silence, another speaker's alexa, 0.1 s of silence."""
    a = read_audio(wakeword_data / "alexa" / "0.flac", "int16")
    b = read_audio(wakeword_data / "alexa" / "1.flac", "int16")
    return np.concatenate((np.zeros(16000, np.int16), a, np.zeros(48000, np.int16), b, np.zeros(1600, np.int16)))


def _engine(recognizer, verifier: str | None = "whisper", model: str = "alexa", **vc) -> WakeWordEngine:
    return WakeWordEngine(EngineConfig(models=(WakeWordConfig(model, verifier=verifier),), recognizer=recognizer,
                                       verifier_config=VerifierConfig(**vc) if vc else None))


def _run(engine: WakeWordEngine, x: np.ndarray, chunk: int) -> tuple[list, list]:
    engine.reset()
    parts = [engine.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(engine.flush())
    return [e for p in parts for e in p.events], [e for p in parts for e in p.rejected]


def test_verifier_config_and_names_are_checked() -> None:
    with pytest.raises(ConfigError, match="lookahead_s"):
        VerifierConfig(lookahead_s=-0.1)
    with pytest.raises(ConfigError, match="min_logprob"):
        VerifierConfig(min_logprob=1.0)
    with pytest.raises(ConfigError, match=r"models\[0\]\.verifier: 'bogus'"):
        build_engine("alexa", verifier="bogus")
    with pytest.raises(ConfigError, match="needs the Whisper recogniser"):
        build_engine("alexa", verifier="whisper")  # wakeword/ never loads Whisper by itself
    assert phrase_forms("hey_jarvis") == [" hey jarvis", " Hey jarvis", " Hey Jarvis"]


def test_manifest_verifier_keys(tmp_path: Path) -> None:
    alexa = shipped_manifest("alexa")
    assert alexa.verifier is None and alexa.phrase == ""  # shipped heads: no second stage by default
    (tmp_path / "h.onnx").symlink_to(alexa.path)
    data = {**manifest_to_dict(alexa), "file": "h.onnx", "verifier": "whisper", "phrase": "Alexa"}
    (tmp_path / "h.json").write_text(json.dumps(data))
    m = load_manifest(tmp_path / "h.json")
    assert (m.verifier, m.phrase) == ("whisper", "Alexa")
    assert manifest_to_dict(m)["verifier"] == "whisper"
    (tmp_path / "h.json").write_text(json.dumps({**data, "verifier": "resnet"}))
    with pytest.raises(ModelFileError, match="'verifier'"):
        load_manifest(tmp_path / "h.json")


@pytest.mark.parametrize("bad", [{"verified_threshold": 0.0}, {"verified_threshold": 1.5},
                                 {"verified_threshold": "low"}, {"verified_patience_frames": 0},
                                 {"verified_patience_frames": 2.5}, {"verified_patience_frames": True}])
def test_manifest_verified_point_is_checked(tmp_path: Path, bad: dict) -> None:
    alexa = shipped_manifest("alexa")
    (tmp_path / "h.onnx").symlink_to(alexa.path)
    (tmp_path / "h.json").write_text(json.dumps({**manifest_to_dict(alexa), "file": "h.onnx", **bad}))
    key = next(iter(bad))
    with pytest.raises(ModelFileError, match=rf"h\.json.*'{key}' is"):
        load_manifest(tmp_path / "h.json")


def test_the_verified_point_is_in_force_only_with_a_verifier(recognizer, tmp_path: Path) -> None:
    alexa = shipped_manifest("alexa")
    (tmp_path / "h.onnx").symlink_to(alexa.path)
    data = {**manifest_to_dict(alexa), "name": "h", "file": "h.onnx", "threshold": 0.7, "patience_frames": 3,
            "verified_threshold": 0.3, "verified_patience_frames": 2, "phrase": "Alexa"}
    (tmp_path / "h.json").write_text(json.dumps(data))
    m = load_manifest(tmp_path / "h.json")
    assert (m.verified_threshold, m.verified_patience_frames) == (0.3, 2)
    assert manifest_to_dict(m)["verified_threshold"] == 0.3
    point = lambda e: (e.detection_settings[0]["threshold"], e.detection_settings[0]["patience_frames"])  # noqa: E731
    model = str(tmp_path / "h.json")
    assert point(_engine(recognizer, verifier="off", model=model)) == (0.7, 3)  # the head alone
    assert point(_engine(recognizer, verifier="whisper", model=model)) == (0.3, 2)  # the head proposes
    given = WakeWordEngine(EngineConfig(models=(WakeWordConfig(model, threshold=0.5, verifier="whisper"),),
                                        recognizer=recognizer))
    assert point(given) == (0.5, 2)  # a threshold the config sets wins
    (tmp_path / "h.json").write_text(json.dumps({**data, "verified_patience_frames": None}))
    assert point(_engine(recognizer, verifier="whisper", model=model)) == (0.3, 3)


def test_audio_ring_returns_what_was_fed() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-30000, 30000, 50000).astype(np.int16)
    ring = _AudioRing(3000)
    fed = 0
    for n in (1, 999, 1280, 2999, 3000, 7000, 1280, 33441):  # sums to len(x); 7000 and 33441 grow the ring
        ring.append(x[fed : fed + n], keep=2000)
        fed += n
        assert ring.end == fed
        lo = max(0, fed - n - 2000)
        assert np.array_equal(ring.get(lo, fed), x[lo:fed])
        assert np.array_equal(ring.get(fed - 10, fed + 500), x[max(0, fed - 10) : fed])  # clipped at the end
    assert ring.get(fed, fed).size == 0


def test_verifier_shares_the_recognizer_and_scores_the_phrase(recognizer, wakeword_data: Path) -> None:
    engine = _engine(recognizer)
    assert engine.recognizer is recognizer
    made = []
    lazy = _engine(lambda: made.append(1) or recognizer)  # a factory is called once, when needed
    assert lazy.recognizer is recognizer and made == [1]
    assert _engine(lambda: made.append(2), verifier="off").recognizer is not None and made == [1]
    assert engine.verifiers == [{"model": "alexa", "label": "alexa", "verifier": "whisper", "phrase": "alexa"}]
    v = WhisperVerifier("Alexa", recognizer=recognizer)
    assert v.recognizer is recognizer
    x = read_audio(wakeword_data / "alexa" / "0.flac", "float32")
    pad = np.zeros(8000, np.float32)
    said = v.verify(np.concatenate((pad, x, pad)))
    other = WhisperVerifier("Zanzibar Pumpernickel", recognizer=recognizer).verify(np.concatenate((pad, x, pad)))
    assert said.score > other.score  # the phrase that was said scores above one that was not
    assert said.cost_ms > 0 and isinstance(said.text, str)
    assert v.verify(np.zeros(100, np.float32)).accepted is False  # too short to hear anything


@pytest.mark.parametrize("chunk", [1280, 999, 10**7])
def test_engine_verdicts_do_not_depend_on_chunking(recognizer, stream: np.ndarray, chunk: int) -> None:
    plain = build_engine("alexa")
    proposals = [(e.step, e.score) for e in plain.feed(stream).events]
    assert len(proposals) == 2
    engine = _engine(recognizer, min_logprob=-100.0)  # accepts every proposal
    events, rejected = _run(engine, stream, chunk)
    assert rejected == [] and [(e.step, e.score) for e in events] == proposals
    assert all(e.verified is True and e.verifier_ms > 0 and e.verifier_score <= 0 for e in events)
    assert events[0].to_dict()["verified"] is True
    reference = _run(_engine(recognizer, min_logprob=-100.0), stream, 1280)[0]
    assert [e.verifier_score for e in events] == pytest.approx([e.verifier_score for e in reference], abs=1e-4)


def test_a_proposal_waits_for_look_ahead_and_flush_verifies_the_rest(recognizer, stream: np.ndarray) -> None:
    last_proposal_s = build_engine("alexa").feed(stream).events[-1].time_s
    x = stream[: int((last_proposal_s + 0.1) * 16000)]  # the stream stops 0.1 s after it
    engine = _engine(recognizer, min_logprob=-100.0)
    out = engine.feed(x)
    assert len(out.events) == 1  # the second word's look-ahead (0.3 s) has not arrived
    last = engine.flush()
    assert len(last.events) == 1 and last.events[0].step > out.events[0].step
    assert engine.flush().events == []


def test_rejected_proposals_are_counted_not_reported(recognizer, stream: np.ndarray, tmp_path: Path) -> None:
    # A head manifest whose phrase is not what is said: the verifier turns every proposal down.
    alexa = shipped_manifest("alexa")
    (tmp_path / "odd.onnx").symlink_to(alexa.path)
    data = {**manifest_to_dict(alexa), "name": "odd", "file": "odd.onnx", "verifier": "whisper",
            "phrase": "Zanzibar Pumpernickel"}
    (tmp_path / "odd.json").write_text(json.dumps(data))
    engine = _engine(recognizer, verifier=None, model=str(tmp_path / "odd.json"))  # None: the manifest's
    before = dict(engine.verifier_stats)
    events, rejected = _run(engine, stream, 1280)
    assert events == [] and len(rejected) == 2
    assert all(e.verified is False for e in rejected)
    stats = engine.verifier_stats
    assert stats["rejected"] - before["rejected"] == 2 and stats["proposals"] - before["proposals"] == 2
    off = _engine(recognizer, verifier="off", model=str(tmp_path / "odd.json"))
    assert len(_run(off, stream, 1280)[0]) == 2 and off.verifiers[0]["verifier"] is None


def test_decoding_loops_are_recognised() -> None:
    from edge_assistant.wakeword.verifier import _looping

    assert _looping([5, 7, 7, 7, 7]) and _looping([1, 2, 3, 1, 2, 3]) and _looping([9, 4, 8, 4, 8])
    assert not _looping([7, 7, 7]) and not _looping([1, 2, 3, 4, 5, 6, 7]) and not _looping([])
