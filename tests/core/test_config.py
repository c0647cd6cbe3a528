"""The device configuration (edge_assistant/core/config.py): the example files, every error naming file and
key, path defaults from the environment, relative paths, and property tests that any document or mutation of
the examples either loads or raises ConfigError.

A few hundred examples per property in CI; ``EDGE_ASSISTANT_FUZZ_EXAMPLES=10000`` for the nightly run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_assistant.cli import main
from edge_assistant.core.config import (
    SECTIONS,
    AudioSettings,
    DeviceConfig,
    EcuSettings,
    PathSettings,
    SettingError,
    VehicleSettings,
    WakeSettings,
    bus_spec_problem,
    default_config,
    default_paths,
    load_config,
    to_toml,
)
from edge_assistant.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "firmware" / "config"
DEMO = CONFIG_DIR / "demo.toml"
KONA = CONFIG_DIR / "kona-ev.toml"
VM = CONFIG_DIR / "vm.toml"
EXAMPLES = int(os.environ.get("EDGE_ASSISTANT_FUZZ_EXAMPLES", "300"))
ENV = {"HOME": "/home/driver"}  # a fixed environment: no test depends on the machine's variables


def _write(tmp_path: Path, text: str, name: str = "kona-ev.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ=ENV if environ is None else environ)
    return str(exc.value)


def _same(a: DeviceConfig, b: DeviceConfig) -> bool:
    return dataclasses.replace(a, source=None) == dataclasses.replace(b, source=None)


# ------------------------------------------------------------------------------------ the examples
def test_demo_example_is_the_built_in_default() -> None:
    cfg = load_config(DEMO, environ=ENV)
    assert cfg.source == DEMO
    assert _same(cfg, default_config(ENV))
    assert cfg.vehicle.bus == "virtual:can0" and cfg.vehicle.dbc[0].name == "ea_demo_ev.dbc"
    assert cfg.vehicle.dbc[0].is_file() and cfg.vehicle.vss_mapping.is_file()
    assert [(e.name, e.request_id, e.response_id) for e in cfg.diagnostics.ecus] == [
        ("VCU", 0x7E0, 0x7E8), ("BMS", 0x7E4, 0x7EC)]


def test_kona_example_describes_the_real_car() -> None:
    cfg = load_config(KONA, environ=ENV)
    v = cfg.vehicle
    assert v.bus == "socketcan:can0" and v.battery_capacity_kwh == 64.0 and v.dtc_table == "kona_ev"
    assert v.dbc == (CONFIG_DIR / "pcan.dbc",) and v.vss_mapping == CONFIG_DIR / "kona_ev_vss.json"
    d = cfg.diagnostics
    assert d.enabled and d.protocol == "uds" and d.bus == "socketcan:can0"
    assert {e.name: (e.request_id, e.response_id) for e in d.ecus}["BMS"] == (0x7E4, 0x7EC)
    assert all(e.response_id == e.request_id + 8 for e in d.ecus)
    assert [w.model for w in cfg.wake] == ["alexa_car", "hey_jarvis"] and cfg.wake[1].threshold == 0.6
    assert cfg.uplink.vehicle_id == v.id and cfg.uplink.tls_key_path == CONFIG_DIR / "certs" / "kona-ev-1.key"
    assert cfg.gnss.enabled and cfg.gnss.port.startswith("/dev/serial/by-id/")


def test_vm_example_is_the_demo_listening_on_vcan0() -> None:
    """The QEMU boards' configuration: the demo's, but the car read from the kernel's vcan0, not simulated."""
    cfg, demo = load_config(VM, environ=ENV), load_config(DEMO, environ=ENV)
    assert cfg.vehicle.bus == "socketcan:vcan0" and not cfg.demo_car_enabled and not cfg.diagnostics.enabled
    assert dataclasses.replace(cfg.vehicle, bus=demo.vehicle.bus) == demo.vehicle
    for section in ("audio", "asr", "endpoint", "speech", "wake"):
        assert getattr(cfg, section) == getattr(demo, section), section
    for board in ("qemu-x86_64", "qemu-arm64"):
        assert (REPO / "firmware" / "image" / "boards" / board / "device.toml").resolve() == VM


