"""The seeded NMEA generator: deterministic, plausible, and what it writes parses back to the truth."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest

from edge_assistant.gnss.nmea import haversine_m
from edge_assistant.gnss.simulate import RouteScenario, simulate_track, write_nmea
from edge_assistant.gnss.source import NmeaFileSource


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("sim") / "drive.nmea"
    sc = RouteScenario()
    track = write_nmea(path, sc)
    return sc, track, path


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, drive) -> None:
    sc, _, path = drive
    again = tmp_path / "again.nmea"
    write_nmea(again, sc)
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(path.read_bytes()).digest()
    other = tmp_path / "other.nmea"
    write_nmea(other, RouteScenario(seed=8, duration_s=60))
    assert other.read_bytes()[:2000] != path.read_bytes()[:2000]
    assert path.read_bytes().count(b"\r\n") == len(path.read_bytes().splitlines())


def test_plausible_drive(drive) -> None:
    sc, track, _ = drive
    km = track[-1].distance_m / 1000.0
    assert 30.0 < km < 90.0  # some tens of km
    speeds = [p.speed_mps * 3.6 for p in track]
    assert max(speeds) <= 131.0 and speeds[0] == 0.0 and speeds[-1] < 2.0
    accel = [(b.speed_mps - a.speed_mps) for a, b in zip(track, track[1:], strict=False)]
    assert max(accel) <= sc.max_accel_mps2 + 1e-9 and min(accel) >= -sc.max_decel_mps2 - 1e-9
    assert sum(1 for s in speeds if 0 < s < 60) > 200 and sum(1 for s in speeds if s > 100) > 300
    climb = [abs(b.altitude_m - a.altitude_m) for a, b in zip(track, track[1:], strict=False)]
    assert max(climb) < 5.0  # no cliffs: grade within +-5 %


def test_parsed_fixes_match_the_truth(drive) -> None:
    sc, track, path = drive
    src = NmeaFileSource(path)
    fixes = list(src.fixes())
    assert src.stats.errors == 0 and len(fixes) == len(track)
    errs = []
    for (fix, ts), truth in zip(fixes, track, strict=True):
        assert ts == pytest.approx(sc.start_epoch_s + truth.t_s)
        if truth.in_tunnel:
            assert not fix.valid and fix.lat_deg is None
            continue
        assert fix.valid
        errs.append(haversine_m(fix.lat_deg, fix.lon_deg, truth.lat_deg, truth.lon_deg))
        assert fix.speed_mps == pytest.approx(truth.speed_mps, abs=0.001)
        if truth.speed_mps > 0.5:
            assert abs((fix.course_deg - truth.course_deg + 180) % 360 - 180) < 0.01
    rms = math.sqrt(sum(e * e for e in errs) / len(errs))
    assert rms == pytest.approx(sc.position_noise_m * math.sqrt(2), rel=0.2)
    assert sum(1 for f, _ in fixes if not f.valid) == sc.tunnel_duration_s


def test_follows_a_given_speed_trace() -> None:
    trace = [(0.0, 0.0), (10.0, 36.0), (70.0, 36.0), (80.0, 0.0)]
    track = simulate_track(RouteScenario(duration_s=90, tunnel_start_s=None), trace)
    assert track[40].speed_mps == pytest.approx(10.0)
    # 10 s ramp up + 60 s at 10 m/s + 10 s ramp down = 700 m
    assert track[-1].distance_m == pytest.approx(700.0, abs=2.0)
