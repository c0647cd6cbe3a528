"""Checks and conversion for the audio chunks that the streaming VAD parts accept."""

from __future__ import annotations

import numpy as np

from edge_assistant.core.errors import DataFormatError

#: Float input whose magnitude exceeds this is taken for integer-scaled samples, not a mistake to clip.
MAX_FLOAT_MAGNITUDE = 8.0


def as_float_chunk(chunk: object, first_sample: int, sample_rate_hz: int) -> np.ndarray:
    """Return ``chunk`` as a 1-D float32 array in [-1, 1] full scale, or raise :class:`DataFormatError`.

    int16 is scaled by 1/32768; float32/float64 are taken as full-scale floats. ``first_sample`` (the
    stream index of ``chunk[0]``) only serves to name the bad sample and its stream time in the message.
    """
    arr = np.asarray(chunk)
    where = f"audio chunk at sample {first_sample} ({first_sample / sample_rate_hz:.3f} s)"
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataFormatError(where, f"expected mono samples (1-D array), got shape {arr.shape}")
    if arr.dtype == np.int16:
        return arr.astype(np.float32) * np.float32(1.0 / 32768.0)
    if arr.dtype.kind != "f":
        raise DataFormatError(where, f"expected int16 or float32/float64 samples, got dtype {arr.dtype}")
    out = arr.astype(np.float32, copy=False)
    if out.size:
        finite = np.isfinite(out)
        if not finite.all():
            bad = int(np.argmin(finite))
            index = first_sample + bad
            raise DataFormatError(
                f"audio sample {index} ({index / sample_rate_hz:.3f} s)",
                f"value {out[bad]} is not finite; expected float samples in [-1, 1]",
            )
        peak = float(np.max(np.abs(out)))
        if peak > MAX_FLOAT_MAGNITUDE:
            raise DataFormatError(
                where,
                f"float samples reach {peak:g}; expected full scale [-1, 1] (int16-scaled floats? divide by 32768)",
            )
    return out
