"""Whisper speech recognition on onnxruntime: variable encoder context, greedy decoding with KV cache.

Pipeline for one utterance (float32, 16 kHz, mono):

1. log-mel with the C front end (:class:`edge_assistant.audio.frontend.WhisperLogMel`), normalised over
   the whole input exactly as faster-whisper does;
2. the encoder runs on the utterance's frames plus ``audio_ctx_margin_s`` of padding (like whisper.cpp's
   ``audio_ctx``) instead of a 30 s window; inputs longer than 30 s are cut into 30 s windows;
3. cross-attention K/V once, then one decoder call per token with the self-attention cache: greedy
   (``beam_size`` 1) or a beam search with Whisper's length-normalised ranking (one cache per beam);
4. guards: suppress lists from config.json, blank/EOT banned first, a token budget proportional to the
   audio length, an n-gram repeat stop, a no-speech check, and a compression-ratio flag;
5. optionally a grammar (:class:`edge_assistant.asr.grammar_bias.GrammarBias`): the free transcript is
   kept when the grammar accepts it, else a grammar-constrained decode (or the best grammar sentence of
   the beam's n-best) replaces it when its length-normalised score is close enough to the free one.

The public step API (:meth:`WhisperRecognizer.log_mel`, :meth:`encode_window`, :meth:`start`,
:meth:`step`, :meth:`suppress`) lets other users of the sessions (the wake-word verifier) decode
their own way without loading Whisper twice.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_assistant.asr.model_cache import WhisperFiles, load_whisper_files
from edge_assistant.asr.tokenizer import WhisperTokenizer
from edge_assistant.core.errors import ConfigError, DataFormatError, ModelFileError, NativeError

if TYPE_CHECKING:
    from edge_assistant.asr.grammar_bias import GrammarBias

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 16000
HOP_SAMPLES = 160
WINDOW_FRAMES = 3000  # 30 s of mel frames: the longest context the model was trained on
#: What the grammar reported (``Transcript.extra["grammar"]``) when the recogniser's free transcript is itself a
#: sentence of the grammar, as it stands or read as the matcher reads it: evidence of speech that outweighs
#: Whisper's no-speech gate, made for 30 s windows and quick to fire on a one-word command in a padded window.
GRAMMAR_SPEECH_EVIDENCE = frozenset({"free_in_grammar", "free_fits"})


@dataclass(frozen=True)
class RecognizerConfig:
    """Decoding and runtime settings."""

    int8: bool = True
    """Use the int8-weight graphs (False: float32)."""
    threads: int = 1
    """onnxruntime intra-op threads (1 keeps the other core free for audio and the bus)."""
    audio_ctx_margin_s: float = 1.5
    """Zero-feature padding encoded after the utterance's last frame (whisper.cpp-style audio_ctx).

    Measured on the 60 real clips (benchmarks/RESULTS.md): 0 s hurts (15 % WER; 43 % without the
    sentence-repeat guard: the model must see the speech end); 0.5-3 s give 11.8-14.2 % with no trend
    (clip-level noise); 1.5 s was lowest in two of three sweeps at the latency of 1.0 s; a full 30 s
    window is 4-7x slower for no WER gain."""
    full_window: bool = False
    """Encode a padded 30 s window like faster-whisper (slower; for comparison)."""
    max_tokens_per_s: float = 8.0
    """Token budget per second of audio (fast English speech is ~4-5 tokens/s)."""
    min_token_budget: int = 16
    """Budget floor for very short inputs."""
    max_tokens: int = 224
    """Hard cap per 30 s window (half the decoder's 448-position context, as Whisper does)."""
    repeat_max_period: int = 48
    """Longest repeating token pattern (a whole sentence) the repetition guard looks for."""
    repeat_min_count: int = 3
    """Repeats in a row of a 2-4 token pattern that stop decoding (single tokens: 2x; 5+ tokens: 2)."""
    no_speech_threshold: float = 0.6
    """Probability of the no-speech token above which a low-confidence result is dropped (unless, with a
    grammar, the free transcript is itself a sentence of it: :data:`GRAMMAR_SPEECH_EVIDENCE`)."""
    logprob_threshold: float = -1.0
    """Mean token log-probability under which a likely-no-speech window is dropped."""
    compression_ratio_threshold: float = 2.4
    """zlib compression ratio above which the text is flagged as a probable hallucination."""
    beam_size: int = 1
    """1: greedy decoding; more: beam search (Whisper's: top ``beam_size + 1`` candidates per beam, done
    when ``beam_size`` hypotheses have ended, ranked by sum of log-probabilities / token count)."""

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"threads: {self.threads}; expected >= 1")
        if not 0.0 <= self.audio_ctx_margin_s <= 30.0:
            raise ConfigError(f"audio_ctx_margin_s: {self.audio_ctx_margin_s}; expected 0..30")
        if self.max_tokens < 1 or self.max_tokens > 440:
            raise ConfigError(f"max_tokens: {self.max_tokens}; expected 1..440")
        if self.repeat_min_count < 2:
            raise ConfigError(f"repeat_min_count: {self.repeat_min_count}; expected >= 2")
        if not 1 <= self.beam_size <= 16:
            raise ConfigError(f"beam_size: {self.beam_size}; expected 1..16")


