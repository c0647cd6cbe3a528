"""Latency benchmark: per-80 ms-chunk cost of our wake pipeline vs openWakeWord, and detection latency.

All in one run, on the same audio, one thread everywhere (onnxruntime intra/inter-op = 1 for us and for
the peer, whose ``Model`` and ``AudioFeatures`` use 1 thread already):

* **front end**: C ``OwwMelFrontend.process`` on each 1280-sample chunk vs ``melspectrogram.onnx`` run the
  way openWakeWord runs it (on the last 1760 samples per chunk).
* **pipeline**: :class:`WakeWordEngine.process` per chunk (float and int8 embedding) vs openWakeWord's
  ``Model.predict`` with the same head (``alexa``) per chunk.
* **detection latency**: on each readable positive clip, streamed in 80 ms chunks after 1 s of
  silence, from the *end of the keyword* to the stream time of the engine's first event. The keyword end
  is found from 10 ms frame energies: frames louder than the noise floor plus 30 % of the floor-to-peak
  range (in dB) are voiced, and the voiced run around the loudest frame, bridging pauses under 200 ms,
  ends at the keyword end (the clips hold one utterance each; see :func:`keyword_end_s`).
  Stream latency is what the algorithm adds; compute time per chunk (above) comes on top.

Timings are wall clock (``perf_counter_ns``) per call; each system runs ``rounds`` times over the same
stream, interleaved, and the best round's mean is reported (the least disturbed by other processes).
"""

from __future__ import annotations

import logging
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.errors import AudioFileError

log = logging.getLogger(__name__)

CHUNK = 1280
KEYWORD_FRAME_S = 0.01
KEYWORD_FRACTION = 0.3
KEYWORD_MAX_GAP_S = 0.2


def keyword_end_s(x: np.ndarray, rate_hz: int = 16000) -> float:
    """End of the keyword in a single-utterance clip (see module docstring).

    10 ms frame energies in dB; noise floor = their 20th percentile (digital-silence frames excluded);
    peak = the loudest 100 ms (moving average, so a click does not count); voiced = frames above
    floor + 30 % of (peak - floor); from the peak, the voiced run is extended over gaps shorter than
    200 ms (pauses between syllables); the end of its last frame is returned.
    """
    hop = int(KEYWORD_FRAME_S * rate_hz)
    n = len(x) // hop
    if n == 0:
        return len(x) / rate_hz
    e = np.mean(np.asarray(x[: n * hop], np.float64).reshape(n, hop) ** 2, axis=1)
    db = 10 * np.log10(e + 1e-12)
    live = db[db > -100.0]
    if live.size == 0:
        return len(x) / rate_hz
    floor = float(np.percentile(live, 20))
    # anchor on the loudest 100 ms (a click is loud for a frame, a word for a syllable)
    smooth = np.convolve(e, np.ones(10) / 10, mode="same")
    peak_i = int(np.argmax(smooth))
    voiced = db >= floor + KEYWORD_FRACTION * (10 * np.log10(smooth[peak_i] + 1e-12) - floor)
    max_gap = int(round(KEYWORD_MAX_GAP_S / KEYWORD_FRAME_S))
    end = peak_i
    gap = 0
    for i in range(peak_i + 1, n):
        if voiced[i]:
            end, gap = i, 0
        else:
            gap += 1
            if gap > max_gap:
                break
    return (end + 1) * hop / rate_hz


def _time_calls(fn: Callable[[np.ndarray], Any], chunks: Sequence[np.ndarray]) -> float:
    """Mean microseconds per call over ``chunks``."""
    t0 = time.perf_counter_ns()
    for c in chunks:
        fn(c)
    return (time.perf_counter_ns() - t0) / 1e3 / len(chunks)


