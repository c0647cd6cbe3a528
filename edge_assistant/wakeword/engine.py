"""The streaming wake-word engine: PCM -> mel features -> shared embedding -> heads -> detection events.

Timing model (16 kHz): mel frame ``k`` covers samples ``[160 k, 160 k + 512)``. Every 1280 samples of
stream (one *step*, 80 ms) the backbone embeds the last 76 mel frames and every head scores its last
``window_embeddings`` embeddings. Step ``n`` (n = 1, 2, ...) therefore ends at stream time
``n * 0.08 s`` and uses mel frames up to ``8 n - 4``. Several heads share one backbone pass.

The buffers start the way openWakeWord's ``Model`` starts them, so the scores agree with it: the mel
history is primed with 76 frames of value 1.0, the embedding history with embeddings of digital
silence, and the first ``warmup_steps`` (5) scores are reported as 0 while those synthetic frames
dominate. Steps depend only on the count of samples, never on how the stream was chunked.

With the noise suppressor on, its 512-sample (32 ms) delay is part of the stream: events then come
32 ms later in stream time than without it.

Detection, per label: a step whose score is >= ``threshold`` extends a run of consecutive steps; when the
run reaches ``patience_frames`` an event fires, and the label then stays silent for ``refractory_s`` of
stream time, during which the run counter is held at 0 (so a new event needs ``patience_frames`` fresh
steps after the refractory period ends).

Verification (:mod:`.verifier`), per model: with a verifier (``WakeWordConfig.verifier`` or the head's
manifest), an event is only a *proposal*. The engine keeps a ring of the raw input PCM; once
``lookahead_s`` of stream has arrived after the proposal, the verifier scores the window around it. An
accepted proposal is returned as the event (its ``verified``, ``verifier_score`` and ``verifier_ms``
filled in) by the :meth:`WakeWordEngine.feed` call that completed the look-ahead; a rejected one is
logged (debug), counted, and listed in :attr:`StepScores.rejected`, never in ``events``. A proposal starts
the refractory period whatever its verdict (so the verifier runs at most once per period and label, and
events do not depend on how the stream was chunked). At the end of a stream, :meth:`WakeWordEngine.flush`
verifies what is still waiting with the audio there is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_assistant.audio.io import to_int16
from edge_assistant.core.errors import ConfigError
from edge_assistant.wakeword.backbone import (
    EMBEDDING_DIM,
    MEL_BANDS,
    SILENCE_MEL,
    STEP_MEL_FRAMES,
    STEP_SAMPLES,
    WINDOW_MEL_FRAMES,
    EmbeddingBackbone,
    make_mel_frontend,
)
from edge_assistant.wakeword.heads import HeadModel
from edge_assistant.wakeword.manifest import SAMPLE_RATE_HZ, ModelManifest, load_manifest

log = logging.getLogger(__name__)

#: Value the reference primes its mel history with.
PRIMED_MEL = 1.0
#: Most steps embedded in one backbone call (bounds memory when a long file is fed at once).
MAX_STEPS_PER_CALL = 64


@dataclass(frozen=True)
class WakeWordConfig:
    """Detection settings for one model (head)."""

    model: str  # a shipped head name ("alexa", "hey_jarvis", ...) or the path of a head .onnx/.json
    # score needed per step; None = the manifest's (0.5 for shipped heads; its verified_threshold, when it has
    # one, while a verifier runs)
    threshold: float | None = None
    patience_frames: int | None = None  # consecutive 80 ms steps at/above threshold; None = the manifest's (1)
    refractory_s: float = 2.0  # stream seconds after an event during which the label cannot fire again
    verifier: str | None = None  # second stage: "whisper" or "off"; None = the manifest's (shipped heads: off)


@dataclass(frozen=True)
class EngineConfig:
    """The engine as a whole."""

    models: tuple[WakeWordConfig, ...] = (WakeWordConfig("alexa"),)
    features: str = "c"  # "c": the C front end; "onnx": melspectrogram.onnx (the reference)
    int8_embedding: bool = False  # use the int8 embedding model from the model cache
    int8_model_path: str | None = None  # explicit int8 model; None = the model cache default
    # Run the C NoiseSuppressor on the PCM before the features; None = on when a head's manifest asks
    # for it (heads adapted to car noise were trained behind it), off otherwise.
    noise_suppression: bool | None = None
    noise_suppressor: Any = None  # a frontend.NoiseSuppressorConfig; None = its defaults
    warmup_steps: int = 5  # first steps reported as score 0 (buffers still primed)
    threads: int = 1  # onnxruntime intra/inter-op threads
    # The WhisperRecognizer whose sessions the verifiers share: an already-loaded one (the app's), or a
    # callable that makes one, called only when a model has a verifier (wakeword/ does not import asr/).
    recognizer: Any = None
    verifier_config: Any = None  # a verifier.VerifierConfig; None = its defaults


@dataclass(frozen=True)
class DetectionEvent:
    """A wake word heard. ``time_s`` is the stream time at the end of the 80 ms step that fired."""

    model: str  # the head's name, e.g. "alexa" or "timer"
    label: str  # the output's name, e.g. "alexa" or "5_minute_timer"
    score: float
    time_s: float
    step: int  # 1-based index of the 80 ms step
    verified: bool | None = None  # the verifier's verdict; None = no verifier for this model
    verifier_score: float | None = None  # the verifier's score (log-probability of the phrase)
    verifier_ms: float | None = None  # compute time of the verification

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "label": self.label, "score": round(self.score, 6),
                             "time_s": round(self.time_s, 3)}
        if self.verified is not None:
            d.update(verified=self.verified, verifier_score=round(float(self.verifier_score or 0.0), 3),
                     verifier_ms=round(float(self.verifier_ms or 0.0), 2))
        return d


@dataclass(frozen=True)
class StepScores:
    """Scores of the steps completed by one :meth:`WakeWordEngine.feed` call."""

    steps: np.ndarray  # (k,) 1-based step indices
    scores: np.ndarray  # (k, n_labels), columns in the order of WakeWordEngine.labels
    events: list[DetectionEvent] = field(default_factory=list)
    rejected: list[DetectionEvent] = field(default_factory=list)  # proposals the verifier turned down

    @property
    def times_s(self) -> np.ndarray:
        return self.steps * (STEP_SAMPLES / SAMPLE_RATE_HZ)


@dataclass
class _LabelState:
    model: str
    label: str
    threshold: float
    patience: int
    refractory_s: float
    run: int = 0
    quiet_until_s: float = -1.0
    verifier: Any = None  # a verifier for this label's phrase, or None


class _AudioRing:
    """The last ``capacity`` samples of a stream (int16), addressed by absolute sample index."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(max(1, capacity), np.int16)
        self.end = 0  # absolute index one past the newest sample

    def clear(self) -> None:
        self.end = 0

    def append(self, x: np.ndarray, keep: int) -> None:
        """Add ``x``; afterwards at least the last ``keep`` samples before ``x`` and all of ``x`` are held."""
        need = len(x) + keep
        if need > len(self._buf):  # a long block fed at once: grow, keeping what is held
            held = self.get(self.end - len(self._buf), self.end)
            self._buf = np.zeros(need, np.int16)
            start, self.end = self.end - len(held), self.end - len(held)
            self._write(held, start)
        self._write(x, self.end)

    def _write(self, x: np.ndarray, start: int) -> None:
        cap = len(self._buf)
        i = start % cap
        first = min(len(x), cap - i)
        self._buf[i : i + first] = x[:first]
        self._buf[: len(x) - first] = x[first:]
        self.end = start + len(x)

    def get(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) clipped to what is held."""
        cap = len(self._buf)
        start, end = max(start, self.end - cap, 0), min(end, self.end)
        if end <= start:
            return np.zeros(0, np.int16)
        i, j = start % cap, end % cap
        if i < j or j == 0:
            return self._buf[i : (j or cap)].copy()
        return np.concatenate((self._buf[i:], self._buf[:j]))


class WakeWordEngine:
    """Streaming detector for one or more wake words. Not thread-safe: one engine per stream.

    Every model file is opened in the constructor: a missing or corrupt model raises
    :class:`~edge_assistant.core.errors.ModelFileError` naming it before any audio is processed.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config = config or EngineConfig()
        if not config.models:
            raise ConfigError("models: at least one wake-word model is needed")
        if config.warmup_steps < 0:
            raise ConfigError(f"warmup_steps: {config.warmup_steps}; expected >= 0")
        self.heads: list[HeadModel] = []
        self._labels: list[_LabelState] = []
        self.recognizer = config.recognizer
        self.verifier_config = None
        seen: set[str] = set()
        for i, wc in enumerate(config.models):
            manifest = load_manifest(wc.model)
            if manifest.name in seen:
                raise ConfigError(f"models[{i}]: {manifest.name!r} is listed twice")
            seen.add(manifest.name)
            self._check_manifest(manifest, i)
            head = HeadModel(manifest, config.threads)
            verifier = self._verifier_name(wc, manifest, i)
            # With a verifier the head only proposes: the manifest's verified point (lower) when it has one.
            default_threshold, default_patience = manifest.threshold, manifest.patience_frames
            if verifier is not None and manifest.verified_threshold is not None:
                default_threshold = manifest.verified_threshold
                default_patience = manifest.verified_patience_frames or default_patience
            threshold = default_threshold if wc.threshold is None else float(wc.threshold)
            if not 0.0 < threshold <= 1.0:
                raise ConfigError(f"models[{i}].threshold: {threshold}; expected a score in (0, 1]")
            patience = default_patience if wc.patience_frames is None else int(wc.patience_frames)
            if patience < 1:
                raise ConfigError(f"models[{i}].patience_frames: {patience}; expected >= 1")
            if manifest.noise_suppression and config.noise_suppression is False:
                log.warning("models[%d] (%s) was trained behind the noise suppressor, which is switched off",
                            i, manifest.name)
            if wc.refractory_s < 0:
                raise ConfigError(f"models[{i}].refractory_s: {wc.refractory_s}; expected >= 0")
            self.heads.append(head)
            for label in head.labels:
                state = _LabelState(head.name, label, threshold, patience, wc.refractory_s)
                if verifier is not None:
                    state.verifier = self._build_verifier(verifier, manifest.phrase or label)
                self._labels.append(state)
        int8_path = None
        if config.int8_embedding:
            from edge_assistant.wakeword.model_cache import default_int8_path

            int8_path = Path(config.int8_model_path) if config.int8_model_path else default_int8_path()
        self.backbone = EmbeddingBackbone(int8_path, config.threads)
        self._features_kind = config.features
        self._make_frontend = lambda: make_mel_frontend(config.features, config.threads)
        if config.noise_suppression is None:
            self.noise_suppression = any(h.manifest.noise_suppression for h in self.heads)
        else:
            self.noise_suppression = bool(config.noise_suppression)
        self._ns_factory = self._noise_suppressor_factory(config, self.noise_suppression)
        self._history = max(h.window for h in self.heads)
        self._silence_embedding = self.backbone.embed(np.full((WINDOW_MEL_FRAMES, MEL_BANDS), SILENCE_MEL, np.float32))
        # Backbone state of "step 0": a window of primed frames (primed index -3 .. 72, all PRIMED_MEL).
        _, self._primed_state = self.backbone.start(np.full((WINDOW_MEL_FRAMES, MEL_BANDS), PRIMED_MEL, np.float32))
        # Verification: raw input PCM kept for the look-back; the suppressor's delay maps event times to it.
        self._verifying = any(s.verifier is not None for s in self._labels)
        self._ns_delay = 512 if self.noise_suppression else 0
        self._ring = _AudioRing(self._window_samples() + 8 * STEP_SAMPLES if self._verifying else 0)
        self._pending: list[DetectionEvent] = []
        #: Running totals over the engine's life (not reset by :meth:`reset`).
        self.verifier_stats = {"proposals": 0, "accepted": 0, "rejected": 0, "ms_total": 0.0}
        self.reset()
        log.info(
            "wake-word engine: heads %s, features %s, %s embedding",
            ", ".join(h.name for h in self.heads),
            config.features,
            "int8" if config.int8_embedding else "float",
        )

    @staticmethod
    def _verifier_name(wc: WakeWordConfig, manifest: ModelManifest, index: int) -> str | None:
        from edge_assistant.wakeword.verifier import OFF, check_verifier_name

        name = check_verifier_name(wc.verifier, f"models[{index}].verifier")
        if name is None:
            name = manifest.verifier
        return None if name in (None, OFF) else name

    def _build_verifier(self, name: str, phrase: str) -> Any:
        from edge_assistant.wakeword.verifier import VerifierConfig, build_verifier

        if self.verifier_config is None:
            self.verifier_config = self.config.verifier_config or VerifierConfig()
        if self.recognizer is None:
            raise ConfigError(f"verifier {name!r} needs the Whisper recogniser: pass EngineConfig(recognizer=...) "
                              "(a loaded WhisperRecognizer, or a callable that makes one)")
        if callable(self.recognizer) and not hasattr(self.recognizer, "tokenizer"):
            self.recognizer = self.recognizer()
        return build_verifier(name, phrase, self.recognizer, self.verifier_config)

    def _window_samples(self) -> int:
        vc = self.verifier_config
        return int(round(vc.window_s * SAMPLE_RATE_HZ)) + self._ns_delay if vc is not None else 0

    @staticmethod
    def _check_manifest(m: ModelManifest, index: int) -> None:
        if m.sample_rate_hz != SAMPLE_RATE_HZ or m.frame_samples != STEP_SAMPLES or m.embedding_dim != EMBEDDING_DIM:
            raise ConfigError(
                f"models[{index}] ({m.path}): manifest says {m.sample_rate_hz} Hz, {m.frame_samples}-sample steps, "
                f"{m.embedding_dim}-value embeddings; this engine runs 16000 Hz, 1280, 96"
            )

    @staticmethod
    def _noise_suppressor_factory(config: EngineConfig, enabled: bool) -> Any:
        if not enabled:
            return None
        from edge_assistant.audio import frontend

        # The suppressor's own defaults: a faster decision-directed smoothing (dd_alpha 0.90) found more
        # keywords in car noise (313 vs 309 of 315 at 5 dB) but tripled the false accepts (20 vs 6).
        ns_config = config.noise_suppressor
        if ns_config is None:
            ns_config = frontend.NoiseSuppressorConfig()
        frontend.NoiseSuppressor(ns_config)  # fail at construction, not mid-stream
        return lambda: frontend.NoiseSuppressor(ns_config)

    # -- public API ---------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        """Score columns / event labels, in order."""
        return [s.label for s in self._labels]

    @property
    def detection_settings(self) -> list[dict[str, Any]]:
        """Per label, the threshold and patience in force (the config's, or the head manifest's defaults: its verified
        point while a verifier runs, when it has one)."""
        return [{"model": s.model, "label": s.label, "threshold": s.threshold, "patience_frames": s.patience}
                for s in self._labels]

    @property
    def verifiers(self) -> list[dict[str, Any]]:
        """Per label, the verifier in force (None when the label has none) and its phrase."""
        return [{"model": s.model, "label": s.label, "verifier": getattr(s.verifier, "name", None),
                 "phrase": getattr(s.verifier, "phrase", None)} for s in self._labels]

    @property
    def time_s(self) -> float:
        """Stream time consumed so far."""
        return self._samples_in / SAMPLE_RATE_HZ

    def reset(self) -> None:
        """Start a new stream (buffers primed again, detection state cleared)."""
        self._frontend = self._make_frontend()
        self._ns = self._ns_factory() if self._ns_factory else None
        self._samples_in = 0
        self._samples_feat = 0
        # Mel frames not yet given to the backbone; primed index of the first one is 8*steps + 73.
        self._mel = np.full((3, MEL_BANDS), PRIMED_MEL, dtype=np.float32)
        self._mel_count = WINDOW_MEL_FRAMES  # primed rows + real frames seen
        self._steps = 0
        self._state = self._primed_state
        self._emb = np.repeat(self._silence_embedding, self._history, axis=0)
        for s in self._labels:
            s.run = 0
            s.quiet_until_s = -1.0
        self._ring.clear()
        self._pending = []

    def process(self, pcm: np.ndarray) -> list[DetectionEvent]:
        """Feed PCM (int16, or float in [-1, 1)) of any length; return the events it completed."""
        return self.feed(pcm).events

    def feed(self, pcm: np.ndarray) -> StepScores:
        """Like :meth:`process`, also returning the scores of every step completed."""
        x = np.asarray(pcm)
        if x.ndim != 1:
            raise ValueError(f"expected 1-D mono PCM, got shape {x.shape}")
        if x.dtype != np.int16:
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"expected int16 or float PCM, got {x.dtype}")
            x = to_int16(x)
        self._samples_in += x.size
        if self._verifying:
            self._ring.append(x, self._window_samples())
        if self._ns is not None:
            x = np.asarray(self._ns.process(x))
            if x.dtype != np.int16:
                x = to_int16(x)
        frames = self._frontend.process(x)
        self._samples_feat += x.size
        if len(frames):
            self._mel = np.concatenate((self._mel, np.asarray(frames, dtype=np.float32)))
            self._mel_count += len(frames)
        due = min(self._samples_feat // STEP_SAMPLES, (self._mel_count - WINDOW_MEL_FRAMES + 3) // STEP_MEL_FRAMES)
        parts: list[StepScores] = []
        while self._steps < due:
            parts.append(self._run_steps(min(due - self._steps, MAX_STEPS_PER_CALL)))
        if not parts:
            out = StepScores(np.zeros(0, dtype=np.int64), np.zeros((0, len(self._labels)), np.float32), [])
        elif len(parts) == 1:
            out = parts[0]
        else:
            out = StepScores(
                np.concatenate([p.steps for p in parts]),
                np.concatenate([p.scores for p in parts]),
                [e for p in parts for e in p.events],
            )
        if self._verifying:
            self._verify_due(out, final=False)
        return out

    def flush(self) -> StepScores:
        """End of stream: verify the proposals still waiting for look-ahead audio with what there is."""
        out = StepScores(np.zeros(0, dtype=np.int64), np.zeros((0, len(self._labels)), np.float32), [])
        if self._verifying:
            self._verify_due(out, final=True)
        return out

    def score_clip(self, pcm: np.ndarray, pad_s: float = 1.0) -> np.ndarray:
        """Reset, stream ``pad_s`` of silence + ``pcm`` + ``pad_s`` of silence, return all step scores."""
        self.reset()
        pad = np.zeros(int(round(pad_s * SAMPLE_RATE_HZ)), dtype=np.int16)
        x = pcm if pcm.dtype == np.int16 else to_int16(pcm)
        return self.feed(np.concatenate((pad, x, pad))).scores

    # -- internals ------------------------------------------------------------------------------------
    def _verify_due(self, out: StepScores, final: bool) -> None:
        """Move this call's proposals to the waiting list; verify those whose look-ahead has arrived."""
        if not out.events and not self._pending:
            return
        verifier_of = {(s.model, s.label): s.verifier for s in self._labels}
        immediate = [e for e in out.events if verifier_of[(e.model, e.label)] is None]
        self._pending.extend(e for e in out.events if verifier_of[(e.model, e.label)] is not None)
        vc = self.verifier_config
        window = int(round(vc.window_s * SAMPLE_RATE_HZ))
        ahead = int(round(vc.lookahead_s * SAMPLE_RATE_HZ))
        waiting, accepted = [], []
        for ev in self._pending:
            end = int(round(ev.time_s * SAMPLE_RATE_HZ)) - self._ns_delay + ahead
            if end > self._ring.end and not final:
                waiting.append(ev)
                continue
            verdict = verifier_of[(ev.model, ev.label)].verify(self._ring.get(end - window, end))
            done = replace(ev, verified=verdict.accepted, verifier_score=float(verdict.score),
                           verifier_ms=float(verdict.cost_ms))
            stats = self.verifier_stats
            stats["proposals"] += 1
            stats["ms_total"] += verdict.cost_ms
            if verdict.accepted:
                stats["accepted"] += 1
                accepted.append(done)
            else:
                stats["rejected"] += 1
                out.rejected.append(done)
                log.debug("%s at %.2f s (head %.3f) rejected by the verifier: score %.2f, heard %r, %.1f ms",
                          ev.label, ev.time_s, ev.score, verdict.score, verdict.text, verdict.cost_ms)
        self._pending = waiting
        out.events[:] = sorted(immediate + accepted, key=lambda e: (e.step, e.model, e.label))

    def _run_steps(self, k: int) -> StepScores:
        n1 = self._steps + 1
        n2 = self._steps + k
        # Step n's window is primed frames [8n - 3, 8n + 73); the backbone already saw up to 8(n1-1) + 73.
        emb, self._state = self.backbone.step(self._mel[: STEP_MEL_FRAMES * k], self._state)
        self._mel = self._mel[STEP_MEL_FRAMES * k :]
        self._emb = np.concatenate((self._emb, emb))
        cols = []
        for head in self.heads:
            hist = self._emb[-(k + head.window - 1) :]
            windows = np.lib.stride_tricks.sliding_window_view(hist, head.window, axis=0).transpose(0, 2, 1)
            cols.append(head.score(windows))
        scores = np.concatenate(cols, axis=1)
        steps = np.arange(n1, n2 + 1, dtype=np.int64)
        scores[steps <= self.config.warmup_steps] = 0.0
        self._emb = self._emb[-self._history :]
        self._steps = n2
        return StepScores(steps, scores, self._detect(steps, scores))

    def _detect(self, steps: np.ndarray, scores: np.ndarray) -> list[DetectionEvent]:
        events: list[DetectionEvent] = []
        step_s = STEP_SAMPLES / SAMPLE_RATE_HZ
        for j, s in enumerate(self._labels):
            col = scores[:, j]
            if s.run == 0 and not (col >= s.threshold).any():
                continue
            for n, score in zip(steps.tolist(), col.tolist(), strict=True):
                t = n * step_s
                if t < s.quiet_until_s:
                    s.run = 0
                    continue
                s.run = s.run + 1 if score >= s.threshold else 0
                if s.run >= s.patience:
                    events.append(DetectionEvent(s.model, s.label, float(score), t, n))
                    s.quiet_until_s = t + s.refractory_s
                    s.run = 0
        events.sort(key=lambda e: (e.step, e.model, e.label))
        return events


def build_engine(
    models: Sequence[str] | str = ("alexa",),
    threshold: float | None = None,
    patience_frames: int | None = None,
    refractory_s: float = 2.0,
    verifier: str | None = None,
    **engine_kwargs: Any,
) -> WakeWordEngine:
    """Convenience: the same detection settings for every model; other keywords go to :class:`EngineConfig`."""
    names: Iterable[str] = [models] if isinstance(models, str) else models
    wcs = tuple(WakeWordConfig(m, threshold, patience_frames, refractory_s, verifier) for m in names)
    return WakeWordEngine(EngineConfig(models=wcs, **engine_kwargs))
