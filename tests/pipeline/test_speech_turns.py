"""Spoken replies at the pipeline level: self-wake suppression, the follow-up window and barge-in.

The stream is built from espeak-ng speech in generated cabin noise (real wake engine, VAD, Whisper, intents,
agents). The test plays the app's part: it tells the assistant when its reply starts and stops playing and
feeds, meanwhile, what the microphone hears: the assistant's own voice from the speakers (a reply that says
the wake word, the worst case) or the driver talking over it.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio import speech_synth
from edge_assistant.audio.noise import CarNoiseConfig, car_cabin_noise, mix_at_snr
from edge_assistant.pipeline import (
    Assistant,
    AssistantConfig,
    FollowUpOpened,
    ListenTimedOut,
    Replied,
    WakeHeard,
)
from edge_assistant.pipeline.scene import SceneTurn, build_scene

from .conftest import plain_assistant as _assistant

pytestmark = pytest.mark.skipif(not speech_synth.available(),
                                reason="espeak-ng is not installed (make test installs the Debian package)")

RATE = 16000
CHUNK = 1280


def _speech(text: str, lead_s: float = 0.5, tail_s: float = 2.5, snr_db: float = 15.0, seed: int = 0) -> np.ndarray:
    """``text`` spoken with no wake word, in cabin noise, as int16 16 kHz (speech peaks at -6 dBFS)."""
    voice = speech_synth.synthesize(text)
    clean = np.concatenate([np.zeros(int(lead_s * RATE), np.float32), voice, np.zeros(int(tail_s * RATE), np.float32)])
    clean *= 0.5 / max(1e-6, float(np.abs(clean).max()))
    cabin = car_cabin_noise(clean.size / RATE, CarNoiseConfig(speed_kmh=80.0), seed=seed)
    return np.clip(np.round(mix_at_snr(clean, cabin[: clean.size], snr_db) * 32767.0), -32768, 32767).astype(np.int16)


def _feed(assistant: Assistant, pcm: np.ndarray) -> list:
    events = []
    for i in range(0, pcm.size, CHUNK):
        events += assistant.feed(pcm[i : i + CHUNK])
    return events


@pytest.fixture(scope="module")
def first_turn() -> np.ndarray:
    return build_scene([SceneTurn("Why is the tyre light on?", silence_after_s=1.5)], snr_db=15.0, seed=11).pcm


@pytest.fixture(scope="module")
def own_voice() -> np.ndarray:
    """The assistant's reply as the microphone hears it, saying the wake word (the worst case for self-wake)."""
    return build_scene([SceneTurn("can answer that when you ask again.", silence_after_s=0.5)], snr_db=15.0,
                       lead_in_s=0.3, seed=12).pcm


def _answer_first_turn(assistant: Assistant, pcm: np.ndarray) -> None:
    events = _feed(assistant, pcm)
    assert [e.kind for e in events] == ["wake", "reply"], [e.to_dict() for e in events]
    assert events[1].intent.name == "vehicle.tyres"


def _wakes_alone(assistant: Assistant, pcm: np.ndarray) -> int:
    """Wake detections in ``pcm`` when nothing is suppressed (a fresh assistant)."""
    return sum(isinstance(e, WakeHeard) for e in _feed(assistant, pcm))


def test_own_voice_does_not_wake_the_assistant(router, recognizer, first_turn, own_voice) -> None:
    assert _wakes_alone(_assistant(router, recognizer), own_voice) >= 1  # unsuppressed, it would wake
    a = _assistant(router, recognizer, barge_in_threshold=None, speech_tail_s=0.3)
    _answer_first_turn(a, first_turn)
    a.speaking_started()
    events = _feed(a, own_voice)
    a.speaking_ended()
    assert events == [] and a.suppressed_wakes >= 1 and not a.capturing
    # after the tail, wake words count again
    later = _feed(a, np.zeros(int(0.5 * RATE), np.int16)) + _feed(a, own_voice)
    assert [e.kind for e in later][:1] == ["wake"]


def test_a_wake_word_in_the_tail_is_still_suppressed(router, recognizer, own_voice) -> None:
    a = _assistant(router, recognizer, barge_in_threshold=None, speech_tail_s=30.0)
    a.speaking_started()
    a.speaking_ended()  # the reply ended; its echo (and the capture's backlog) may still be coming
    assert not a.speaking
    assert _feed(a, own_voice) == [] and a.suppressed_wakes >= 1


