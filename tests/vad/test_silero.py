"""The Silero VAD wrapper: same numbers as openWakeWord's own VAD class, any chunking, clear load errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.core.errors import ConfigError, DataFormatError, ModelFileError
from edge_assistant.core.paths import openwakeword_model_dir
from edge_assistant.vad.silero import SileroVad, default_model_path, load_manifest


def _speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced-like test signal: a 120 Hz pulse train through formant-ish resonances, with pauses."""
    from scipy.signal import lfilter

    sr = 16000
    n = int(seconds * sr)
    rng = np.random.default_rng(seed)
    src = np.zeros(n)
    src[:: sr // 120] = 1.0
    src += 0.02 * rng.standard_normal(n)
    y = src
    for f, bw in ((700, 80), (1200, 90), (2600, 120)):
        r = np.exp(-np.pi * bw / sr)
        y = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * f / sr), r * r], y)
    envelope = (np.sin(2 * np.pi * 1.5 * np.arange(n) / sr) > -0.2).astype(float)
    y = y * envelope
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def test_manifest_matches_the_shipped_model() -> None:
    m = load_manifest()
    assert m["file"] == default_model_path().name and m["sample_rate_hz"] == 16000
    assert (openwakeword_model_dir() / m["file"]).is_file()


@pytest.mark.parametrize("window", [512, 1024, 1536])
def test_same_probabilities_as_openwakeword_vad(window: int, speech_data: Path) -> None:
    """openWakeWord's ``VAD.predict`` (int16 / 32767, one window per call) is the oracle."""
    from openwakeword.vad import VAD

    from edge_assistant.audio.io import read_audio

    pcm = read_audio(speech_data / "asr" / "read_speech" / "1089-134691-0000.flac", "int16")
    pcm = pcm[: len(pcm) // window * window]
    oracle = VAD()
    want = np.array([oracle.predict(pcm[i:i + window], frame_size=window) for i in range(0, len(pcm), window)])
    ours = SileroVad(window_samples=window)
    got = ours.process((pcm / 32767).astype(np.float32))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert want.max() > 0.9 and want.min() < 0.1  # the clip has both speech and silence


def test_probabilities_do_not_depend_on_chunking() -> None:
    x = _speechlike(3.0)
    whole = SileroVad().process(x)
    assert len(whole) == len(x) // 512
    rng = np.random.default_rng(1)
    for sizes in ([1] * len(x), [160] * (len(x) // 160 + 1), list(rng.integers(0, 3000, size=len(x)))):
        vad, got, pos = SileroVad(), [], 0
        for n in sizes:
            if pos >= len(x):
                break
            got.append(vad.process(x[pos:pos + n]))
            pos += n
        np.testing.assert_array_equal(np.concatenate(got), whole)


def test_state_is_carried_and_reset() -> None:
    x = _speechlike(2.0)
    vad = SileroVad()
    first = vad.process(x)
    again = vad.process(x)
    assert not np.array_equal(first, again)  # the LSTM remembers the first pass
    vad.reset()
    np.testing.assert_array_equal(vad.process(x), first)


def test_missing_model_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "silero_vad.onnx"
    with pytest.raises(ModelFileError, match=r"nowhere/silero_vad\.onnx: missing"):
        SileroVad(path)


def test_corrupt_model_is_named(tmp_path: Path) -> None:
    path = tmp_path / "silero_vad.onnx"
    data = default_model_path().read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match=r"silero_vad\.onnx: onnxruntime cannot load it"):
        SileroVad(path)


def test_checksum_mismatch_is_named(tmp_path: Path) -> None:
    path = tmp_path / "silero_vad.onnx"
    shutil.copy(default_model_path(), path)
    with path.open("r+b") as fh:  # flip one byte inside a weight: still loads, not the shipped model
        fh.seek(len(path.read_bytes()) - 100)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0x01]))
    with pytest.raises(ModelFileError, match="corrupt: SHA-256"):
        SileroVad(path, verify_checksum=True)


def test_wrong_graph_is_named() -> None:
    other = openwakeword_model_dir() / "melspectrogram.onnx"
    with pytest.raises(ModelFileError, match="not a Silero VAD v4 graph"):
        SileroVad(other)


def test_window_must_be_one_the_model_was_trained_on() -> None:
    with pytest.raises(ConfigError, match="window_samples=480"):
        SileroVad(window_samples=480)


def test_nan_input_is_named_and_not_consumed() -> None:
    vad = SileroVad()
    vad.process(np.zeros(1000, np.float32))
    bad = np.zeros(100, np.float32)
    bad[5] = np.inf
    with pytest.raises(DataFormatError, match=r"audio sample 1005 \(0\.063 s\)"):
        vad.process(bad)
    assert len(vad.process(np.zeros(24, np.float32))) == 1  # 1000 + 24 = 2 windows: nothing was consumed
