"""int8 embedding model: built with onnxruntime's static quantization on real speech, idempotent, accurate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.cli import main
from edge_assistant.core.errors import ConfigError
from edge_assistant.modelbuild.wakeword.quantize import quantize_embedding
from edge_assistant.wakeword.engine import build_engine

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory, speech_data: Path):
    out = tmp_path_factory.mktemp("models") / "wakeword" / "embedding_model.int8.onnx"
    res = quantize_embedding([speech_data / "asr"], out_path=out)  # the shipped recipe (600 steps)
    return res, speech_data / "asr"


def test_writes_model_and_manifest(int8_model) -> None:
    res, _ = int8_model
    assert res.built and res.path.is_file() and res.method == "static"
    meta = json.loads(res.manifest_path.read_text())
    assert meta["key"]["method"] == "static" and meta["calibration_files"] > 10
    assert meta["calibration_steps_used"] == res.calibration_steps >= 100
    assert res.size_bytes < 0.5 * (1.3 * 2**20)  # int8 weights: well under half the float model's size


@pytest.mark.slow
def test_int8_wake_rate_within_half_a_point(int8_model, alexa_clips) -> None:
    res, _ = int8_model
    f = build_engine("alexa")
    q = build_engine("alexa", int8_embedding=True, int8_model_path=str(res.path))
    det_f = det_q = 0
    for pcm in alexa_clips.pcm:
        det_f += f.score_clip(pcm).max() >= 0.5
        det_q += q.score_clip(pcm).max() >= 0.5
    n = len(alexa_clips.pcm)
    assert abs(det_q - det_f) / n <= 0.005, (det_f, det_q)


def test_idempotent_and_force(int8_model) -> None:
    res, calib = int8_model
    mtime = res.path.stat().st_mtime_ns
    again = quantize_embedding([calib], out_path=res.path)
    assert not again.built and again.path.stat().st_mtime_ns == mtime
    other = quantize_embedding([calib], out_path=res.path, calibration_steps=100)  # other settings: rebuilt
    assert other.built
    back = quantize_embedding([calib], out_path=res.path, calibration_steps=100, force=True)
    assert back.built


def test_int8_streaming_is_chunk_invariant(int8_model, alexa_clips) -> None:
    res, _ = int8_model
    q = build_engine("alexa", int8_embedding=True, int8_model_path=str(res.path))
    x = np.concatenate((np.zeros(16000, np.int16), alexa_clips.pcm[0]))
    whole = q.feed(x).scores
    q.reset()
    parts = np.concatenate([q.feed(x[i : i + 777]).scores for i in range(0, len(x), 777)])
    assert np.array_equal(parts, whole)  # state plumbing kept float: exact in any chunking


def test_dynamic_method_and_missing_calibration(tmp_path: Path) -> None:
    res = quantize_embedding(method="dynamic", out_path=tmp_path / "dyn.onnx")
    assert res.built and res.calibration_steps == 0
    build_engine("alexa", int8_embedding=True, int8_model_path=str(res.path))  # loads and runs
    with pytest.raises(ConfigError, match="calibration"):
        quantize_embedding([], method="static", out_path=tmp_path / "s.onnx")
    with pytest.raises(ConfigError, match="method"):
        quantize_embedding([], method="fp16", out_path=tmp_path / "s.onnx")


def test_cli_models_quantize(int8_model, capsys) -> None:
    res, calib = int8_model
    argv = ["models", "quantize", "--calibration", str(calib), "--steps", "100", "--out", str(res.path), "--json", "-"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 0  # second run with the same inputs: nothing to do
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == str(res.path) and out["method"] == "static" and out["built"] is False
