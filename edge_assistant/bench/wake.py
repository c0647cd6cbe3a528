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

Those clip counts are the head's alone. Events are counted too, at the operating point: a long negative
clip can fire several times (``false_accept_events``, ``fa_events_per_hour``: one per engine event, with
the engine's 2 s refractory period). With a verifier (``verifier``: the heads' manifests, or a name, or
"off") each run also has a ``verifier`` block with the same figures after verification (wake rate, false
accepts per clip and per event), the proposals it saw and its cost per proposal (p50/p95, ms). Every run
lists its figures per negative set (``negative_sets``: a folder given, or its first-level subfolders).
Measured times are kept apart from the (deterministic) runs: ``timing`` has per condition the engine's
compute time per 80 ms step on the negatives and the positives (feed + verification, and without the
verifier's share) and the verifier's cost per proposal (p50/p95/max, ms); ``chunk_ms`` feeds the clips
in chunks as a microphone would (0: each clip in one call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    verifier: str | None = None  # second stage for every head: "whisper", "off"; None = each manifest's
    chunk_ms: float = 0.0  # feed each clip in chunks of this length (0: in one call)


@dataclass
class _Clips:
    paths: list[str]
    maxima: list[np.ndarray]  # per clip: max score per label
    seconds: float
    sets: list[str] = field(default_factory=list)  # per clip: the negative set it belongs to
    proposals: list[np.ndarray] = field(default_factory=list)  # per clip: head events per label
    accepted: list[np.ndarray] = field(default_factory=list)  # per clip: events after verification per label
    set_seconds: dict[str, float] = field(default_factory=dict)
    verifier_ms: list[list[float]] = field(default_factory=list)  # per label: cost of every verification
    engine_s: float = 0.0  # engine compute time (feed + flush), verification included
    verifier_s: float = 0.0
    steps: int = 0


def sustained_max(scores: np.ndarray, patience: int) -> np.ndarray:
    """Per column, the highest score held for ``patience`` consecutive steps (0 when the clip is shorter)."""
    if len(scores) < patience:
        return np.zeros(scores.shape[1], np.float32)
    if patience == 1:
        return scores.max(axis=0)
    runs = np.lib.stride_tricks.sliding_window_view(scores, patience, axis=0)  # (steps, labels, patience)
    return runs.min(axis=2).max(axis=0)


def _stream(engine: Any, pcm16: np.ndarray, patience: Sequence[int], chunk: int, res: _Clips) -> np.ndarray:
    """Stream one clip; record its events in ``res``; return per label the sustained maximum score."""
    engine.reset()
    labels = {(s["model"], s["label"]): j for j, s in enumerate(engine.detection_settings)}
    t0 = time.perf_counter()
    parts = [engine.feed(pcm16[i : i + chunk]) for i in range(0, len(pcm16), chunk)] if chunk else [engine.feed(pcm16)]
    parts.append(engine.flush())
    res.engine_s += time.perf_counter() - t0
    scores = np.concatenate([p.scores for p in parts])
    res.steps += len(scores)
    proposals = np.zeros(scores.shape[1], np.int64)
    accepted = np.zeros(scores.shape[1], np.int64)
    for ev in (e for p in parts for e in (*p.events, *p.rejected)):
        j = labels[(ev.model, ev.label)]
        proposals[j] += 1
        accepted[j] += ev.verified is not False
        if ev.verifier_ms is not None:
            res.verifier_ms[j].append(ev.verifier_ms)
            res.verifier_s += ev.verifier_ms / 1e3
    res.proposals.append(proposals)
    res.accepted.append(accepted)
    cols = np.asarray(patience)
    out = np.zeros(scores.shape[1], np.float32)
    for p in set(patience):
        out[cols == p] = sustained_max(scores, p)[cols == p]
    return out


def _set_name(arg: str, path: Path) -> str:
    """The negative set of ``path`` given as ``arg``: the folder, or its first-level subfolder."""
    base = Path(arg)
    if not base.is_dir():
        return base.parent.name or str(base)
    rel = path.relative_to(base).parts
    return f"{base.name}/{rel[0]}" if len(rel) > 1 else base.name


def _load_all(dirs: Sequence[str], unreadable: list[dict[str, str]]) -> list[tuple[str, np.ndarray, str]]:
    from edge_assistant.audio.io import iter_audio_files, read_audio

    out = []
    for arg in dirs:
        for p in iter_audio_files([arg]):
            try:
                out.append((str(p), read_audio(p, "float32"), _set_name(arg, p)))
            except AudioFileError as exc:
                unreadable.append({"path": str(p), "error": exc.reason})
                log.warning("unreadable: %s", exc)
    return out


def _score_set(
    engine: Any,
    clips: list[tuple[str, np.ndarray, str]],
    pad: np.ndarray,
    noise: Any,
    snr_db: float | None,
    desc: str,
    progress: bool,
    patience: Sequence[int],
    chunk: int = 0,
) -> _Clips:
    from tqdm import tqdm

    from edge_assistant.audio.io import to_int16

    res = _Clips([], [], 0.0, verifier_ms=[[] for _ in patience])
    for path, x, group in tqdm(clips, desc=desc, unit="clip", disable=not progress, leave=False):
        y = np.concatenate((pad, x, pad))
        if noise is not None and snr_db is not None:
            y = noise.mix(y, snr_db, key=Path(path).name + "\0" + str(Path(path).parent.name))
        res.paths.append(path)
        res.sets.append(group)
        res.maxima.append(_stream(engine, to_int16(y), patience, chunk, res))
        res.seconds += len(x) / 16000.0
        res.set_seconds[group] = res.set_seconds.get(group, 0.0) + len(x) / 16000.0
    return res


def _per_hour(count: int, seconds: float) -> float | None:
    return count / (seconds / 3600.0) if seconds > 0 else None


def _event_figures(pos: _Clips, neg: _Clips, col: int, which: str) -> dict[str, Any]:
    """Wake rate and false accepts per clip and per event from ``which`` ("proposals" or "accepted")."""
    p = np.array([c[col] for c in getattr(pos, which)], np.int64)
    n = np.array([c[col] for c in getattr(neg, which)], np.int64)
    sets = {}
    for name in dict.fromkeys(neg.sets):
        idx = np.array([g == name for g in neg.sets])
        events = int(n[idx].sum()) if len(n) else 0
        sets[name] = {"clips": int(idx.sum()), "hours": neg.set_seconds[name] / 3600.0,
                      "false_accepts": int((n[idx] > 0).sum()) if len(n) else 0, "false_accept_events": events,
                      "fa_events_per_hour": _per_hour(events, neg.set_seconds[name])}
    return {
        "detected": int((p > 0).sum()),
        "wake_rate": float((p > 0).mean()) if len(p) else None,
        "false_accepts": int((n > 0).sum()),
        "false_accept_events": int(n.sum()),
        "fa_events_per_hour": _per_hour(int(n.sum()), neg.seconds),
        "negative_sets": sets,
        "missed": [path for path, k in zip(pos.paths, p, strict=True) if k == 0],
        "false_accept_files": [path for path, k in zip(neg.paths, n, strict=True) if k > 0],
    }


def _cost(clips: _Clips) -> dict[str, Any]:
    us = 1e6 / clips.steps if clips.steps else None
    return {"steps": clips.steps, "us_per_step": clips.engine_s * us if us else None,
            "us_per_step_without_verifier": (clips.engine_s - clips.verifier_s) * us if us else None}


def _ms_stats(ms: list[float]) -> dict[str, Any]:
    if not ms:
        return {"n": 0, "p50": None, "p95": None, "max": None, "mean": None}
    a = np.asarray(ms)
    return {"n": len(a), "p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "max": float(a.max()), "mean": float(a.mean())}


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


def _make_recognizer() -> Any:
    from edge_assistant.asr.recognizer import WhisperRecognizer

    return WhisperRecognizer()


def run_wake_bench(cfg: WakeBenchConfig) -> dict[str, Any]:
    """Run the benchmark; returns the JSON-ready result (see module docstring for the keys)."""
    from edge_assistant.audio.noise import load_noise
    from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine
    engine = WakeWordEngine(
        EngineConfig(
            models=tuple(WakeWordConfig(m, threshold=cfg.thresholds[0] if cfg.thresholds else None,
                                        patience_frames=cfg.patience, verifier=cfg.verifier)
                         for m in (cfg.model, *cfg.compare)),
            features=cfg.features,
            int8_embedding=cfg.int8,
            int8_model_path=cfg.int8_model_path,
            noise_suppression=cfg.noise_suppression,
            recognizer=_make_recognizer,  # called only when a head has a verifier
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
    verifiers = engine.verifiers
    chunk = int(round(cfg.chunk_ms * 16)) if cfg.chunk_ms > 0 else 0
    runs, timing = [], []
    for snr in snrs:
        tag = "quiet" if snr is None else f"{snr:g} dB"
        pos = _score_set(engine, positives, pad, noise, snr, f"positives ({tag})", cfg.progress, patience, chunk)
        neg = _score_set(engine, negatives, pad, noise, snr, f"negatives ({tag})", cfg.progress, patience, chunk)
        timing.append({"snr_db": snr, "chunk_ms": cfg.chunk_ms, "negatives": _cost(neg), "positives": _cost(pos),
                       "verifier_ms": {f"{v['model']}:{v['label']}": _ms_stats(pos.verifier_ms[j] + neg.verifier_ms[j])
                                       for j, v in enumerate(verifiers) if v["verifier"] is not None}})
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
            head_events = _event_figures(pos, neg, col, "proposals")
            verified = None
            if verifiers[col]["verifier"] is not None:
                vc = engine.verifier_config
                verified = {**verifiers[col], "lookback_s": vc.lookback_s, "lookahead_s": vc.lookahead_s,
                            "min_logprob": vc.min_logprob,
                            "proposals": {"positives": int(sum(c[col] for c in pos.proposals)),
                                          "negatives": int(sum(c[col] for c in neg.proposals))},
                            **_event_figures(pos, neg, col, "accepted")}
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
                    "false_accept_events": head_events["false_accept_events"],
                    "fa_events_per_hour": head_events["fa_events_per_hour"],
                    "negative_sets": head_events["negative_sets"],
                    "verifier": verified,
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
            "timing": timing,
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