def run_latency_bench(
    clips_dirs: Sequence[str | Path],
    max_clips: int = 40,
    latency_clips: int | None = None,
    rounds: int = 3,
    int8_model_path: str | Path | None = None,
    model: str = "alexa",
    progress: bool = True,
) -> dict[str, Any]:
    """Run the benchmark over clips from ``clips_dirs`` (readable ones, sorted); returns the JSON result."""
    import onnxruntime as ort
    from openwakeword.model import Model
    from tqdm import tqdm

    from edge_assistant.audio.frontend import OwwMelFrontend
    from edge_assistant.audio.io import iter_audio_files, read_audio
    from edge_assistant.wakeword.backbone import melspectrogram_model_path, open_session
    from edge_assistant.wakeword.engine import build_engine
    from edge_assistant.wakeword.manifest import load_manifest

    clips: list[tuple[str, np.ndarray]] = []
    unreadable = []
    for p in iter_audio_files(list(clips_dirs)):
        try:
            clips.append((str(p), read_audio(p, "int16")))
        except AudioFileError as exc:
            unreadable.append({"path": str(p), "error": exc.reason})
    if not clips:
        raise AudioFileError(", ".join(map(str, clips_dirs)), "no readable clip for the latency benchmark")
    pad = np.zeros(16000, np.int16)
    stream = np.concatenate([np.concatenate((pad, x)) for _, x in clips[:max_clips]] + [pad])
    stream = stream[: len(stream) // CHUNK * CHUNK]
    chunks = [stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)]

    # --- systems under test -------------------------------------------------------------------------
    c_front = OwwMelFrontend()
    mel_sess = open_session(melspectrogram_model_path(), "melspectrogram.onnx", threads=1)
    hist = np.zeros(0, np.float32)

    def onnx_front(c: np.ndarray) -> None:
        nonlocal hist
        hist = np.concatenate((hist, c.astype(np.float32)))[-(CHUNK + 480) :]
        mel_sess.run(None, {"input": hist[None, :]})

    eng_f = build_engine([model])
    eng_q = build_engine([model], int8_embedding=True, int8_model_path=str(int8_model_path) if int8_model_path else None)
    head_path = str(load_manifest(model).path)
    with warnings.catch_warnings():  # openwakeword asks for CUDA first; this machine has none
        warnings.simplefilter("ignore", UserWarning)
        peer = Model(wakeword_model_paths=[head_path])
    if ort.get_device() != "CPU":  # pragma: no cover - accelerators are not used here
        log.warning("onnxruntime device is %s", ort.get_device())

    systems: dict[str, tuple[Callable[[np.ndarray], Any], Callable[[], None]]] = {
        "frontend": (c_front.process, c_front.reset),
        "reference_frontend": (onnx_front, lambda: None),
        "pipeline": (eng_f.process, eng_f.reset),
        "pipeline_int8": (eng_q.process, eng_q.reset),
        "reference_pipeline": (peer.predict, lambda: None),
    }
    best: dict[str, float] = {k: float("inf") for k in systems}
    bar = tqdm(total=rounds * len(systems), desc="latency", unit="run", disable=not progress, leave=False)
    for _ in range(rounds):
        for name, (fn, reset) in systems.items():
            reset()
            best[name] = min(best[name], _time_calls(fn, chunks))
            bar.update(1)
    bar.close()

    # --- detection latency on real clips -------------------------------------------------------------
    lat_ms: list[float] = []
    missed = 0
    sel = clips if latency_clips is None else clips[:latency_clips]
    for _, x in tqdm(sel, desc="detection latency", unit="clip", disable=not progress, leave=False):
        eng_f.reset()
        y = np.concatenate((pad, x, pad, pad))
        end_s = 1.0 + keyword_end_s(x)
        first = None
        for i in range(0, len(y) - CHUNK + 1, CHUNK):
            ev = eng_f.process(y[i : i + CHUNK])
            if ev:
                first = ev[0].time_s
                break
        if first is None:
            missed += 1
            continue
        lat_ms.append(1000.0 * (first - end_s))
    lat = np.array(lat_ms) if lat_ms else np.zeros(1)

    def r(v: float) -> float:
        return round(float(v), 1)

    result = {
        "frontend_us_per_chunk": r(best["frontend"]),
        "reference_frontend_us_per_chunk": r(best["reference_frontend"]),
        "pipeline_us_per_chunk": r(best["pipeline"]),
        "pipeline_int8_us_per_chunk": r(best["pipeline_int8"]),
        "reference_pipeline_us_per_chunk": r(best["reference_pipeline"]),
        "frontend_speedup": round(best["reference_frontend"] / best["frontend"], 2),
        "pipeline_speedup": round(best["reference_pipeline"] / best["pipeline"], 2),
        "pipeline_int8_speedup": round(best["reference_pipeline"] / best["pipeline_int8"], 2),
        "detection_latency_ms": {
            "p50": r(np.percentile(lat, 50)),
            "p95": r(np.percentile(lat, 95)),
            "mean": r(lat.mean()),
            "clips": len(lat_ms),
            "missed": missed,
            "definition": "event stream time minus keyword end (energy-based, see keyword_end_s)",
        },
        "chunk_samples": CHUNK,
        "chunks_timed": len(chunks),
        "stream_s": round(len(stream) / 16000, 2),
        "rounds": rounds,
        "threads": 1,
        "model": model,
        "int8_model": str(eng_q.backbone.path),
        "unreadable": unreadable,
        "machine": f"{platform.machine()}, {_cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return result


def default_clips_dir() -> Path | None:
    """``$EDGE_ASSISTANT_SHARED_DATA/wakeword/alexa`` or ``shared/data/wakeword/alexa`` beside the checkout."""
    import os

    roots = [Path(os.environ["EDGE_ASSISTANT_SHARED_DATA"])] if os.environ.get("EDGE_ASSISTANT_SHARED_DATA") else []
    roots.append(Path(__file__).resolve().parents[2].parent / "shared" / "data")
    for root in roots:
        if (root / "wakeword" / "alexa").is_dir():
            return root / "wakeword" / "alexa"
    return None


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 0
