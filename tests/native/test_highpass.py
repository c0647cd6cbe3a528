"""High-pass / DC removal: attenuates DC and rumble, keeps speech band, streams chunk-invariantly."""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio.frontend import HighPass


def _gain_db(hp: HighPass, f: float, sr: int = 16000) -> float:
    t = np.arange(sr * 2) / sr
    y = hp.process((0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32))[sr:]
    return float(20 * np.log10(np.sqrt(2 * np.mean(y.astype(np.float64) ** 2)) / 0.5))


def test_response() -> None:
    with HighPass(60.0) as hp:
        assert abs(_gain_db(hp, 60.0) + 3.01) < 0.1  # -3 dB at the cutoff (Butterworth)
        hp.reset()
        assert _gain_db(hp, 15.0) < -23.0  # two octaves below: -24 dB (12 dB/octave)
        hp.reset()
        assert abs(_gain_db(hp, 1000.0)) < 0.05
        hp.reset()
        y = hp.process(np.full(32000, 0.25, np.float32))
        assert np.abs(y[16000:]).max() < 1e-4  # DC removed


def test_int16_dc_offset_and_rumble() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 16000
    rumble = 3000 * np.sin(2 * np.pi * 20 * t)
    speech_band = 2000 * np.sin(2 * np.pi * 700 * t)
    x = np.clip(1500 + rumble + speech_band + 50 * rng.standard_normal(t.size), -32768, 32767).astype(np.int16)
    with HighPass(80.0) as hp:
        y = hp.process(x)
    assert y.dtype == np.int16 and y.shape == x.shape
    tail = y[16000:].astype(np.float64)
    assert abs(tail.mean()) < 5
    ratio = np.sqrt(np.mean(tail**2)) / np.sqrt(np.mean((speech_band[16000:]) ** 2))
    assert 0.95 < ratio < 1.1  # rumble (20 Hz, 1.5x the speech amplitude) gone, 700 Hz kept


@pytest.mark.parametrize("sizes", [[1], [7], [160], [1280], None])
def test_chunk_size_invariance(sizes: list[int] | None) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal(20000).astype(np.float32)
    with HighPass() as hp:
        whole = hp.process(x)
    with HighPass() as hp:
        parts, pos, i = [], 0, 0
        while pos < x.size:
            n = int(rng.integers(1, 3000)) if sizes is None else sizes[i % len(sizes)]
            parts.append(hp.process(x[pos : pos + n]))
            pos += n
            i += 1
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cutoff_hz"):
        HighPass(9000.0)
    with pytest.raises(ValueError, match="cutoff_hz"):
        HighPass(-1.0)
    with pytest.raises(ValueError, match="sample_rate_hz 500"):
        HighPass(60.0, 500)
    with HighPass() as hp:
        x = np.zeros(10, np.float32)
        x[3] = np.nan
        with pytest.raises(ValueError, match="NaN/Inf at sample 3"):
            hp.process(x)
        with pytest.raises(ValueError, match="float"):
            hp.process(np.zeros(4, np.uint8))
