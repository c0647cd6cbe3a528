"""The endpointer: utterance start and end events, with their audio, from a stream of 16 kHz samples.

Per VAD window (32 ms by default) the energy gate decides whether Silero must run; a skipped window
counts as probability 0. The state machine on those probabilities::

    idle --listen()--> listening --p >= onset--> candidate --speech lasts min_speech_ms--> speech
                           ^  |                     | dip below offset longer than max_onset_gap_ms
                           |  +--timeout--> idle    v
                           +---------------- listening
    speech --p < offset for trailing_silence_ms, or max_utterance_ms reached--> listening (or idle)
    speech --p < onset for pause_ms: on_pause(audio so far) says end (now), end_later (after another
             pause_ms of quiet), end_after_hold (after hold_silence_ms of quiet), hold (wait
             hold_silence_ms) or continue (wait trailing_silence_ms); the two "after"s end with the audio
             judged, unless speech resumes

The pause judge may answer later, from another thread (``on_pause`` returns a future of its decision): the
windows that come in meanwhile are scored and kept, and once the decision is in they are stepped through the
state machine as if it had been taken at the pause, so the events are the same, only emitted later. The stream
never waits for a judge unless the audio of the utterance being judged would otherwise leave the buffer.

All times are stream times in seconds: sample index / 16000, counted from construction or :meth:`reset`.
Decisions are taken on whole windows only, so the events do not depend on how the caller cuts the stream.
The utterance audio starts ``pre_roll_ms`` before the first speech window (never before the point where
listening began) and ends ``post_roll_ms`` after the last one, so the first and last phonemes survive.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from edge_assistant.core.errors import ConfigError
from edge_assistant.vad._samples import as_float_chunk
from edge_assistant.vad.energy import EnergyGate, EnergyGateConfig
from edge_assistant.vad.silero import SAMPLE_RATE_HZ, SileroVad

log = logging.getLogger(__name__)

_WINDOWS = (512, 1024, 1536)


@dataclass(frozen=True)
class EndpointConfig:
    """Endpointing settings. Probabilities are Silero's speech probability per window (0..1)."""

    window_samples: int = 512
    """Silero window at 16 kHz: 512, 1024 or 1536 samples (32, 64, 96 ms); decisions happen per window."""
    onset_threshold: float = 0.5
    """A window at or above this may start speech."""
    offset_threshold: float = 0.35
    """Once started, speech continues while windows stay at or above this (hysteresis below onset)."""
    min_speech_ms: float = 160.0
    """Speech must last this long (windows >= offset from the onset) before the start is confirmed."""
    max_onset_gap_ms: float = 96.0
    """While confirming, a run of windows below offset longer than this cancels the candidate."""
    trailing_silence_ms: float = 700.0
    """The utterance ends after this much continuous non-speech."""
    min_utterance_ms: float = 300.0
    """Utterances whose speech (first to last speech window) is shorter are discarded (clicks, coughs)."""
    max_utterance_ms: float = 15000.0
    """An utterance is forced to end this long after its start."""
    pre_roll_ms: float = 300.0
    """Audio kept from before the first speech window, so the first word is not clipped."""
    post_roll_ms: float = 200.0
    """Audio kept after the last speech window (at most the trailing silence)."""
    listen_timeout_ms: float = 8000.0
    """Default for :meth:`Endpointer.listen`: give up when no speech starts within this time."""
    pause_ms: float | None = None
    """After this long below the onset threshold inside an utterance, ask :attr:`Endpointer.on_pause` whether
    the words so far are complete (end now), incomplete (wait ``hold_silence_ms``) or neither (wait
    ``trailing_silence_ms``); None: never ask. Counted below the onset and not the offset threshold because
    Silero's probability decays over 100-250 ms after the last word while staying above the offset. At most
    once per pause; speech that clearly resumes (at or above the onset threshold) re-arms it."""
    hold_silence_ms: float = 1500.0
    """Trailing silence for an utterance the pause judge called incomplete ("set the temperature to …")."""
    early_pause_threshold: float | None = None
    """Above the onset: a pause of ``pause_ms`` below this probability is judged early, while Silero's
    probability still decays after the last word; only an end (now or after one more pause) is taken from
    that judgement (the :class:`SpeechPause` says ``early``), anything else waits for the usual one below the
    onset. None: no early judgement."""
    max_lookback_ms: float = 2000.0
    """How far in the past :meth:`Endpointer.listen` may start (audio kept for it)."""
    highpass_hz: float | None = 100.0
    """The gate and Silero see the audio through a 2nd-order Butterworth high-pass at this cut-off, which
    removes road rumble (mostly below 150 Hz in a car) but no speech; None feeds them the raw audio.
    Utterance audio is always the raw input."""
    energy_gate: EnergyGateConfig | None = field(default_factory=EnergyGateConfig)
    """The energy gate that skips Silero on clearly silent windows; None runs Silero on every window."""

    def __post_init__(self) -> None:
        if self.window_samples not in _WINDOWS:
            raise ConfigError(f"endpoint window_samples={self.window_samples}: expected one of {_WINDOWS}")
        for name in ("onset_threshold", "offset_threshold"):
            value = getattr(self, name)
            if not (0.0 < value < 1.0):
                raise ConfigError(f"endpoint {name}={value!r}: expected a probability in (0, 1)")
        if self.offset_threshold > self.onset_threshold:
            raise ConfigError(
                f"endpoint offset_threshold={self.offset_threshold} > onset_threshold={self.onset_threshold}: "
                "the offset must not exceed the onset")
        for name in ("min_speech_ms", "max_onset_gap_ms", "trailing_silence_ms", "min_utterance_ms",
                     "max_utterance_ms", "pre_roll_ms", "post_roll_ms", "listen_timeout_ms", "max_lookback_ms",
                     "hold_silence_ms"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"endpoint {name}={value!r}: expected a finite number of milliseconds >= 0")
        if self.highpass_hz is not None and not (math.isfinite(self.highpass_hz) and 0 < self.highpass_hz < 1000):
            raise ConfigError(f"endpoint highpass_hz={self.highpass_hz!r}: expected None or 0 < Hz < 1000")
        if self.trailing_silence_ms <= 0:
            raise ConfigError("endpoint trailing_silence_ms=0: expected > 0")
        if self.early_pause_threshold is not None and not (
                isinstance(self.early_pause_threshold, (int, float))
                and self.onset_threshold < self.early_pause_threshold < 1.0):
            raise ConfigError(f"endpoint early_pause_threshold={self.early_pause_threshold!r}: expected None or a "
                              f"probability above onset_threshold ({self.onset_threshold:g}) and below 1")
        if self.pause_ms is not None and not (isinstance(self.pause_ms, (int, float))
                                              and 0 < self.pause_ms < self.trailing_silence_ms):
            raise ConfigError(f"endpoint pause_ms={self.pause_ms!r}: expected None or 0 < ms < trailing_silence_ms "
                              f"({self.trailing_silence_ms:g})")
        if self.max_utterance_ms <= max(self.min_speech_ms, self.min_utterance_ms):
            raise ConfigError(
                f"endpoint max_utterance_ms={self.max_utterance_ms}: expected more than min_speech_ms "
                f"({self.min_speech_ms}) and min_utterance_ms ({self.min_utterance_ms})")

    def samples(self, ms: float) -> int:
        """Milliseconds to a whole number of 16 kHz samples."""
        return int(round(ms * SAMPLE_RATE_HZ / 1000.0))


