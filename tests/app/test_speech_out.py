"""SpeechOut (reply text -> espeak-ng -> ALSA) and the human lines ``edge-assistant run`` prints for it.

Playback goes through the real ALSA library into a ``type file`` PCM on a ``null`` slave (see
tests/audio/test_playback.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_unless_ci

from edge_assistant.audio import speech_synth
from edge_assistant.audio.playback import PlaybackEvent
from edge_assistant.core.config import SpeechSettings

PCM = "ea_speech_out_test"


@pytest.fixture
def out_pcm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    if not speech_synth.available():
        skip_unless_ci("espeak-ng is not installed (make setup installs the Debian package)")
    out = tmp_path / "speaker.raw"
    conf = tmp_path / "asound.conf"
    conf.write_text(f'pcm.{PCM} {{\n  type file\n  slave.pcm {{ type null }}\n  file "{out}"\n  format "raw"\n}}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    yield out


def test_the_reply_is_spoken_with_the_configured_voice_and_speed(out_pcm: Path) -> None:
    from edge_assistant.app.speech_out import SpeechOut

    events: list[PlaybackEvent] = []
    settings = SpeechSettings(device=PCM, sample_rate_hz=16000, voice="en-us", words_per_minute=200)
    out = SpeechOut(settings, events.append)
    try:
        out.say("  ", tag="blank")  # nothing to say: nothing played
        out.say("Range is two hundred kilometres.", tag="r")
        assert out.wait_idle(20.0)
    finally:
        out.close()
    assert [(e.state, e.tag) for e in events] == [("started", "r"), ("finished", "r")]
    want = speech_synth.synthesize("Range is two hundred kilometres.", voice="en-us", words_per_minute=200)
    want = np.clip(np.rint(want * 32767.0), -32768, 32767).astype(np.int16)
    written = np.fromfile(out_pcm, dtype="<i2")
    np.testing.assert_array_equal(written[: want.size], want)
    slower = speech_synth.synthesize("Range is two hundred kilometres.", voice="en-us", words_per_minute=120)
    assert slower.size > want.size  # the speed setting reached espeak-ng


def test_a_voice_espeak_does_not_know_fails_the_reply_not_the_assistant(out_pcm: Path) -> None:
    from edge_assistant.app.speech_out import SpeechOut

    events: list[PlaybackEvent] = []
    out = SpeechOut(SpeechSettings(device=PCM, sample_rate_hz=16000, voice="zz-none"), events.append)
    try:
        out.say("Hello.", tag="x")
        assert out.wait_idle(20.0)
    finally:
        out.close()
    assert [e.state for e in events] == ["failed"] and "zz-none" in (events[0].error or "")


def test_human_lines_for_speech_follow_up_and_barge_in() -> None:
    from edge_assistant.cli.run import _human

    assert "speaking the answer (2.5 s)" in _human({"event": "speech", "state": "started", "time_s": 3.0,
                                                    "duration_s": 2.5})
    assert "answer spoken" in _human({"event": "speech", "state": "finished", "time_s": 5.5, "duration_s": 2.5,
                                      "played_s": 2.5})
    assert "cut off after 1.2 s" in _human({"event": "speech", "state": "interrupted", "time_s": 4.2,
                                            "duration_s": 2.5, "played_s": 1.2})
    assert "not spoken: cannot open" in _human({"event": "speech", "state": "failed", "time_s": 4.2,
                                                "duration_s": 2.5, "played_s": 0.0, "error": "cannot open"})
    assert "follow-up (no wake word needed)" in _human({"event": "follow_up", "time_s": 6.0, "timeout_s": 5.0})
    assert "no follow-up" in _human({"event": "listen_timeout", "time_s": 11.0, "follow_up": True})
    assert "barge-in" in _human({"event": "wake", "time_s": 4.0, "model": "alexa", "score": 0.97, "barge_in": True})
    assert "barge-in" not in _human({"event": "wake", "time_s": 4.0, "model": "alexa", "score": 0.97})


def test_speech_settings_are_checked() -> None:
    from edge_assistant.core.errors import ConfigError

    for bad in ({"sample_rate_hz": 44123}, {"voice": "-x"}, {"words_per_minute": 10}, {"follow_up_s": -1.0},
                {"barge_in_threshold": 0.0}, {"device": ""}):
        with pytest.raises(ConfigError):
            SpeechSettings(**bad)


def test_what_is_spoken_is_the_gist_without_bracketed_details() -> None:
    from edge_assistant.app.speech_out import spoken

    answer = ("The tyre pressure lamp is on (read just now): the rear left tyre is low at 184.0 kPa, and it is "
              "dropping: a leak. Stop at the next safe place. Tyre pressures: front left 255.0 kPa (read just now), "
              "front right 253.5 kPa (read just now).")
    said = spoken(answer, 140)
    assert said == ("The tyre pressure lamp is on: the rear left tyre is low at 184.0 kPa, and it is dropping: a leak. "
                    "Stop at the next safe place.")
    assert "(" not in spoken(answer, 0) and spoken(answer, 0).endswith("253.5 kPa.")  # 0: every sentence
    assert spoken(answer, 10).startswith("The tyre pressure lamp is on:")  # at least the first sentence
    assert spoken("  ", 300) == ""
