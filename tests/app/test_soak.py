"""``edge-assistant soak`` in small: two minutes of audio at full speed with every fault once.

Real peers throughout (see edge_assistant/bench/soak.py): ALSA's file plugin on a FIFO as the microphone, the
demo EV and a load generator on python-can's virtual bus, a GNSS receiver on a pty. The figures (memory slope,
speed) belong to the benchmark; this test checks that every fault is counted as injected and recovered from,
and that every command is still answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import skip_unless_ci

from edge_assistant.bench.soak import FAULTS, SAMPLES_LOG, SoakConfig, run_soak
from edge_assistant.cli import main


@pytest.fixture(autouse=True)
def _alsa() -> None:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")


def test_every_fault_is_counted_and_recovered_and_every_command_answered(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(tmp_path / "asound.conf"))  # run_soak writes it; restored after
    cfg = SoakConfig(seconds=100.0, fault_every_s=100.0, mic_late_s=1.0, sample_every_s=2.0, seed=3)
    r = run_soak(cfg, tmp_path / "soak")
    assert r["audio_s"] == pytest.approx(100.0, abs=0.1)
    assert r["commands_spoken"] >= 10
    assert r["replies"] == r["commands_spoken"] and r["responder_errors"] == 0 and r["judge_errors"] == 0

    f = r["faults"]
    assert set(f["by_kind"]) == set(FAULTS)
    for kind, k in f["by_kind"].items():
        assert k["scheduled"] == k["injected"] == k["recovered"] == 1, (kind, f["timeline"])
    c = f["counted"]
    assert c["can_error_frames"]["counted"] == c["can_error_frames"]["injected"] == \
        cfg.can_error_burst + cfg.bus_off_burst
    assert c["can_bus_off"]["counted"] == c["can_bus_off"]["injected"] == cfg.bus_off_burst
    assert c["gnss_garbage_lines"]["counted"] == c["gnss_garbage_lines"]["injected"] == cfg.gnss_garbage_lines
    assert c["gnss_disconnects"] == {"injected": 1, "counted": 1, "reconnected": 1}
    assert c["capture_reconnects"] == 1  # the microphone absent at start, then there
    assert c["capture_overruns"] == 0  # back-pressured: nothing is dropped by design
    # the silent microphone is noticed (failing), and nothing else ever fails
    assert f["failing_reports"] >= 1 and f["failing_outside_mic_silence"] == []
    assert r["health_end"]["status"] != "failing"
    # the record written as the run went: one line per memory sample, counters rising to the run's own
    rows = [json.loads(line) for line in (tmp_path / "soak" / SAMPLES_LOG).read_text().splitlines()]
    assert [(row["wall_s"], row["rss_mb"], row["fds"]) for row in rows] == [tuple(s) for s in r["memory"]["samples"]]
    assert all(row["python_blocks"] > 0 for row in rows)  # transient Python objects (a queue backlog) show here
    assert all(a["audio_s"] <= b["audio_s"] and a["replies"] <= b["replies"] for a, b in zip(rows, rows[1:], strict=False))
    assert rows[-1]["replies"] <= r["replies"] and rows[-1]["audio_s"] <= r["audio_s"]
    # the CAN backlog can be read off the record: frames read and the extra load's frames sent, both rising
    assert all(a["can_frames_read"] <= b["can_frames_read"] and a["can_load_sent"] <= b["can_load_sent"]
               for a, b in zip(rows, rows[1:], strict=False))
    assert rows[-1]["can_frames_read"] <= r["can"]["frames_decoded"] and rows[-1]["can_load_sent"] > 0


def test_cli_refuses_a_bad_speed(capsys: pytest.CaptureFixture) -> None:
    assert main(["soak", "--speed", "fast"]) != 0
    assert "--speed 'fast'" in capsys.readouterr().err


def test_schedule_is_seeded_and_keeps_the_microphone_out_of_commands() -> None:
    from edge_assistant.bench.soak import fault_schedule
    from edge_assistant.pipeline.scene import SceneTurn, build_scene

    scene = build_scene([SceneTurn("How much range do I have left?"), SceneTurn("Why is the tyre light on?")],
                        snr_db=None, seed=1)
    cfg = SoakConfig(seconds=1800.0, fault_every_s=600.0, seed=5)
    a, b = fault_schedule(cfg, scene), fault_schedule(cfg, scene)
    assert [(x.kind, x.at_audio_s) for x in a] == [(x.kind, x.at_audio_s) for x in b]
    assert sorted(x.kind for x in a) == sorted(FAULTS * 3)
    for x in a:
        if x.kind == "mic_silence":
            t = x.at_audio_s % scene.duration_s
            assert not any(s.wake_start_s - 0.5 <= t <= s.command_end_s + 1.0 for s in scene.segments), t
    json.dumps([x.__dict__ for x in a])
