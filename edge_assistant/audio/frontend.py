"""Python owners of the C audio front end handles (native/include/ea/frontend.h is the contract).

Every class here owns one C handle: use ``close()`` or ``with``; ``ffi.gc`` only frees a handle that was
forgotten. A handle is not thread-safe: one object per stream/thread.

* :class:`OwwMelFrontend` - streaming openWakeWord log-mel features (int16, 16 kHz).
* :class:`WhisperLogMel` - Whisper's 80-band log-mel (float, 16 kHz), equal to faster-whisper's.
* :class:`Resampler` / :func:`resample` - 8/22.05/44.1/48 kHz (and more) to 16 kHz.
* :class:`HighPass` - DC removal / rumble high-pass.
* :class:`NoiseSuppressor` / :class:`NoiseSuppressorConfig` - stationary (and tonal) noise suppression.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_assistant._native import check, ffi, lib
from edge_assistant.core.errors import ConfigError

log = logging.getLogger(__name__)

#: Sample rate of everything downstream of the resampler.
SAMPLE_RATE_HZ = 16000
#: Input rates the resampler is specified and tested for (others with out/in reducing to L <= 1024 work).
SUPPORTED_INPUT_RATES_HZ = (8000, 16000, 22050, 44100, 48000)


def _as_1d(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        if arr.ndim == 2 and 1 in arr.shape:
            return arr.reshape(-1)
        raise ValueError(f"{what}: expected mono audio as a 1-D array, got shape {arr.shape}")
    return arr


def _int16(x: Any, what: str) -> np.ndarray:
    arr = _as_1d(x, what)
    if arr.dtype != np.int16:
        raise ValueError(f"{what}: expected int16 PCM samples, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr)


def _float32(x: Any, what: str) -> np.ndarray:
    arr = _as_1d(x, what)
    if arr.dtype.kind != "f":
        raise ValueError(f"{what}: expected float samples (float32 in [-1, 1]), got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _fptr(arr: np.ndarray) -> Any:
    return ffi.cast("float *", ffi.from_buffer(arr))


def _i16ptr(arr: np.ndarray) -> Any:
    return ffi.cast("int16_t *", ffi.from_buffer(arr))


class _Handle:
    """Owns one C handle: close() frees it, ffi.gc is the safety net."""

    _destroy: str = ""

    def __init__(self, ptr: Any) -> None:
        self._ptr = ffi.gc(ptr, getattr(lib, self._destroy))

    @property
    def _h(self) -> Any:
        if self._ptr is None:
            raise ValueError(f"{type(self).__name__} is closed")
        return self._ptr

    def close(self) -> None:
        """Free the C handle now (idempotent)."""
        if self._ptr is not None:
            ptr, self._ptr = self._ptr, None
            ffi.release(ptr)

    def __enter__(self):  # noqa: ANN204 - returns the subclass
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OwwMelFrontend(_Handle):
    """Streaming openWakeWord melspectrogram (int16 mono 16 kHz in, 32 transformed bands out).

    Frame ``k`` of the stream covers input samples ``[160*k, 160*k + 512)`` (counted from the first
    sample after construction or ``reset()``), which is exactly the grid of openWakeWord's own
    streaming ``AudioFeatures`` fed 1280-sample chunks (its call 0 gives frames 0-4, call ``c`` gives
    frames ``8c-3 .. 8c+4``).

    ``clamp_blocks=True`` (default) reproduces melspectrogram.onnx's per-call clamp at (max - 80 dB)
    on those same blocks, chunk-invariantly; frames are then released a whole block at a time: the
    first 5 frames once 1152 samples are in, then 8 frames per further 1280 samples. With
    ``clamp_blocks=False`` there is no clamp and each frame is released as soon as its 512 samples
    are in (see the header for when the two differ: only next to digital silence).
    """

    _destroy = "ea_oww_mel_destroy"
    samples_per_frame = 160
    frame_samples = 512
    n_bands = 32

    def __init__(self, clamp_blocks: bool = True) -> None:
        out = ffi.new("ea_oww_mel **")
        mode = lib.EA_OWW_CLAMP_BLOCKS if clamp_blocks else lib.EA_OWW_CLAMP_NONE
        check(lib.ea_oww_mel_create(mode, out), "ea_oww_mel_create")
        super().__init__(out[0])
        self.clamp_blocks = clamp_blocks
        self._nf = ffi.new("size_t *")

    @property
    def frames_released(self) -> int:
        """Frames returned since construction/reset (= stream index of the next frame)."""
        return int(lib.ea_oww_mel_frames_released(self._h))

    def process(self, pcm: Any) -> np.ndarray:
        """Push int16 samples (any length); returns the new frames, float32 (n_new_frames, 32)."""
        # Fast path first: this runs every 10-80 ms in the wake loop.
        if type(pcm) is np.ndarray and pcm.dtype == np.int16 and pcm.ndim == 1 and pcm.flags.c_contiguous:
            x = pcm
        else:
            x = _int16(pcm, "OwwMelFrontend.process")
        h = self._ptr
        if h is None:
            raise ValueError("OwwMelFrontend is closed")
        nf = self._nf
        n = x.size
        lib.ea_oww_mel_frames_for(h, n, nf)
        out = np.empty((nf[0], 32), dtype=np.float32)
        rc = lib.ea_oww_mel_process(h, ffi.from_buffer("int16_t[]", x), n, ffi.from_buffer("float[]", out), nf[0], nf)
        if rc:
            check(rc, "ea_oww_mel_process")
        return out

    def reset(self) -> None:
        """Start a new stream (drops all history)."""
        check(lib.ea_oww_mel_reset(self._h), "ea_oww_mel_reset")


class WhisperLogMel(_Handle):
    """Whisper's log-mel spectrogram (80 bands, n_fft 400, hop 160), as faster-whisper computes it."""

    _destroy = "ea_whisper_mel_destroy"
    n_mels = 80
    hop_samples = 160

    def __init__(self) -> None:
        out = ffi.new("ea_whisper_mel **")
        check(lib.ea_whisper_mel_create(out), "ea_whisper_mel_create")
        super().__init__(out[0])
        self._nf = ffi.new("size_t *")

    def __call__(self, audio: Any, padding_samples: int = 160) -> np.ndarray:
        """float 16 kHz mono in [-1, 1] -> float32 (80, (len + padding_samples) // 160)."""
        x = _float32(audio, "WhisperLogMel")
        if padding_samples < 0:
            raise ValueError(f"WhisperLogMel: padding_samples must be >= 0, got {padding_samples}")
        if x.size + padding_samples < 1:
            raise ValueError("WhisperLogMel: empty audio and no padding: nothing to analyse")
        nf = int(lib.ea_whisper_mel_frames(x.size, padding_samples))
        out = np.empty((self.n_mels, nf), dtype=np.float32)
        rc = lib.ea_whisper_mel_compute(self._h, _fptr(x), x.size, padding_samples, _fptr(out), nf, self._nf)
        if rc == lib.EA_ENONFINITE:
            raise ValueError(f"WhisperLogMel: audio contains NaN/Inf at sample {_first_bad(x)}")
        check(rc, "ea_whisper_mel_compute")
        return out


