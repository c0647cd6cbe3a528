"""The streaming endpointer: events, utterance audio, chunking, listening after a wake word, bad input."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest

from edge_assistant.audio.noise import car_cabin_noise, mix_at_snr
from edge_assistant.core.errors import ConfigError, DataFormatError
from edge_assistant.vad.endpoint import (
    PAUSE_CONTINUE,
    PAUSE_END,
    PAUSE_END_AFTER_HOLD,
    PAUSE_END_LATER,
    PAUSE_HOLD,
    EndpointConfig,
    Endpointer,
    ListenTimeout,
    SpeechDiscarded,
    SpeechStart,
    Utterance,
    find_utterances,
)
from edge_assistant.vad.silero import SileroVad

from .conftest import SR, silence

pytestmark = pytest.mark.shared_data


def _key(event) -> tuple:
    """An event as comparable values (utterance audio by its exact bytes)."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    audio = fields.pop("audio", None)
    return (event.kind, tuple(sorted(fields.items())), None if audio is None else audio.tobytes())


def _run(ep: Endpointer, x: np.ndarray, sizes) -> list:
    events, pos = [], 0
    for n in sizes:
        if pos >= len(x):
            break
        events.extend(ep.process(x[pos:pos + n]))
        pos += n
    assert pos >= len(x)
    events.extend(ep.flush())
    return events