@dataclass(frozen=True)
class Transcript:
    """The result for one input."""

    text: str
    tokens: tuple[int, ...]
    audio_s: float
    features_ms: float
    encoder_ms: float
    decoder_ms: float
    encoder_frames: int
    stop_reason: str  # "eot", "max_tokens", "repetition", "no_speech", "empty"; comma-joined across windows
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float
    suspect: bool = False
    windows: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return self.features_ms + self.encoder_ms + self.decoder_ms

    @property
    def rtf(self) -> float:
        return self.total_ms / 1000.0 / self.audio_s if self.audio_s > 0 else 0.0


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def repeated_tail(tokens: list[int], max_period: int, min_count: int) -> int:
    """Length of the tail to drop when it repeats a pattern back to back (0 when it does not).

    A single token must come ``2 * min_count`` times ("no no no" is speech; twelve "no"s are not), a
    pattern of 2-4 tokens ``min_count`` times, and a phrase of 5 or more tokens twice: Whisper's
    hallucination loop repeats its whole last sentence. One copy of the pattern is kept.
    """
    n = len(tokens)
    for period in range(1, max_period + 1):
        count = 2 * min_count if period == 1 else (min_count if period < 5 else 2)
        if n < period * count:
            continue
        unit = tokens[n - period :]
        if all(tokens[n - (k + 1) * period : n - k * period] == unit for k in range(1, count)):
            return period * (count - 1)
    return 0


def _log_softmax_at(logits: np.ndarray, index: int) -> float:
    m = float(logits.max())
    return float(logits[index] - m - math.log(float(np.exp(logits - m).sum())))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return x - (m + math.log(float(np.exp(x - m).sum())))


@dataclass
class Hypothesis:
    """One decoded token sequence (EOT not included) with its summed log-probability."""

    tokens: list[int]
    logprob: float
    reason: str  # "eot", "max_tokens", "repetition"

    @property
    def score(self) -> float:
        """Whisper's ranking: log-probability per token (length-normalised)."""
        return self.logprob / max(1, len(self.tokens))

    @property
    def avg_logprob(self) -> float:
        return self.logprob / max(1, len(self.tokens) + (self.reason == "eot"))


@dataclass
class _Beam:
    tokens: list[int]
    logprob: float
    logits: np.ndarray
    past: list[np.ndarray]
    state: object = None  # the grammar's state when constrained


