"""Synthetic speech for building wake-word heads: the seeded utterance plan, rendering in car noise, and the
windows a head sees (build time only; shared by :mod:`.adapt` and :mod:`.train`).

- **Plan** (:func:`plan`): texts drawn from a seeded stream: the wake phrase alone, before a command, after a
  sentence (45 %); words that sound like the phrase or a part of it, alone or between common words (30 %);
  runs of common words (15 %); plain sentences (10 %). Sound-alikes and common words come from the phrase
  alone (:mod:`~edge_assistant.modelbuild.wakeword.confusables`), never from an evaluation set. Each in a random
  espeak-ng voice (8 English accents x 28 variants) or, for a share ``flite_share`` of the plan, one of Flite's
  five voices of real speakers, 110-200 words/min, pitch 20-80.
- **Rendering** (:func:`place_in_car`): peak level -20 .. -3 dBFS, 0.6-2 s of silence before and 0.5-1.2 s
  after, and a noisy copy with car-cabin noise from the generator (speed 20-160 km/h, HVAC 0-1, EV or
  combustion; noise seeds ``1_000_003 * (seed + 1) + index``, disjoint from the benchmarks' keyed segments)
  at an SNR drawn from :data:`SNRS_DB`.
- **Windows** (:class:`WindowTap`): a wake engine run over the PCM, returning every 80 ms step's head-input
  window (embeddings from the C front end and the shared backbone) and score.
- **Workers** (:func:`run_plan`): the per-utterance work in spawned processes, results in plan order
  whatever the number of workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.modelbuild.wakeword.confusables import Confusables
from edge_assistant.modelbuild.wakeword.confusables import derive as derive_confusables

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
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
class Utterance:
    index: int
    text: str
    has_wake: bool
    voice: str
    words_per_minute: int
    pitch: int
    spoken_phrase: str = ""  # the phrase as espeak-ng phoneme input (a second-language variant); "" = as written


def plan(phrase: str, seed: int, count: int, first: int = 0, stream: int = 0xADA,
         confusables: Confusables | None = None, flite_share: float = 0.0, l2_share: float = 0.0
         ) -> list[Utterance]:
    """``count`` seeded utterances with indices ``first ..`` from the random stream ``[seed, stream]``; a share
    ``flite_share`` of them in Flite's voices (with 0 the stream draws exactly what it drew before Flite); a share
    ``l2_share`` of the wake utterances in espeak-ng's voices say the phrase as a second-language speaker might
    (:mod:`~edge_assistant.modelbuild.wakeword.accents`; drawn from a stream of their own, so the rest of the plan
    is the same whatever the share)."""
    from edge_assistant.audio.speech_synth import FLITE_PREFIX, FLITE_VOICES
    from edge_assistant.modelbuild.wakeword.accents import L2Pronunciations, espeak_input

    flite = [FLITE_PREFIX + name for name in FLITE_VOICES]
    conf = confusables or derive_confusables(phrase)
    l2 = L2Pronunciations(conf) if l2_share > 0.0 else None
    near, common = conf.near, conf.common_words
    rng = np.random.default_rng([seed, stream])

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
        if flite_share > 0.0 and rng.random() < flite_share:
            voice = flite[rng.integers(len(flite))]
        else:
            voice = ACCENTS[rng.integers(len(ACCENTS))] + VARIANTS[rng.integers(len(VARIANTS))]
        spoken = ""
        if l2 is not None and wake and not voice.startswith(FLITE_PREFIX):
            l2_rng = np.random.default_rng([seed, stream, 0x12, i])
            variant = l2.draw(l2_rng) if l2_rng.random() < l2_share else None
            spoken = espeak_input(variant) if variant else ""
        out.append(Utterance(i, text, wake, voice, int(rng.integers(110, 201)), int(rng.integers(20, 81)), spoken))
    return out


def speak(u: Utterance, text: str | None = None) -> np.ndarray | str:
    """``text`` (default: the utterance's) in the utterance's voice, peak-normalised; a string says what failed."""
    from edge_assistant.audio.speech_synth import SpeechSynthError, synthesize

    text = u.text if text is None else text
    try:
        x = synthesize(text, voice=u.voice, words_per_minute=u.words_per_minute, pitch=u.pitch)
    except SpeechSynthError as exc:
        return f"utterance {u.index} ({u.voice!r}, {text!r}): {exc}"
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    if peak <= 0.0:
        return f"utterance {u.index} ({u.voice!r}, {text!r}): the synthesiser gave silence"
    return x / peak


@dataclass(frozen=True)
class Placed:
    """One utterance rendered for training: ``clean`` and ``noisy`` are the same length."""

    clean: np.ndarray
    noisy: np.ndarray
    snr_db: float
    lead_samples: int  # silence before the speech


def place_in_car(x: np.ndarray, rng: np.random.Generator, seed: int, index: int) -> Placed:
    """Level, silence around, and a copy in generated car-cabin noise (see the module docstring)."""
    from edge_assistant.audio.noise import CarNoiseConfig, car_cabin_noise, mix_at_snr

    x = x * 10 ** (rng.uniform(-20.0, -3.0) / 20.0)
    pre, post = int(rng.uniform(0.6, 2.0) * SAMPLE_RATE_HZ), int(rng.uniform(0.5, 1.2) * SAMPLE_RATE_HZ)
    clean = np.concatenate((np.zeros(pre), x, np.zeros(post))).astype(np.float32)
    car = CarNoiseConfig(speed_kmh=float(rng.uniform(20, 160)), hvac_level=float(rng.uniform(0, 1)),
                         ev=bool(rng.random() < 0.6))
    noise = car_cabin_noise(len(clean) / SAMPLE_RATE_HZ + 0.01, car, seed=1_000_003 * (seed + 1) + index)[: len(clean)]
    snr = float(SNRS_DB[rng.integers(len(SNRS_DB))])
    return Placed(clean, mix_at_snr(clean, noise, snr), snr, pre)


class WindowTap:
    """Runs a wake engine over PCM and returns every step's head-input window and score.

    The windows depend only on the front end and the window length, not on the head that scores them:
    any head of ``head``'s window length would see the same.
    """

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


def run_plan(
    jobs: Sequence[Any], work: Callable[[Any], dict[str, np.ndarray] | str], init: Callable[..., None],
    initargs: tuple[Any, ...], workers: int, progress: Callable[[int, int], None] | None = None,
    synthesisers: Sequence[str] = ("espeak-ng",),
) -> dict[str, np.ndarray]:
    """``work`` on every job in spawned processes; the rows concatenated in job order (a string = a failure).

    A synthesiser in ``synthesisers`` missing from PATH, or more than a tenth of the jobs failing, raises
    :class:`SpeechSynthError`.
    """
    import multiprocessing as mp

    from edge_assistant.audio.speech_synth import SpeechSynthError, require

    for engine in synthesisers:
        require(engine)
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    rows: list[dict[str, np.ndarray]] = []
    failures: list[str] = []
    with mp.get_context("spawn").Pool(workers, initializer=init, initargs=initargs) as pool:
        for done, res in enumerate(pool.imap(work, jobs, chunksize=8), start=1):
            if isinstance(res, str):
                failures.append(res)
            else:
                rows.append(res)
            if progress:
                progress(done, len(jobs))
    if failures:
        log.warning("%d of %d utterances could not be synthesised; first: %s", len(failures), len(jobs), failures[0])
    if len(failures) > len(jobs) // 10 or not rows:
        raise SpeechSynthError(f"{len(failures)} of {len(jobs)} utterances failed; first: {failures[0]}")
    # key by key, each row's part let go as it is copied: the peak is the result plus one key's parts, not twice
    # the result (a default-size build holds several GB of windows)
    return {k: np.concatenate([r.pop(k) for r in rows]) for k in list(rows[0])}


def _version_output(engine: str) -> str | None:
    """``ENGINE --version``'s output; None when the program cannot be run."""
    import subprocess

    try:
        return subprocess.run([engine, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def espeak_version() -> str:
    """``espeak-ng --version`` (its voices and rules shape every synthetic utterance)."""
    out = _version_output("espeak-ng")
    return "not available" if out is None else out.split(" Data at:")[0].strip()


def flite_version() -> str:
    """``flite --version`` (its voices are built into the binary)."""
    out = _version_output("flite")
    if out is None:
        return "not available"
    lines = [line.strip() for line in out.splitlines() if "version:" in line]
    return lines[0].removeprefix("version:").strip() if lines else out.strip()


# -- operating point on held-out synthetic speech ------------------------------------------------------------
def per_utterance_sustained(scores: np.ndarray, utterance: np.ndarray, patience: int) -> dict[int, float]:
    """Per utterance, the highest score held for ``patience`` consecutive kept steps."""
    out = {}
    for u in np.unique(utterance):
        s = scores[utterance == u]
        out[int(u)] = float(np.lib.stride_tricks.sliding_window_view(s, patience).min(axis=1).max()) \
            if len(s) >= patience else 0.0
    return out


def choose_point(
    scores: dict[str, np.ndarray], utterance: np.ndarray, positives: set[int], negatives: set[int], allowed: int,
    thresholds: Sequence[float], patiences: Sequence[int],
) -> dict[str, Any]:
    """Threshold and patience from per-step ``scores`` of held-out utterances in each condition (quiet, noisy).

    Among the grid points whose false accepts (negative utterances that fire, the worse condition) are at
    most ``allowed``, the one that finds the most positives over all conditions wins; ties go to fewer false
    accepts, then less patience (an earlier wake), then the higher threshold. When no point is that quiet,
    the quietest point is taken.
    """
    best, table = None, []
    for patience in patiences:
        held = {c: per_utterance_sustained(sc, utterance, patience) for c, sc in scores.items()}
        for t in thresholds:
            found = sum(held[c][u] >= t for c in held for u in positives)
            fa = max(sum(held[c][u] >= t for u in negatives) for c in held)
            table.append({"threshold": t, "patience_frames": patience, "found": int(found), "false_accepts": int(fa)})
            key = (found, -fa, -patience, t)
            if fa <= allowed and (best is None or key > best[0]):
                best = (key, t, patience)
    if best is None:
        row = min(table, key=lambda r: (r["false_accepts"], -r["found"]))
        best = (None, row["threshold"], row["patience_frames"])
    return {"threshold": float(best[1]), "patience_frames": int(best[2]), "positives": len(positives) * len(scores),
            "negatives": len(negatives) * len(scores), "grid": table}


def recipe_inputs(confusables: Confusables) -> dict[str, Any]:
    """What every synthetic build depends on besides its own config: front end, voices, word lists, packages."""
    from dataclasses import asdict

    from edge_assistant.audio.frontend import NoiseSuppressorConfig
    from edge_assistant.core.build_record import package_versions, sha256_file
    from edge_assistant.core.paths import openwakeword_model_dir
    from edge_assistant.modelbuild.wakeword.confusables import sources

    return {
        "front_end": {"embedding_model_sha256": sha256_file(openwakeword_model_dir() / "embedding_model.onnx"),
                      "noise_suppressor": asdict(NoiseSuppressorConfig())},
        "speech": {"espeak_ng": espeak_version()},
        "word_lists": {**sources(), "sha256": confusables.digest()},
        "packages": package_versions("numpy", "onnxruntime", "onnx"),
    }


# -- the built head ---------------------------------------------------------------------------------------------
@dataclass
class BuiltHead:
    """What a head build wrote: the ONNX, its manifest (and a model card), and the build's figures."""

    name: str
    path: Path
    manifest_path: Path
    built: bool
    stats: dict[str, Any]
    card_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        card = {"card": str(self.card_path)} if self.card_path else {}
        return {"name": self.name, "path": str(self.path), "manifest": str(self.manifest_path), "built": self.built,
                **card, **self.stats}


def write_head_manifest(json_path: Path, onnx_path: Path, like: Any, own: dict[str, Any], inputs: dict[str, Any],
                        started: float, stats: dict[str, Any]) -> dict[str, Any]:
    """Write (atomically) and return the manifest of a built head: ``own`` keys (name, labels, threshold,
    licence, ...), the stream geometry of the head ``like`` (a ModelManifest), and the build record."""
    import json
    import time

    from edge_assistant.core.build_record import environment, file_entry, sha256_file
    from edge_assistant.wakeword.manifest import HEAD_TYPE

    manifest = {
        "name": own["name"],
        "type": HEAD_TYPE,
        "file": onnx_path.name,
        "sample_rate_hz": like.sample_rate_hz,
        "frame_samples": like.frame_samples,
        "window_embeddings": like.window_embeddings,
        "embedding_dim": like.embedding_dim,
        **own,
        "sha256": sha256_file(onnx_path),
        "files": {onnx_path.name: file_entry(onnx_path)},
        "inputs": inputs,
        "environment": environment(),
        "build_seconds": round(time.monotonic() - started, 1),
        "training": stats,
    }
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, json_path)
    return manifest