def _fixed(n: int, total: int):
    return [n] * (total // n + 1)


@pytest.fixture(scope="module")
def two_sentences(short_clips: list[np.ndarray]) -> np.ndarray:
    """Two sentences 1.5 s apart, padded, in car noise at 20 dB SNR (about 7.5 s)."""
    a, b = short_clips[0], short_clips[1]
    x = np.concatenate([silence(0.8), a, silence(1.5), b, silence(1.2)])
    return mix_at_snr(x, car_cabin_noise(len(x) / SR, seed=7)[: len(x)], 20.0)


def test_events_do_not_depend_on_chunk_size(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    reference = [_key(e) for e in _run(Endpointer(vad=vad), x, _fixed(512, len(x)))]
    kinds = [k[0] for k in reference]
    assert kinds == ["speech_start", "utterance", "speech_start", "utterance"], kinds
    rng = np.random.default_rng(3)
    for sizes in (_fixed(1, len(x)), _fixed(160, len(x)), _fixed(1280, len(x)),
                  list(rng.integers(1, 4000, size=len(x))), list(rng.integers(0, 700, size=len(x)))):
        got = [_key(e) for e in _run(Endpointer(vad=vad), x, sizes)]
        assert got == reference, f"events differ for chunks {sizes[:5]}..."


def test_int16_and_float_input_agree(two_sentences: np.ndarray, vad: SileroVad) -> None:
    pcm = np.round(two_sentences * 32767).astype(np.int16)
    as_float = pcm.astype(np.float32) / 32768.0
    a = [_key(e) for e in _run(Endpointer(vad=vad), pcm, _fixed(800, len(pcm)))]
    b = [_key(e) for e in _run(Endpointer(vad=vad), as_float, _fixed(800, len(pcm)))]
    assert a == b


def test_pre_roll_is_the_audio_before_the_start(two_sentences: np.ndarray, vad: SileroVad) -> None:
    cfg = EndpointConfig()
    found = find_utterances(two_sentences, cfg, vad=vad)
    assert len(found) == 2
    for u in found:
        assert u.start_s - u.audio_start_s == pytest.approx(cfg.pre_roll_ms / 1000.0)
        a, e = round(u.audio_start_s * SR), round(u.end_s * SR)
        np.testing.assert_array_equal(u.audio, two_sentences[a:e])
        pre = round(cfg.pre_roll_ms * SR / 1000)
        np.testing.assert_array_equal(u.audio[:pre], two_sentences[a:a + pre])
        assert u.speech_end_s <= u.end_s <= u.speech_end_s + cfg.post_roll_ms / 1000.0 + 1e-9
        assert u.detected_s == pytest.approx(u.speech_end_s + cfg.trailing_silence_ms / 1000.0, abs=0.033)


def test_pre_roll_is_cut_at_the_stream_start(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    x = np.concatenate([silence(0.05), short_clips[0], silence(1.0)])  # first word at 0.15 s
    (u,) = find_utterances(x, vad=vad)
    assert u.audio_start_s == 0.0 and u.start_s < 0.3
    np.testing.assert_array_equal(u.audio, x[: round(u.end_s * SR)])


def test_utterances_apart_more_than_a_second_are_split(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    parts, bounds, t = [silence(0.5)], [], 0.5
    for clip in short_clips:
        parts += [clip, silence(1.2)]
        bounds.append((t, t + len(clip) / SR))
        t += len(clip) / SR + 1.2
    found = find_utterances(np.concatenate(parts), vad=vad)
    assert len(found) == 3, [u.to_dict() for u in found]
    for u, (a, b) in zip(found, bounds, strict=True):
        assert a - 0.3 <= u.start_s and u.end_s <= b + 0.7
        assert u.reason == "silence"


def test_max_length_forces_the_end(long_clip: np.ndarray, vad: SileroVad) -> None:
    cfg = EndpointConfig(max_utterance_ms=3000.0)
    x = np.concatenate([silence(0.5), long_clip, silence(1.0)])
    found = find_utterances(x, cfg, vad=vad)
    forced = [u for u in found if u.reason == "max_length"]
    assert len(forced) >= 2, [u.to_dict() for u in found]
    for u in found:
        assert u.end_s - u.start_s <= 3.0 + 1e-9
        assert len(u.audio) == round((u.end_s - u.audio_start_s) * SR)
    for u in forced:
        assert u.end_s - u.start_s == pytest.approx(3.0)
    # speech goes on after a forced end: the next utterance starts within a window or two
    assert found[1].start_s - found[0].end_s < 0.1


@pytest.mark.parametrize("kind", ["digital silence", "car noise", "white noise -40 dBFS", "tiny dc offset"])
def test_no_speech_no_utterance_and_no_hang(kind: str, vad: SileroVad) -> None:
    n = 30 * SR
    if kind == "digital silence":
        x = np.zeros(n, np.float32)
    elif kind == "car noise":
        x = car_cabin_noise(30.0, seed=1)
    elif kind == "white noise -40 dBFS":
        x = (np.random.default_rng(0).standard_normal(n) * 10 ** (-40 / 20) / math.sqrt(2)).astype(np.float32)
    else:
        x = np.full(n, 1e-3, np.float32)
    ep = Endpointer(vad=vad)
    t0 = time.perf_counter()
    events = _run(ep, x, _fixed(4000, n))
    assert time.perf_counter() - t0 < 30.0  # a generous bound: it must return, not hang
    assert events == []
    assert ep.state == "listening" and ep.time_s == pytest.approx(30.0)


def test_bad_samples_raise_and_leave_the_stream_usable(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    clean = [_key(e) for e in _run(Endpointer(vad=vad), x, _fixed(1000, len(x)))]
    ep = Endpointer(vad=vad)
    events = []
    for i, pos in enumerate(range(0, len(x), 1000)):
        if i == 20:
            bad = x[pos:pos + 1000].copy()
            bad[17] = np.nan
            with pytest.raises(DataFormatError, match=rf"sample {pos + 17} \({(pos + 17) / SR:.3f} s\).*not finite"):
                ep.process(bad)
            bad[17] = np.inf
            with pytest.raises(DataFormatError, match="not finite"):
                ep.process(bad)
        events.extend(ep.process(x[pos:pos + 1000]))
    events.extend(ep.flush())
    assert [_key(e) for e in events] == clean


@pytest.mark.parametrize("chunk, message", [
    (np.ones(100, np.float32) * 300.0, "int16-scaled"),
    (np.zeros((2, 100), np.float32), "mono"),
    (np.zeros(100, np.int32), "dtype int32"),
])
def test_malformed_chunks_are_named(chunk: np.ndarray, message: str, vad: SileroVad) -> None:
    with pytest.raises(DataFormatError, match=message):
        Endpointer(vad=vad).process(chunk)


def test_reset_gives_a_fresh_stream(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    ep = Endpointer(vad=vad)
    first = [_key(e) for e in _run(ep, x, _fixed(700, len(x)))]
    ep.process(x[: len(x) // 3])  # leave it in the middle of something
    ep.reset()
    assert ep.time_s == 0.0 and ep.state == "listening" and ep.stats.windows == 0
    assert [_key(e) for e in _run(ep, x, _fixed(700, len(x)))] == first


def test_listen_after_wake_word(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    """Idle until listen(): the 'wake word' sentence is not reported, the command after it is."""
    wake, command = short_clips[2], short_clips[0]
    x = np.concatenate([silence(0.5), wake, silence(0.4), command, silence(1.5)])
    wake_end_s = 0.5 + len(wake) / SR
    ep = Endpointer(vad=vad, listening=False)
    n_before = round((wake_end_s + 0.1) * SR)
    assert ep.process(x[:n_before]) == [] and ep.state == "idle"
    events = ep.listen(timeout_s=5.0)
    events += _run(ep, x[n_before:], _fixed(1024, len(x)))
    utts = [e for e in events if isinstance(e, Utterance)]
    assert len(utts) == 1 and any(isinstance(e, SpeechStart) for e in events)
    u = utts[0]
    assert u.audio_start_s >= wake_end_s + 0.1  # pre-roll never reaches back before listening began
    first_word_s = wake_end_s + 0.4 + 0.1  # the clips are trimmed to 100 ms before their first word
    assert u.audio_start_s <= first_word_s and u.start_s <= first_word_s + 0.1
    assert ep.state == "idle"  # one-shot: back to idle after the utterance


def test_listen_in_the_past_finds_speech_already_begun(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    command = short_clips[0]
    x = np.concatenate([silence(1.0), command, silence(1.5)])
    ep = Endpointer(vad=vad, listening=False)
    late = round(1.6 * SR)  # the wake word detector reported 0.9 s into the sentence... too late
    ep.process(x[:late])
    events = ep.listen(at_s=0.8)
    assert any(isinstance(e, SpeechStart) for e in events)  # found in the buffered audio at once
    events += _run(ep, x[late:], _fixed(512, len(x)))
    (u,) = [e for e in events if isinstance(e, Utterance)]
    assert u.audio_start_s >= 0.8 and u.start_s <= 1.1


def test_listen_timeout(vad: SileroVad) -> None:
    ep = Endpointer(vad=vad, listening=False)
    ep.process(silence(1.0))
    assert ep.listen(timeout_s=2.0) == []
    events = ep.process(car_cabin_noise(3.0, seed=2))
    assert len(events) == 1 and isinstance(events[0], ListenTimeout)
    assert events[0].listen_start_s == 1.0
    assert 3.0 <= events[0].detected_s <= 3.0 + 512 / SR
    assert ep.state == "idle" and ep.process(silence(1.0)) == []


def test_listen_arguments_are_checked(vad: SileroVad) -> None:
    ep = Endpointer(vad=vad, listening=False)
    with pytest.raises(ConfigError, match="at_s"):
        ep.listen(at_s=-1.0)
    with pytest.raises(ConfigError, match="timeout_s"):
        ep.listen(timeout_s=float("nan"))


def test_short_bursts_are_discarded(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    """A 250 ms piece of speech passes the onset checks but is shorter than min_utterance_ms (500 ms)."""
    clip = short_clips[0]
    energy = np.convolve(clip.astype(np.float64) ** 2, np.ones(4000), "valid")
    at = int(np.argmax(energy))
    burst = clip[at:at + 4000] * np.hanning(4000).astype(np.float32)
    cfg = EndpointConfig(min_utterance_ms=500.0)
    ep = Endpointer(cfg, vad=vad)
    events = _run(ep, np.concatenate([silence(1.0), burst, silence(1.5)]), _fixed(512, 44000))
    assert not [e for e in events if isinstance(e, Utterance)]
    assert [type(e) for e in events] in ([], [SpeechStart, SpeechDiscarded])


@pytest.mark.parametrize("field, value", [
    ("onset_threshold", 1.5), ("offset_threshold", 0.9), ("trailing_silence_ms", 0.0),
    ("pre_roll_ms", -5.0), ("max_utterance_ms", 100.0), ("window_samples", 480), ("highpass_hz", 0.0),
    ("min_speech_ms", float("nan")),
])
def test_config_errors_name_the_key(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        EndpointConfig(**{field: value})


def test_gate_saves_work_on_padded_speech(two_sentences: np.ndarray, vad: SileroVad) -> None:
    quiet = np.concatenate([silence(3.0), two_sentences, silence(3.0)])
    gated, ungated = Endpointer(vad=vad), Endpointer(EndpointConfig(energy_gate=None), vad=vad)
    e1 = [(e.kind, e.start_s) for e in _run(gated, quiet, _fixed(1600, len(quiet))) if e.kind == "utterance"]
    e2 = [(e.kind, e.start_s) for e in _run(ungated, quiet, _fixed(1600, len(quiet))) if e.kind == "utterance"]
    assert len(e1) == len(e2) == 2
    assert all(abs(a[1] - b[1]) <= 0.1 for a, b in zip(e1, e2, strict=True))
    assert gated.stats.skipped_fraction > 0.3
    assert ungated.stats.skipped_fraction == 0.0


def test_listen_in_the_future_ignores_what_comes_before(short_clips: list[np.ndarray], vad: SileroVad) -> None:
    early, command = short_clips[2], short_clips[0]
    x = np.concatenate([silence(0.3), early, silence(0.5), command, silence(1.5)])
    at_s = 0.3 + len(early) / SR + 0.2
    ep = Endpointer(vad=vad, listening=False)
    assert ep.listen(at_s=at_s, timeout_s=5.0) == []
    events = _run(ep, x, _fixed(640, len(x)))
    (u,) = [e for e in events if isinstance(e, Utterance)]
    assert u.audio_start_s >= at_s and u.start_s <= at_s + 0.3 + 0.1 + 0.1


def _judged(decision: str, x: np.ndarray, vad: SileroVad, sizes, **cfg) -> tuple[list, list]:
    """Events of ``x`` with a pause judge that always answers ``decision``, and the pauses it was shown."""
    ep = Endpointer(EndpointConfig(pause_ms=200.0, **cfg), vad=vad)
    pauses: list = []

    def judge(pause) -> str:
        pauses.append(pause)
        return decision

    ep.on_pause = judge
    return _run(ep, x, sizes), pauses


def test_a_complete_pause_ends_the_utterance_at_once(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    plain = find_utterances(x, vad=vad)
    events, pauses = _judged(PAUSE_END, x, vad, _fixed(512, len(x)))
    ended = [e for e in events if isinstance(e, Utterance)]
    assert len(ended) == len(plain) == 2 and len(pauses) == 2
    for u, p, ref in zip(ended, pauses, plain, strict=True):
        assert u.reason == "complete"
        assert u.start_s == ref.start_s and u.speech_end_s == ref.speech_end_s  # same speech, decided earlier
        assert u.detected_s == p.detected_s <= u.speech_end_s + 0.2 + 0.033
        assert ref.detected_s - u.detected_s >= 0.5 - 0.033
        np.testing.assert_array_equal(u.audio, p.audio)  # the judge saw exactly the audio that is answered
    for sizes in (_fixed(1, len(x)), _fixed(1280, len(x)), list(np.random.default_rng(5).integers(0, 3000, len(x)))):
        got, _ = _judged(PAUSE_END, x, vad, sizes)
        assert [_key(e) for e in got] == [_key(e) for e in events]  # decided on the same window


def test_end_later_ends_after_another_pause_with_the_audio_judged(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    now, _ = _judged(PAUSE_END, x, vad, _fixed(512, len(x)))
    later, pauses = _judged(PAUSE_END_LATER, x, vad, _fixed(512, len(x)))
    assert len(pauses) == 2  # the 1.5 s gap holds no speech: each sentence ends after a second pause
    for a, b, p in zip([e for e in now if isinstance(e, Utterance)], [e for e in later if isinstance(e, Utterance)],
                       pauses, strict=True):
        assert b.reason == "complete" and 0.2 <= b.detected_s - a.detected_s < 0.2 + 0.032  # whole windows
        np.testing.assert_array_equal(b.audio, a.audio)
        np.testing.assert_array_equal(b.audio, p.audio)


def test_end_after_hold_waits_as_hold_does_then_ends_with_the_audio_judged(two_sentences: np.ndarray,
                                                                          vad: SileroVad) -> None:
    x = two_sentences
    now, _ = _judged(PAUSE_END, x, vad, _fixed(512, len(x)))
    # a wait shorter than the 1.5 s gap: each sentence ends on its own, with the audio judged, after the wait
    after, pauses = _judged(PAUSE_END_AFTER_HOLD, x, vad, _fixed(512, len(x)), hold_silence_ms=1000.0)
    assert len(pauses) == 2
    for a, b, p in zip([e for e in now if isinstance(e, Utterance)], [e for e in after if isinstance(e, Utterance)],
                       pauses, strict=True):
        assert b.reason == "complete" and 1.0 - 0.2 - 0.032 <= b.detected_s - a.detected_s <= 1.0 - 0.2 + 0.032
        np.testing.assert_array_equal(b.audio, p.audio)  # not the audio with the trailing silence added
    # a wait longer than the gap: speech resumes, so the wait is off and the next pause is judged afresh
    joined, pauses = _judged(PAUSE_END_AFTER_HOLD, x, vad, _fixed(512, len(x)), hold_silence_ms=1600.0)
    (u,) = [e for e in joined if isinstance(e, Utterance)]
    first, second = find_utterances(x, vad=vad)
    assert u.start_s == first.start_s and u.speech_end_s >= second.speech_end_s - 0.1 and len(pauses) == 2


def test_continue_changes_nothing_and_hold_waits_longer(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    plain = [_key(e) for e in _run(Endpointer(vad=vad), x, _fixed(512, len(x)))]
    events, pauses = _judged(PAUSE_CONTINUE, x, vad, _fixed(512, len(x)))
    assert [_key(e) for e in events] == plain and len(pauses) == 2
    # Held: the first sentence waits 1.6 s of silence, longer than the 1.5 s gap, so both become one utterance.
    held, pauses = _judged(PAUSE_HOLD, x, vad, _fixed(512, len(x)), hold_silence_ms=1600.0)
    (u,) = [e for e in held if isinstance(e, Utterance)]
    first, second = find_utterances(x, vad=vad)
    assert u.start_s == first.start_s and u.speech_end_s == second.speech_end_s
    assert len(pauses) == 2  # asked again at the pause after the second sentence


def test_pause_judge_errors_are_named(two_sentences: np.ndarray, vad: SileroVad) -> None:
    with pytest.raises(ConfigError, match="on_pause returned 'maybe'"):
        _judged("maybe", two_sentences, vad, _fixed(512, len(two_sentences)))
    with pytest.raises(ConfigError, match="pause_ms=800"):
        EndpointConfig(pause_ms=800.0)


def test_an_early_pause_ends_sooner_and_anything_else_waits_for_the_usual_one(two_sentences: np.ndarray,
                                                                              vad: SileroVad) -> None:
    """Judged while the probability still decays below the early threshold: an end is taken from it, sooner
    than the usual judgement below the onset; hold or continue leave that usual judgement to decide."""
    x = two_sentences
    usual_u = [e for e in _judged(PAUSE_END, x, vad, _fixed(512, len(x)))[0] if isinstance(e, Utterance)]
    ends = [u.speech_end_s for u in usual_u]
    asked: list[tuple[float, str]] = []

    def complete_at_the_end(pause) -> str:  # a judge that knows where each sentence ends (the words do)
        decision = PAUSE_END if any(abs(pause.speech_end_s - e) <= 0.2 for e in ends) else PAUSE_CONTINUE
        asked.append((pause.detected_s, decision))
        return decision

    ep = Endpointer(EndpointConfig(pause_ms=200.0, early_pause_threshold=0.9), vad=vad)
    ep.on_pause = complete_at_the_end
    early_u = [e for e in _run(ep, x, _fixed(512, len(x))) if isinstance(e, Utterance)]
    assert len(early_u) == 2
    for a, b in zip(usual_u, early_u, strict=True):
        assert b.reason == "complete" and b.start_s == a.start_s
        assert b.detected_s < a.detected_s and b.speech_end_s >= a.speech_end_s - 0.2
    # a pause inside a sentence was judged early too, said "continue", and changed nothing
    assert any(d == PAUSE_CONTINUE for _, d in asked)
    # hold or continue, early or not, change nothing the usual judgement would not
    plain = [_key(e) for e in _run(Endpointer(vad=vad), x, _fixed(512, len(x)))]
    events, pauses = _judged(PAUSE_CONTINUE, x, vad, _fixed(512, len(x)), early_pause_threshold=0.9)
    assert [_key(e) for e in events] == plain and len(pauses) > 2
    held = [_key(e) for e in _judged(PAUSE_HOLD, x, vad, _fixed(512, len(x)), hold_silence_ms=1600.0)[0]]
    held_early = [_key(e) for e in _judged(PAUSE_HOLD, x, vad, _fixed(512, len(x)), hold_silence_ms=1600.0,
                                           early_pause_threshold=0.9)[0]]
    assert held_early == held


def test_early_pause_threshold_is_checked() -> None:
    with pytest.raises(ConfigError, match="early_pause_threshold=0.4"):
        EndpointConfig(early_pause_threshold=0.4)
    with pytest.raises(ConfigError, match="early_pause_threshold=1.0"):
        EndpointConfig(early_pause_threshold=1.0)


def _judged_later(decide, x: np.ndarray, vad: SileroVad, delay_chunks: int, chunk: int = 512, **cfg) -> list:
    """Events of ``x`` when each pause's decision (``decide(pause)``) arrives ``delay_chunks`` chunks later, as
    a judge on another thread answers: through a future, while the stream goes on."""
    ep = Endpointer(EndpointConfig(pause_ms=200.0, **cfg), vad=vad)
    due: list[tuple[int, Future, str]] = []
    fed = [0]
    ended = [False]  # after the last chunk (in flush), a pause judged is answered at once: no chunk comes to wait

    def judge(pause) -> Future:
        future: Future = Future()
        if ended[0]:
            future.set_result(decide(pause))
        else:
            due.append((fed[0] + delay_chunks, future, decide(pause)))
        return future

    ep.on_pause = judge
    events = []
    for pos in range(0, len(x), chunk):
        for item in [d for d in due if d[0] <= fed[0]]:
            item[1].set_result(item[2])
            due.remove(item)
        events += ep.process(x[pos:pos + chunk])
        fed[0] += 1
    ended[0] = True
    for _, future, decision in due:
        future.set_result(decision)
    return events + ep.flush()


@pytest.mark.parametrize("delay_chunks", [0, 1, 7, 40])
def test_a_decision_that_comes_later_gives_the_same_events(two_sentences: np.ndarray, vad: SileroVad,
                                                           delay_chunks: int) -> None:
    """The windows that arrive while the judge works are kept and stepped once its decision is in: every event
    is the one an instant judge gives, at the same stream times, only emitted later (40 chunks: 1.3 s, longer
    than the pause, the second pause of end-later and the gap between the sentences)."""
    x = two_sentences
    for decision, cfg in ((PAUSE_END, {}), (PAUSE_END_LATER, {}), (PAUSE_CONTINUE, {}),
                          (PAUSE_HOLD, {"hold_silence_ms": 1600.0}), (PAUSE_END, {"early_pause_threshold": 0.9}),
                          (PAUSE_END_AFTER_HOLD, {"hold_silence_ms": 1000.0}),
                          (PAUSE_END_AFTER_HOLD, {"hold_silence_ms": 1600.0}),
                          (PAUSE_END_AFTER_HOLD, {"hold_silence_ms": 1000.0, "early_pause_threshold": 0.9})):
        now = [_key(e) for e in _judged(decision, x, vad, _fixed(512, len(x)), **cfg)[0]]
        later = [_key(e) for e in _judged_later(lambda p, d=decision: d, x, vad, delay_chunks, **cfg)]
        assert later == now, (decision, cfg)
    # a judge whose answer depends on what it hears (end at the sentence ends, go on inside them), early pauses
    ends = [u.speech_end_s for u in find_utterances(x, vad=vad)]

    def at_the_end(pause) -> str:
        return PAUSE_END if any(abs(pause.speech_end_s - e) <= 0.2 for e in ends) else PAUSE_CONTINUE

    ep = Endpointer(EndpointConfig(pause_ms=200.0, early_pause_threshold=0.9), vad=vad)
    ep.on_pause = at_the_end
    now = [_key(e) for e in _run(ep, x, _fixed(512, len(x)))]
    assert [_key(e) for e in _judged_later(at_the_end, x, vad, delay_chunks, early_pause_threshold=0.9)] == now


def test_the_stream_waits_for_a_judge_only_when_the_judged_audio_would_leave_the_buffer(
        two_sentences: np.ndarray, vad: SileroVad) -> None:
    """A judge that does not answer: the stream goes on while the buffer still holds the utterance being judged,
    then waits; once the decision comes, nothing is lost."""
    x = two_sentences
    cfg = {"max_utterance_ms": 2500.0, "max_lookback_ms": 500.0}  # a buffer of about 4 s
    now = [_key(e) for e in _judged(PAUSE_END, x, vad, _fixed(512, len(x)), **cfg)[0]]
    ep = Endpointer(EndpointConfig(pause_ms=200.0, **cfg), vad=vad)
    answer = _Answer()
    ep.on_pause = lambda pause: answer  # the second pause gets the same (by then answered) future: END again
    events: list = []
    fed = [0]

    def feed() -> None:
        for pos in range(0, len(x), 512):
            events.extend(ep.process(x[pos:pos + 512]))
            fed[0] = pos + 512

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    assert answer.waited.wait(60.0)  # the stream waits for the judge...
    assert ep.judging and feeder.is_alive()
    # ... only once the judged utterance (from its audio start) would no longer fit the buffer
    went_on_s = (fed[0] - ep._judging.audio_start) / SR
    assert ep._capacity / SR - 512 * 8 / SR <= went_on_s <= ep._capacity / SR
    answer.set_result(PAUSE_END)
    feeder.join(60.0)
    assert not feeder.is_alive()
    events += ep.flush()
    assert [_key(e) for e in events] == now


class _Answer(Future):
    """A judge's future that tells when the stream starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.waited = threading.Event()

    def result(self, timeout: float | None = None):
        if not self.done():
            self.waited.set()
        return super().result(timeout)


def test_listening_again_drops_a_decision_still_to_come(two_sentences: np.ndarray, vad: SileroVad) -> None:
    x = two_sentences
    ep = Endpointer(EndpointConfig(pause_ms=200.0), vad=vad, listening=False)
    ep.listen(0.0, timeout_s=math.inf)
    pending: list[Future] = []
    ep.on_pause = lambda pause: pending.append(Future()) or pending[-1]
    first, second = find_utterances(x, vad=vad)
    first_gap_s = first.speech_end_s + 0.5  # inside the 1.5 s between the sentences, after the first one paused
    n = int(first_gap_s * SR)
    events = ep.process(x[:n])
    assert ep.judging and len(pending) == 1 and not any(isinstance(e, Utterance) for e in events)
    ep.listen(None, timeout_s=math.inf)  # e.g. a wake word: the utterance judged is abandoned
    assert not ep.judging
    pending[0].set_result(PAUSE_END)  # an answer that comes after all changes nothing
    ep.on_pause = lambda pause: PAUSE_END
    events = ep.process(x[n:]) + ep.flush()
    (u,) = [e for e in events if isinstance(e, Utterance)]
    assert abs(u.start_s - second.start_s) <= 0.04  # the second sentence only (windows counted from the listen)


def test_a_judge_that_fails_later_raises_once_and_the_stream_goes_on(two_sentences: np.ndarray,
                                                                      vad: SileroVad) -> None:
    x = two_sentences
    plain = [e for e in _run(Endpointer(vad=vad), x, _fixed(512, len(x))) if isinstance(e, Utterance)]
    ep = Endpointer(EndpointConfig(pause_ms=200.0), vad=vad)
    failed: Future = Future()
    failed.set_exception(RuntimeError("the recogniser failed"))
    raised_before = [False]
    ep.on_pause = lambda pause: PAUSE_CONTINUE if raised_before[0] else failed
    events, raised = [], 0
    for pos in range(0, len(x), 512):
        try:
            events += ep.process(x[pos:pos + 512])
        except RuntimeError as exc:
            assert "the recogniser failed" in str(exc)
            raised += 1
            raised_before[0] = True
    events += ep.flush()
    assert raised == 1 and not ep.judging
    # no decision at that pause: both sentences end by the usual trailing silence, as without a judge
    got = [e for e in events if isinstance(e, Utterance)]
    assert [(u.reason, u.start_s) for u in got] == [(u.reason, u.start_s) for u in plain]
