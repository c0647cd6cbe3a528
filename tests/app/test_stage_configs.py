"""Every device setting reaches the stage that uses it (``app/stage_configs.py``), and only there."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

from edge_assistant.app import stage_configs as sc
from edge_assistant.core.config import (
    EcuSettings,
    EndpointSettings,
    UplinkSettings,
    WakeSettings,
    default_config,
    load_config,
)

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware" / "config"


def test_endpoint_settings_all_reach_the_endpointer() -> None:
    e = EndpointSettings(onset_threshold=0.6, offset_threshold=0.3, min_speech_ms=200.0, trailing_silence_ms=900.0,
                         min_utterance_ms=250.0, pre_roll_ms=400.0, post_roll_ms=150.0, listen_timeout_ms=5000.0,
                         highpass_hz=0.0)
    cfg = replace(default_config(), endpoint=e, asr=replace(default_config().asr, max_command_s=12.0))
    got = sc.endpoint_config(cfg)
    for f in fields(e):
        if f.name != "highpass_hz":
            assert getattr(got, f.name) == getattr(e, f.name), f.name
    assert got.highpass_hz is None  # 0 in the file turns the filter off
    assert got.max_utterance_ms == 12000.0


def test_wake_words_and_noise_suppression_reach_the_engine() -> None:
    cfg = replace(default_config(), wake=(WakeSettings("alexa", 0.6, 2, 1.5, "whisper"), WakeSettings("hey_jarvis")))
    cfg = replace(cfg, noise_suppression=replace(cfg.noise_suppression, enabled=True))
    got = sc.wake_engine_config(cfg)
    assert [(m.model, m.threshold, m.patience_frames, m.refractory_s, m.verifier) for m in got.models] == [
        ("alexa", 0.6, 2, 1.5, "whisper"), ("hey_jarvis", None, None, 2.0, None)]
    assert got.noise_suppression is True
    assert callable(got.recognizer)  # the verifier's own recogniser, built only when a head asks for it


def test_vehicle_figures_reach_the_travel_companion_and_ecus_the_clients() -> None:
    cfg = load_config(FIRMWARE / "kona-ev.toml")
    travel = sc.travel_config(cfg)
    assert travel.usable_capacity_kwh == cfg.vehicle.battery_capacity_kwh
    assert travel.rated_consumption_kwh_per_100km == cfg.vehicle.consumption_wh_per_km / 10
    ecu = EcuSettings("BMS", 0x7E4, 0x7EC)
    uds = sc.uds_client_config(cfg, ecu)
    assert (uds.request_id, uds.response_id, uds.request_timeout_s) == (0x7E4, 0x7EC, cfg.diagnostics.request_timeout_s)
    obd = sc.obd_client_config(cfg)
    assert obd.ecus == tuple((e.request_id, e.response_id) for e in cfg.diagnostics.ecus)
    assert sc.bus_config(cfg.vehicle.bus).interface == cfg.vehicle.bus.split(":")[0]


def test_gnss_only_when_enabled() -> None:
    cfg = default_config()
    assert sc.gnss_config(cfg) is None
    on = replace(cfg, gnss=replace(cfg.gnss, enabled=True, port="/dev/ttyACM0", baudrate_bps=38400))
    got = sc.gnss_config(on)
    assert (got.port, got.baudrate_bps) == ("/dev/ttyACM0", 38400)


def test_uplink_settings_reach_the_client(tmp_path: Path) -> None:
    ca, crt, key = (tmp_path / n for n in ("ca.pem", "dev.crt", "dev.key"))
    u = UplinkSettings(enabled=True, host="mqtt.example.com", port=8884, tls_ca_path=ca, tls_cert_path=crt,
                       tls_key_path=key, topic_prefix="fleet/eu", qos=2, keepalive_s=30, max_queue_bytes=1 << 20,
                       max_queue_messages=500)
    cfg = replace(default_config(), uplink=u)
    got = sc.uplink_config(cfg)
    assert (got.host, got.port, got.ca_path, got.cert_path, got.key_path) == ("mqtt.example.com", 8884, ca, crt, key)
    assert (got.topic_prefix, got.vehicle_id, got.qos, got.keepalive_s) == ("fleet/eu", "demo-ev", 2, 30)
    assert (got.max_bytes, got.max_messages, got.queue_path) == (1 << 20, 500, cfg.paths.state_dir / "uplink.db")
    assert got.use_tls
    system_ca = sc.uplink_config(replace(cfg, uplink=replace(u, tls_ca_path=None, tls_cert_path=None,
                                                             tls_key_path=None)))
    assert system_ca.use_tls and system_ca.ca_path is None  # TLS against the system's CA store
    plain = sc.uplink_config(replace(cfg, uplink=replace(u, tls=False, tls_ca_path=None, tls_cert_path=None,
                                                         tls_key_path=None, port=1883)))
    assert not plain.use_tls
