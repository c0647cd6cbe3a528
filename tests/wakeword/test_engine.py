"""Streaming behaviour of the engine: chunk-size invariance, shared backbone, patience, refractory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_assistant.audio.io import read_audio
from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine, build_engine

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def alexa_pcm(wakeword_data: Path) -> np.ndarray:
    return read_audio(wakeword_data / "alexa" / "0.flac", "int16")


@pytest.fixture(scope="module")
def stream(alexa_pcm: np.ndarray) -> np.ndarray:
    """silence, alexa, 0.5 s silence, alexa, silence: two keywords 2.6 s apart."""
    pad = np.zeros(16000, np.int16)
    return np.concatenate((pad, alexa_pcm, pad[:8000], alexa_pcm, pad))


@pytest.mark.parametrize("chunk", [1, 7, 160, 1279, 1280, 1281, 4000, 16000])
def test_chunk_size_invariance(stream: np.ndarray, chunk: int) -> None:
    n = len(stream) if chunk > 100 else 3 * 16000  # 1-sample chunks over 3 s keep the test short
    x = stream[:n]
    engine = build_engine(["alexa", "timer"])
    whole = engine.feed(x)
    engine.reset()
    parts = [engine.feed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    scores = np.concatenate([p.scores for p in parts])
    steps = np.concatenate([p.steps for p in parts])
    assert np.array_equal(steps, whole.steps)
    assert np.array_equal(scores, whole.scores)  # bit-identical: the streaming graph is exact
    assert [e.to_dict() for p in parts for e in p.events] == [e.to_dict() for e in whole.events]


def test_float_input_equals_int16(stream: np.ndarray) -> None:
    engine = build_engine("alexa")
    a = engine.feed(stream).scores
    engine.reset()
    b = engine.feed(stream.astype(np.float32) / 32768.0).scores
    assert np.array_equal(a, b)


def test_several_heads_share_one_backbone_pass(stream: np.ndarray) -> None:
    names = ["alexa", "hey_jarvis", "hey_mycroft", "hey_marvin", "timer", "weather"]
    multi = build_engine(names)
    calls = []
    step = multi.backbone.step
    multi.backbone.step = lambda mel, state: calls.append(len(mel)) or step(mel, state)  # count, then run
    x = stream[: 4 * 16000]
    together = multi.feed(x).scores
    assert sum(calls) == 8 * (len(x) // 1280)  # each 80 ms step embedded once for all six heads
    assert multi.labels[:1] == ["alexa"] and "5_minute_timer" in multi.labels and len(multi.labels) == 11
    col = 0
    for name in names:
        single = build_engine(name).feed(x).scores
        assert np.array_equal(together[:, col : col + single.shape[1]], single)
        col += single.shape[1]


def test_event_carries_model_score_and_stream_time(stream: np.ndarray) -> None:
    engine = build_engine("alexa", refractory_s=2.0)
    events = engine.process(stream)
    assert [e.model for e in events] == ["alexa", "alexa"]
    assert all(e.score >= 0.5 for e in events)
    # first keyword lies in [1.0, 4.3] s of the stream, the second 3.8 s later
    assert 1.5 < events[0].time_s < 4.3
    assert 3.0 < events[1].time_s - events[0].time_s < 4.6
    assert events[0].time_s == pytest.approx(events[0].step * 0.08)


def test_refractory_suppresses_second_keyword(stream: np.ndarray) -> None:
    short = build_engine("alexa", refractory_s=2.0).process(stream)
    long = build_engine("alexa", refractory_s=10.0).process(stream)
    assert len(short) == 2 and len(long) == 1
    assert long[0].time_s == short[0].time_s
    # with no refractory period every qualifying step is an event again
    none = build_engine("alexa", refractory_s=0.0).process(stream)
    assert len(none) > 2


def test_patience_requires_consecutive_steps(stream: np.ndarray) -> None:
    scores = build_engine("alexa").feed(stream).scores[:, 0]
    above = scores >= 0.5
    # longest run of consecutive steps above threshold in the first keyword
    first = np.nonzero(above)[0][0]
    run = int(np.argmin(above[first:]))  # length of the first run
    assert run >= 2
    ok = build_engine("alexa", patience_frames=run, refractory_s=2.0).process(stream)
    assert ok and ok[0].step == first + run  # fires on the run-th consecutive step (1-based steps)
    too_many = build_engine("alexa", patience_frames=run + 1, refractory_s=10.0).process(stream[: len(stream) // 2])
    assert not too_many


def test_warmup_steps_report_zero() -> None:
    engine = build_engine("alexa")
    noise = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)
    res = engine.feed(noise)
    assert np.all(res.scores[:5] == 0.0) and len(res.scores) == 12


def test_multiple_keywords_stream_detects_alexa_near_8s(wakeword_data: Path) -> None:
    x = read_audio(wakeword_data / "multiple_keywords.wav", "int16")
    engine = build_engine(["alexa", "hey_jarvis", "hey_mycroft"])
    events = []
    for i in range(0, len(x), 1280):
        events.extend(engine.process(x[i : i + 1280]))
    alexa = [e for e in events if e.model == "alexa"]
    assert len(alexa) == 1
    assert 8.0 <= alexa[0].time_s <= 9.5


def test_noise_suppressor_switch(stream: np.ndarray) -> None:
    from edge_assistant.audio.frontend import NoiseSuppressorConfig

    plain = build_engine("alexa")
    ns = WakeWordEngine(
        EngineConfig(models=(WakeWordConfig("alexa"),), noise_suppression=True,
                     noise_suppressor=NoiseSuppressorConfig(max_attenuation_db=12.0))
    )
    a = plain.feed(stream).scores
    b = ns.feed(stream).scores
    assert a.shape == b.shape and not np.array_equal(a, b)  # the suppressor is really in the path
    assert len(ns.process(np.zeros(0, np.int16))) == 0
    ns.reset()
    assert len(ns.process(stream)) >= 1  # clean speech still detected through it


def test_bad_config_values_are_named() -> None:
    from edge_assistant.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"models\[0\].threshold"):
        build_engine("alexa", threshold=1.5)
    with pytest.raises(ConfigError, match=r"models\[0\].patience_frames"):
        build_engine("alexa", patience_frames=0)
    with pytest.raises(ConfigError, match="listed twice"):
        build_engine(["alexa", "alexa"])
    with pytest.raises(ValueError, match="1-D"):
        build_engine("alexa").process(np.zeros((2, 100), np.int16))


def test_48k_stereo_recording_is_detected(alexa_pcm: np.ndarray, tmp_path: Path) -> None:
    """A head-unit style 48 kHz stereo file goes through read_audio (C resampler, downmix) to a detection."""
    import soundfile as sf

    from edge_assistant.audio.frontend import resample

    up = resample(alexa_pcm, 16000, 48000)
    path = tmp_path / "alexa_48k_stereo.wav"
    sf.write(path, np.stack([up, 0.5 * up], axis=1), 48000, subtype="PCM_16")
    x = read_audio(path, "int16")
    assert abs(len(x) - len(alexa_pcm)) <= 1
    events = build_engine("alexa").process(np.concatenate((np.zeros(16000, np.int16), x, np.zeros(16000, np.int16))))
    assert len(events) == 1


def test_backbone_sessions_keep_no_memory_pattern_per_shape() -> None:
    """The streaming embedding and the batched heads see a shape per chunk size: no pattern is kept per shape."""
    from edge_assistant.wakeword.backbone import session_options

    assert session_options().enable_mem_pattern is False
