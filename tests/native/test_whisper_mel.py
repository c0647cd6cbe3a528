"""Whisper log-mel from the C front end against faster-whisper's own FeatureExtractor."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from edge_assistant.audio.frontend import WhisperLogMel

from ._signals import speechlike


@pytest.fixture(scope="module")
def extractor():
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor()


@pytest.mark.parametrize("n", [1, 5, 199, 200, 201, 399, 400, 1600, 16000, 48123])
@pytest.mark.parametrize("padding", [0, 160, 480000])
def test_synthetic_matches_faster_whisper(extractor, n: int, padding: int) -> None:
    x = speechlike(n, seed=n)
    with WhisperLogMel() as mel:
        ours = mel(x, padding_samples=padding)
    if (n + padding) // 160 == 0:  # faster-whisper fails on an empty spectrogram; we return (80, 0)
        assert ours.shape == (80, 0)
        return
    ref = extractor(x, padding=padding)
    assert ours.shape == ref.shape == (80, (n + padding) // 160)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-3


def test_silence_and_loud_tone(extractor) -> None:
    with WhisperLogMel() as mel:
        z = np.zeros(3200, np.float32)
        np.testing.assert_allclose(mel(z), extractor(z, padding=160), atol=1e-3)
        t = np.arange(32000) / 16000
        tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
        np.testing.assert_allclose(mel(tone), extractor(tone, padding=160), atol=1e-3)


@pytest.mark.shared_data
def test_real_speech_matches_faster_whisper(speech_data: pathlib.Path, extractor) -> None:
    import soundfile as sf

    clips = sorted((speech_data / "asr" / "read_speech").glob("*.flac"))[:3]
    clips += sorted((speech_data / "asr" / "common_voice").glob("*.wav"))[:4]
    assert clips, f"no clips under {speech_data / 'asr'}"
    worst = 0.0
    with WhisperLogMel() as mel:
        for path in clips:
            x, sr = sf.read(str(path), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            if sr != 16000:
                from edge_assistant.audio.frontend import resample

                x = resample(x, sr)
            worst = max(worst, float(np.abs(mel(x) - extractor(x, padding=160)).max()))
    assert worst <= 1e-3, f"max abs difference {worst:.2e}"


def test_bad_input() -> None:
    with WhisperLogMel() as mel:
        with pytest.raises(ValueError, match="float"):
            mel(np.zeros(400, np.int16))
        x = np.zeros(1000, np.float32)
        x[123] = np.nan
        with pytest.raises(ValueError, match="NaN/Inf at sample 123"):
            mel(x)
        with pytest.raises(ValueError, match="padding_samples"):
            mel(np.zeros(10, np.float32), padding_samples=-1)
        with pytest.raises(ValueError, match="empty"):
            mel(np.zeros(0, np.float32), padding_samples=0)
