"""The health verdict and the report file that ``edge-assistant health`` reads."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge_assistant.app.health import (
    AUDIO_STALL_S,
    CAN_STALE_S,
    REPORT_STALE_S,
    HealthReport,
    judge,
    read_health,
    runtime_dir,
    write_health,
)
from edge_assistant.cli import main
from edge_assistant.core.errors import DataFormatError

FLOWING = {"state": "running", "last_chunk_age_s": 0.05, "overruns": 0}
CAN_OK = {"bus": "virtual:can0", "connected": True, "last_frame_age_s": 0.01, "gnss_enabled": False}


def test_flowing_audio_loaded_models_and_a_live_bus_are_ok() -> None:
    assert judge(FLOWING, True, CAN_OK) == ("ok", ())


@pytest.mark.parametrize("audio", [
    {"state": "reconnecting", "last_chunk_age_s": 0.1, "last_error": "no such device"},
    {"state": "running", "last_chunk_age_s": AUDIO_STALL_S + 0.5},
    {"state": "running", "last_chunk_age_s": None},
])
def test_audio_that_does_not_flow_is_failing(audio: dict) -> None:
    status, problems = judge(audio, True, CAN_OK)
    assert status == "failing" and any("audio not flowing" in p for p in problems)


def test_models_not_loaded_is_failing() -> None:
    assert judge(FLOWING, False, CAN_OK)[0] == "failing"


def test_silent_bus_missing_fix_and_overruns_degrade_but_do_not_fail() -> None:
    silent = dict(CAN_OK, last_frame_age_s=CAN_STALE_S + 1, gnss_enabled=True, gnss_fix_age_s=None)
    status, problems = judge(FLOWING, True, silent, new_overruns=3)
    assert status == "degraded"
    assert any("CAN bus silent" in p for p in problems) and any("no GNSS fix" in p for p in problems)
    assert any("3 capture overrun" in p for p in problems)
    down = dict(CAN_OK, connected=False, last_error="No such device")
    assert any("not connected (No such device)" in p for p in judge(FLOWING, True, down)[1])


def test_failed_pause_judgements_degrade_and_are_counted_since_the_last_report() -> None:
    status, problems = judge(FLOWING, True, CAN_OK, new_judge_errors=2)
    assert status == "degraded" and any("2 pause judgement(s) failed" in p for p in problems)
    assert judge(FLOWING, True, CAN_OK, new_judge_errors=0) == ("ok", ())


def _report(status: str = "ok", at: float | None = None) -> HealthReport:
    return HealthReport(status, (), time.time() if at is None else at, 12.0, dict(FLOWING), {"loaded": True})


def test_report_round_trip_and_cli_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "health.json"
    write_health(path, _report())
    assert read_health(path)["status"] == "ok"
    assert main(["health", "--file", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["audio"]["state"] == "running"
    write_health(path, _report("failing"))
    assert main(["health", "--file", str(path)]) == 1


def test_an_old_report_means_a_dead_or_hung_assistant(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_health(path, _report(at=time.time() - REPORT_STALE_S - 5))
    got = read_health(path)
    assert got["status"] == "failing" and "not running or hangs" in got["problems"][0]


@pytest.mark.parametrize("content", [None, b"{not json", b"[1, 2]", b'{"schema": 99, "written_at_s": 1}',
                                     b"\xff\xfe"])
def test_missing_or_foreign_report_names_the_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "health.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataFormatError, match="health.json"):
        read_health(path)
    assert main(["health", "--file", str(path)]) == 1


def test_runtime_dir_prefers_systemd_then_xdg_then_state(tmp_path: Path) -> None:
    assert runtime_dir(tmp_path, {"RUNTIME_DIRECTORY": "/run/edge-assistant:/run/x"}) == Path("/run/edge-assistant")
    assert runtime_dir(tmp_path, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/edge-assistant")
    assert runtime_dir(tmp_path, {"XDG_RUNTIME_DIR": "relative"}) == tmp_path