# --- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechStart:
    """Speech has started (confirmed after ``min_speech_ms``)."""

    start_s: float
    """Stream time of the first speech window."""
    detected_s: float
    """Stream time at which the start was confirmed (the latency is ``detected_s - start_s``)."""

    kind = "speech_start"


@dataclass(frozen=True, eq=False)
class Utterance:
    """An utterance has ended; carries its audio (float32, 16 kHz, ``audio_start_s`` to ``end_s``)."""

    start_s: float
    """Stream time of the first speech window."""
    end_s: float
    """Stream time where the utterance audio ends (last speech window + post-roll, or the forced end)."""
    speech_end_s: float
    """Stream time of the end of the last speech window."""
    detected_s: float
    """Stream time at which the end was decided."""
    audio_start_s: float
    """Stream time of ``audio[0]`` (``start_s`` minus the pre-roll that was available)."""
    reason: str
    """``silence`` (trailing silence reached), ``complete`` (the pause judge ended it), ``max_length`` (forced)
    or ``end_of_stream`` (flush)."""
    audio: np.ndarray = field(repr=False)

    kind = "utterance"

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        """JSON-friendly summary (without the audio)."""
        return {"start_s": round(self.start_s, 4), "end_s": round(self.end_s, 4),
                "speech_end_s": round(self.speech_end_s, 4), "detected_s": round(self.detected_s, 4),
                "audio_start_s": round(self.audio_start_s, 4), "reason": self.reason}