class WhisperRecognizer:
    """Transcribes 16 kHz mono float32 audio with the ONNX Whisper graphs from the model cache.

    The model files are verified against the cache manifest at construction (:class:`ModelFileError`
    names a missing or corrupt one). One instance serves one thread at a time (the log-mel handle is
    not shared); make one per stream.
    """

    def __init__(self, config: RecognizerConfig | None = None, cache_root: Path | None = None,
                 files: WhisperFiles | None = None) -> None:
        import onnxruntime as ort

        self.config = config or RecognizerConfig()
        self.files = files or load_whisper_files(cache_root, int8=self.config.int8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.config.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # The encoder's window and the decoder's batch and cache length change with every command. A memory
        # pattern is planned and kept per input shape, so with patterns on the process grows for as long as it
        # meets new shapes (1,500 recognitions of 0.5-8 s: +20 MB; arena off as well: +77 MB); with them off it
        # is flat after warm-up at the same speed (benchmarks/RESULTS.md, the soak).
        opts.enable_mem_pattern = False

        def session(path: Path):
            try:
                return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
                raise ModelFileError(path, f"onnxruntime cannot load it ({exc})") from None

        self._encoder = session(self.files.encoder)
        self._cross = session(self.files.cross_kv)
        self._decoder = session(self.files.decoder)
        self.tokenizer = WhisperTokenizer(self.files.tokenizer_json, self.files.config_json, self.files.n_vocab)
        self._cross_names = [o.name for o in self._cross.get_outputs()]
        self._past_names = [i.name for i in self._decoder.get_inputs() if i.name.startswith("past_")]
        self._out_names = [o.name for o in self._decoder.get_outputs()]
        expected = ["logits"] + [n.replace("past_", "present_") for n in self._past_names]
        if self._out_names != expected or not self._past_names:
            raise ModelFileError(self.files.decoder, f"outputs {self._out_names}; expected {expected}")
        shape = self._decoder.get_inputs()[1].shape  # past_k_0: (B, H, n_past, dh)
        self.batched = not isinstance(self._decoder.get_inputs()[0].shape[0], int)
        """The decoder steps a batch of hypotheses in one call (models built from export revision 4 on)."""
        self._n_heads, self._head_dim = int(shape[1]), int(shape[3])
        self._mask_first = self.tokenizer.suppress_mask(begin=True)
        self._mask = self.tokenizer.suppress_mask(begin=False)
        self._mel = None

    # --- features -----------------------------------------------------------------------------------
    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Whisper log-mel features (n_mels, frames) of checked float32 16 kHz audio."""
        if self._mel is None:
            try:
                from edge_assistant.audio.frontend import WhisperLogMel
            except ImportError as exc:
                raise NativeError(f"the C Whisper log-mel front end is not available ({exc}); "
                                  "rebuild with `pip install -e .`") from None
            self._mel = WhisperLogMel()
        return np.asarray(self._mel(audio, padding_samples=HOP_SAMPLES), dtype=np.float32)

    @staticmethod
    def check_audio(audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
        """Validate and return float32 mono audio; :class:`DataFormatError`/:class:`ConfigError` otherwise."""
        if sample_rate_hz != SAMPLE_RATE_HZ:
            raise ConfigError(f"sample_rate_hz: {sample_rate_hz}; expected 16000 "
                              "(read files with edge_assistant.audio.io.read_audio, which resamples)")
        audio = np.asarray(audio)
        if audio.ndim == 2 and 1 in audio.shape:
            audio = audio.reshape(-1)
        if audio.ndim != 1:
            raise DataFormatError("audio", f"shape {audio.shape}; expected a 1-D mono signal")
        if audio.dtype == np.int16:
            audio = audio.astype(np.float32) / 32768.0
        elif not np.issubdtype(audio.dtype, np.floating):
            raise DataFormatError("audio", f"dtype {audio.dtype}; expected float32 in [-1, 1] or int16")
        audio = audio.astype(np.float32, copy=False)
        bad = np.flatnonzero(~np.isfinite(audio))
        if bad.size:
            raise DataFormatError(f"audio sample {bad[0]} (t={bad[0] / SAMPLE_RATE_HZ:.3f} s)",
                                  f"{bad.size} NaN/inf samples; expected finite float32")
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > 1.5:
            log.warning("audio peak %.1f is far outside [-1, 1]: int16 values passed as float?", peak)
        return audio

    # --- decoding: the public step API ----------------------------------------------------------------
    def encode(self, mel: np.ndarray) -> dict[str, np.ndarray]:
        """Encoder + cross K/V of a (n_mels, frames) segment: the ``cross`` feeds of :meth:`step`."""
        enc = self._encoder.run(None, {"mel": mel[None]})[0]
        return dict(zip(self._cross_names, self._cross.run(self._cross_names, {"encoder_out": enc}), strict=True))

    def encode_window(self, mel: np.ndarray, start: int, frames: int,
                      full_window: bool | None = None) -> tuple[dict[str, np.ndarray], int]:
        """Encode ``frames`` mel frames from ``start`` with the configured zero padding: (cross, n_ctx)."""
        cfg = self.config
        full = cfg.full_window if full_window is None else full_window
        margin = int(round(cfg.audio_ctx_margin_s * SAMPLE_RATE_HZ / HOP_SAMPLES))
        n_ctx = WINDOW_FRAMES if full else min(WINDOW_FRAMES, frames + margin)
        n_ctx += n_ctx % 2
        seg = np.zeros((mel.shape[0], n_ctx), np.float32)  # zero padding, as faster-whisper pads
        seg[:, :frames] = mel[:, start : start + frames]
        return self.encode(seg), n_ctx

    def start(self, cross: dict[str, np.ndarray]) -> tuple[float, np.ndarray, list[np.ndarray]]:
        """Feed the prompt: (no-speech probability, logits for the first text token, self-attention cache)."""
        tk = self.tokenizer.tokens
        empty = [np.zeros((1, self._n_heads, 0, self._head_dim), np.float32)] * len(self._past_names)
        # <|startoftranscript|> alone first: its logits give the no-speech probability.
        logits, past = self.step([tk.sot], empty, cross)
        no_speech = 0.0
        if tk.no_speech is not None:
            no_speech = math.exp(_log_softmax_at(logits, tk.no_speech))
        logits, past = self.step(list(tk.prompt), past, cross)
        return no_speech, logits, past

    def step(self, tokens: list[int], past: list[np.ndarray],
             cross: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One decoder call: (logits of the last token, the cache extended by ``tokens``)."""
        feed = dict(cross)
        feed["tokens"] = np.asarray([tokens], dtype=np.int64)
        feed.update(zip(self._past_names, past, strict=True))
        out = self._decoder.run(self._out_names, feed)
        return out[0][0], out[1:]

    def step_many(self, tokens: list[int], pasts: list[list[np.ndarray]],
                  cross: dict[str, np.ndarray]) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        """One new token for each of several hypotheses of the same length: [(logits, cache)] in order, in one
        batched decoder call when the model takes a batch (dynamic quantisation scales the activations over
        the whole batch, so a row's logits differ from a lone call's in float rounding only)."""
        if not self.batched or len(tokens) < 2:
            return [self.step([t], past, cross) for t, past in zip(tokens, pasts, strict=True)]
        feed = dict(cross)
        feed["tokens"] = np.asarray(tokens, dtype=np.int64).reshape(-1, 1)
        for j, name in enumerate(self._past_names):
            feed[name] = np.concatenate([p[j] for p in pasts], axis=0)
        out = self._decoder.run(self._out_names, feed)
        return [(out[0][i], [o[i : i + 1] for o in out[1:]]) for i in range(len(tokens))]

    def suppress(self, first: bool) -> np.ndarray:
        """Additive logit mask of the suppressed tokens (``first``: for the first text token)."""
        return self._mask_first if first else self._mask

    # --- decoding -----------------------------------------------------------------------------------
    def _decode(self, cross: dict[str, np.ndarray], budget: int) -> tuple[list[int], str, float, float]:
        """Greedy decoding: (tokens, stop reason, no-speech probability, mean log-probability)."""
        cfg, tk = self.config, self.tokenizer.tokens
        no_speech, logits, past = self.start(cross)
        out: list[int] = []
        logprob_sum = 0.0
        reason = "max_tokens"
        for i in range(budget):
            masked = logits + (self._mask_first if i == 0 else self._mask)
            token = int(masked.argmax())
            logprob_sum += _log_softmax_at(logits, token)
            if token == tk.eot:
                reason = "eot"
                break
            out.append(token)
            drop = repeated_tail(out, cfg.repeat_max_period, cfg.repeat_min_count)
            if drop:
                del out[len(out) - drop :]
                reason = "repetition"
                break
            logits, past = self.step([token], past, cross)
        avg = logprob_sum / max(1, len(out) + (reason == "eot"))
        return out, reason, no_speech, avg

    def beam_search(self, cross: dict[str, np.ndarray], budget: int, beam_size: int,
                    grammar: GrammarBias | None = None,
                    first: tuple[np.ndarray, list[np.ndarray]] | None = None) -> list[Hypothesis]:
        """Beam search after the prompt: the ended hypotheses, best (length-normalised) first.

        ``first``: (logits, cache) from :meth:`start` (computed when None). ``grammar``: only tokens
        that keep the text inside the grammar are expanded, and EOT only where a sentence may end.
        """
        cfg, eot = self.config, self.tokenizer.tokens.eot
        if first is None:
            _, logits, past = self.start(cross)
        else:
            logits, past = first
        beams = [_Beam([], 0.0, logits, past, grammar.initial() if grammar else None)]
        done: list[Hypothesis] = []
        for i in range(budget):
            cands: list[tuple[float, int, int, object]] = []
            for b_i, b in enumerate(beams):
                lp = _log_softmax(b.logits + self.suppress(i == 0))
                if grammar is None:
                    top = np.argpartition(-lp, beam_size + 1)[: beam_size + 1]
                    cands += [(b.logprob + float(lp[t]), b_i, int(t), None) for t in top if np.isfinite(lp[t])]
                else:
                    for t, state in grammar.expand(b.state, lp, self.tokenizer):
                        cands.append((b.logprob + float(lp[t]), b_i, t, state))
            cands.sort(key=lambda c: -c[0])
            kept: list[tuple[float, int, int, object]] = []
            for total, b_i, t, state in cands:
                toks = beams[b_i].tokens
                if t == eot:
                    if len(done) < beam_size:
                        done.append(Hypothesis(list(toks), total, "eot"))
                    continue
                new = toks + [t]
                drop = repeated_tail(new, cfg.repeat_max_period, cfg.repeat_min_count)
                if drop:
                    if len(done) < beam_size:
                        done.append(Hypothesis(new[: len(new) - drop], total, "repetition"))
                    continue
                kept.append((total, b_i, t, state))
                if len(kept) == beam_size:
                    break
            if len(done) >= beam_size or not kept:
                break
            stepped = self.step_many([t for _, _, t, _ in kept], [beams[b_i].past for _, b_i, _, _ in kept], cross)
            beams = [_Beam(beams[b_i].tokens + [t], total, logits, past, state)
                     for (total, b_i, t, state), (logits, past) in zip(kept, stepped, strict=True)]
        else:
            done += [Hypothesis(b.tokens, b.logprob, "max_tokens") for b in beams]
        done.sort(key=lambda h: -h.score)
        return done

    def _decode_window(self, cross: dict[str, np.ndarray], budget: int, grammar: GrammarBias | None,
                       extra: dict) -> tuple[list[int], str, float, float]:
        """(tokens, stop reason, no-speech probability, mean log-probability) of one window."""
        beam = self.config.beam_size
        if beam == 1 and grammar is None:
            return self._decode(cross, budget)
        no_speech, logits, past = self.start(cross)
        if beam == 1:
            free = self._decode(cross, budget)  # greedy, as without a grammar (the prompt is fed again)
            hyps = [Hypothesis(free[0], free[3] * max(1, len(free[0]) + (free[1] == "eot")), free[1])]
        else:
            hyps = self.beam_search(cross, budget, beam, first=(logits, past))
        best = hyps[0]
        if grammar is not None:
            best = grammar.choose(self, hyps, cross, budget, (logits, past), extra)
        return best.tokens, best.reason, no_speech, best.avg_logprob

    def transcribe(self, audio: np.ndarray, sample_rate_hz: int = SAMPLE_RATE_HZ,
                   grammar: GrammarBias | None = None) -> Transcript:
        """Transcribe one utterance (any length; > 30 s is cut into 30 s windows).

        ``grammar``: prefer a sentence of the active grammar when the audio fits one (single-window
        inputs only; see :class:`~edge_assistant.asr.grammar_bias.GrammarBias`); free text otherwise.
        """
        audio = self.check_audio(audio, sample_rate_hz)
        cfg = self.config
        audio_s = audio.size / SAMPLE_RATE_HZ
        if audio.size < HOP_SAMPLES:
            return Transcript("", (), audio_s, 0.0, 0.0, 0.0, 0, "empty", 0.0, 0.0, 0.0)
        t0 = time.perf_counter()
        mel = self.log_mel(audio)
        content = min(mel.shape[1], audio.size // HOP_SAMPLES)
        t_feat = time.perf_counter() - t0
        t_enc = t_dec = 0.0
        tokens: list[int] = []
        reasons: list[str] = []
        no_speech_max, logprobs, frames_total, windows = 0.0, [], 0, 0
        extra: dict = {}
        single = content <= WINDOW_FRAMES
        for start in range(0, content, WINDOW_FRAMES):
            seg_frames = min(WINDOW_FRAMES, content - start)
            if windows and seg_frames < 10:  # < 0.1 s left over after a full window
                break
            windows += 1
            t1 = time.perf_counter()
            cross, n_ctx = self.encode_window(mel, start, seg_frames)
            t2 = time.perf_counter()
            budget = min(cfg.max_tokens, max(cfg.min_token_budget,
                                             math.ceil(cfg.max_tokens_per_s * seg_frames / 100.0)))
            seg_tokens, reason, no_speech, avg = self._decode_window(cross, budget, grammar if single else None,
                                                                     extra)
            t3 = time.perf_counter()
            t_enc += t2 - t1
            t_dec += t3 - t2
            frames_total += n_ctx
            if no_speech > cfg.no_speech_threshold and avg < cfg.logprob_threshold:
                if extra.get("grammar") in GRAMMAR_SPEECH_EVIDENCE:
                    # the recogniser's own words are a sentence of the grammar: a short command ("range"),
                    # whose window is mostly padding, not noise that happened to decode to words
                    extra["no_speech_overruled"] = True
                    log.debug("window at %.1f s: no-speech gate (p=%.2f, avg logprob %.2f) overruled: %r is a "
                              "sentence of the grammar", start / 100, no_speech, avg, extra.get("free_text"))
                else:
                    log.debug("window at %.1f s: no speech (p=%.2f, avg logprob %.2f)", start / 100, no_speech,
                              avg)
                    seg_tokens, reason = [], "no_speech"
            tokens.extend(seg_tokens)
            reasons.append(reason)
            no_speech_max = max(no_speech_max, no_speech)
            logprobs.append(avg)
        text = self.tokenizer.decode(tokens)
        ratio = compression_ratio(text)
        suspect = ratio > cfg.compression_ratio_threshold or "repetition" in reasons
        if suspect:
            log.info("probable hallucination (compression ratio %.2f, stops %s): %.60s", ratio, reasons, text)
        return Transcript(
            text=text, tokens=tuple(tokens), audio_s=audio_s, features_ms=t_feat * 1e3, encoder_ms=t_enc * 1e3,
            decoder_ms=t_dec * 1e3, encoder_frames=frames_total, stop_reason=",".join(reasons),
            no_speech_prob=no_speech_max, avg_logprob=float(np.mean(logprobs)) if logprobs else 0.0,
            compression_ratio=ratio, suspect=suspect, windows=windows, extra=extra,
        )