def _first_bad(x: np.ndarray) -> int:
    bad = np.flatnonzero(~np.isfinite(x))
    return int(bad[0]) if bad.size else -1


def _same_length_filter(h: Any, x: Any, what: str, c_name: str) -> np.ndarray:
    """Run a C filter with ``{c_name}_i16``/``{c_name}_f32`` variants: int16 in, int16 out; float in, float32 out."""
    a = _as_1d(x, what)
    if a.dtype == np.int16:
        a = np.ascontiguousarray(a)
        out16 = np.empty_like(a)
        check(getattr(lib, c_name + "_i16")(h, _i16ptr(a), _i16ptr(out16), a.size), c_name + "_i16")
        return out16
    a = _float32(a, what)
    out = np.empty_like(a)
    rc = getattr(lib, c_name + "_f32")(h, _fptr(a), _fptr(out), a.size)
    if rc == lib.EA_ENONFINITE:
        raise ValueError(f"{what}: input contains NaN/Inf at sample {_first_bad(a)} of the chunk")
    check(rc, c_name + "_f32")
    return out


class Resampler(_Handle):
    """Streaming, chunk-invariant polyphase resampler (float32 -> float32).

    Output lags input by :attr:`delay_samples` output samples (linear phase); :meth:`flush` returns them
    at the end of a stream. Pass band flat (+-0.001 dB) to 0.875 x min(in, out)/2, >= 88 dB stop-band
    rejection from min(in, out)/2 (see native/include/ea/frontend.h for the measured figures).
    """

    _destroy = "ea_resampler_destroy"

    def __init__(self, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        out = ffi.new("ea_resampler **")
        rc = lib.ea_resampler_create(int(in_rate_hz), int(out_rate_hz), out)
        if rc == lib.EA_ERATE:
            raise ValueError(
                f"Resampler: rate {in_rate_hz} Hz -> {out_rate_hz} Hz not supported (rates 1000..384000 Hz "
                f"whose ratio reduces to an up-factor <= 1024; e.g. {', '.join(map(str, SUPPORTED_INPUT_RATES_HZ))})"
            )
        check(rc, "ea_resampler_create")
        super().__init__(out[0])
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self.delay_samples = int(lib.ea_resampler_delay(self._h))
        self._n = ffi.new("size_t *")

    def process(self, x: Any) -> np.ndarray:
        """Push float samples (any length); returns the output samples they complete."""
        a = _float32(x, "Resampler.process")
        h = self._h
        n_out = int(lib.ea_resampler_output_for(h, a.size))
        out = np.empty(n_out, dtype=np.float32)
        rc = lib.ea_resampler_process(h, _fptr(a), a.size, _fptr(out), n_out, self._n)
        if rc == lib.EA_ENONFINITE:
            raise ValueError(f"Resampler.process: input contains NaN/Inf at sample {_first_bad(a)} of the chunk")
        check(rc, "ea_resampler_process")
        return out

    def flush(self) -> np.ndarray:
        """End of stream: the delay_samples outputs held back by the filter; then the stream restarts."""
        out = np.empty(self.delay_samples, dtype=np.float32)
        check(lib.ea_resampler_flush(self._h, _fptr(out), out.size, self._n), "ea_resampler_flush")
        return out

    def reset(self) -> None:
        check(lib.ea_resampler_reset(self._h), "ea_resampler_reset")


def resample(x: Any, in_rate_hz: int, out_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """One-shot, delay-compensated resampling: output sample n is at input time n * in/out.

    Output length is ceil(len(x) * out / in). int16 input is scaled to [-1, 1).
    """
    a = _as_1d(x, "resample")
    if a.dtype == np.int16:
        a = a.astype(np.float32) / 32768.0
    a = _float32(a, "resample")
    if int(in_rate_hz) == int(out_rate_hz):
        return a.copy()
    n_out = -(-a.size * int(out_rate_hz) // int(in_rate_hz))
    with Resampler(in_rate_hz, out_rate_hz) as rs:
        y = np.concatenate([rs.process(a), rs.flush()])
        return y[rs.delay_samples : rs.delay_samples + n_out]


class HighPass(_Handle):
    """DC removal / rumble high-pass: 2nd-order Butterworth (-3 dB at cutoff_hz, -12 dB/octave below)."""

    _destroy = "ea_highpass_destroy"

    def __init__(self, cutoff_hz: float = 60.0, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        if not 0.0 < float(cutoff_hz) < 0.45 * sample_rate_hz:
            raise ValueError(
                f"HighPass: cutoff_hz must be in (0, {0.45 * sample_rate_hz:g}) for {sample_rate_hz} Hz, got {cutoff_hz}"
            )
        out = ffi.new("ea_highpass **")
        rc = lib.ea_highpass_create(float(cutoff_hz), int(sample_rate_hz), out)
        if rc == lib.EA_ERATE:
            raise ValueError(f"HighPass: sample_rate_hz {sample_rate_hz} not supported (1000..384000)")
        check(rc, "ea_highpass_create")
        super().__init__(out[0])
        self.cutoff_hz = float(cutoff_hz)
        self.sample_rate_hz = int(sample_rate_hz)

    def process(self, x: Any) -> np.ndarray:
        """float -> float32, or int16 -> int16 (rounded, saturated); same length."""
        return _same_length_filter(self._h, x, "HighPass.process", "ea_highpass_process")

    def reset(self) -> None:
        check(lib.ea_highpass_reset(self._h), "ea_highpass_reset")


@dataclass(frozen=True)
class NoiseSuppressorConfig:
    """Settings of the stationary noise suppressor (16 kHz)."""

    #: Gain floor in dB: the most a time-frequency bin is attenuated (0..60). Lower keeps speech cleaner.
    max_attenuation_db: float = 15.0
    #: Minimum-statistics window in seconds (0.3..10): how long noise must stay to be learnt, and how
    #: fast a rise in noise is followed.
    noise_window_s: float = 1.5
    #: Decision-directed a-priori-SNR smoothing (0..0.999); higher = less musical noise, slower onsets.
    #: 0.95 keeps word onsets for the wake-word model better than the textbook 0.98 (0.90 wakes more
    #: but false-accepts more; figures in native/include/ea/frontend.h).
    dd_alpha: float = 0.95
    #: Noise over-subtraction factor (0.5..4); >1 removes more noise at the cost of weak speech.
    overestimate: float = 1.0

    def __post_init__(self) -> None:
        limits = {
            "max_attenuation_db": (0.0, 60.0),
            "noise_window_s": (0.3, 10.0),
            "dd_alpha": (0.0, 0.999),
            "overestimate": (0.5, 4.0),
        }
        for key, (lo, hi) in limits.items():
            v = getattr(self, key)
            if not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
                raise ConfigError(f"noise_suppressor.{key}: expected a number in [{lo}, {hi}], got {v!r}")


class NoiseSuppressor(_Handle):
    """Stationary/tonal noise suppressor (16 kHz): STFT Wiener gain with minimum-statistics noise.

    Each call returns exactly as many samples as it is given; the output lags the input by
    :attr:`delay_samples` = 512 samples (32 ms; the first 512 output samples of a stream are silence).
    int16 -> int16 and float -> float32.
    """

    _destroy = "ea_ns_destroy"
    delay_samples = 512
    sample_rate_hz = 16000

    def __init__(self, config: NoiseSuppressorConfig | None = None) -> None:
        self.config = config or NoiseSuppressorConfig()
        prm = ffi.new("ea_ns_params *")
        prm.max_attenuation_db = self.config.max_attenuation_db
        prm.noise_window_s = self.config.noise_window_s
        prm.dd_alpha = self.config.dd_alpha
        prm.overestimate = self.config.overestimate
        out = ffi.new("ea_ns **")
        check(lib.ea_ns_create(prm, out), "ea_ns_create")
        super().__init__(out[0])

    def process(self, pcm: Any) -> np.ndarray:
        """float -> float32, or int16 -> int16; same length (delayed by the frame, see the header)."""
        return _same_length_filter(self._h, pcm, "NoiseSuppressor.process", "ea_ns_process")

    def reset(self) -> None:
        check(lib.ea_ns_reset(self._h), "ea_ns_reset")


__all__ = [
    "SAMPLE_RATE_HZ",
    "SUPPORTED_INPUT_RATES_HZ",
    "OwwMelFrontend",
    "WhisperLogMel",
    "Resampler",
    "resample",
    "HighPass",
    "NoiseSuppressor",
    "NoiseSuppressorConfig",
]
