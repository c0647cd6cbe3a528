"""The whole assistant on a synthesised cabin scene: real wake engine, VAD, Whisper, intents and agents.

The scene is spoken by espeak-ng (a Debian package the Makefile installs) in generated car-cabin noise,
so these tests need no recordings; the agents read the demo EV's simulated drive log.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_assistant.audio import speech_synth
from edge_assistant.pipeline import Assistant, ListenTimedOut, Replied, WakeHeard
from edge_assistant.pipeline.scene import SceneTurn, build_scene

from .conftest import plain_assistant as _assistant

pytestmark = pytest.mark.skipif(not speech_synth.available(),
                                reason="espeak-ng is not installed (make test installs the Debian package)")


def _run(assistant: Assistant, pcm: np.ndarray, chunk: int) -> list:
    events = []
    for i in range(0, pcm.size, chunk):
        events += assistant.feed(pcm[i : i + chunk])
    return events + assistant.flush()


@pytest.fixture(scope="module")
def two_turns():
    return build_scene([SceneTurn("Why is the tyre light on?"), SceneTurn("How much range do I have left?")],
                       snr_db=15.0, seed=3)


def test_wake_then_commands_are_answered(two_turns, router, recognizer) -> None:
    events = _run(_assistant(router, recognizer), two_turns.pcm, 1280)
    kinds = [e.kind for e in events]
    assert kinds == ["wake", "reply", "wake", "reply"], [e.to_dict() for e in events]
    for seg, wake, reply in zip(two_turns.segments, events[0::2], events[1::2], strict=True):
        assert isinstance(wake, WakeHeard) and isinstance(reply, Replied)
        assert seg.wake_start_s < wake.time_s < seg.command_start_s + 0.3
        # the captured speech covers the command (pre-roll may reach back a little)
        assert reply.speech_start_s <= seg.command_start_s + 0.2
        assert reply.speech_end_s >= seg.command_end_s - 0.2
        assert reply.endpoint_delay_s == pytest.approx(0.7, abs=0.1)
    tyre, rng = events[1], events[3]
    assert tyre.intent.name == "vehicle.tyres", tyre.text
    assert tyre.answer.agent == "car_genius"
    assert "rear left" in tyre.answer.text.lower(), tyre.answer.text  # the demo car's leaking tyre
    assert rng.intent.name == "vehicle.range", rng.text
    assert rng.answer.agent == "travel_companion"
    assert any(v.age_s is not None for v in rng.answer.values)


def test_events_do_not_depend_on_chunk_size(two_turns, router, recognizer) -> None:
    a = _run(_assistant(router, recognizer), two_turns.pcm, 1280)
    b = _run(_assistant(router, recognizer), two_turns.pcm, 4001)

    def key(e):
        d = e.to_dict()
        return (d["event"], d.get("time_s"), d.get("speech_start_s"), d.get("heard"))

    assert [key(e) for e in a] == [key(e) for e in b]


def test_speech_without_wake_word_is_ignored(router, recognizer) -> None:
    scene = build_scene([SceneTurn("How much range do I have left?", wake_word="How much")], snr_db=15.0, seed=4)
    assert _run(_assistant(router, recognizer), scene.pcm, 1280) == []


def test_wake_word_alone_times_out(router, recognizer) -> None:
    scene = build_scene([SceneTurn("", silence_after_s=4.0)], snr_db=15.0, seed=5)
    events = _run(_assistant(router, recognizer, listen_timeout_s=2.0), scene.pcm, 1280)
    assert [e.kind for e in events] == ["wake", "listen_timeout"]
    assert isinstance(events[1], ListenTimedOut)
    assert events[1].time_s == pytest.approx(events[0].time_s + 2.0, abs=0.1)


def test_non_int16_input_is_refused(router, recognizer) -> None:
    from edge_assistant.core.errors import ConfigError

    with pytest.raises(ConfigError, match="int16"):
        _assistant(router, recognizer).feed(np.zeros(160, np.float32))


def test_listen_command_reads_raw_pcm_from_stdin(tmp_path, monkeypatch, capsys) -> None:
    """`edge-assistant listen` on raw S16_LE from stdin (as arecord pipes it), answering from a replayed log."""
    import io
    import json

    from edge_assistant.cli import main
    from edge_assistant.vehicle import DEMO_DBC, DEMO_MAPPING, write_demo_log

    log_path = tmp_path / "drive.log"
    write_demo_log(log_path, duration_s=240.0, seed=2)
    scene = build_scene([SceneTurn("Which tyre is low?")], snr_db=20.0, seed=1)
    raw = scene.pcm.astype("<i2").tobytes()

    class _Pipe:  # reads return short, odd byte counts, as a pipe may
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def read(self, n: int) -> bytes:
            return self._data.read(min(n, 997))

    class _Stdin:
        def __init__(self, data: bytes) -> None:
            self.buffer = _Pipe(data)

    monkeypatch.setattr("sys.stdin", _Stdin(raw))
    rc = main(["listen", "--json", "--replay", str(log_path), "--dbc", str(DEMO_DBC), "--mapping", str(DEMO_MAPPING)])
    assert rc == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["wake", "reply"]
    assert events[1]["intent"] == "vehicle.tyres"
    assert events[1]["answer"]["agent"] == "car_genius"
