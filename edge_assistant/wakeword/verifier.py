"""Second-stage wake-word verification: the head proposes, a verifier confirms before the assistant reacts.

The one verifier, ``whisper``, asks the on-device Whisper model (the recogniser's own onnxruntime sessions
when the app passes its :class:`~edge_assistant.asr.recognizer.WhisperRecognizer`) how likely it is that
the wake phrase was said in the audio around a proposal:

1. the window is ``lookback_s`` of audio before the proposal's stream time and ``lookahead_s`` after it
   (the head fires about 0.1 s before the word's end, so the look-ahead lets the word finish; it is the
   latency the verifier adds on top of its compute time);
2. the window is encoded once (variable audio context, as the recogniser does) and decoded greedily;
3. before every greedy token, and after the last one, the decoder's log-probability of the phrase's
   tokens is read: the phrase may start anywhere in the transcript (speech before it in the window is
   explained by the greedy prefix). Later tokens of a multi-token phrase cost one decoder call each,
   only where the first token is still plausible;
4. the *score* is the best of those log-probabilities (over positions and the spellings " Alexa",
   " alexa", ...); the proposal is accepted when it is at least ``min_logprob``.

``min_logprob`` was chosen on synthetic speech only (Flite voices saying the phrase and the phrase's
confusables, through the head's own proposals: ``benchmarks/verifier_calibration.py``), never on the
recordings in ``shared/data``. The verifier uses the recogniser's public step API (``log_mel``,
``encode_window``, ``start``, ``step``, ``suppress``) to share its sessions rather than load Whisper twice.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edge_assistant.core.errors import ConfigError
from edge_assistant.wakeword.manifest import VERIFIERS

log = logging.getLogger(__name__)

__all__ = ["OFF", "VERIFIERS", "Verdict", "VerifierConfig", "WhisperVerifier", "build_verifier", "phrase_forms"]
#: Switches a manifest's verifier off (configs and ``--verifier``).
OFF = "off"
SAMPLE_RATE_HZ = 16000
_HOP = 160


@dataclass(frozen=True)
class VerifierConfig:
    """How a proposal is checked."""

    lookback_s: float = 1.5
    """Audio before the proposal's stream time given to the verifier."""
    lookahead_s: float = 0.3
    """Audio after the proposal awaited before verifying (added detection latency, stream time)."""
    min_logprob: float = -8.0
    """Accept when the phrase's best log-probability in the window is at least this (natural log).

    Chosen on synthetic speech only (``benchmarks/verifier_calibration.py --utterances 600 --seed 105``,
    Flite voices, the ``alexa`` head): the 1st percentile of the scores of the synthetic wake utterances
    the head proposes at its own threshold (0.5) was -7.21, rounded down to a whole number; 157 of 157 of
    them are kept, and 272 of the 322 proposals (threshold 0.1) on the recipe's negatives, most of them
    confusables ("Alexis", "a Lexus"), are rejected."""
    max_tokens: int = 12
    """Greedy tokens decoded at most (the window is short; this bounds the cost per proposal)."""

    def __post_init__(self) -> None:
        if not 0.3 <= self.lookback_s <= 10.0:
            raise ConfigError(f"verifier.lookback_s: {self.lookback_s}; expected 0.3..10 s")
        if not 0.0 <= self.lookahead_s <= 2.0:
            raise ConfigError(f"verifier.lookahead_s: {self.lookahead_s}; expected 0..2 s")
        if not -100.0 <= self.min_logprob <= 0.0:
            raise ConfigError(f"verifier.min_logprob: {self.min_logprob}; expected a log-probability in [-100, 0]")
        if not 1 <= self.max_tokens <= 64:
            raise ConfigError(f"verifier.max_tokens: {self.max_tokens}; expected 1..64")

    @property
    def window_s(self) -> float:
        return self.lookback_s + self.lookahead_s


@dataclass(frozen=True)
class Verdict:
    """A verifier's answer for one proposal."""

    accepted: bool
    score: float  # best log-probability of the phrase in the window (once accepted, decoding stops early)
    text: str  # the greedy transcript of the window (for logs)
    cost_ms: float  # compute time of this verification


def check_verifier_name(name: str | None, where: str) -> str | None:
    """``name`` as given (None/"off"/a known verifier); :class:`ConfigError` naming ``where`` otherwise."""
    if name is None or name == OFF or name in VERIFIERS:
        return name
    raise ConfigError(f"{where}: {name!r}; expected {OFF!r} or one of {', '.join(VERIFIERS)}")