@pytest.mark.parametrize("path", [DEMO, KONA, VM], ids=lambda p: p.name)
def test_every_key_in_the_examples_is_commented(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            assert lines[i - 1].startswith("#"), f"{path.name}:{i + 1}: {line!r} has no comment above it"


def test_demo_example_mentions_every_key() -> None:
    text = DEMO.read_text(encoding="utf-8")
    classes = {s: type(getattr(default_config(ENV), s)) for s in SECTIONS if s != "wake"}
    classes |= {"wake": WakeSettings, "diagnostics.ecus": EcuSettings}
    for section, cls in classes.items():
        for f in dataclasses.fields(cls):
            documented = re.search(rf"^(# )?{f.name} =|^\[\[{section}\.{f.name}\]\]", text, re.M)
            assert documented, f"demo.toml does not document {section}.{f.name}"


@pytest.mark.parametrize("path", [DEMO, KONA, VM], ids=lambda p: p.name)
def test_resolved_toml_loads_back_to_the_same_config(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path, environ=ENV)
    again = load_config(_write(tmp_path, to_toml(cfg), "resolved.toml"), environ=ENV)
    assert _same(cfg, again)
    json.dumps(cfg.to_dict())  # JSON-able


# -------------------------------------------------------------------------------------------- errors
BAD = [
    # (file body, dotted key the message must name, words it must contain)
    ('[[wake]]\nmodel = "alexa"\n[[wake]]\nmodel = "hey_jarvis"\nthreshold = 1.5', "wake[1].threshold", "(0, 1]"),
    ('[[wake]]\nthreshold = 0.5', "wake[0].model", "missing"),
    ('[[wake]]\nmodel = "alexa"\n[[wake]]\nmodel = "alexa"', "wake[1].model", "wake[0]"),
    ("wake = []", "wake", "at least one"),
    ('[wake]\nmodel = "alexa"', "wake", "[[wake]]"),
    ("audio = 3", "audio", "table"),
    ("[audio]\nsample_rate_hz = 12345", "audio.sample_rate_hz", "resampler"),
    ("[audio]\nsample_rate_hz = 16000.0", "audio.sample_rate_hz", "an integer"),
    ("[audio]\nchannels = true", "audio.channels", "an integer"),
    ("[audio]\nchunk_ms = 32\nsample_rate_hz = 11025", "audio.chunk_ms", "whole number of frames"),
    ('[audio]\nchunk_ms = "80"', "audio.chunk_ms", "a number"),
    ('[audio]\nsample_format = "S8"', "audio.sample_format", "S16_LE"),
    ("[audio]\nring_buffer_s = 0.1", "audio.ring_buffer_s", "[0.16, 60]"),
    ("[endpoint]\npre_roll_ms = 9000", "audio.ring_buffer_s", "pre_roll_ms"),
    ("[endpoint]\noffset_threshold = 0.6", "endpoint.offset_threshold", "onset_threshold"),
    ("[endpoint]\ntrailing_silence_ms = 0", "endpoint.trailing_silence_ms", "(0, 10000] ms"),
    ("[asr]\nmax_command_s = 31", "asr.max_command_s", "(0, 30] s"),
    ("[asr]\nmax_command_s = 1e400", "asr.max_command_s", "finite"),
    ("[asr]\nthreads = 0", "asr.threads", "[1, 16]"),
    ("[noise_suppression]\nenabled = 1", "noise_suppression.enabled", "true or false"),
    ('[vehicle]\nbus = "socketcan:can0"', "vehicle.dbc", "DBC"),
    ('[vehicle]\nbus = "can0"\ndbc = ["car.dbc"]', "vehicle.bus", "INTERFACE:CHANNEL"),
    ('[vehicle]\nbus = "socketcan:can0,filter=XYZ"\ndbc = ["car.dbc"]', "vehicle.bus", "filter=ID:MASK"),
    ('[vehicle]\ndbc = "car.dbc"', "vehicle.dbc", "an array"),
    ("[vehicle]\ndbc = []", "vehicle.dbc", "at least one"),
    ('[vehicle]\ndbc = [""]', "vehicle.dbc[0]", "a path"),
    ('[vehicle]\ndbc = ["package:../../etc/passwd"]', "vehicle.dbc[0]", "package:REL"),
    ('[vehicle]\ndbc = ["package:vehicle/demo/missing.dbc"]', "vehicle.dbc[0]", "no file"),
    ('[vehicle]\nid = "kona/1"', "vehicle.id", "letters, digits"),
    ('[vehicle]\ndtc_table = "kona ev"', "vehicle.dtc_table", "a name"),
    ('[asr]\nplaces = "europe"', "asr.places", "path of a file of place names"),
    ("[asr]\nknown_max_drop = -1.0", "asr.known_max_drop", "nats per token"),
    ("[vehicle]\nbattery_capacity_kwh = -64", "vehicle.battery_capacity_kwh", "kWh"),
    ('[vehicle]\ndbc = ["car.dbc"]', "diagnostics.ecus", "enabled = false"),
    ('[diagnostics]\nprotocol = "kwp"', "diagnostics.protocol", "'uds' or 'obd'"),
    ("[diagnostics]\ninterval_s = 0.1", "diagnostics.interval_s", "[1, 86400] s"),
    ('[[diagnostics.ecus]]\nname = "BMS"\nrequest_id = 0x7E4', "diagnostics.ecus[0].response_id", "0x7EC"),
    ('[[diagnostics.ecus]]\nname = "BMS"\nrequest_id = 0x7E4\nresponse_id = 0x7E4', "diagnostics.ecus[0].response_id",
     "other than request_id"),
    ('[[diagnostics.ecus]]\nname = "A"\nrequest_id = 0x7E0\nresponse_id = 0x7E8\n'
     '[[diagnostics.ecus]]\nname = "B"\nrequest_id = 0x7E8\nresponse_id = 0x7F0', "diagnostics.ecus[1].request_id",
     "0x7E8"),
    ('[[diagnostics.ecus]]\nname = "A"\nrequest_id = 0x20000000\nresponse_id = 0x7E8', "diagnostics.ecus[0].request_id",
     "CAN id"),
    ("[gnss]\nenabled = true", "gnss.port", "serial device"),
    ('[gnss]\nport = "/dev/ttyACM0"\nbaudrate_bps = 0', "gnss.baudrate_bps", "bit/s"),
    ("[uplink]\nenabled = true", "uplink.host", "broker host"),
    ('[uplink]\nhost = "mqtts://broker:8883"', "uplink.host", "host name"),
    ('[uplink]\nhost = "b"\nport = 70000', "uplink.port", "[1, 65535]"),
    ('[uplink]\ntls_cert_path = "c.crt"', "uplink.tls_key_path", "both or neither"),
    ('[uplink]\ntls = false\ntls_ca_path = "ca.pem"', "uplink.tls_ca_path", "tls = false"),
    ('[uplink]\ntopic_prefix = "fleet/#"', "uplink.topic_prefix", "'#'"),
    ('[uplink]\ntopic_prefix = "/fleet"', "uplink.topic_prefix", "leading/trailing"),
    ("[uplink]\nqos = 3", "uplink.qos", "[0, 2]"),
    ("[uplink]\nmax_queue_bytes = 10", "uplink.max_queue_bytes", "bytes"),
    ("[demo_car]\nstart_s = 900.0", "demo_car.start_s", "720 s"),
    ('[demo_car]\nloop = "yes"', "demo_car.loop", "true or false"),
    ('[[wake]]\nmodel = "alexa"\nverifier = "gpt"', "wake[0].verifier", "whisper"),
    ("[paths]\nstate_dir = 5", "paths.state_dir", "a path"),
    ("[paths]\nstate_dir = 1979-05-27", "paths.state_dir", "date/time"),
]


@pytest.mark.parametrize(("body", "key", "words"), BAD, ids=[b[1] + ":" + b[2] for b in BAD])
def test_every_error_names_the_file_and_the_key(body: str, key: str, words: str, tmp_path: Path) -> None:
    path = _write(tmp_path, body + "\n")
    msg = _error(path)
    assert msg.startswith(f"{path}: {key}: "), msg
    assert words in msg, msg
    assert "expected" in msg or "missing" in msg or "no file" in msg, msg


@pytest.mark.parametrize(("body", "key", "suggestion"), [
    ('[[wake]]\nmodel = "alexa"\ntreshold = 0.5', "wake[0].treshold", "threshold"),
    ("[audoi]", "audoi", "audio"),
    ("[paths]\nstate = '/x'", "paths.state", "state_dir"),
    ('[[diagnostics.ecus]]\nname = "BMS"\nrequest = 0x7E4', "diagnostics.ecus[0].request", "request_id"),
    ("[uplink]\nca_path = 'x'", "uplink.ca_path", "tls_ca_path"),
])
def test_unknown_keys_suggest_the_closest_known_key(body: str, key: str, suggestion: str, tmp_path: Path) -> None:
    path = _write(tmp_path, body + "\n")
    assert _error(path) == f"{path}: {key}: unknown key; did you mean {suggestion!r}?"


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "[asr]\nlanguage = \"de\"\n"))
    assert "asr.language: unknown key; expected one of: int8, threads, max_command_s, beam_size, grammar" in msg
    assert "beam_size" in _error(_write(tmp_path, "[asr]\nbeam_width = 5\n"))  # a close match is suggested


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, '[audio]\ndevice = "ea_mic48"\nchannels = = 2\n')
    msg = _error(path)
    assert msg.startswith(f"{path}:3:") and "invalid TOML" in msg, msg
    path = _write(tmp_path, "[asr]\nthreads = 1\nthreads = 2\n")
    assert _error(path).startswith(f"{path}:3:")


