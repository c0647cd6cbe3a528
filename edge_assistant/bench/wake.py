"""Wake-rate benchmark: wake rate on positive clips, false accepts on negatives, FR/FA curve.

Every clip is streamed through a fresh :class:`~edge_assistant.wakeword.WakeWordEngine` with ``pad_s`` of
digital silence before and after (the reference protocol of shared/data/wakeword/README.md). With
``noise``, the padded clip is mixed with noise at the requested SNR over its whole length, so the noise
is heard before the word (as in a car, and as a suppressor needs); SNR = active-speech power over
noise power (:mod:`edge_assistant.audio.noise`), mixing seeded per clip.

A clip counts as detected at threshold T when ``patience`` consecutive 80 ms steps score >= T, which is
what the engine's events do. Per clip the *sustained* score is kept: the maximum over steps of the
minimum over ``patience`` consecutive steps (with patience 1, the clip's maximum score), so every
threshold of the curve comes from one pass. Threshold and patience default to the head's manifest
(0.5 and 1 for the shipped heads). ``negative_hours`` is the duration of the negative clips without padding.
Unreadable files are listed with their error and skipped; they never stop the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.errors import AudioFileError

log = logging.getLogger(__name__)

#: Thresholds of the FR/FA curve (the requested ones are added).
CURVE_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 1.0, 0.05))


@dataclass(frozen=True)
class WakeBenchConfig:
    """What ``bench wake`` runs."""

    model: str  # shipped head name or head .onnx path
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()
    thresholds: tuple[float, ...] = ()  # the first is the reported operating point; () = the head's manifest
    patience: int | None = None  # consecutive steps needed; None = the head's manifest
    noise: str | None = None  # "car", or a folder/file of noise recordings
    snr_db: tuple[float, ...] = ()  # one run per SNR when noise is given (default 5 dB)
    pad_s: float = 1.0  # silence before and after each clip
    int8: bool = False  # int8 embedding model
    int8_model_path: str | None = None
    features: str = "c"  # "c" or "onnx" mel features
    noise_suppression: bool | None = None  # C suppressor before the features; None = the head's manifest
    seed: int = 0  # noise choice/offsets and generator seed
    progress: bool = True  # tqdm bars on stderr
    # More heads scored in the same pass (one front end and embedding for all), each at its own
    # manifest's operating point unless thresholds/patience are given; reported in "runs".
    compare: tuple[str, ...] = ()


@dataclass
class _Clips:
    paths: list[str]
    maxima: list[np.ndarray]  # per clip: max score per label
    seconds: float


def sustained_max(scores: np.ndarray, patience: int) -> np.ndarray:
    """Per column, the highest score held for ``patience`` consecutive steps (0 when the clip is shorter)."""
    if len(scores) < patience:
        return np.zeros(scores.shape[1], np.float32)
    if patience == 1:
        return scores.max(axis=0)
    runs = np.lib.stride_tricks.sliding_window_view(scores, patience, axis=0)  # (steps, labels, patience)
    return runs.min(axis=2).max(axis=0)


def _stream_max(engine: Any, pcm16: np.ndarray, patience: Sequence[int]) -> np.ndarray:
    """Per label column, the sustained maximum with that column's patience."""
    engine.reset()
    scores = engine.feed(pcm16).scores
    cols = np.asarray(patience)
    out = np.zeros(scores.shape[1], np.float32)
    for p in set(patience):
        out[cols == p] = sustained_max(scores, p)[cols == p]
    return out


def _load_all(dirs: Sequence[str], unreadable: list[dict[str, str]]) -> list[tuple[str, np.ndarray]]:
    from edge_assistant.audio.io import iter_audio_files, read_audio

    out = []
    for p in iter_audio_files(list(dirs)):
        try:
            out.append((str(p), read_audio(p, "float32")))
        except AudioFileError as exc:
            unreadable.append({"path": str(p), "error": exc.reason})
            log.warning("unreadable: %s", exc)
    return out


def _score_set(
    engine: Any,
    clips: list[tuple[str, np.ndarray]],
    pad: np.ndarray,
    noise: Any,
    snr_db: float | None,
    desc: str,
    progress: bool,
    patience: Sequence[int],
) -> _Clips:
    from tqdm import tqdm

    from edge_assistant.audio.io import to_int16

    res = _Clips([], [], 0.0)
    for path, x in tqdm(clips, desc=desc, unit="clip", disable=not progress, leave=False):
        y = np.concatenate((pad, x, pad))
        if noise is not None and snr_db is not None:
            y = noise.mix(y, snr_db, key=Path(path).name + "\0" + str(Path(path).parent.name))
        res.paths.append(path)
        res.maxima.append(_stream_max(engine, to_int16(y), patience))
        res.seconds += len(x) / 16000.0
    return res


def _summary(pos: _Clips, neg: _Clips, col: int, threshold: float) -> dict[str, Any]:
    pmax = np.array([m[col] for m in pos.maxima]) if pos.maxima else np.zeros(0)
    nmax = np.array([m[col] for m in neg.maxima]) if neg.maxima else np.zeros(0)
    detected = int((pmax >= threshold).sum())
    fa = int((nmax >= threshold).sum())
    hours = neg.seconds / 3600.0
    return {
        "threshold": threshold,
        "detected": detected,
        "wake_rate": detected / len(pmax) if len(pmax) else None,
        "false_accepts": fa,
        "fa_per_hour": fa / hours if hours > 0 else None,
    }


