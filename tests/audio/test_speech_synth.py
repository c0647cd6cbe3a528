"""The synthesisers behind the demo, the tests and wake-word training: espeak-ng voices and ``flite:NAME``.

Rate and pitch follow espeak-ng's scales on both engines (checked on the audio: duration and F0); a voice
that does not exist is an error naming it, not silence."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import skip_unless_ci

from edge_assistant.audio import speech_synth
from edge_assistant.audio.speech_synth import FLITE_VOICES, SpeechSynthError, synthesize


def _need(engine: str) -> None:
    if not speech_synth.available(engine):
        skip_unless_ci(f"{engine} is not installed (make setup installs it)")


def _median_f0(x: np.ndarray, rate_hz: int = 16000) -> float:
    """Median autocorrelation pitch over the loud 50 ms frames (60-400 Hz)."""
    n = rate_hz // 20
    loud = 0.1 * float(np.max(np.abs(x)))
    f0 = []
    for i in range(0, len(x) - n, n // 2):
        frame = x[i : i + n] - np.mean(x[i : i + n])
        if np.sqrt(np.mean(frame**2)) < loud:
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        lo, hi = rate_hz // 400, rate_hz // 60
        f0.append(rate_hz / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0))


@pytest.mark.parametrize("name", sorted(FLITE_VOICES))
def test_every_flite_voice_speaks_at_16_khz(name: str) -> None:
    _need("flite")
    x = synthesize("hey jarvis, what is my range", voice=f"flite:{name}")
    assert x.dtype == np.float32 and np.isfinite(x).all() and np.max(np.abs(x)) <= 1.0
    assert 1.0 < len(x) / 16000 < 4.0  # about two seconds of speech, at 16 kHz whatever the voice's own rate
    assert np.sqrt(np.mean(x**2)) > 0.01


def test_flite_follows_rate_and_pitch() -> None:
    _need("flite")
    text = "the battery is at sixty percent"
    slow, fast = (len(synthesize(text, voice="flite:rms", words_per_minute=w)) for w in (110, 200))
    assert slow / fast == pytest.approx(200 / 110, rel=0.15)
    low, high = (_median_f0(synthesize(text, voice="flite:slt", pitch=p)) for p in (20, 80))
    assert high / low == pytest.approx(2 ** (60 / 80), rel=0.2)  # 0.75 octave between pitch 20 and 80


def test_espeak_voices_are_unchanged_by_the_flite_names() -> None:
    _need("espeak-ng")
    a = synthesize("navigate home", voice="en-gb+f3", words_per_minute=150, pitch=50)
    assert len(a) > 8000 and np.array_equal(a, synthesize("navigate home", voice="en-gb+f3"))


def test_unknown_voices_are_named() -> None:
    with pytest.raises(SpeechSynthError, match=r"'flite:hal'.*flite:kal, flite:kal16"):
        synthesize("hello", voice="flite:hal")
    _need("espeak-ng")
    with pytest.raises(SpeechSynthError, match=r"espeak-ng failed for voice 'xx-nonexistent'"):
        synthesize("hello", voice="xx-nonexistent")