@pytest.mark.parametrize(("data", "start"), [
    (b"[asr]\n\xff\n", ":2: invalid TOML: not UTF-8"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, ": invalid TOML"),
    (b"a = 1" + b"0" * 5000, ": invalid TOML"),
])
def test_unreadable_documents_are_config_errors(data: bytes, start: str, tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_bytes(data)
    assert _error(path).startswith(f"{path}{start}")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    assert _error(tmp_path / "none.toml").startswith(f"{tmp_path / 'none.toml'}: cannot read")


def test_settings_check_values_built_in_code_too() -> None:
    with pytest.raises(SettingError, match=r"AudioSettings\.sample_rate_hz: expected"):
        dataclasses.replace(AudioSettings(), sample_rate_hz=12345)
    with pytest.raises(ConfigError, match=r"DeviceConfig\.wake\[1\]\.model"):
        DeviceConfig(wake=(WakeSettings("alexa"), WakeSettings("alexa")), paths=default_paths(ENV))
    with pytest.raises(ConfigError, match=r"VehicleSettings\.bus"):
        VehicleSettings(bus="socketcan")


@pytest.mark.parametrize("spec", [
    "virtual:can0", "socketcan:vcan0", "SocketCAN:can0", "slcan:/dev/ttyACM0@500000", "slcan:/dev/ttyACM0@500000/921600",
    "socketcan:can0,filter=7E8:7F8", "socketcan:can0,filter=18DAF110:1FFFFFFF:ext", "socketcan:can0,filter=7E8",
    "can0", "usb:can0", "socketcan:", "socketcan:can0@fast", "socketcan:can0,bitrate=5", "socketcan:can0,filter=",
    "slcan:/dev/ttyACM0@500000/x", "virtual:can0,filter=G:1",
])
def test_bus_specs_agree_with_the_vehicle_parser(spec: str) -> None:
    """core must not import vehicle, so it keeps its own check of the spec; every spec it accepts must parse."""
    from edge_assistant.vehicle.bus import parse_bus_spec

    try:
        parse_bus_spec(spec)
        parsed = True
    except ConfigError:
        parsed = False
    assert (bus_spec_problem(spec) is None) == parsed, spec


# --------------------------------------------------------------------------------------------- paths
def test_paths_default_to_the_user_directories() -> None:
    p = default_paths({"HOME": "/home/driver"})
    assert p == PathSettings(Path("/home/driver/.local/state/edge-assistant"), Path("/home/driver/.cache/edge-assistant"),
                             Path("/home/driver/.cache/edge-assistant/models"))
    p = default_paths({"HOME": "/home/driver", "XDG_STATE_HOME": "/xdg/state", "XDG_CACHE_HOME": "relative/ignored"})
    assert p.state_dir == Path("/xdg/state/edge-assistant") and p.cache_dir == Path("/home/driver/.cache/edge-assistant")


def test_paths_follow_systemd_directories(tmp_path: Path) -> None:
    env = {"HOME": "/home/driver", "STATE_DIRECTORY": "/var/lib/edge-assistant:/var/lib/other",
           "CACHE_DIRECTORY": "/var/cache/edge-assistant"}
    cfg = load_config(_write(tmp_path, ""), environ=env)
    assert cfg.paths.state_dir == Path("/var/lib/edge-assistant")
    assert cfg.paths.cache_dir == Path("/var/cache/edge-assistant")
    assert cfg.paths.model_cache_dir == Path("/var/cache/edge-assistant/models")
    assert cfg.uplink.queue_path == Path("/var/lib/edge-assistant/uplink.db")
    env["EDGE_ASSISTANT_MODELS"] = "/opt/edge-assistant/current/models"
    assert default_config(env).paths.model_cache_dir == Path("/opt/edge-assistant/current/models")


def test_paths_in_the_file_win_over_the_environment(tmp_path: Path) -> None:
    env = {"HOME": "/home/driver", "STATE_DIRECTORY": "/var/lib/edge-assistant"}
    cfg = load_config(_write(tmp_path, '[paths]\nstate_dir = "state"\nmodel_cache_dir = "~/models"\n'), environ=env)
    assert cfg.paths.state_dir == tmp_path / "state"
    assert cfg.paths.model_cache_dir == Path("/home/driver/models")
    assert cfg.paths.cache_dir == Path("/home/driver/.cache/edge-assistant")


def test_relative_paths_are_resolved_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "edge-assistant"
    folder.mkdir(parents=True)
    path = _write(folder, """
[[wake]]
model = "heads/hey_kona.onnx"
[[wake]]
model = "alexa"
[vehicle]
bus = "socketcan:can0"
dbc = ["pcan.dbc", "../shared/c-can.dbc", "/usr/share/dbc/x.dbc", "~/dbc/y.dbc", "package:vehicle/demo/ea_demo_ev.dbc"]
vss_mapping = "./kona_ev_vss.json"
dtc_table = "tables/kona.json"
[diagnostics]
enabled = false
[uplink]
tls_ca_path = "certs/ca.pem"
queue_path = "queue"
[asr]
places = "./region/places.txt"
""")
    cfg = load_config(path, environ=ENV)
    assert cfg.asr.places == str(folder / "region" / "places.txt")
    assert cfg.wake[0].model == str(folder / "heads" / "hey_kona.onnx") and cfg.wake[1].model == "alexa"
    assert cfg.vehicle.dbc[:4] == (folder / "pcan.dbc", tmp_path / "etc" / "shared" / "c-can.dbc",
                                   Path("/usr/share/dbc/x.dbc"), Path("/home/driver/dbc/y.dbc"))
    assert cfg.vehicle.dbc[4].is_file() and cfg.vehicle.dbc[4].name == "ea_demo_ev.dbc"
    assert cfg.vehicle.vss_mapping == folder / "kona_ev_vss.json"
    assert cfg.vehicle.dtc_table == str(folder / "tables" / "kona.json")
    assert cfg.uplink.tls_ca_path == folder / "certs" / "ca.pem" and cfg.uplink.queue_path == folder / "queue"
    keys = [k for k, _ in cfg.referenced_files()]
    assert keys == ["wake[0].model", *(f"vehicle.dbc[{i}]" for i in range(5)), "vehicle.vss_mapping",
                    "vehicle.dtc_table", "asr.places"]  # the uplink is off: its TLS files are not needed


def test_own_dbc_drops_the_demo_cars_mapping_table_and_ecus(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[vehicle]\ndbc = ["car.dbc"]\n[diagnostics]\nenabled = false\n'), environ=ENV)
    assert cfg.vehicle.vss_mapping is None and cfg.vehicle.dtc_table is None and cfg.diagnostics.ecus == ()


def test_the_demo_car_drives_only_on_the_demo_cars_virtual_bus(tmp_path: Path) -> None:
    assert load_config(DEMO, environ=ENV).demo_car_enabled
    own_dbc = load_config(_write(tmp_path, '[vehicle]\ndbc = ["car.dbc"]\n[diagnostics]\nenabled = false\n'),
                          environ=ENV)
    assert not own_dbc.demo_car_enabled
    real_bus = load_config(_write(tmp_path, '[vehicle]\nbus = "socketcan:can0"\ndbc = ["car.dbc"]\n'
                                            '[diagnostics]\nenabled = false\n'), environ=ENV)
    assert not real_bus.demo_car_enabled
    forced = load_config(_write(tmp_path, '[vehicle]\nbus = "socketcan:vcan0"\n'
                                          'dbc = ["package:vehicle/demo/ea_demo_ev.dbc"]\n'
                                          '[diagnostics]\nenabled = false\n[demo_car]\nenabled = true\n'),
                         environ=ENV)
    assert forced.demo_car_enabled  # e.g. the VM test: the demo car on a real kernel's vcan0


# ------------------------------------------------------------------------------------------- the CLI
def test_config_check_prints_the_resolved_configuration(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["config", "check", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert "[vehicle]" in out and 'bus = "virtual:can0"' in out
    assert _same(load_config(_write(tmp_path, out, "printed.toml")), load_config(DEMO))
    assert main(["config", "check", str(DEMO), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["errors"] == [] and data["config"]["vehicle"]["dtc_table"] == "demo_ev"


def test_config_check_reports_errors_and_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = _write(tmp_path, "[asr]\nthreads = 0\n")
    assert main(["config", "check", str(bad)]) == 1
    assert f"error: {bad}: asr.threads: expected" in capsys.readouterr().err
    assert main(["config", "check", str(bad), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert not data["ok"] and data["config"] is None and data["errors"][0].startswith(f"{bad}: asr.threads")

    kona = _write(tmp_path, KONA.read_text(encoding="utf-8"))  # without the DBC, mapping and certificates
    assert main(["config", "check", str(kona)]) == 1
    err = capsys.readouterr().err
    assert f"{kona}: vehicle.dbc[0]: file not found: {tmp_path / 'pcan.dbc'}" in err
    assert f"{kona}: uplink.tls_key_path: file not found" in err
    assert main(["config", "check", str(kona), "--file-only"]) == 0
    capsys.readouterr()
    for name in ("pcan.dbc", "kona_ev_vss.json", "certs/fleet-ca.pem", "certs/kona-ev-1.crt", "certs/kona-ev-1.key"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("stand-in\n")
    assert main(["config", "check", str(kona)]) == 0, capsys.readouterr().err


def test_config_check_names_an_unknown_dtc_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _write(tmp_path, '[vehicle]\ndtc_table = "kona_ev2"\n')
    assert main(["config", "check", str(path)]) == 1
    assert f"{path}: vehicle.dtc_table: " in capsys.readouterr().err


# ------------------------------------------------------------------------------------ property tests
_KEYS = sorted({f.name for cls in (AudioSettings, WakeSettings, EcuSettings, VehicleSettings, PathSettings,
                                   *(type(getattr(default_config(ENV), s)) for s in SECTIONS if s != "wake"))
                for f in dataclasses.fields(cls)} | {"treshold", "dbcs", "id"})
_HEADERS = [f"[{s}]" for s in SECTIONS if s != "wake"] + ["[[wake]]", "[[diagnostics.ecus]]", "[audoi]", "[vehicle.x]"]
_LITERALS = ['"alexa"', '"socketcan:can0"', '"virtual:can0"', '["car.dbc"]', '"package:vehicle/demo/ea_demo_ev.dbc"',
             "0x7E4", "0x7EC", '"uds"', '"obd"', "1979-05-27", "07:32:00", "{a = 1}", "[]", '"~/x"', '"kona_ev"',
             "nan", "inf", "-0.0", "1e400", "9" * 30, '"ea_mic48"', "48000", "16000", "80.0", "true", "false"]
_VALUE = st.one_of(
    st.sampled_from(_LITERALS),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.text(max_size=12).map(lambda t: json.dumps(t, ensure_ascii=False)),
)
_LINE = st.one_of(st.tuples(st.sampled_from(_KEYS), _VALUE).map(lambda kv: f"{kv[0]} = {kv[1]}"),
                  st.sampled_from(_HEADERS))
_EXAMPLE_LINES = {p.name: p.read_text(encoding="utf-8").splitlines() for p in (DEMO, KONA)}
_GOOD: dict[str, set[str]] = {}  # key -> values the examples give it (resolved), so that many documents load
for _cfg in (load_config(DEMO, environ=ENV), load_config(KONA, environ=ENV)):
    for _key, _value in re.findall(r"^(\w+) = (.*)$", to_toml(_cfg), re.M):
        _GOOD.setdefault(_key, set()).add(_value)
_SECTION_KEYS = {f"[{s}]": [f.name for f in dataclasses.fields(type(getattr(default_config(ENV), s)))]
                 for s in SECTIONS if s != "wake"}
_SECTION_KEYS |= {"[[wake]]": [f.name for f in dataclasses.fields(WakeSettings)],
                  "[[diagnostics.ecus]]": [f.name for f in dataclasses.fields(EcuSettings)]}


def _mostly(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` four times in five, else ``rare``."""
    return st.integers(0, 4).flatmap(lambda i: rare if i == 2 else usual)  # hypothesis favours 0 and 4


def _value_for(key: str) -> st.SearchStrategy[str]:
    return _mostly(st.sampled_from(sorted(_GOOD[key])), _VALUE) if key in _GOOD else _VALUE


def _entry(header: str) -> st.SearchStrategy[tuple[str, str]]:
    keys = _mostly(st.sampled_from(_SECTION_KEYS.get(header, _KEYS)), st.sampled_from(_KEYS))
    return keys.flatmap(lambda k: st.tuples(st.just(k), _value_for(k)))


_REQUIRED = {"[[wake]]": ["model"], "[[diagnostics.ecus]]": ["name", "request_id", "response_id"]}


@st.composite
def _document(draw) -> str:
    """Tables of key = value lines: known and misspelt keys, good and bad values, sometimes a stray line."""
    singles = draw(st.lists(st.sampled_from([h for h in _HEADERS if not h.startswith("[[")]), unique=True, max_size=6))
    if draw(st.booleans()):  # half of them without the misspelt tables, so that many load
        singles = [h for h in singles if h in _SECTION_KEYS]
    arrays = draw(st.lists(st.sampled_from(["[[wake]]", "[[diagnostics.ecus]]"]), max_size=4))
    parts = []
    for header in draw(st.permutations(singles + arrays)):
        required = [(k, draw(_value_for(k))) for k in _REQUIRED.get(header, []) if draw(_mostly(st.just(True),
                                                                                               st.just(False)))]
        more = draw(st.lists(_entry(header), max_size=4, unique_by=lambda kv: kv[0]))
        body = required + [kv for kv in more if kv[0] not in dict(required)]
        parts += [header, *(f"{k} = {v}" for k, v in body)]
        if draw(st.integers(0, 9)) == 0:
            parts.append(draw(_LINE))
    return "\n".join(parts) + "\n"


_DOCUMENT = _document()


@st.composite
def _mutated_example(draw) -> str:
    lines = list(_EXAMPLE_LINES[draw(st.sampled_from(sorted(_EXAMPLE_LINES)))])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "value", "key", "insert", "uncomment", "garble"]))
        line = lines[i]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "value" and "=" in line:
            lines[i] = line.split("=", 1)[0] + "= " + draw(_VALUE)
        elif op == "key" and "=" in line:
            lines[i] = draw(st.sampled_from(_KEYS)) + " =" + line.split("=", 1)[1]
        elif op == "insert":
            lines.insert(i, draw(_LINE))
        elif op == "uncomment":
            lines[i] = line.lstrip("# ")
        elif op == "garble":
            j = draw(st.integers(min_value=0, max_value=len(line)))
            lines[i] = line[:j] + draw(st.text(max_size=3)) + line[j:]
    return "\n".join(lines) + "\n"


def _loads_or_config_error(folder: Path, text: str) -> None:
    path = folder / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path, environ=ENV)
    except ConfigError as exc:
        assert str(exc).startswith(str(path)), str(exc)
        return
    again = folder / "resolved.toml"
    again.write_text(to_toml(cfg), encoding="utf-8")
    assert _same(load_config(again, environ=ENV), cfg)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_DOCUMENT)
def test_random_documents_load_or_raise_config_error(text: str, tmp_path: Path) -> None:
    _loads_or_config_error(tmp_path, text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_mutated_example())
def test_mutated_examples_load_or_raise_config_error(text: str, tmp_path: Path) -> None:
    _loads_or_config_error(tmp_path, text)
