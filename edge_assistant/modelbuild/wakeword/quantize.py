"""int8 embedding model: onnxruntime static quantization of the streaming backbone, calibrated on speech.

What is quantized is the *streaming* embedding graph (:func:`edge_assistant.wakeword.backbone.streaming_embedding`),
so the engine gets both speed-ups: the per-step work of the streaming graph and int8 convolutions.

Method (chosen by measurement, see benchmarks/RESULTS.md):

* ``static`` (default): integer operators (QLinearConv, QOperator format), int8 per-tensor weights,
  uint8 activations whose ranges are calibrated (MinMax) on the activations the float model produces
  on real speech. Of the four static variants measured (QDQ/QOperator x per-channel/per-tensor) this
  was the fastest per step and also the closest to float (mean relative embedding error ~6 %).
* ``dynamic``: int8 weights, activation ranges computed per call (``ConvInteger``). Needs no
  calibration audio but is *slower* than float here (onnxruntime has no fast ConvInteger kernel on x86),
  so it is kept only for comparison.

The result goes to the model cache (``model_cache_dir()/wakeword/``) with a JSON manifest recording
the source model's SHA-256, the method and the calibration set; calling again with the same inputs
returns the cached file without work (idempotent). ``force=True`` rebuilds.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.build_record import environment, file_entry, sha256_file
from edge_assistant.core.errors import AudioFileError, ConfigError, ModelFileError
from edge_assistant.wakeword.model_cache import INT8_FILENAME, default_int8_path, files_digest, ort_version
from edge_assistant.wakeword.model_cache import INT8_RECIPE_VERSION as RECIPE_VERSION

log = logging.getLogger(__name__)

METHODS = ("static", "dynamic")
#: Calibration steps (80 ms each) taken from the speech, spread evenly over the files.
DEFAULT_CALIBRATION_STEPS = 600


@dataclass(frozen=True)
class QuantizeResult:
    """What :func:`quantize_embedding` produced."""

    path: Path
    manifest_path: Path
    method: str
    built: bool  # False when an up-to-date cached model was reused
    calibration_files: int
    calibration_steps: int
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest": str(self.manifest_path),
            "method": self.method,
            "built": self.built,
            "calibration_files": self.calibration_files,
            "calibration_steps": self.calibration_steps,
            "size_bytes": self.size_bytes,
        }


def default_calibration_dirs() -> list[Path]:
    """Real speech for calibration when none is named: ``$EDGE_ASSISTANT_SHARED_DATA/speech/asr``, or
    ``shared/data/speech/asr`` beside the source checkout. Empty when neither exists."""
    roots = []
    env = os.environ.get("EDGE_ASSISTANT_SHARED_DATA")
    if env:
        roots.append(Path(env))
    roots.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    for root in roots:
        cand = root / "speech" / "asr"
        if cand.is_dir():
            return [cand]
    return []


def quantize_embedding(
    calibration: Iterable[str | Path] = (),
    method: str = "static",
    out_path: str | Path | None = None,
    calibration_steps: int = DEFAULT_CALIBRATION_STEPS,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> QuantizeResult:
    """Write the int8 streaming embedding model (idempotent) and return where it is.

    ``calibration``: WAV/FLAC files or folders of real speech (needed for ``static``; unreadable
    files are skipped with a warning). ``out_path`` defaults to :func:`default_int8_path`.
    ``progress(done, total)`` is called while calibration audio is read.
    """
    from edge_assistant.audio.io import iter_audio_files
    from edge_assistant.wakeword.backbone import embedding_model_path, float_streaming_model_bytes

    if method not in METHODS:
        raise ConfigError(f"method: {method!r}; expected one of {', '.join(METHODS)}")
    if calibration_steps < 16:
        raise ConfigError(f"calibration_steps: {calibration_steps}; expected >= 16")
    out = Path(out_path) if out_path else default_int8_path()
    manifest_path = out.with_suffix(".json")
    src = embedding_model_path()
    calibration = list(calibration)
    files = sorted(iter_audio_files(calibration)) if method == "static" else []
    if method == "static" and not files:
        raise ConfigError("calibration: static quantization needs real speech (WAV/FLAC files or folders); none given")
    key = {
        "recipe": RECIPE_VERSION,
        "method": method,
        "source_sha256": sha256_file(src),
        "calibration_steps": calibration_steps if files else 0,
        "calibration_sha256": files_digest(files),
        "onnxruntime": ort_version(),
    }
    if not force and out.is_file() and manifest_path.is_file():
        try:
            old = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        if old.get("key") == key and old.get("sha256") == sha256_file(out):
            log.info("int8 embedding model up to date: %s", out)
            return QuantizeResult(
                out, manifest_path, method, False, int(old.get("calibration_files", 0)),
                int(old.get("calibration_steps_used", 0)), out.stat().st_size,
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    float_bytes = float_streaming_model_bytes()
    n_files = n_steps = 0
    with tempfile.TemporaryDirectory(prefix="ea-quant-") as tmp:
        float_path = Path(tmp) / "embedding_stream_float.onnx"
        float_path.write_bytes(float_bytes)
        tmp_out = Path(tmp) / INT8_FILENAME
        if method == "dynamic":
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(float_path), str(tmp_out), weight_type=QuantType.QInt8, per_channel=True)
        else:
            from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

            feeds, n_files = _calibration_feeds(float_bytes, files, calibration_steps, progress)
            n_steps = len(feeds)
            # The state plumbing stays float: a cached frame is then the dequantized value of the
            # activation it came from and is quantized again with the same scale as the new frames it
            # is concatenated with, so streaming in any chunking gives the same numbers as one pass.
            import onnx

            state_nodes = [n.name for n in onnx.load_from_string(float_bytes).graph.node
                           if n.name.startswith(("state_concat_", "state_slice_"))]
            quantize_static(
                str(float_path),
                str(tmp_out),
                _ListReader(feeds),
                quant_format=QuantFormat.QOperator,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                per_channel=False,
                calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=state_nodes,
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        _check_loadable(tmp_out)
        # atomic replace so a concurrent reader never sees half a file
        fd, staged = tempfile.mkstemp(dir=out.parent, prefix=".int8-", suffix=".onnx")
        os.close(fd)
        Path(staged).write_bytes(tmp_out.read_bytes())
        os.replace(staged, out)
    manifest = {
        "name": "embedding_model_int8",
        "type": "oww-embedding-streaming-int8",
        "file": out.name,
        "description": f"int8 ({method}) streaming speech-embedding backbone built from {src.name}",
        "licence": "Apache-2.0",
        "sample_rate_hz": 16000,
        "frame_samples": 1280,
        "calibration_files": n_files,
        "calibration_steps_used": n_steps,
        "sha256": sha256_file(out),
        "files": {out.name: file_entry(out)},
        "key": key,
        "calibration_dirs": [str(Path(c).resolve()) for c in calibration],
        "environment": environment(),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("wrote int8 embedding model %s (%s, %d bytes)", out, method, out.stat().st_size)
    return QuantizeResult(out, manifest_path, method, True, n_files, n_steps, out.stat().st_size)


class _ListReader:
    """onnxruntime CalibrationDataReader over a prepared list of feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _calibration_feeds(
    float_bytes: bytes,
    files: Sequence[Path],
    max_steps: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Stream speech through the float streaming model and keep (frames, states) feeds at each step.

    The first feed of every file is its start call (76 frames, empty states), the rest are 80 ms steps,
    so both shapes the engine uses are calibrated. Steps are taken evenly across files.
    """
    from edge_assistant.audio.io import read_audio
    from edge_assistant.wakeword.backbone import (
        STEP_MEL_FRAMES,
        WINDOW_MEL_FRAMES,
        make_mel_frontend,
        open_session,
    )

    sess = open_session(float_bytes, "embedding_model (streaming float)")
    inputs = sess.get_inputs()
    names = [i.name for i in inputs]
    empty = [np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in inputs[1:]]
    per_file = max(2, max_steps // max(1, len(files)))
    feeds: list[dict[str, np.ndarray]] = []
    used = 0
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files))
        if len(feeds) >= max_steps:
            break
        try:
            pcm = read_audio(path, "int16")
        except AudioFileError as exc:
            log.warning("calibration: skipping %s", exc)
            continue
        mel = make_mel_frontend("c").process(pcm)
        if len(mel) < WINDOW_MEL_FRAMES + STEP_MEL_FRAMES:
            continue
        used += 1
        x0 = mel[None, :WINDOW_MEL_FRAMES, :, None].astype(np.float32)
        out = sess.run(None, {names[0]: x0, **dict(zip(names[1:], empty, strict=True))})
        feeds.append({names[0]: x0, **dict(zip(names[1:], empty, strict=True))})
        states = out[1:]
        n_steps = (len(mel) - WINDOW_MEL_FRAMES) // STEP_MEL_FRAMES
        keep = set(np.linspace(0, n_steps - 1, num=min(per_file, n_steps), dtype=int).tolist())
        for s in range(n_steps):
            a = WINDOW_MEL_FRAMES + STEP_MEL_FRAMES * s
            x = mel[None, a : a + STEP_MEL_FRAMES, :, None].astype(np.float32)
            feed = {names[0]: x, **dict(zip(names[1:], states, strict=True))}
            if s in keep and len(feeds) < max_steps:
                feeds.append(feed)
            states = sess.run(None, feed)[1:]
    if progress:
        progress(len(files), len(files))
    if len(feeds) < 16:
        raise ConfigError(f"calibration: only {len(feeds)} usable steps from {len(files)} files; need >= 16 (about 2 s of speech)")
    return feeds, used


def _check_loadable(path: Path) -> None:
    from edge_assistant.wakeword.backbone import EmbeddingBackbone

    try:
        EmbeddingBackbone(path)
    except Exception as exc:
        raise ModelFileError(path, f"quantized model does not load ({exc})") from exc