def run_wake_bench(cfg: WakeBenchConfig) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result (see module docstring for the keys)."""
    from edge_assistant.audio.noise import load_noise
    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine
    engine = WakeWordEngine(
        EngineConfig(
            models=tuple(WakeWordConfig(m, threshold=cfg.thresholds[0] if cfg.thresholds else None,
                                        patience_frames=cfg.patience) for m in (cfg.model, *cfg.compare)),
            features=cfg.features,
            int8_embedding=cfg.int8,
            int8_model_path=cfg.int8_model_path,
            noise_suppression=cfg.noise_suppression,
        )
    )
    # The engine resolved the defaults from each head's manifest: report what it runs.
    settings = engine.detection_settings  # one per label column, in column order
    patience = [s["patience_frames"] for s in settings]
    suppress = engine.noise_suppression
    unreadable: list[dict[str, str]] = []
    positives = _load_all(cfg.positives, unreadable)
    negatives = _load_all(cfg.negatives, unreadable)
    noise = load_noise(cfg.noise, seed=cfg.seed) if cfg.noise else None
    snrs: list[float | None] = list(cfg.snr_db) if noise is not None else [None]
    if noise is not None and not snrs:
        snrs = [5.0]
    pad = np.zeros(int(round(cfg.pad_s * 16000)), dtype=np.float32)
    columns = [(head, label) for head in engine.heads for label in head.labels]
    runs = []
    for snr in snrs:
        tag = "quiet" if snr is None else f"{snr:g} dB"
        pos = _score_set(engine, positives, pad, noise, snr, f"positives ({tag})", cfg.progress, patience)
        neg = _score_set(engine, negatives, pad, noise, snr, f"negatives ({tag})", cfg.progress, patience)
        for col, (head, label) in enumerate(columns):
            thresholds = tuple(cfg.thresholds) or (settings[col]["threshold"],)
            main = _summary(pos, neg, col, thresholds[0])
            grid = sorted(set(CURVE_THRESHOLDS) | set(thresholds))
            curve = []
            for t in grid:
                s = _summary(pos, neg, col, t)
                curve.append({"threshold": t, "wake_rate": s["wake_rate"], "fa_per_hour": s["fa_per_hour"],
                              "false_accepts": s["false_accepts"]})
            col_p = np.array([m[col] for m in pos.maxima]) if pos.maxima else np.zeros(0)
            col_n = np.array([m[col] for m in neg.maxima]) if neg.maxima else np.zeros(0)
            runs.append(
                {
                    "model": head.name,
                    "label": label,
                    "noise": cfg.noise,
                    "snr_db": snr,
                    "noise_suppression": suppress,
                    "int8": cfg.int8,
                    "threshold": thresholds[0],
                    "patience_frames": patience[col],
                    "positives": len(pos.paths),
                    "detected": main["detected"],
                    "wake_rate": main["wake_rate"],
                    "negatives": len(neg.paths),
                    "negative_hours": neg.seconds / 3600.0,
                    "false_accepts": main["false_accepts"],
                    "fa_per_hour": main["fa_per_hour"],
                    "thresholds": [_summary(pos, neg, col, t) for t in thresholds],
                    "missed": [p for p, m in zip(pos.paths, col_p, strict=True) if m < thresholds[0]],
                    "false_accept_files": [p for p, m in zip(neg.paths, col_n, strict=True) if m >= thresholds[0]],
                    "curve": curve,
                }
            )
    result = dict(runs[0])
    result.update(
        {
            "features": cfg.features,
            "pad_s": cfg.pad_s,
            "seed": cfg.seed,
            "licence": engine.heads[0].manifest.licence,
            "unreadable": unreadable,
            "runs": runs,
        }
    )
    return result


def plot_curve(result: dict[str, Any], path: str | Path) -> None:
    """Write the FR/FA curve(s) of ``result`` as a PNG (false rejects % vs false accepts per hour)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for run in result["runs"]:
        pts = [(c["fa_per_hour"], 100.0 * (1.0 - c["wake_rate"])) for c in run["curve"]
               if c["fa_per_hour"] is not None and c["wake_rate"] is not None]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        cond = "quiet" if run["snr_db"] is None else f"{run['noise']} noise, {run['snr_db']:g} dB SNR"
        ax.plot(xs, ys, marker="o", markersize=3, label=f"{run['label']} ({cond})")
        op = next(c for c in run["curve"] if c["threshold"] == run["threshold"])
        if op["fa_per_hour"] is not None:
            ax.annotate(f"T={run['threshold']:g}", (op["fa_per_hour"], 100.0 * (1.0 - op["wake_rate"])),
                        textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_xlabel(f"false accepts per hour ({result['negative_hours']:.2f} h of negatives)")
    ax.set_ylabel("false rejects (%)")
    ax.set_title(f"wake word '{result['model']}': FR/FA over thresholds {CURVE_THRESHOLDS[0]}..{CURVE_THRESHOLDS[-1]}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path))
    plt.close(fig)
