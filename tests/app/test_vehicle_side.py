"""The vehicle side's health with a GNSS receiver: a real pty peer, a real virtual CAN bus."""

from __future__ import annotations

import os
import tty
from dataclasses import replace
from pathlib import Path

from edge_assistant.app.vehicle_side import VehicleSide
from edge_assistant.core.config import default_config, default_paths
from edge_assistant.gnss.simulate import RouteScenario, write_nmea
from edge_assistant.vehicle.bus import wait_until


def test_health_reports_the_gnss_fix_age(tmp_path: Path) -> None:
    nmea = tmp_path / "drive.nmea"
    write_nmea(nmea, RouteScenario(duration_s=30.0, seed=2, tunnel_start_s=None))
    master, slave = os.openpty()
    tty.setraw(slave)
    link = tmp_path / "gnss0"
    link.symlink_to(os.ttyname(slave))
    base = default_config()
    bus = f"virtual:test-vehicle-side-{os.getpid()}"
    config = replace(base, vehicle=replace(base.vehicle, bus=bus), diagnostics=replace(base.diagnostics, bus=bus),
                     demo_car=replace(base.demo_car, enabled=False),
                     gnss=replace(base.gnss, enabled=True, port=str(link)),
                     paths=default_paths({}, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache"))
    side = VehicleSide(config).start()
    try:
        h = side.health()  # no fix yet: an age of None, not an exception
        assert h.gnss_enabled and h.gnss_fix_age_s is None
        assert wait_until(lambda: side.gnss.stats.connected, 5.0)
        os.write(master, nmea.read_bytes()[:3000])
        assert wait_until(lambda: side.gnss.fix_count >= 2, 5.0)
        h = side.health()
        assert h.gnss_connected and h.gnss_fix_age_s is not None and 0.0 <= h.gnss_fix_age_s < 5.0
        assert h.to_dict()["gnss_fix_age_s"] == round(h.gnss_fix_age_s, 3)
    finally:
        side.stop()
        os.close(master)
        os.close(slave)
