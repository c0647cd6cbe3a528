"""Reading WAV/FLAC: formats, downmix, resampling, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edge_assistant.audio.io import (
    MAX_DURATION_S,
    audio_info,
    iter_audio_files,
    read_audio,
    to_float32,
    to_int16,
)
from edge_assistant.core.errors import AudioFileError, DataFormatError


def _tone(rate: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_16k_mono_int16_is_exact(tmp_path: Path) -> None:
    x = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)
    for ext in ("wav", "flac"):
        p = tmp_path / f"a.{ext}"
        sf.write(p, x, 16000, subtype="PCM_16")
        assert np.array_equal(read_audio(p, "int16"), x)
        assert np.allclose(read_audio(p), x / 32768.0)
        info = audio_info(p)
        assert (info.sample_rate_hz, info.channels, info.frames) == (16000, 1, 16000)


def test_stereo_is_downmixed_by_mean(tmp_path: Path) -> None:
    left = _tone(16000, 0.5, 440, 0.4)
    right = _tone(16000, 0.5, 1000, 0.2)
    p = tmp_path / "stereo.wav"
    sf.write(p, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y = read_audio(p)
    assert y.shape == (8000,)
    assert np.allclose(y, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled_to_16k(tmp_path: Path, rate: int) -> None:
    p = tmp_path / f"tone_{rate}.wav"
    sf.write(p, _tone(rate, 1.0, 1000.0), rate, subtype="FLOAT")
    y = read_audio(p)
    assert abs(len(y) - 16000) <= 1
    spec = np.abs(np.fft.rfft(y[1000:15000] * np.hanning(14000)))
    peak_hz = np.argmax(spec) * 16000 / 14000
    assert abs(peak_hz - 1000.0) < 2.0
    assert np.sqrt(np.mean(y[1000:15000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_48k_above_nyquist_is_removed(tmp_path: Path) -> None:
    """A 12 kHz tone at 48 kHz must not alias into the 16 kHz output."""
    p = tmp_path / "hf.wav"
    sf.write(p, _tone(48000, 1.0, 12000.0), 48000, subtype="FLOAT")
    y = read_audio(p)
    assert np.sqrt(np.mean(y[1000:15000] ** 2)) < 0.5 * 10 ** (-60 / 20)


def test_unsupported_rate_names_file_and_expectation(tmp_path: Path) -> None:
    p = tmp_path / "odd.wav"
    sf.write(p, _tone(11025, 0.2), 11025)
    with pytest.raises(AudioFileError) as exc:
        read_audio(p)
    assert str(p) in str(exc.value) and "11025" in str(exc.value) and "16000" in str(exc.value)


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioFileError, match="no audio samples") as exc:
        read_audio(p)
    assert exc.value.path == str(p)


def test_zero_byte_and_garbage_files(tmp_path: Path) -> None:
    zero = tmp_path / "zero.flac"
    zero.write_bytes(b"")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    for p in (zero, junk):
        with pytest.raises(AudioFileError, match="expected a WAV or FLAC") as exc:
            read_audio(p)
        assert exc.value.path == str(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_truncated_flac_is_damaged(tmp_path: Path) -> None:
    p = tmp_path / "cut.flac"
    sf.write(p, (np.random.default_rng(1).standard_normal(48000) * 5000).astype(np.int16), 16000, subtype="PCM_16")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2] + bytes(len(data) // 2))
    with pytest.raises(AudioFileError) as exc:
        read_audio(p)
    assert exc.value.path == str(p)


@pytest.mark.shared_data
def test_real_damaged_flacs_raise_clear_errors(wakeword_data: Path) -> None:
    bad = []
    for p in iter_audio_files(wakeword_data / "alexa"):
        try:
            read_audio(p, "int16")
        except AudioFileError as exc:
            bad.append(exc)
    assert len(bad) == 14
    assert all(e.path.endswith(".flac") and "damaged" in e.reason and "FLAC" in e.reason for e in bad)


def test_other_format_rejected(tmp_path: Path) -> None:
    p = tmp_path / "a.ogg"
    sf.write(p, _tone(16000, 0.2), 16000, format="OGG", subtype="VORBIS")
    with pytest.raises(AudioFileError, match="expected WAV or FLAC"):
        read_audio(p)


def test_iter_audio_files_recursive_sorted(tmp_path: Path) -> None:
    for rel in ("b/2.flac", "a/1.wav", "a/sub/3.WAV", "a/notes.txt"):
        q = tmp_path / rel
        q.parent.mkdir(parents=True, exist_ok=True)
        q.write_bytes(b"x")
    got = [p.relative_to(tmp_path).as_posix() for p in iter_audio_files([tmp_path / "a", tmp_path / "b"])]
    assert got == ["a/1.wav", "a/sub/3.WAV", "b/2.flac"]
    with pytest.raises(AudioFileError, match="no such file or folder"):
        list(iter_audio_files([tmp_path / "missing"]))


def test_int16_float_round_trip() -> None:
    x = np.array([-32768, -1, 0, 1, 32767], np.int16)
    assert np.array_equal(to_int16(to_float32(x)), x)
    assert to_int16(np.array([1.5, -1.5], np.float32)).tolist() == [32767, -32768]


def test_files_longer_than_the_limit_are_refused_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "long.wav"
    sf.write(p, np.zeros(3 * 16000, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioFileError, match=r"is 3.0 s long; at most 2 s") as exc:
        read_audio(p, max_duration_s=2.0)
    assert exc.value.path == str(p)
    assert len(read_audio(p, max_duration_s=3.0)) == 3 * 16000
    assert MAX_DURATION_S == 1800.0  # the documented default


def test_many_channels_are_downmixed_block_by_block(tmp_path: Path) -> None:
    x = np.random.default_rng(2).uniform(-0.5, 0.5, (300_000, 6)).astype(np.float32)  # > one decode block
    p = tmp_path / "six.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    assert np.allclose(read_audio(p), x.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_named_not_turned_into_pcm(tmp_path: Path, bad: float) -> None:
    x = _tone(16000, 0.5)
    x[1234] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, 16000, subtype="FLOAT")
    for dtype in ("float32", "int16"):
        with pytest.raises(AudioFileError, match=r"sample 1234 \(0.077 s\) is .*; expected finite") as exc:
            read_audio(p, dtype)
        assert exc.value.path == str(p)
    with pytest.raises(DataFormatError, match="sample 1234: value .* is not finite") as err:
        to_int16(x)
    assert isinstance(err.value, ValueError)
    assert to_int16(np.array([1e300, -1e300])).tolist() == [32767, -32768]  # finite: saturated
