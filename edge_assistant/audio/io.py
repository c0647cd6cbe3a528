"""Read WAV/FLAC files as 16 kHz mono audio for the wake-word and speech engines.

The API is small on purpose:

* :func:`read_audio` returns the whole file as a 1-D array at 16 kHz, ``float32`` in [-1, 1) or
  ``int16`` PCM.
* :func:`audio_info` returns what the file header says, without decoding the samples.
* :func:`iter_audio_files` lists every ``.wav``/``.flac`` under some folders (recursive, sorted).
* :func:`to_int16` / :func:`to_float32` convert between the two sample formats.

Rules:

* **Channels.** A file with several channels is downmixed by the plain mean of its channels
  (equal weight, no pan law): stereo ``(L + R) / 2``. This keeps a centred voice at its level and
  cannot clip.
* **Rates.** 16 kHz is taken as is. 8, 22.05, 44.1 and 48 kHz are resampled to 16 kHz by the C
  ``Resampler`` of :mod:`edge_assistant.audio.frontend` (polyphase, with the anti-aliasing filter
  documented in ``native/include/ea/frontend.h``). Any other rate is an error.
* **Formats.** WAV (any PCM/float subtype libsndfile reads) and FLAC. Anything else, a file that
  fails to decode part-way, or a file without samples raises :class:`AudioFileError` naming the
  file and what was expected. Nothing is guessed.
* **Size.** A file longer than ``max_duration_s`` (default :data:`MAX_DURATION_S`, 30 minutes; the
  header is checked before any sample is decoded) raises :class:`AudioFileError`. Channels are
  downmixed block by block, so memory is about ``duration x rate x 4`` bytes (346 MB for 30 min at
  48 kHz) whatever the channel count.
* **NaN and infinity.** Float files holding NaN or +-inf samples raise :class:`AudioFileError` naming
  the file and the first such sample; :func:`to_int16` raises :class:`DataFormatError` (a
  ``ValueError``) for them, since they have no PCM value and would otherwise become arbitrary
  integers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.core.errors import AudioFileError, DataFormatError

log = logging.getLogger(__name__)

#: The rate every engine in the package works at.
TARGET_RATE_HZ = 16000
#: Input rates accepted by :func:`read_audio` (all but 16 kHz are resampled).
SUPPORTED_RATES_HZ: tuple[int, ...] = (8000, 16000, 22050, 44100, 48000)
#: File extensions :func:`iter_audio_files` picks up (lower case).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac")
#: Longest file :func:`read_audio` decodes by default (its ``max_duration_s``): 30 minutes.
MAX_DURATION_S = 1800.0
_BLOCK_SAMPLES = 1 << 18  # samples (all channels) decoded at a time: 1 MiB of float32
_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "FLAC": "FLAC"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says."""

    path: str
    format: str  # "WAV" or "FLAC"
    subtype: str  # e.g. "PCM_16"
    sample_rate_hz: int
    channels: int
    frames: int  # samples per channel

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate_hz if self.sample_rate_hz else 0.0