@dataclass(frozen=True, eq=False)
class SpeechPause:
    """Handed to :attr:`Endpointer.on_pause` when an utterance has paused for ``pause_ms``: the audio so far
    (as an :class:`Utterance` ending now would carry it)."""

    start_s: float
    speech_end_s: float
    """Stream time of the end of the last speech window."""
    detected_s: float
    audio_start_s: float
    audio: np.ndarray = field(repr=False)
    early: bool = False
    """Judged early (below ``early_pause_threshold``, the probability still decaying): only an end is taken."""


#: What :attr:`Endpointer.on_pause` returns: end the utterance now, end it after another ``pause_ms`` of quiet
#: unless speech resumes (with the audio judged now), wait ``hold_silence_ms``, or carry on.
PAUSE_END, PAUSE_END_LATER, PAUSE_HOLD, PAUSE_CONTINUE = "end", "end_later", "hold", "continue"
#: Wait as :data:`PAUSE_HOLD` does, but if speech does not resume, end with the audio judged now (reason
#: ``complete``), not with the trailing silence added.
PAUSE_END_AFTER_HOLD = "end_after_hold"
_DECISIONS = (PAUSE_END, PAUSE_END_LATER, PAUSE_END_AFTER_HOLD, PAUSE_HOLD, PAUSE_CONTINUE)


def ends_as_judged(decision: str, early: bool) -> bool:
    """True when ``decision``, taken at a pause (``early``: judged early), ends the utterance with the audio judged
    there, now or unless speech resumes: the judge's recognition is then the one to answer. An early judgement
    gives no hold."""
    return decision in (PAUSE_END, PAUSE_END_LATER) or (decision == PAUSE_END_AFTER_HOLD and not early)


@dataclass(frozen=True)
class SpeechDiscarded:
    """A started utterance was dropped because its speech was shorter than ``min_utterance_ms``."""

    start_s: float
    speech_end_s: float
    detected_s: float

    kind = "speech_discarded"


@dataclass(frozen=True)
class ListenTimeout:
    """No speech started within the timeout given to :meth:`Endpointer.listen`."""

    listen_start_s: float
    detected_s: float

    kind = "listen_timeout"


Event = SpeechStart | Utterance | SpeechDiscarded | ListenTimeout


@dataclass(frozen=True)
class EndpointStats:
    """Work done so far: windows seen, windows Silero ran on, CPU time of this thread (``time.thread_time``,
    so other load on the machine does not count) spent in Silero and in the gate."""

    windows: int
    windows_neural: int
    neural_s: float
    gate_s: float

    @property
    def skipped_fraction(self) -> float:
        return 0.0 if self.windows == 0 else 1.0 - self.windows_neural / self.windows


# --- the endpointer ---------------------------------------------------------------------------------


class _Judging(NamedTuple):
    """A pause whose decision is still to come from another thread."""

    future: Future
    end: int
    """Stream sample of the window at which the pause was judged."""
    audio_end: int
    early: bool
    audio_start: int
    """First sample of the judged audio: it must stay in the ring until the decision is in."""


