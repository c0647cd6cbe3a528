"""WAV/FLAC reading under hostile input: made-up headers, huge declared sizes, NaN samples, and mutations
of real recordings from ``../shared/data``.

Any file gives a 1-D array of finite samples at 16 kHz or an AudioFileError naming the file, never another
exception, a hang, or memory beyond what the duration limit allows. A few hundred examples per test in
CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run (the mutation loop runs a tenth as many
mutations per file).
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.audio.io import SUPPORTED_RATES_HZ, read_audio
from edge_assistant.core.errors import AudioFileError

EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
MUTATIONS = max(20, EXAMPLES // 10)
FILE_SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
#: A few seconds at most: the generated files are small, and a header claiming more must not be believed.
MAX_DURATION_S = 10.0


def _check(path: Path, dtype: str) -> np.ndarray | None:
    """Read ``path``: finite mono samples of the right type, or an AudioFileError naming the file."""
    try:
        x = read_audio(path, dtype, max_duration_s=MAX_DURATION_S)
    except AudioFileError as exc:
        assert exc.path == str(path) and exc.reason
        return None
    assert x.ndim == 1 and len(x) > 0 and x.dtype == np.dtype(dtype)
    assert len(x) <= MAX_DURATION_S * 16000 + 16
    if dtype == "float32":
        assert np.isfinite(x).all()
    return x


_U16 = st.one_of(st.sampled_from([0, 1, 2, 3, 8, 16, 24, 32, 64, 0xFFFE, 0xFFFF]), st.integers(0, 0xFFFF))
_U32 = st.one_of(st.sampled_from([0, 1, 8000, 16000, 44100, 48000, 0x7FFFFFFF, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF))
_SAMPLES = st.one_of(
    st.binary(max_size=512),
    st.lists(st.floats(width=32), max_size=64).map(lambda xs: struct.pack(f"<{len(xs)}f", *xs)),
    st.lists(st.floats(), max_size=32).map(lambda xs: struct.pack(f"<{len(xs)}d", *xs)))


@st.composite
def _wav(draw) -> bytes:
    """A RIFF/WAVE file from hostile field values (format tag, channels, rate, bits, chunk sizes)."""
    tag = draw(st.sampled_from([1, 3, 0xFFFE, 6, 7]) | _U16)
    channels, bits = draw(st.sampled_from([1, 2]) | _U16), draw(st.sampled_from([8, 16, 24, 32, 64]) | _U16)
    rate = draw(st.sampled_from(SUPPORTED_RATES_HZ) | _U32)
    align = draw(st.just(max(1, channels * bits // 8) & 0xFFFF) | _U16)
    fmt = struct.pack("<HHLLHH", tag, channels, rate, rate * align & 0xFFFFFFFF, align, bits)
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: valid bits, channel mask, sub-format GUID
        fmt += struct.pack("<HHL", 22, bits, 0) + struct.pack("<H", draw(st.sampled_from([1, 3]) | _U16)) \
            + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    samples = draw(_SAMPLES)
    fmt_size = draw(st.just(len(fmt)) | _U32)
    data_size = draw(st.just(len(samples)) | _U32)
    body = b"WAVE" + b"fmt " + struct.pack("<L", fmt_size) + fmt + b"data" + struct.pack("<L", data_size) + samples
    riff_size = draw(st.just(len(body)) | _U32)
    return (draw(st.sampled_from([b"RIFF", b"RIFX", b"RF64"])) + struct.pack("<L", riff_size) + body)[
        : draw(st.none() | st.integers(0, 80)) or None]


@FILE_SETTINGS
@given(content=_wav(), dtype=st.sampled_from(["float32", "int16"]))
def test_any_wav_header_gives_samples_or_audio_file_error(tmp_path, content: bytes, dtype: str) -> None:
    path = tmp_path / "fuzz.wav"
    path.write_bytes(content)
    _check(path, dtype)


@FILE_SETTINGS
@given(content=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"fLaC" + b)),
       suffix=st.sampled_from([".flac", ".wav", ".ogg"]), dtype=st.sampled_from(["float32", "int16"]))
def test_any_bytes_give_samples_or_audio_file_error(tmp_path, content: bytes, suffix: str, dtype: str) -> None:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(content)
    _check(path, dtype)


@FILE_SETTINGS
@given(x=st.lists(st.floats(width=32), min_size=1, max_size=400), channels=st.sampled_from([1, 2]),
       rate=st.sampled_from(SUPPORTED_RATES_HZ), subtype=st.sampled_from(["FLOAT", "DOUBLE"]),
       dtype=st.sampled_from(["float32", "int16"]))
def test_float_files_with_nan_or_inf_are_refused_and_finite_ones_read(tmp_path, x, channels, rate, subtype,
                                                                       dtype) -> None:
    samples = np.asarray(x[: len(x) // channels * channels] or x[:1] * channels, dtype=np.float32)
    path = tmp_path / "float.wav"
    sf.write(path, samples.reshape(-1, channels), rate, subtype=subtype)
    got = _check(path, dtype)
    if not np.isfinite(samples).all():
        assert got is None
    elif rate == 16000 or np.abs(samples).max() < 1e30:  # near 3.4e38 the resampler may refuse (overflow)
        assert got is not None


def test_header_claiming_hours_is_refused_before_decoding(tmp_path: Path) -> None:
    """A data chunk declaring 4 GB of 8 kHz samples over 100 real bytes: not believed, not allocated."""
    path = tmp_path / "huge.wav"
    path.write_bytes(b"RIFF" + struct.pack("<L", 0xFFFFFFFF) + b"WAVEfmt " + struct.pack("<LHHLLHH", 16, 1, 1, 8000,
                     16000, 2, 16) + b"data" + struct.pack("<L", 0xFFFFFFF0) + bytes(100))
    x = _check(path, "float32")
    assert x is None or len(x) == 50 * 2  # libsndfile takes the real size (50 samples, resampled to 16 kHz)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(int(16000 * (MAX_DURATION_S + 1)), dtype=np.int16), 16000)
    with pytest.raises(AudioFileError, match=r"11.0 s long; at most 10 s"):
        read_audio(long, max_duration_s=MAX_DURATION_S)


# ------------------------------------------------------------------------------ mutations of real files
def _real_files(shared_data: Path, tmp_path: Path) -> list[Path]:
    """Real recordings (all 16 kHz mono PCM), and two made from one of them in other layouts: the samples
    declared at 48 kHz as stereo float WAV, and at 44.1 kHz as 24-bit FLAC (so the resampler and downmix
    paths see damaged input too)."""
    files = [shared_data / "speech/negatives/speech_commands/stop/7add4c5f_nohash_1.flac",
             shared_data / "wakeword/alexa/4.flac", shared_data / "noise/background/2.wav"]
    x, _ = sf.read(str(files[0]), dtype="float32")
    sf.write(tmp_path / "stereo48k.wav", np.stack([x, -x], axis=1), 48000, subtype="FLOAT")
    sf.write(tmp_path / "pcm24_44k.flac", x, 44100, subtype="PCM_24")
    return [*files, tmp_path / "stereo48k.wav", tmp_path / "pcm24_44k.flac"]


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, overwrite (a 32-bit size among them), insert and delete bytes; headers are hit more often."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange((min(len(buf), 128) if rng.random() < 0.5 else len(buf)) + 1)
        op = rng.random()
        if op < 0.4 and at < len(buf):
            buf[at] ^= 1 << rng.randrange(8)
        elif op < 0.55 and at + 4 <= len(buf):
            buf[at:at + 4] = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FC00000]).to_bytes(4, "little")
        elif op < 0.75:
            buf[at:at] = rng.randbytes(rng.choice([1, 4, 64]))
        else:
            del buf[at:at + rng.choice([1, 4, 100, 20_000])]
    return bytes(buf)


@pytest.mark.shared_data
def test_mutated_real_recordings_give_samples_or_audio_file_errors(shared_data: Path, tmp_path: Path) -> None:
    for src in _real_files(shared_data, tmp_path):
        original = src.read_bytes()
        assert _check(src, "float32") is not None
        path = tmp_path / f"mutated{src.suffix}"
        for i in range(MUTATIONS):
            path.write_bytes(_mutate(original, random.Random(f"{src.name}:{i}")))
            try:
                _check(path, "float32" if i % 2 else "int16")
            except Exception as exc:
                raise AssertionError(f"{src} mutation {i}: {type(exc).__name__}: {exc}") from exc


def test_stereo_float_near_the_float32_limit_is_downmixed_without_overflow(tmp_path: Path) -> None:
    """Regression (found by the nightly-size run): two finite samples of 1.7e38 summed in float32 overflowed
    to inf, and the file was refused as holding a non-finite sample it does not hold."""
    path = tmp_path / "loud.wav"
    big = np.float32(1.7014118e38)
    sf.write(path, np.array([[big, big], [-big, -big], [big, -big]], dtype=np.float32), 16000, subtype="FLOAT")
    assert read_audio(path).tolist() == [big, -big, 0.0]
    assert read_audio(path, "int16").tolist() == [32767, -32768, 0]


def test_samples_too_large_for_the_resampler_are_an_audio_file_error(tmp_path: Path) -> None:
    """Regression (found by the nightly-size run): finite float samples of 2.7e38 at 8 kHz overflowed the
    float32 resampling filter; read_audio returned inf (float32) or raised DataFormatError without the file
    name (int16)."""
    path = tmp_path / "loud8k.wav"
    big = np.float32(2.6868493e38)  # a square wave at full float32 scale: the filter overshoots past 3.4e38
    sf.write(path, np.tile(np.r_[np.full(3, big), np.full(3, -big)], 60), 8000, subtype="FLOAT")
    for dtype in ("float32", "int16"):
        with pytest.raises(AudioFileError, match="too large to resample") as err:
            read_audio(path, dtype)
        assert err.value.path == str(path)