def test_a_command_in_the_follow_up_window_needs_no_wake_word(router, recognizer, first_turn) -> None:
    a = _assistant(router, recognizer)
    _answer_first_turn(a, first_turn)
    a.speaking_started()
    _feed(a, np.zeros(RATE, np.int16))  # the reply plays
    a.speaking_ended()
    opened = a.follow_up(a.time_s + 0.3, 4.0)
    assert len(opened) == 1 and isinstance(opened[0], FollowUpOpened) and a.capturing
    assert opened[0].to_dict() == {"event": "follow_up", "time_s": pytest.approx(a.time_s + 0.3, abs=1e-3),
                                   "timeout_s": 4.0}
    events = _feed(a, _speech("How much range do I have left?", seed=5)) + a.flush()
    assert [e.kind for e in events] == ["reply"], [e.to_dict() for e in events]
    assert isinstance(events[0], Replied) and events[0].intent.name == "vehicle.range"
    assert not a.capturing
    # the window closed with the answer: the next command needs the wake word again
    assert _feed(a, _speech("What does the warning light mean?", seed=6)) + a.flush() == []


def test_silence_in_the_follow_up_window_returns_to_the_wake_word(router, recognizer, first_turn) -> None:
    a = _assistant(router, recognizer)
    _answer_first_turn(a, first_turn)
    start = a.time_s
    assert [e.kind for e in a.follow_up(None, 2.0)] == ["follow_up"]
    assert a.follow_up(None, 2.0) == []  # already listening
    events = _feed(a, np.zeros(3 * RATE, np.int16))
    assert len(events) == 1 and isinstance(events[0], ListenTimedOut) and events[0].follow_up
    assert events[0].time_s == pytest.approx(start + 2.0, abs=0.1)
    assert events[0].to_dict()["follow_up"] is True and not a.capturing
    assert _feed(a, _speech("How much range do I have left?", seed=7)) + a.flush() == []


def test_the_wake_word_in_the_follow_up_window_starts_a_normal_command(router, recognizer, first_turn) -> None:
    a = _assistant(router, recognizer)
    _answer_first_turn(a, first_turn)
    a.follow_up(None, 5.0)
    second = build_scene([SceneTurn("How much range do I have left?")], snr_db=15.0, lead_in_s=0.5, seed=8).pcm
    events = _feed(a, second) + a.flush()
    assert [e.kind for e in events] == ["wake", "reply"], [e.to_dict() for e in events]
    assert not events[0].barge_in and events[1].intent.name == "vehicle.range"


def test_barge_in_stops_the_reply_and_takes_the_command(router, recognizer, first_turn) -> None:
    driver = build_scene([SceneTurn("How much range do I have left?")], snr_db=15.0, lead_in_s=0.5, seed=9).pcm

    def over_the_reply(threshold: float | None, speaking: bool = True) -> tuple[Assistant, list]:
        a = _assistant(router, recognizer, barge_in_threshold=threshold)
        _answer_first_turn(a, first_turn)
        if speaking:
            a.speaking_started()
        return a, _feed(a, driver) + a.flush()

    # the score the driver's wake word reaches on this very stream when the assistant is silent
    _, quiet = over_the_reply(None, speaking=False)
    score = max(e.score for e in quiet if isinstance(e, WakeHeard))

    a, events = over_the_reply(score)
    assert [e.kind for e in events] == ["wake", "reply"], [e.to_dict() for e in events]
    assert events[0].barge_in and events[0].to_dict()["barge_in"] is True
    assert not a.speaking and a.suppressed_wakes == 0  # the caller stops playback on the barge-in wake
    assert events[1].intent.name == "vehicle.range"

    strict, events = over_the_reply(float(np.nextafter(np.float32(score), np.float32(2.0))))
    assert events == [] and strict.suppressed_wakes >= 1 and strict.speaking


def test_assistant_config_checks_the_speech_settings() -> None:
    from edge_assistant.core.errors import ConfigError

    with pytest.raises(ConfigError, match="barge_in_threshold"):
        AssistantConfig(barge_in_threshold=1.5)
    with pytest.raises(ConfigError, match="speech_tail_s"):
        AssistantConfig(speech_tail_s=-1.0)