_IDLE, _LISTENING, _CANDIDATE, _SPEECH = "idle", "listening", "candidate", "speech"


class Endpointer:
    """Streaming endpointer. One instance per audio stream; not thread-safe.

    ``listening=True`` listens continuously from time 0 and finds every utterance; ``listening=False``
    stays idle (only keeping audio for look-back) until :meth:`listen`, e.g. right after a wake word.
    Memory is bounded: one ring buffer of pre-roll + look-back + maximum utterance + trailing silence
    (twice, raw and high-passed, when ``highpass_hz`` is set). ``vad`` may be shared between endpointers
    that run one after the other (its state is reset on :meth:`reset`), never between live streams.
    """

    def __init__(self, config: EndpointConfig | None = None, *, vad: SileroVad | None = None,
                 listening: bool = True) -> None:
        self.config = cfg = config or EndpointConfig()
        if vad is not None and vad.window_samples != cfg.window_samples:
            raise ConfigError(
                f"endpoint window_samples={cfg.window_samples} but the VAD runs {vad.window_samples}-sample windows")
        self.vad = vad if vad is not None else SileroVad(window_samples=cfg.window_samples)
        self.gate = (EnergyGate(cfg.energy_gate, window_samples=cfg.window_samples, sample_rate_hz=SAMPLE_RATE_HZ)
                     if cfg.energy_gate is not None else None)
        self._w = cfg.window_samples
        self._pre = cfg.samples(cfg.pre_roll_ms)
        self._post = cfg.samples(min(cfg.post_roll_ms, cfg.trailing_silence_ms))
        self._min_speech = cfg.samples(cfg.min_speech_ms)
        self._max_gap = cfg.samples(cfg.max_onset_gap_ms)
        self._trailing = cfg.samples(cfg.trailing_silence_ms)
        self._min_utt = cfg.samples(cfg.min_utterance_ms)
        self._max_utt = cfg.samples(cfg.max_utterance_ms)
        self._lookback = cfg.samples(cfg.max_lookback_ms)
        self._resume_context = cfg.samples(cfg.energy_gate.resume_context_ms) if cfg.energy_gate else 0
        self._capacity = (self._pre + max(self._lookback, self._max_utt + self._trailing + self._min_speech)
                          + self._max_gap + self._resume_context + 4 * self._w)
        self._ring = np.zeros(self._capacity, dtype=np.float32)
        if cfg.highpass_hz is not None:
            from edge_assistant.audio.frontend import HighPass

            self._highpass: HighPass | None = HighPass(cfg.highpass_hz, SAMPLE_RATE_HZ)
            self._vring = np.zeros(self._capacity, dtype=np.float32)  # what the gate and Silero read
        else:
            self._highpass = None
            self._vring = self._ring
        self._scratch = np.zeros(self._w, dtype=np.float32)
        self._continuous = listening
        self._pause = cfg.samples(cfg.pause_ms) if cfg.pause_ms is not None else None
        self._early_level = cfg.early_pause_threshold
        self._hold = cfg.samples(cfg.hold_silence_ms)
        self.on_pause: Callable[[SpeechPause], str | Future] | None = None
        """Called on the stream's thread, inside :meth:`process`, at the window where a pause reaches
        ``pause_ms``; returns :data:`PAUSE_END` (the utterance ends here, reason ``complete``),
        :data:`PAUSE_END_LATER`, :data:`PAUSE_END_AFTER_HOLD`, :data:`PAUSE_HOLD` or :data:`PAUSE_CONTINUE`, or a
        :class:`concurrent.futures.Future` of one (judged on another thread: the stream goes on, and the
        decision applies at the pause once it is in). Deciding there keeps the events independent of how the
        caller cuts the stream and of how long the judge takes."""
        self.reset()

    # --- public API --------------------------------------------------------------------------------

    @property
    def time_s(self) -> float:
        """Stream time of the next sample to be pushed."""
        return self._n / SAMPLE_RATE_HZ

    @property
    def state(self) -> str:
        """``idle``, ``listening``, ``candidate`` (onset seen, not yet confirmed) or ``speech``."""
        return self._state

    @property
    def stats(self) -> EndpointStats:
        return EndpointStats(self._windows, self._windows_neural, self._neural_s, self._gate_s)

    def reset(self) -> None:
        """Back to stream time 0 with empty buffers, a fresh VAD state and gate, counters at zero."""
        self._n = 0
        self._vad_pos = 0
        self._state = _LISTENING if self._continuous else _IDLE
        self._one_shot = False
        self._deadline: int | None = None
        self._listen_start = 0
        self._start = 0
        self._last_speech_end = 0
        self._gap = 0
        self._silence = 0
        self._quiet = 0
        self._trailing_now = self._trailing
        self._pause_asked = False
        self._early_quiet = 0  # samples below the early pause threshold since the last window at or above it
        self._early_asked = False
        self._end_later: tuple[int, int] | None = None  # (quiet samples, audio end) of a pending PAUSE_END_LATER
        self._drop_judgement()
        self.last_probability = 0.0
        self._gate_was_open = True
        self._windows = 0
        self._windows_neural = 0
        self._neural_s = 0.0
        self._gate_s = 0.0
        self.vad.reset()
        if self._highpass is not None:
            self._highpass.reset()
        if self.gate is not None:
            self.gate.reset()

    def process(self, chunk: np.ndarray) -> list[Event]:
        """Push samples (int16, or float in [-1, 1], any length); return the events they completed.

        Bad input (NaN/inf, wrong scale or shape) raises :class:`DataFormatError` naming the sample and
        leaves the endpointer as it was, so the stream can go on with the next chunk.
        """
        samples = as_float_chunk(chunk, self._n, SAMPLE_RATE_HZ)
        events: list[Event] = []
        step = max(self._w, self._capacity // 4)
        for pos in range(0, samples.size, step):
            piece = samples[pos:pos + step]
            if self._judging is not None and self._n + piece.size - self._capacity > self._judging.audio_start:
                self._settle(events, wait=True)  # the judged audio would leave the ring: wait for the judge
            self._write(piece)
            if self._state != _IDLE:
                self._run_windows(events)
            else:
                self._vad_pos = self._n
        return events

    def listen(self, at_s: float | None = None, timeout_s: float | None = None, *,
               one_shot: bool = True) -> list[Event]:
        """Start listening for one utterance (``one_shot``) at stream time ``at_s`` (default: now).

        ``at_s`` may lie up to ``max_lookback_ms`` in the past (the buffered audio is scanned at once,
        so speech that began right after a wake word is not lost) or in the future. ``timeout_s``
        (default ``listen_timeout_ms``; ``math.inf`` for none) ends listening with :class:`ListenTimeout`
        when no speech has started by then. An utterance in progress is abandoned. Returns the events
        found in the buffered audio.
        """
        if at_s is None:
            at = self._n
        else:
            if not math.isfinite(at_s) or at_s < 0:
                raise ConfigError(f"listen at_s={at_s!r}: expected a stream time >= 0 s")
            at = int(round(at_s * SAMPLE_RATE_HZ))
        oldest = max(0, self._n - self._lookback)
        if at < oldest:
            log.warning("listen at %.3f s is older than the %.0f ms look-back; starting at %.3f s",
                        at / SAMPLE_RATE_HZ, self.config.max_lookback_ms, oldest / SAMPLE_RATE_HZ)
            at = oldest
        if timeout_s is None:
            timeout_s = self.config.listen_timeout_ms / 1000.0
        if math.isnan(timeout_s) or timeout_s < 0:
            raise ConfigError(f"listen timeout_s={timeout_s!r}: expected seconds >= 0 (math.inf for none)")
        if self._state in (_CANDIDATE, _SPEECH):
            log.debug("listen() abandons the utterance that started at %.3f s", self._start / SAMPLE_RATE_HZ)
        self._drop_judgement()
        self._state = _LISTENING
        self._one_shot = one_shot
        self._listen_start = at
        self._deadline = None if math.isinf(timeout_s) else at + int(round(timeout_s * SAMPLE_RATE_HZ))
        self._vad_pos = at
        self.vad.reset_state()
        events: list[Event] = []
        self._run_windows(events)
        return events

    def stop(self) -> None:
        """Stop listening (abandons any utterance in progress); audio is still kept for look-back."""
        self._drop_judgement()
        self._state = _IDLE
        self._deadline = None

    def flush(self) -> list[Event]:
        """End of stream: close an utterance in progress (reason ``end_of_stream``).

        A trailing partial window is not scored, but its audio is part of the closed utterance.
        """
        events: list[Event] = []
        self._settle(events, wait=True)
        if self._state == _SPEECH:
            end = min(self._last_speech_end + self._post, self._n)
            self._finish(events, end, self._n, "end_of_stream")
        elif self._state == _CANDIDATE:
            self._state = _LISTENING
        return events

    # --- internals ---------------------------------------------------------------------------------

    def _write(self, samples: np.ndarray) -> None:
        n = samples.size
        if n == 0:
            return
        if self._highpass is not None:
            self._put(self._vring, self._highpass.process(samples))
        self._put(self._ring, samples)
        self._n += n

    def _put(self, ring: np.ndarray, samples: np.ndarray) -> None:
        """Store ``samples`` as stream samples ``_n ..`` (ring[i % capacity] holds sample i)."""
        n, cap = samples.size, self._capacity
        if n >= cap:
            samples, start = samples[n - cap:], self._n + n - cap
        else:
            start = self._n
        pos = start % cap
        first = min(samples.size, cap - pos)
        ring[pos:pos + first] = samples[:first]
        if first < samples.size:
            ring[:samples.size - first] = samples[first:]

    def _read(self, start: int, end: int, out: np.ndarray | None = None, ring: np.ndarray | None = None) -> np.ndarray:
        """Samples [start, end) of the stream (must still be in the ring); raw audio unless ``ring``."""
        ring = self._ring if ring is None else ring
        cap = self._capacity
        if start < self._n - cap or end > self._n or start > end:
            raise AssertionError(f"ring read [{start}, {end}) outside [{self._n - cap}, {self._n})")
        n = end - start
        if out is None:
            out = np.empty(n, dtype=np.float32)
        pos = start % cap
        first = min(n, cap - pos)
        out[:first] = ring[pos:pos + first]
        if first < n:
            out[first:n] = ring[:n - first]
        return out

    def settle(self) -> list[Event]:
        """Wait for the decision of a pause still being judged and return the events it completes (none if
        nothing is being judged); for a caller that cannot let the stream run further ahead of the judge."""
        events: list[Event] = []
        self._settle(events, wait=True)
        return events

    @property
    def judging(self) -> bool:
        """A pause judge's decision is still to come (the windows since are kept, not yet stepped)."""
        return self._judging is not None

    def _run_windows(self, events: list[Event]) -> None:
        w = self._w
        while self._state != _IDLE and self._n - self._vad_pos >= w:
            if self._judging is not None:
                self._settle(events)
                if self._state == _IDLE:
                    break
            s = self._vad_pos
            window = self._read(s, s + w, self._scratch, self._vring)
            self._vad_pos = s + w
            prob = self._score(s, window)
            if self._judging is not None:
                self._held.append((s, prob))
            else:
                self._step(s, prob, events)

    def _drop_judgement(self) -> None:
        """Forget a decision still to come and the windows kept for it (the utterance is abandoned)."""
        self._judging: _Judging | None = None
        self._held: deque[tuple[int, float]] = deque()  # (window start, probability) scored while judging

    def _settle(self, events: list[Event], wait: bool = False) -> None:
        """Apply the judge's decision once it is in (``wait``: wait for it), then step the windows kept
        meanwhile, exactly as they would have been stepped had it come at once."""
        while self._judging is not None:
            pending = self._judging
            if not (wait or pending.future.done()):
                return
            try:
                decision = pending.future.result()  # waits here, still judging, when told to wait
            except BaseException:
                self._judging = None
                self._step_held(events)  # a judge that failed gives no decision; what came after goes on
                raise
            self._judging = None
            try:
                self._apply(decision, pending.end, pending.audio_end, pending.early, events)
            finally:
                self._step_held(events)

    def _step_held(self, events: list[Event]) -> None:
        """Step the windows kept while judging, up to the end of the utterance or the next pause judged later."""
        while self._held and self._judging is None:
            if self._state == _IDLE:  # ended: what came after is not listened to
                self._held.clear()
                break
            s, prob = self._held.popleft()
            self._step(s, prob, events)

    def _score(self, s: int, window: np.ndarray) -> float:
        self._windows += 1
        if self.gate is not None:
            t0 = time.thread_time()
            open_ = self.gate.update(window)
            self._gate_s += time.thread_time() - t0
            if not open_:
                self._gate_was_open = False
                self.last_probability = 0.0
                return 0.0
            if not self._gate_was_open:
                self._resume(s)
            self._gate_was_open = True
        t0 = time.thread_time()
        prob = self.vad.probability(window)
        self._neural_s += time.thread_time() - t0
        self._windows_neural += 1
        self.last_probability = prob
        return prob

    def _resume(self, s: int) -> None:
        """The gate reopens at sample ``s``: Silero did not hear the skipped audio, so its state still
        describes whatever came before the gap. Restart it from zero and let it re-read the last
        ``resume_context_ms`` before ``s`` (taken from the ring), as a fresh stream would have."""
        self.vad.reset_state()
        first = max(s - self._resume_context, self._listen_start, self._n - self._capacity, 0)
        first = s - ((s - first) // self._w) * self._w
        t0 = time.thread_time()
        for pos in range(first, s, self._w):
            self.vad.probability(self._read(pos, pos + self._w, ring=self._vring))
            self._windows_neural += 1
        self._neural_s += time.thread_time() - t0

    def _step(self, s: int, prob: float, events: list[Event]) -> None:
        cfg = self.config
        end = s + self._w
        if self._state == _LISTENING:
            if prob >= cfg.onset_threshold:
                self._state = _CANDIDATE
                self._start = s
                self._last_speech_end = end
                self._gap = 0
                self._confirm_if_long(end, events)
            else:
                self._check_timeout(end, events)
        elif self._state == _CANDIDATE:
            if prob >= cfg.offset_threshold:
                self._last_speech_end = end
                self._gap = 0
                self._confirm_if_long(end, events)
            else:
                self._gap += self._w
                if self._gap > self._max_gap:
                    self._state = _LISTENING
                    self._check_timeout(end, events)
        elif self._state == _SPEECH:
            if prob >= cfg.offset_threshold:
                self._last_speech_end = end
                self._silence = 0
            else:
                self._silence += self._w
            if prob >= cfg.onset_threshold:
                if self._quiet:  # speech clearly resumed: the next pause is judged afresh, by the usual rule
                    self._trailing_now = self._trailing
                    self._pause_asked = False
                    self._end_later = None
                self._quiet = 0
            else:
                self._quiet += self._w
            if self._early_level is not None:
                if prob >= self._early_level:
                    self._early_quiet, self._early_asked = 0, False
                else:
                    self._early_quiet += self._w
            if end - self._start >= self._max_utt:
                self._finish(events, self._start + self._max_utt, end, "max_length")
            elif self._end_later is not None and self._quiet >= self._end_later[0]:
                self._finish(events, self._end_later[1], end, "complete")
            elif self._silence >= self._trailing_now:
                self._finish(events, min(self._last_speech_end + self._post, end), end, "silence")
            elif self._pause is not None and self.on_pause is not None and not self._pause_asked:
                if self._quiet >= self._pause:
                    self._pause_asked = True
                    self._judge_pause(end, events)
                elif (self._early_level is not None and not self._early_asked and self._end_later is None
                      and self._early_quiet >= self._pause):
                    self._early_asked = True
                    self._judge_pause(end, events, early=True)

    def _judge_pause(self, end: int, events: list[Event], early: bool = False) -> None:
        sr = SAMPLE_RATE_HZ
        if self._last_speech_end - self._start < self._min_utt:
            return  # too short to be a command yet
        audio_end = min(self._last_speech_end + self._post, end)
        audio_start = self._audio_start()
        pause = SpeechPause(self._start / sr, self._last_speech_end / sr, end / sr, audio_start / sr,
                            self._read(audio_start, audio_end), early)
        decision = self.on_pause(pause)
        if isinstance(decision, Future):
            self._judging = _Judging(decision, end, audio_end, early, audio_start)
            return
        self._apply(decision, end, audio_end, early, events)

    def _apply(self, decision: str, end: int, audio_end: int, early: bool, events: list[Event]) -> None:
        if decision not in _DECISIONS:
            raise ConfigError(f"on_pause returned {decision!r}: expected one of {', '.join(map(repr, _DECISIONS))}")
        if decision == PAUSE_END:
            self._finish(events, audio_end, end, "complete")
        elif decision == PAUSE_END_LATER:
            self._end_later = (self._quiet + self._pause, audio_end)
        elif decision == PAUSE_END_AFTER_HOLD and ends_as_judged(decision, early):
            self._end_later = (max(self._quiet, self._hold), audio_end)
            self._trailing_now = max(self._trailing, self._hold)
        elif decision == PAUSE_HOLD and not early:  # after an early one, the usual judgement follows
            self._trailing_now = max(self._trailing, self._hold)

    def _audio_start(self) -> int:
        return max(self._start - self._pre, self._listen_start, self._n - self._capacity, 0)

    def _confirm_if_long(self, end: int, events: list[Event]) -> None:
        if self._last_speech_end - self._start >= self._min_speech:
            self._state = _SPEECH
            self._silence = 0
            self._quiet = 0
            self._trailing_now = self._trailing
            self._pause_asked = False
            self._early_quiet, self._early_asked = 0, False
            self._end_later = None
            events.append(SpeechStart(self._start / SAMPLE_RATE_HZ, end / SAMPLE_RATE_HZ))
            if end - self._start >= self._max_utt:
                self._finish(events, self._start + self._max_utt, end, "max_length")

    def _check_timeout(self, end: int, events: list[Event]) -> None:
        if self._deadline is not None and end >= self._deadline:
            events.append(ListenTimeout(self._listen_start / SAMPLE_RATE_HZ, end / SAMPLE_RATE_HZ))
            self._state = _IDLE
            self._deadline = None

    def _finish(self, events: list[Event], end_sample: int, detected: int, reason: str) -> None:
        sr = SAMPLE_RATE_HZ
        speech_end = min(self._last_speech_end, end_sample)
        if reason != "max_length" and speech_end - self._start < self._min_utt:
            events.append(SpeechDiscarded(self._start / sr, speech_end / sr, detected / sr))
        else:
            audio_start = self._audio_start()
            audio = self._read(audio_start, end_sample)
            events.append(Utterance(self._start / sr, end_sample / sr, speech_end / sr, detected / sr,
                                    audio_start / sr, reason, audio))
        if self._one_shot:
            self._state = _IDLE
            self._one_shot = False
        else:
            self._state = _LISTENING
        self._deadline = None


def find_utterances(audio: np.ndarray, config: EndpointConfig | None = None, *,
                    vad: SileroVad | None = None, chunk_samples: int = 16000) -> list[Utterance]:
    """All utterances in a whole recording (16 kHz mono), as a continuous listener would find them."""
    ep = Endpointer(config, vad=vad, listening=True)
    found: list[Utterance] = []
    for pos in range(0, len(audio), chunk_samples):
        found.extend(e for e in ep.process(audio[pos:pos + chunk_samples]) if isinstance(e, Utterance))
    found.extend(e for e in ep.flush() if isinstance(e, Utterance))
    return found
