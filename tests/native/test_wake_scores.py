"""The clamp decision in practice: wake scores from C features equal those from melspectrogram.onnx.

openwakeword's own ``Model`` is run twice on the same real clips (padded with 1 s of digital silence, as
the reference benchmark does, so the 80 dB clamp is active): once as shipped, once with the mel frames of
its streaming feature buffer coming from :class:`OwwMelFrontend` (block clamp) instead of the ONNX model.
Everything downstream (embedding model, alexa head, buffering) is the real package code.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from edge_assistant.audio.frontend import OwwMelFrontend

pytestmark = [pytest.mark.shared_data, pytest.mark.filterwarnings("ignore:Specified provider")]


def _alexa_head() -> str:
    from openwakeword import utils

    return str(pathlib.Path(utils.__file__).parent / "resources" / "models" / "alexa_v0.1.onnx")


def _with_c_features(model) -> OwwMelFrontend:
    """Route the model's streaming mel frames through the C front end (same frame grid and blocks)."""
    af = model.preprocessor
    fe = OwwMelFrontend()
    fed = {"n": 0}

    def streaming_melspectrogram(n_samples: int) -> None:
        raw = np.asarray(list(af.raw_data_buffer)[-n_samples:], dtype=np.int16)
        frames = fe.process(raw)
        fed["n"] += raw.size
        af.melspectrogram_buffer = np.vstack((af.melspectrogram_buffer, frames))
        if af.melspectrogram_buffer.shape[0] > af.melspectrogram_max_len:
            af.melspectrogram_buffer = af.melspectrogram_buffer[-af.melspectrogram_max_len :, :]

    af._streaming_melspectrogram = streaming_melspectrogram
    return fe


def _scores(model, x: np.ndarray) -> np.ndarray:
    return np.array([model.predict(x[i : i + 1280])["alexa_v0.1"] for i in range(0, x.size - 1279, 1280)])


def test_wake_scores_agree_on_real_alexa_clips(wakeword_data: pathlib.Path) -> None:
    import soundfile as sf
    from openwakeword.model import Model

    files = sorted((wakeword_data / "alexa").glob("*.flac"))
    rng = np.random.default_rng(1)
    picked = [files[i] for i in sorted(rng.choice(len(files), size=min(16, len(files)), replace=False))]
    pad = np.zeros(16000, np.int16)
    parts, spans = [pad], []
    for path in picked:
        try:
            audio, sr = sf.read(str(path), dtype="int16")
        except Exception:  # noqa: BLE001 - 14 alexa FLACs are damaged on purpose
            continue
        if sr != 16000 or audio.ndim != 1:
            continue
        start = sum(p.size for p in parts)
        parts += [audio, pad]
        spans.append((start // 1280, (start + audio.size + pad.size) // 1280))
    assert len(spans) >= 10, f"only {len(spans)} readable clips"
    stream = np.concatenate(parts)  # one stream, clips separated by 1 s of digital silence
    ref_model = Model(wakeword_model_paths=[_alexa_head()])
    c_model = Model(wakeword_model_paths=[_alexa_head()])
    with _with_c_features(c_model):
        ref, ours = _scores(ref_model, stream), _scores(c_model, stream)
    detected = sum(ref[a:b].max() >= 0.5 for a, b in spans)
    assert detected >= len(spans) - 1, "the reference should detect these clips (sanity of the setup)"
    worst = float(np.abs(ref - ours).max())
    assert worst <= 0.01, f"wake scores differ by up to {worst:.4f}"
