"""The running assistant reports to the fleet: trouble-code changes, health and the trip over MQTT to a real Mosquitto.

The whole device runs (``edge_assistant.app.runtime.App``): the demo EV drives on a virtual bus, its BMS
reports P0AA6 over UDS, and the microphone is an ALSA ``file`` PCM on a ``null`` slave reading silence.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import skip_unless_ci, within

from edge_assistant.app.runtime import App
from edge_assistant.app.stage_configs import uplink_config
from edge_assistant.core.config import UplinkSettings, default_config, default_paths
from edge_assistant.core.paths import model_cache_dir
from edge_assistant.uplink.client import Uplink

from .conftest import wait_until

_channels = itertools.count()


@pytest.fixture
def silent_mic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    try:
        import alsaaudio  # noqa: F401
    except ImportError:
        skip_unless_ci("pyalsaaudio is not installed (make setup installs it)")
    (tmp_path / "silence.raw").write_bytes(bytes(32000))
    conf = tmp_path / "asound.conf"
    conf.write_text(f'pcm.ea_silent {{\n  type file\n  slave.pcm {{ type null }}\n  file "/dev/null"\n'
                    f'  infile "{tmp_path / "silence.raw"}"\n  format "raw"\n}}\n')
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(conf))
    return "ea_silent"


def test_running_assistant_publishes_trouble_codes_and_health(tmp_path: Path, silent_mic: str, make_broker,
                                                              make_collector) -> None:
    broker = make_broker()
    collector = make_collector(broker.port, "fleet/+/#")
    base = default_config()
    bus = f"virtual:app-uplink-{next(_channels)}"
    config = replace(
        base, audio=replace(base.audio, device=silent_mic, sample_rate_hz=16000),
        speech=replace(base.speech, enabled=False),
        vehicle=replace(base.vehicle, id="car-0042", bus=bus),
        diagnostics=replace(base.diagnostics, bus=bus),
        uplink=UplinkSettings(enabled=True, host="127.0.0.1", port=broker.port, tls=False, topic_prefix="fleet",
                              queue_path=tmp_path / "state" / "uplink.db"),
        paths=default_paths({}, state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                            model_cache_dir=model_cache_dir()),
    )
    events: list[dict] = []
    app = App(config, emit=events.append, environ={"RUNTIME_DIRECTORY": str(tmp_path / "run")})
    runner = threading.Thread(target=lambda: app.run(), name="app")
    try:
        app.load()
        runner.start()

        def kinds() -> set[str]:
            return {m["kind"] for m in collector.messages}

        wait_until(lambda: {"dtc", "health"} <= kinds(), 60.0, "a dtc and a health message at the collector")
        # let the car drive until the trip computer has integrated some distance: a trip to report at the end
        # (a fixed 3 s of driving gave no distance once at load 12, when its samples came too far apart)
        wait_until(lambda: app.trip.span_s is not None and app.trip.stats().distance_km > 0, 120.0,
                   "a trip with some distance")
    finally:
        app.stop()
        runner.join(30.0)
        app.close()
    dtc = next(m for m in collector.messages if m["kind"] == "dtc")
    assert dtc["topic"] == "fleet/car-0042/dtc" and dtc["vehicle_id"] == "car-0042" and dtc["schema"] == 1
    assert dtc["data"]["code"] == "P0AA6" and dtc["data"]["change"] == "appeared" and dtc["data"]["mil"] is True
    health = next(m for m in collector.messages if m["kind"] == "health")
    assert health["topic"] == "fleet/car-0042/health" and health["data"]["uptime_s"] >= 0
    assert "mem_available_mb" in health["data"] and health["data"]["uplink_dropped"] == 0
    assert not runner.is_alive() and events[-1]["event"] == "stopped"
    # switched off: the trip so far is the last message. close() waits only a moment for the broker (a car
    # losing ignition power cannot wait); what did not go out then is on disk and goes on the next connection,
    # as at the next ignition. On a loaded machine either may happen: both must deliver it, nothing is lost.
    def trip_arrived() -> bool:
        return "trip" in {m["kind"] for m in collector.messages}

    if not within(trip_arrived, 10.0):
        next_ignition = Uplink(uplink_config(config))
        next_ignition.start()
        try:
            wait_until(trip_arrived, 60.0, "the trip summary, sent from the disk queue on the next connection")
        finally:
            next_ignition.stop(drain_timeout_s=1.0)
    trip = next(m for m in collector.messages if m["kind"] == "trip")
    assert trip["topic"] == "fleet/car-0042/trip" and trip["data"]["trip_id"].startswith("car-0042-")
    assert trip["data"]["distance_km"] > 0 and trip["data"]["end_ts_s"] >= trip["data"]["start_ts_s"]