def phrase_forms(phrase: str) -> list[str]:
    """Spellings of the phrase Whisper may write: as given, capitalised, title case, lower case."""
    words = " ".join(phrase.replace("_", " ").split())
    if not words:
        raise ConfigError("verifier phrase is empty; expected the spoken wake phrase, e.g. 'Alexa'")
    forms = [words, words[:1].upper() + words[1:], words.title(), words.lower()]
    return list(dict.fromkeys(" " + f for f in forms))


def _looping(tokens: list[int]) -> bool:
    """True when the transcript ends in a loop: one token 4 times, or a 2-6 token pattern twice in a row."""
    n = len(tokens)
    if n >= 4 and len(set(tokens[-4:])) == 1:
        return True
    return any(n >= 2 * p and tokens[-p:] == tokens[-2 * p : -p] for p in range(2, 7))


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = float(x.max())
    return x - (m + math.log(float(np.exp(x - m).sum())))


class WhisperVerifier:
    """Scores a wake phrase with Whisper's decoder on a short window of audio.

    ``recognizer``: a loaded :class:`~edge_assistant.asr.recognizer.WhisperRecognizer` whose sessions are
    shared (the app's; ``wake`` and ``bench wake`` make one). Not thread-safe, like the recogniser:
    verify on the thread that feeds the engine.
    """

    name = "whisper"

    def __init__(self, phrase: str, recognizer: Any, config: VerifierConfig | None = None) -> None:
        self.config = config or VerifierConfig()
        self.recognizer = recognizer
        self.phrase = phrase
        self.exact = False  # True: decode the whole window even once accepted (calibration, logs)
        tok = recognizer.tokenizer
        forms = {tuple(tok.encode(f)) for f in phrase_forms(phrase)}
        self._forms = sorted(f for f in forms if f)
        if not self._forms:
            raise ConfigError(f"verifier phrase {phrase!r} has no tokens")

    def verify(self, audio: np.ndarray) -> Verdict:
        """Verdict on float32 (or int16) 16 kHz mono ``audio``: the window around one proposal."""
        t0 = time.perf_counter()
        score, text = self.score(audio)
        ms = (time.perf_counter() - t0) * 1e3
        return Verdict(score >= self.config.min_logprob, score, text, ms)

    def score(self, audio: np.ndarray) -> tuple[float, str]:
        """(best log-probability of the phrase anywhere in ``audio``, greedy transcript)."""
        rec = self.recognizer
        x = rec.check_audio(audio)
        if x.size < 4 * _HOP:
            return -math.inf, ""
        # The recogniser's own features, encoder and decoder step (its sessions are shared, not copied).
        mel = rec.log_mel(x)
        content = min(mel.shape[1], x.size // _HOP, 3000)
        cross, _ = rec.encode_window(mel, 0, content, full_window=False)
        tk = rec.tokenizer.tokens
        _, logits, past = rec.start(cross)
        best = -math.inf
        out: list[int] = []
        for i in range(self.config.max_tokens + 1):
            masked = logits + rec.suppress(i == 0)
            lp = _log_softmax(masked)
            best = max(best, self._phrase_logprob(lp, past, cross, best))
            if i == self.config.max_tokens:
                break
            if best >= self.config.min_logprob and not self.exact:
                break  # accepted: the rest of the transcript cannot change the decision
            token = int(masked.argmax())
            if token == tk.eot:
                break
            out.append(token)
            if _looping(out):
                break  # a decoding loop on the padding: later positions repeat earlier ones
            logits, past = rec.step([token], past, cross)
        return best, rec.tokenizer.decode(out)

    def _phrase_logprob(self, lp: np.ndarray, past: list[np.ndarray], cross: dict[str, np.ndarray],
                        best: float) -> float:
        """Best log-probability of a spelling of the phrase starting here (``lp``: next-token log-probs)."""
        rec = self.recognizer
        # A spelling whose running total falls below the floor cannot change the decision: its later
        # tokens are skipped (the total is then an upper bound, exact whenever it is >= min_logprob - 8).
        floor = max(best, self.config.min_logprob - 8.0)
        top = -math.inf
        for form in self._forms:
            total = float(lp[form[0]])
            p = past
            for prev, nxt in zip(form[:-1], form[1:], strict=True):
                if total <= floor:
                    break
                logits, p = rec.step([prev], p, cross)
                total += float(_log_softmax(logits + rec.suppress(False))[nxt])
            top = max(top, total)
        return top


def build_verifier(name: str, phrase: str, recognizer: Any, config: VerifierConfig | None = None) -> Any:
    """The verifier called ``name`` for ``phrase`` (:data:`VERIFIERS`)."""
    check_verifier_name(name, "verifier")
    if name == OFF:
        raise ConfigError("verifier: 'off' builds no verifier")
    return WhisperVerifier(phrase, recognizer, config)
