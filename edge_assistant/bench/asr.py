"""ASR benchmark: WER, latency and real-time factor, optionally against faster-whisper in the same run.

A data folder holds audio files and ``transcripts.tsv`` with a header row naming at least the columns
``file`` and ``text``. WER uses :func:`edge_assistant.asr.wer.normalize`. Latency is the wall time from
float32 samples in memory to text (features + encoder + decoder); file decoding is not counted for
either engine. Each clip is run by both engines back to back (ours first), after one warm-up clip each,
so both see the same machine state.
"""

from __future__ import annotations

import csv
import logging
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
from edge_assistant.asr.wer import NORMALISER, wer
from edge_assistant.audio.io import read_audio
from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.core.paths import whisper_package_dir

log = logging.getLogger(__name__)

SHORT_UTTERANCE_S = 5.0


@dataclass(frozen=True)
class Clip:
    path: Path
    text: str
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.audio.size / 16000.0


def load_clips(data_dirs: Iterable[str | Path]) -> list[Clip]:
    """Every row of every ``DIR/transcripts.tsv``; errors name the file and line."""
    clips: list[Clip] = []
    for d in data_dirs:
        d = Path(d)
        tsv = d / "transcripts.tsv"
        if not tsv.is_file():
            raise ConfigError(f"--data {d}: no transcripts.tsv (expected a TSV with columns file, text)")
        with open(tsv, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            if not reader.fieldnames or "file" not in reader.fieldnames or "text" not in reader.fieldnames:
                raise DataFormatError(f"{tsv}:1", f"header {reader.fieldnames}; expected columns 'file' and 'text'")
            for row in reader:
                where = f"{tsv}:{reader.line_num}"
                if not row.get("file") or row.get("text") is None:
                    raise DataFormatError(where, "row without 'file' or 'text'")
                clips.append(Clip(d / row["file"], row["text"], read_audio(d / row["file"])))
    if not clips:
        raise ConfigError("--data: no clips found")
    return clips


def _summary(durations: list[float], latencies_ms: list[float], refs: list[str], hyps: list[str]) -> dict:
    lat = np.asarray(latencies_ms)
    dur = np.asarray(durations)
    short = lat[dur <= SHORT_UTTERANCE_S]
    w, errors, words = wer(zip(refs, hyps, strict=True))
    return {
        "clips": len(lat),
        "wer": round(w, 4),
        "errors": errors,
        "words": words,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                       "mean": round(float(lat.mean()), 1)},
        "latency_short_ms": {"max_duration_s": SHORT_UTTERANCE_S, "clips": int(short.size),
                             "p50": round(float(np.percentile(short, 50)), 1) if short.size else None,
                             "p95": round(float(np.percentile(short, 95)), 1) if short.size else None},
        "total_latency_ms": round(float(lat.sum()), 1),
        "audio_s": round(float(dur.sum()), 2),
        "rtf": round(float(lat.sum() / 1000.0 / dur.sum()), 4),
    }


class FasterWhisperPeer:
    """faster-whisper on the same CTranslate2 files: CPU, int8, beam 1, greedy, no timestamps."""

    def __init__(self, threads: int) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise ConfigError(f"--vs faster-whisper needs faster-whisper: pip install 'edge-assistant[bench]' ({exc})") from None
        self.model = WhisperModel(str(whisper_package_dir()), device="cpu", compute_type="int8",
                                  cpu_threads=threads, num_workers=1, local_files_only=True)

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(
            audio, language="en", beam_size=1, best_of=1, temperature=0.0, without_timestamps=True,
            condition_on_previous_text=False, vad_filter=False, word_timestamps=False)
        return " ".join(s.text.strip() for s in segments).strip()


def run_asr_bench(data_dirs: list[str | Path], config: RecognizerConfig, vs_faster_whisper: bool = False,
                  progress: Callable[[Iterable], Iterable] | None = None) -> dict:
    """Run the benchmark and return the JSON-ready result."""
    clips = load_clips(data_dirs)
    ours = WhisperRecognizer(config)
    peer = FasterWhisperPeer(config.threads) if vs_faster_whisper else None
    ours.transcribe(clips[0].audio)  # warm-up: first-run allocations are not latency
    if peer:
        peer.transcribe(clips[0].audio)
    per_clip: list[dict] = []
    iterator = progress(clips) if progress else clips
    for clip in iterator:
        t0 = time.perf_counter()
        result = ours.transcribe(clip.audio)
        ours_ms = (time.perf_counter() - t0) * 1e3
        row = {"file": str(clip.path), "duration_s": round(clip.duration_s, 3), "reference": clip.text,
               "text": result.text, "latency_ms": round(ours_ms, 1), "features_ms": round(result.features_ms, 1),
               "encoder_ms": round(result.encoder_ms, 1), "decoder_ms": round(result.decoder_ms, 1),
               "tokens": len(result.tokens), "stop": result.stop_reason,
               "errors": wer([(clip.text, result.text)])[1]}
        if peer:
            t0 = time.perf_counter()
            text = peer.transcribe(clip.audio)
            row["peer_text"] = text
            row["peer_latency_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
            row["peer_errors"] = wer([(clip.text, text)])[1]
        per_clip.append(row)
    durations = [c["duration_s"] for c in per_clip]
    refs = [c["reference"] for c in per_clip]
    result = _summary(durations, [c["latency_ms"] for c in per_clip], refs, [c["text"] for c in per_clip])
    result["engine"] = {"name": "edge-assistant whisper-tiny.en onnx", "int8": config.int8, "threads": config.threads,
                        "audio_ctx_margin_s": config.audio_ctx_margin_s, "full_window": config.full_window}
    if peer:
        import faster_whisper

        ref = _summary(durations, [c["peer_latency_ms"] for c in per_clip], refs, [c["peer_text"] for c in per_clip])
        ref["engine"] = {"name": f"faster-whisper {faster_whisper.__version__}", "compute_type": "int8",
                         "beam_size": 1, "threads": config.threads, "model_dir": str(whisper_package_dir())}
        result["reference"] = ref
        s, r = result["latency_short_ms"]["p50"], ref["latency_short_ms"]["p50"]
        result["comparison"] = {
            "wer_delta_points": round(100 * (result["wer"] - ref["wer"]), 2),
            "p50_latency_ratio": round(result["latency_ms"]["p50"] / ref["latency_ms"]["p50"], 3),
            "p50_short_latency_ratio": round(s / r, 3) if s and r else None,
            "rtf_ratio": round(result["rtf"] / ref["rtf"], 3),
        }
    result["normaliser"] = NORMALISER
    result["machine"] = {"platform": platform.platform(), "machine": platform.machine(),
                         "python": platform.python_version()}
    result["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["per_clip"] = per_clip
    return result