def audio_info(path: str | Path) -> AudioInfo:
    """Header of a WAV/FLAC file; raises :class:`AudioFileError` if it is not one we can use."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise AudioFileError(p, "no such file (expected a WAV or FLAC file)")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError with libsndfile's text
        raise AudioFileError(p, f"cannot read the header ({_reason(exc)}); expected a WAV or FLAC file") from exc
    fmt = _FORMATS.get(info.format)
    if fmt is None:
        raise AudioFileError(p, f"format {info.format!r} is not supported; expected WAV or FLAC")
    return AudioInfo(str(p), fmt, str(info.subtype), int(info.samplerate), int(info.channels), int(info.frames))


def read_audio(path: str | Path, dtype: str = "float32", target_rate_hz: int = TARGET_RATE_HZ,
               max_duration_s: float = MAX_DURATION_S) -> np.ndarray:
    """Decode ``path`` into a 1-D mono array at ``target_rate_hz`` (only 16000 is supported).

    ``dtype`` is ``"float32"`` (full scale = 1.0) or ``"int16"`` (PCM; float sources are scaled by
    32768 and saturated). Raises :class:`AudioFileError` for a missing, damaged, empty, unsupported
    or too long file (over ``max_duration_s``) and for NaN/infinite samples; the message names the
    file and what was expected.
    """
    if dtype not in ("float32", "int16"):
        raise ValueError(f"dtype must be 'float32' or 'int16', not {dtype!r}")
    if target_rate_hz != TARGET_RATE_HZ:
        raise ValueError(f"target_rate_hz must be {TARGET_RATE_HZ}")
    info = audio_info(path)
    if info.sample_rate_hz not in SUPPORTED_RATES_HZ:
        raise AudioFileError(
            path,
            f"sample rate {info.sample_rate_hz} Hz is not supported; expected 16000 Hz "
            f"or one of {', '.join(str(r) for r in SUPPORTED_RATES_HZ if r != TARGET_RATE_HZ)} Hz (resampled)",
        )
    if info.frames <= 0:
        raise AudioFileError(path, "contains no audio samples; expected at least one")
    if info.duration_s > max_duration_s:
        raise AudioFileError(path, f"is {info.duration_s:.1f} s long; at most {max_duration_s:g} s are read "
                                   "(max_duration_s)")
    # Read exact int16 when nothing has to be computed on the samples, float32 otherwise (float files
    # too: libsndfile would turn NaN into an arbitrary integer).
    exact_int16 = dtype == "int16" and info.channels == 1 and info.sample_rate_hz == TARGET_RATE_HZ \
        and info.subtype not in ("FLOAT", "DOUBLE")
    mono = _decode_mono(path, info, "int16" if exact_int16 else "float32")
    if exact_int16:
        return mono
    bad = _first_non_finite(mono)
    if bad is not None:
        raise AudioFileError(path, f"sample {bad} ({bad / info.sample_rate_hz:.3f} s) is {mono[bad]}; "
                                   "expected finite samples")
    if info.sample_rate_hz != TARGET_RATE_HZ:
        mono = _resample(mono, info.sample_rate_hz, path)
        bad = _first_non_finite(mono)
        if bad is not None:  # float samples near 3.4e38 overflow the (float32) filter
            raise AudioFileError(path, f"samples too large to resample (output sample {bad} is {mono[bad]}); "
                                       "expected float samples in about [-1, 1]")
    return to_int16(mono) if dtype == "int16" else mono


def _decode_mono(path: str | Path, info: AudioInfo, dtype: str) -> np.ndarray:
    """All samples downmixed to mono at the file's rate, decoded in blocks of :data:`_BLOCK_SAMPLES`."""
    import soundfile as sf

    out = np.empty(info.frames, dtype=dtype)
    n = 0
    try:  # +inf and -inf in one frame mix to NaN (no warning): refused with the other non-finite samples
        with sf.SoundFile(str(path)) as f, np.errstate(invalid="ignore"):
            for block in f.blocks(max(1, _BLOCK_SAMPLES // info.channels), dtype=dtype, always_2d=True):
                block = block[: info.frames - n]
                # the mean in float64: two float32 samples near 3.4e38 would overflow a float32 sum
                out[n:n + len(block)] = block[:, 0] if info.channels == 1 else block.mean(axis=1, dtype=np.float64)
                n += len(block)
                if n == info.frames:
                    break
    except Exception as exc:
        raise AudioFileError(path, f"damaged: decoding failed ({_reason(exc)}); expected a valid {info.format} stream") from exc
    if n == 0:
        raise AudioFileError(path, "contains no audio samples; expected at least one")
    if n < info.frames:
        raise AudioFileError(path, f"truncated: header says {info.frames} samples, only {n} could be decoded")
    return out


def _first_non_finite(x: np.ndarray) -> int | None:
    """Flat index of the first NaN or +-inf in ``x`` (None when all are finite)."""
    finite = np.isfinite(x)
    return None if finite.all() else int(np.argmin(finite.ravel()))


def _resample(x: np.ndarray, rate_hz: int, path: str | Path) -> np.ndarray:
    try:
        from edge_assistant.audio.frontend import resample
    except ImportError as exc:  # pragma: no cover - only on a broken install
        raise AudioFileError(
            path, f"is at {rate_hz} Hz and the C resampler is not available ({exc}); rebuild with `pip install -e .`"
        ) from exc
    log.debug("resampling %s from %d Hz to %d Hz", path, rate_hz, TARGET_RATE_HZ)
    return np.asarray(resample(x, rate_hz, TARGET_RATE_HZ), dtype=np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    """float in [-1, 1) to int16 PCM: scale by 32768, round to nearest, saturate.

    NaN and +-inf have no PCM value: they raise :class:`DataFormatError` (a ``ValueError``) naming the
    first such sample.
    """
    x = np.asarray(x)
    bad = _first_non_finite(x)
    if bad is not None:
        raise DataFormatError(f"sample {bad}", f"value {x.flat[bad]} is not finite; expected float samples in [-1, 1)")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes +-inf, then saturates
        y = np.rint(np.asarray(x, dtype=np.float32) * 32768.0)
    return np.clip(y, -32768, 32767).astype(np.int16)


def to_float32(x: np.ndarray) -> np.ndarray:
    """int16 PCM to float32 in [-1, 1): divide by 32768."""
    return np.asarray(x, dtype=np.float32) / np.float32(32768.0)


def iter_audio_files(dirs: str | Path | Iterable[str | Path]) -> Iterator[Path]:
    """Every ``.wav``/``.flac`` file in ``dirs`` (folders searched recursively, files taken as they are).

    Sorted by path within each argument; a path that does not exist raises :class:`AudioFileError`.
    """
    items = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    for item in items:
        p = Path(item)
        if p.is_file():
            yield p
        elif p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTENSIONS and q.is_file())
        else:
            raise AudioFileError(p, "no such file or folder (expected a folder of WAV/FLAC files or one file)")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


__all__ = [
    "AudioInfo",
    "AUDIO_EXTENSIONS",
    "MAX_DURATION_S",
    "SUPPORTED_RATES_HZ",
    "TARGET_RATE_HZ",
    "audio_info",
    "iter_audio_files",
    "read_audio",
    "to_float32",
    "to_int16",
]
